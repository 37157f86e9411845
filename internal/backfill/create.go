package backfill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Create validates spec and records a pending job, in four steps: check the
// request (without contacting anyone, so a bad range is answered at once),
// resolve its projects, hand each project over to the live stream where it
// takes over, and record the job idempotently.
func (j *Jobs) Create(ctx context.Context, spec Spec) (Job, error) {
	now := j.env.Now().UTC()
	start, end, streams, err := Validate(spec, now, j.stream.Options().Retention)
	if err != nil {
		return Job{}, err
	}
	projects, err := j.resolve(ctx, spec.Projects)
	if err != nil {
		return Job{}, err
	}
	job := Job{
		Version: jobVersion, CreatedAt: now, CreatedBy: spec.CreatedBy,
		Start: start, End: end, Streams: streams, Status: Pending,
	}
	if job.Projects, err = j.plan(ctx, projects, start, end); err != nil {
		return Job{}, err
	}
	return j.record(ctx, job)
}

// Validate checks a request against the clock: the range [start, end) is
// within the organisation's event retention (0: Sentry's usual 90 days;
// negative: unlimited) and not in the future, and only the events stream is
// asked for. It returns the normalised range (whole seconds, UTC) and
// streams. Errors wrap ErrInvalid.
func Validate(spec Spec, now time.Time, retention time.Duration) (start, end time.Time, streams []string, err error) {
	if retention == 0 {
		retention = SentryRetention
	}
	start, end = spec.Start.UTC().Truncate(time.Second), spec.End.UTC().Truncate(time.Second)
	switch {
	case start.IsZero() || end.IsZero():
		return start, end, nil, fmt.Errorf("%w: start and end are required", ErrInvalid)
	case !start.Before(end):
		return start, end, nil, fmt.Errorf("%w: start %s must be before end %s", ErrInvalid, start.Format(time.RFC3339), end.Format(time.RFC3339))
	case retention > 0 && start.Before(now.Add(-retention)):
		return start, end, nil, fmt.Errorf("%w: start %s is older than the organisation's %g-day event retention (EVENT_RETENTION; earliest: %s)", ErrInvalid, start.Format(time.RFC3339), retention.Hours()/24, now.Add(-retention).Format(time.RFC3339))
	case end.After(now):
		return start, end, nil, fmt.Errorf("%w: end %s is in the future (now: %s)", ErrInvalid, end.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	streams = spec.Streams
	if len(streams) == 0 {
		streams = []string{events.Name}
	}
	for _, s := range streams {
		if s != events.Name {
			return start, end, nil, fmt.Errorf("%w: stream %s cannot be backfilled (supported: events)", ErrInvalid, quoted(s))
		}
	}
	return start, end, streams, nil
}

// resolve returns the projects a request names (ids or slugs; none: all),
// asking Sentry for the organisation's projects.
func (j *Jobs) resolve(ctx context.Context, want []string) ([]sentry.Project, error) {
	all, _, err := events.ListProjects(ctx, j.stream.API(), j.opts.Org, j.opts.MaxProjects)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: organization %q has no projects", ErrInvalid, j.opts.Org)
	}
	if len(want) == 0 {
		return all, nil
	}
	var (
		chosen  []sentry.Project
		unknown []string
		seen    = map[string]bool{}
	)
	for _, w := range want {
		i := slices.IndexFunc(all, func(p sentry.Project) bool { return p.ID == w || p.Slug == w })
		switch {
		case i < 0:
			unknown = append(unknown, w)
		case !seen[all[i].ID]:
			seen[all[i].ID] = true
			chosen = append(chosen, all[i])
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: unknown projects %s (not in organization %q)", ErrInvalid, listed(unknown), j.opts.Org)
	}
	return chosen, nil
}

// plan returns each project's part of [start, end): up to where the live
// stream takes over (events.Stream.HandOff), in slices.
func (j *Jobs) plan(ctx context.Context, projects []sentry.Project, start, end time.Time) ([]Project, error) {
	out := make([]Project, 0, len(projects))
	for _, p := range projects {
		clip, err := j.stream.HandOff(ctx, p.ID, p.Slug)
		if err != nil {
			return nil, err
		}
		bp := Project{ID: p.ID, Slug: p.Slug, End: end, Cursor: start, Sequence: engine.Sequence{NextSeq: 1}}
		if clip.Before(end) {
			bp.End = clip
			if clip.Before(start) {
				bp.End = start
			}
			bp.ClippedFrom = bp.End
		}
		bp.WindowsTotal = j.countSlices(start, bp.End)
		bp.Done = !bp.End.After(start)
		out = append(out, bp)
	}
	return out, nil
}

// record stores the job. It is idempotent: the job id is derived from the
// normalised request, so a retried request (a lost response, an operator's
// retry) finds the job it created, pending or running, instead of creating a
// second one that would read and write the same events. Once that job is
// finished, the same request makes a new job (the next id in the sequence).
func (j *Jobs) record(ctx context.Context, job Job) (Job, error) {
	ids := make([]string, len(job.Projects))
	for i, p := range job.Projects {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	for n := range maxGenerations {
		job.ID = jobID(j.opts.Org, job.Start, job.End, job.Streams, ids, n)
		doc, err := engine.LoadDoc[Job](ctx, j.env.State, j.key(job.ID), nil)
		if err != nil {
			return Job{}, fmt.Errorf("failed to record backfill job %s: %w", job.ID, err)
		}
		if !doc.Exists() {
			doc.V = job
			err := doc.Save(ctx, nil)
			if err == nil {
				logging.FromContext(ctx).InfoContext(ctx, "backfill job created", "job_id", job.ID, "start", job.Start, "end", job.End, "projects", len(job.Projects))
				return job, nil
			}
			if !errors.Is(err, engine.ErrConflict) {
				return Job{}, fmt.Errorf("failed to record backfill job: %w", err)
			}
			// Created concurrently: doc now holds that job.
		}
		if doc.V.Status == Pending || doc.V.Status == Running {
			logging.FromContext(ctx).InfoContext(ctx, "backfill job already exists for this request", "job_id", doc.V.ID, "status", doc.V.Status)
			return doc.V, nil
		}
	}
	return Job{}, fmt.Errorf("%w: this backfill was already run %d times", ErrInvalid, maxGenerations)
}

// jobID derives a job id from the normalised request and a generation (the
// how-many-th job of that request).
func jobID(org string, start, end time.Time, streams, projectIDs []string, gen int) string {
	st := slices.Clone(streams)
	slices.Sort(st)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%s\x00%d", org, start.Unix(), end.Unix(),
		strings.Join(st, ","), strings.Join(projectIDs, ","), gen)
	return hex.EncodeToString(h.Sum(nil))[:12]
}
