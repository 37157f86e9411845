package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Backfill: an ad-hoc, durable job that reads a past range [Start, End) of
// some projects' events again and writes the events the bucket does not hold
// yet. It keeps the stream's guarantees:
//
//   - Write-once objects named from committed state, in the stream's layout:
//     <data>YYYY/MM/DD/HH/<org>-<project>-bf<job>-<epoch>-<seq>.ndjson, where
//     epoch is the end of the slice being read (so an event of time t lies in
//     a backfill object whose epoch is in (t, t + BackfillSlice]).
//   - One job document, <state>backfill/<job>.json, updated by
//     compare-and-swap; a lease per job (<state>backfill/<job>.lease.json);
//     bounded runs within Budget that report whether work remains.
//   - De-duplication against the bucket: before a project's slice [a, b) is
//     read from Sentry (in every run that works on it), the data objects that
//     can hold events of [a, b) are listed and read, and their ids with
//     dateCreated in [a, b) form the seen set. A stream object's epoch is at
//     most t + MaxWindow (windows are capped) and, by construction of the
//     names, every event of stream object k is older than object k+1's epoch.
//     So the objects to read are those of the project in the hour folders
//     hour(a) … hour(b + MaxWindow + Overlap), plus the project's last stream
//     object before hour(a) (found once per job by walking back day folders,
//     then carried from slice to slice). Cost per slice and run: ~2 day
//     listings (cached within a run) and reading the project's objects of
//     about BackfillSlice + MaxWindow + Overlap hours; memory: the ids of one
//     slice of one project.
//   - No race with the live stream: the part of [Start, End) at or after the
//     project's stream watermark − Overlap is left to the stream; the job
//     records it as clipped. For a project the stream has not started, the
//     job creates its checkpoint with the watermark clip + Overlap (clip =
//     now − InitialLookback), so that the stream's first window begins
//     exactly at the clip: no part of the range is left to neither.

// Backfill job statuses.
const (
	BackfillPending = "pending"
	BackfillRunning = "running"
	BackfillDone    = "done"
	BackfillFailed  = "failed"
)

// Backfill limits and defaults.
const (
	// SentryRetention is how far back Sentry keeps events.
	SentryRetention = 90 * 24 * time.Hour
	// DefaultBackfillSlice is the length of the sub-windows a backfill
	// reads (and de-duplicates) one at a time.
	DefaultBackfillSlice = 6 * time.Hour
	// backfillPredFloor bounds the walk back for a project's last stream
	// object before a backfill's start.
	backfillPredFloor = SentryRetention + 10*24*time.Hour
	// backfillListCache bounds the day listings kept within one run.
	backfillListCache = 16
	backfillVersion   = 1
)

// ErrBackfillInvalid marks a backfill request that cannot be accepted (bad
// range, unknown project). It wraps ErrConfig.
var ErrBackfillInvalid = fmt.Errorf("%w: invalid backfill", ErrConfig)

// ErrBackfillNotFound is returned for an unknown job id.
var ErrBackfillNotFound = errors.New("backfill job not found")

// BackfillSpec is a backfill request.
type BackfillSpec struct {
	// Start and End bound the range [Start, End).
	Start, End time.Time
	// Projects are ids or slugs; empty means all (up to MaxProjects).
	Projects []string
	// Streams; empty means ["events"], the only one supported.
	Streams []string
	// CreatedBy records who asked (an email, "cli").
	CreatedBy string
}

// BackfillJob is the durable job document.
type BackfillJob struct {
	Version   int               `json:"version"`
	ID        string            `json:"id"`
	CreatedAt time.Time         `json:"created_at"`
	CreatedBy string            `json:"created_by,omitempty"`
	Start     time.Time         `json:"start"`
	End       time.Time         `json:"end"`
	Streams   []string          `json:"streams"`
	Status    string            `json:"status"`
	Projects  []BackfillProject `json:"projects"`
	Errors    []string          `json:"errors,omitempty"`
	UpdatedAt time.Time         `json:"updated_at,omitzero"`
	UpdatedBy string            `json:"updated_by,omitempty"`
}

// BackfillProject is one project's progress in a job.
type BackfillProject struct {
	ID   string `json:"id"`
	Slug string `json:"slug,omitempty"`
	// End is the effective end: the job's End, or the clip point.
	End time.Time `json:"end"`
	// ClippedFrom is set when [ClippedFrom, job End) is left to the live
	// stream (at or after its watermark − Overlap).
	ClippedFrom time.Time `json:"clipped_from,omitzero"`
	// Cursor is the start of the next slice (the window cursor).
	Cursor time.Time `json:"cursor"`
	// Window is the slice in progress (cursor, frontier as in the stream).
	Window *window `json:"window,omitempty"`
	// NextSeq and NextEpoch name the next data object.
	NextSeq   int64 `json:"next_seq"`
	NextEpoch int64 `json:"next_epoch"`
	// StreamPred is the project's last stream object with an epoch before
	// hour(Cursor); PredResolved once it has been looked for.
	StreamPred   string `json:"stream_pred,omitempty"`
	PredResolved bool   `json:"pred_resolved,omitempty"`

	WindowsDone  int    `json:"windows_done"`
	WindowsTotal int    `json:"windows_total"`
	Done         bool   `json:"done"`
	Error        string `json:"error,omitempty"`
	// Failing is set when the project's last attempt failed transiently
	// (it is served after the others, and retried).
	Failing           bool `json:"failing,omitempty"`
	EventsWritten     int  `json:"events_written"`
	DuplicatesSkipped int  `json:"duplicates_skipped"`
	Pages             int  `json:"pages"`
	Objects           int  `json:"objects"`
}

// Totals sums the projects' counters.
func (j *BackfillJob) Totals() (windowsDone, windowsTotal, events, dups int) {
	for _, p := range j.Projects {
		windowsDone += p.WindowsDone
		windowsTotal += p.WindowsTotal
		events += p.EventsWritten
		dups += p.DuplicatesSkipped
	}
	return
}

// BackfillSummary describes one RunBackfill.
type BackfillSummary struct {
	JobID             string
	Status            string
	Pages             int
	EventsWritten     int
	DuplicatesSkipped int
	Objects           int
	ObjectsRecovered  int
	ObjectsScanned    int
	// ProjectsFailed counts projects skipped for this run after a
	// transient Sentry error (retried by a later run).
	ProjectsFailed int
	// WorkRemaining: the job is not finished; run again.
	WorkRemaining bool
	// LeaseHeld: another run works on this job; nothing was done.
	LeaseHeld bool
	Job       BackfillJob
}

// LogValue renders the summary with snake_case keys.
func (s BackfillSummary) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("job_id", s.JobID), slog.String("status", s.Status),
		slog.Int("pages", s.Pages), slog.Int("events_written", s.EventsWritten),
		slog.Int("duplicates_skipped", s.DuplicatesSkipped), slog.Int("objects", s.Objects),
		slog.Int("objects_recovered", s.ObjectsRecovered), slog.Int("objects_scanned", s.ObjectsScanned),
		slog.Int("projects_failed", s.ProjectsFailed),
		slog.Bool("work_remaining", s.WorkRemaining), slog.Bool("lease_held", s.LeaseHeld))
}

// objectLister lists object names (sink.GCS and sink.Dir implement it).
type objectLister interface {
	List(ctx context.Context, prefix string) ([]string, error)
}

func (c *Collector) backfillKey(id string) string {
	return c.opts.StatePrefix + "backfill/" + id + ".json"
}

func (c *Collector) backfillLeaseKey(id string) string {
	return c.opts.StatePrefix + "backfill/" + id + ".lease.json"
}

// backfillProjectLeaseKey is the lease a backfill run holds on a project
// while it scans, reads and writes one of its slices: two jobs over the same
// project (overlapping requests) never de-duplicate against the bucket at
// the same time, which would let both write the same events.
func (c *Collector) backfillProjectLeaseKey(projectID string) string {
	return c.opts.StatePrefix + "backfill/projects/" + projectID + ".lease.json"
}

// errProjectBusy reports a project whose backfill lease another run holds.
var errProjectBusy = errors.New("another backfill run holds the project")

func (c *Collector) slice() time.Duration {
	return min(DefaultBackfillSlice, c.opts.MaxWindow)
}

// validJobID accepts the ids CreateBackfill makes (and the pubsub job_id
// syntax).
func validJobID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// CreateBackfill validates spec and records a pending job.
func (c *Collector) CreateBackfill(ctx context.Context, spec BackfillSpec) (BackfillJob, error) {
	now := c.clock.Now().UTC()
	start, end := spec.Start.UTC().Truncate(time.Second), spec.End.UTC().Truncate(time.Second)
	switch {
	case start.IsZero() || end.IsZero():
		return BackfillJob{}, fmt.Errorf("%w: start and end are required", ErrBackfillInvalid)
	case !start.Before(end):
		return BackfillJob{}, fmt.Errorf("%w: start %s must be before end %s", ErrBackfillInvalid, start.Format(time.RFC3339), end.Format(time.RFC3339))
	case start.Before(now.Add(-SentryRetention)):
		return BackfillJob{}, fmt.Errorf("%w: start %s is older than Sentry's 90-day retention (earliest: %s)", ErrBackfillInvalid, start.Format(time.RFC3339), now.Add(-SentryRetention).Format(time.RFC3339))
	case end.After(now):
		return BackfillJob{}, fmt.Errorf("%w: end %s is in the future (now: %s)", ErrBackfillInvalid, end.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	streams := spec.Streams
	if len(streams) == 0 {
		streams = []string{"events"}
	}
	for _, s := range streams {
		if s != "events" {
			return BackfillJob{}, fmt.Errorf("%w: stream %q cannot be backfilled (supported: events)", ErrBackfillInvalid, s)
		}
	}
	r := &run{c: c}
	all, err := r.listProjects(ctx)
	if err != nil {
		return BackfillJob{}, err
	}
	var chosen []*project
	if len(spec.Projects) == 0 {
		chosen = all
	} else {
		var unknown []string
		seen := map[string]bool{}
		for _, want := range spec.Projects {
			i := slices.IndexFunc(all, func(p *project) bool { return p.id == want || p.slug == want })
			switch {
			case i < 0:
				unknown = append(unknown, want)
			case !seen[all[i].id]:
				seen[all[i].id] = true
				chosen = append(chosen, all[i])
			}
		}
		if len(unknown) > 0 {
			return BackfillJob{}, fmt.Errorf("%w: unknown projects %s (not in organization %q)", ErrBackfillInvalid, strings.Join(unknown, ", "), c.opts.Org)
		}
	}
	if len(chosen) == 0 {
		return BackfillJob{}, fmt.Errorf("%w: organization %q has no projects", ErrBackfillInvalid, c.opts.Org)
	}
	job := BackfillJob{
		Version: backfillVersion, CreatedAt: now, CreatedBy: spec.CreatedBy,
		Start: start, End: end, Streams: streams, Status: BackfillPending,
	}
	for _, p := range chosen {
		clip, err := c.backfillClip(ctx, r, p, now)
		if err != nil {
			return BackfillJob{}, err
		}
		bp := BackfillProject{ID: p.id, Slug: p.slug, End: end, Cursor: start, NextSeq: 1}
		if clip.Before(end) {
			bp.End = clip
			if clip.Before(start) {
				bp.End = start
			}
			bp.ClippedFrom = bp.End
		}
		bp.WindowsTotal = c.countSlices(start, bp.End)
		if !bp.End.After(start) {
			bp.Done = true
		}
		job.Projects = append(job.Projects, bp)
	}
	// Idempotent: the job id is derived from the normalised spec, so a
	// retried request (a lost response, an operator's retry) finds the job
	// it created, pending or running, instead of creating a second one
	// that would read and write the same events. Once that job is finished,
	// the same spec makes a new job (the next id in the sequence).
	ids := make([]string, len(chosen))
	for i, p := range chosen {
		ids[i] = p.id
	}
	slices.Sort(ids)
	for n := range maxBackfillGenerations {
		job.ID = backfillJobID(c.opts.Org, start, end, streams, ids, n)
		data, err := json.Marshal(job)
		if err != nil {
			return BackfillJob{}, fmt.Errorf("failed to encode backfill job: %w", err)
		}
		_, err = c.state.Write(ctx, c.backfillKey(job.ID), data, contentTypeJSON, 0)
		if err == nil {
			c.log.InfoContext(ctx, "backfill job created", "job_id", job.ID, "start", start, "end", end, "projects", len(job.Projects))
			return job, nil
		}
		if !errors.Is(err, sink.ErrPrecondition) {
			return BackfillJob{}, transient(fmt.Errorf("failed to record backfill job: %w", err))
		}
		existing, _, lerr := c.loadBackfill(ctx, job.ID)
		if lerr != nil {
			if errors.Is(lerr, ErrBackfillNotFound) {
				return BackfillJob{}, transient(fmt.Errorf("failed to record backfill job %s: it exists but cannot be read", job.ID))
			}
			return BackfillJob{}, transient(lerr)
		}
		if existing.Status == BackfillPending || existing.Status == BackfillRunning {
			c.log.InfoContext(ctx, "backfill job already exists for this request", "job_id", existing.ID, "status", existing.Status)
			return existing, nil
		}
	}
	return BackfillJob{}, fmt.Errorf("%w: this backfill was already run %d times", ErrBackfillInvalid, maxBackfillGenerations)
}

// maxBackfillGenerations bounds how many finished jobs with the same spec
// CreateBackfill walks past.
const maxBackfillGenerations = 1000

// backfillJobID derives a job id from the normalised spec and a generation
// (the how-many-th job of that spec).
func backfillJobID(org string, start, end time.Time, streams, projectIDs []string, gen int) string {
	st := slices.Clone(streams)
	slices.Sort(st)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%s\x00%d", org, start.Unix(), end.Unix(),
		strings.Join(st, ","), strings.Join(projectIDs, ","), gen)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// backfillClip returns where the live stream takes over project p: the job
// reads p's events up to the clip, the stream from the clip on. For a project
// the stream has not started (no checkpoint), the clip is now −
// InitialLookback, and the stream's own first window would start later (at
// its first run's now − InitialLookback), leaving a gap collected by neither
// (the review's M4). So the checkpoint is created here, by compare-and-swap
// (does-not-exist), with Watermark = clip + overlap: the stream's first
// window [W − overlap, …) then starts exactly at the clip. If the stream
// creates its checkpoint first, the swap fails and the clip is taken from
// what it committed.
func (c *Collector) backfillClip(ctx context.Context, r *run, p *project, now time.Time) (time.Time, error) {
	for range maxConflictsPerRun {
		if err := r.load(ctx, p); err != nil {
			return time.Time{}, transient(err)
		}
		clip := c.streamFloor(p.cp, now)
		if p.gen != 0 || !p.cp.Watermark.IsZero() || p.cp.Window != nil {
			return clip, nil
		}
		cp := p.cp
		cp.Watermark = clip.Add(c.streamOverlap())
		cp.UpdatedAt = now
		cp.UpdatedBy = c.opts.RunID
		data, err := cp.encode()
		if err != nil {
			return time.Time{}, err
		}
		_, err = c.state.Write(ctx, p.key, data, contentTypeJSON, 0)
		switch {
		case err == nil:
			c.log.InfoContext(ctx, "created the stream checkpoint of a project the stream has not read yet, so that it starts where the backfill stops",
				"project_id", p.id, "clip", clip, "watermark", cp.Watermark)
			return clip, nil
		case errors.Is(err, sink.ErrPrecondition):
			continue // the stream got there first: clip at what it committed
		default:
			return time.Time{}, transient(fmt.Errorf("failed to create the checkpoint of project %s: %w", p.id, err))
		}
	}
	return time.Time{}, transient(fmt.Errorf("failed to create the checkpoint of project %s: too many concurrent changes", p.id))
}

// streamOverlap is the overlap openWindow applies: Overlap, bounded by
// MaxWindow / 2.
func (c *Collector) streamOverlap() time.Duration {
	o := c.opts.Overlap
	if c.opts.MaxWindow > 0 {
		o = min(o, c.opts.MaxWindow/2)
	}
	return o
}

// streamFloor is the earliest time the live stream may still write for a
// project: its watermark − Overlap, its first window's start, or (stream not
// started) now − InitialLookback.
func (c *Collector) streamFloor(cp *checkpoint, now time.Time) time.Time {
	switch {
	case !cp.Watermark.IsZero():
		return cp.Watermark.Add(-c.streamOverlap())
	case cp.Window != nil:
		return cp.Window.Start
	default:
		return now.Add(-c.opts.InitialLookback).Truncate(time.Second)
	}
}

func (c *Collector) countSlices(start, end time.Time) int {
	if !end.After(start) {
		return 0
	}
	s := c.slice()
	return int((end.Sub(start) + s - 1) / s)
}

// GetBackfill returns the job document.
func (c *Collector) GetBackfill(ctx context.Context, id string) (BackfillJob, error) {
	job, _, err := c.loadBackfill(ctx, id)
	return job, err
}

func (c *Collector) loadBackfill(ctx context.Context, id string) (BackfillJob, int64, error) {
	if !validJobID(id) {
		return BackfillJob{}, 0, fmt.Errorf("%w: %q", ErrBackfillNotFound, id)
	}
	data, gen, err := c.state.Read(ctx, c.backfillKey(id))
	if errors.Is(err, sink.ErrNotFound) {
		return BackfillJob{}, 0, fmt.Errorf("%w: %q", ErrBackfillNotFound, id)
	}
	if err != nil {
		return BackfillJob{}, 0, transient(fmt.Errorf("failed to read backfill job %s: %w", id, err))
	}
	var job BackfillJob
	if err := json.Unmarshal(data, &job); err != nil || job.Version != backfillVersion {
		return BackfillJob{}, 0, fmt.Errorf("failed to decode backfill job %s (version %d): %v", id, job.Version, err)
	}
	return job, gen, nil
}

// bfRun is the state of one RunBackfill.
type bfRun struct {
	*run
	job    BackfillJob
	gen    int64
	sum    BackfillSummary
	lists  map[string][]string // day prefix → names (this run)
	lister objectLister
}

// RunBackfill advances job id within the Budget (and ctx's deadline). It
// returns a nil error when it did what it could (WorkRemaining tells whether
// to run again), LeaseHeld when another run works on the job, an error
// wrapping ErrBackfillNotFound for an unknown job, and a transient error
// (IsTransient) when storage or the lease failed, or when every project tried
// failed in Sentry; progress is committed. A project whose Sentry requests
// still fail transiently after the client's retries is skipped for this run
// (recorded in the job's Errors with transientErrorPrefix, WorkRemaining set)
// while the others go on, as in the stream (the review's H2).
func (c *Collector) RunBackfill(ctx context.Context, id string) (BackfillSummary, error) {
	start := c.clock.Now()
	lister, ok := c.data.(objectLister)
	if !ok {
		return BackfillSummary{}, fmt.Errorf("%w: backfill needs a data store that can list objects", ErrConfig)
	}
	r := &bfRun{
		run: &run{
			c: c, start: start, deadline: start.Add(c.opts.Budget),
			leaseKey: c.backfillLeaseKey(id), leaseTTL: leaseTTL(c.opts.Budget),
		},
		sum:    BackfillSummary{JobID: id},
		lists:  map[string][]string{},
		lister: lister,
	}
	if dl, ok := ctx.Deadline(); ok {
		if rem := time.Until(dl); rem < c.opts.Budget {
			r.deadline = start.Add(rem)
		}
	}
	err := r.do(ctx, id)
	r.sum.Job = r.job
	r.sum.Status = r.job.Status
	level := slog.LevelInfo
	attrs := []any{"backfill", r.sum}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, "error", err)
	}
	c.log.Log(ctx, level, "backfill run summary", attrs...)
	return r.sum, err
}

func (r *bfRun) do(ctx context.Context, id string) error {
	c := r.c
	job, gen, err := c.loadBackfill(ctx, id)
	if err != nil {
		return err
	}
	r.job, r.gen = job, gen
	if job.Status == BackfillDone || job.Status == BackfillFailed {
		return nil
	}
	release, held, err := r.acquireLease(ctx, "backfill")
	if err != nil {
		return err
	}
	if !held {
		r.sum.LeaseHeld, r.sum.WorkRemaining = true, true
		return nil
	}
	defer release()
	// Reload under the lease.
	if r.job, r.gen, err = c.loadBackfill(ctx, id); err != nil {
		return err
	}
	if r.job.Status == BackfillPending {
		r.job.Status = BackfillRunning
		if err := r.commitJob(ctx); err != nil && !errors.Is(err, errConflict) {
			return err
		}
	}
	conflicts := 0
	busy := map[string]bool{}    // projects another run holds (skipped for this run)
	skipped := map[string]bool{} // projects that failed transiently (skipped for this run)
	var (
		progressed int     // projects worked on without error
		sentryErrs []error // projects skipped after a transient Sentry error
	)
	for {
		if c.stopRequested() {
			r.sum.WorkRemaining = true
			return nil
		}
		// Projects whose last attempt failed transiently come after the
		// others, so that one failing (or hanging) project cannot keep the
		// head of the order and starve the rest of the job.
		ready := func(p BackfillProject) bool { return !p.Done && !busy[p.ID] && !skipped[p.ID] }
		i := slices.IndexFunc(r.job.Projects, func(p BackfillProject) bool { return ready(p) && !p.Failing })
		if i < 0 {
			i = slices.IndexFunc(r.job.Projects, ready)
		}
		if i < 0 {
			break
		}
		err := r.projectLeased(ctx, i)
		switch {
		case err == nil:
			progressed++
		case errors.Is(err, errProjectBusy):
			busy[r.job.Projects[i].ID] = true
			c.log.InfoContext(ctx, "another backfill run works on this project; skipping it for this run",
				"job_id", r.job.ID, "project_id", r.job.Projects[i].ID)
		case errors.Is(err, errStop):
			r.sum.WorkRemaining = true
			return nil
		case errors.Is(err, errConflict):
			if conflicts++; conflicts >= maxConflictsPerRun {
				r.sum.WorkRemaining = true
				return nil
			}
		case sentry.IsPermanent(err) && !IsTransient(err):
			p := &r.job.Projects[i]
			p.Done, p.Window = true, nil
			p.Error = err.Error()
			r.job.Errors = append(r.job.Errors, fmt.Sprintf("project %s (%s): %v", p.ID, p.Slug, err))
			if cerr := r.commitJob(ctx); cerr != nil && !errors.Is(cerr, errConflict) {
				return transient(cerr)
			}
		case isSentryFailure(err) && ctx.Err() == nil:
			// Sentry still failing on this project after the client's
			// retries (5xx, "Query timeout", a hung request): skip it for
			// this run, as the stream does, and go on with the others; a
			// later run retries it from its committed progress.
			p := &r.job.Projects[i]
			skipped[p.ID] = true
			p.Failing = true
			sentryErrs = append(sentryErrs, err)
			r.sum.ProjectsFailed++
			c.log.WarnContext(ctx, "skipping project for this backfill run after a transient Sentry error",
				"job_id", r.job.ID, "project_id", p.ID, "project", p.Slug, "error", err)
			r.job.Errors = appendTransientError(r.job.Errors,
				fmt.Sprintf("%s%s project %s (%s): %v", transientErrorPrefix, c.clock.Now().UTC().Format(time.RFC3339), p.ID, p.Slug, err))
			if cerr := r.commitJob(ctx); cerr != nil && !errors.Is(cerr, errConflict) {
				r.sum.WorkRemaining = true
				return transient(cerr)
			}
		default:
			r.sum.WorkRemaining = true
			return transient(err)
		}
	}
	if len(skipped) > 0 {
		r.sum.WorkRemaining = true
		if progressed == 0 {
			// Every project tried failed: the run failed.
			return transient(markSentry(fmt.Errorf("backfill %s: every project tried failed: %w", r.job.ID, errors.Join(sentryErrs...))))
		}
		return nil
	}
	if len(busy) > 0 {
		r.sum.WorkRemaining = true
		return nil
	}
	if slices.ContainsFunc(r.job.Projects, func(p BackfillProject) bool { return p.Error != "" }) {
		r.job.Status = BackfillFailed
	} else {
		r.job.Status = BackfillDone
	}
	if err := r.commitJob(ctx); err != nil {
		if errors.Is(err, errConflict) {
			r.sum.WorkRemaining = true
			return nil
		}
		return transient(err)
	}
	return nil
}

// transientErrorPrefix marks the job's errors that did not fail a project
// (a transient Sentry error: the project was retried by a later run).
const transientErrorPrefix = "transient (retried): "

// maxTransientErrors bounds the transient errors a job keeps (the oldest go
// first), so that a project failing run after run does not grow the job
// document without bound.
const maxTransientErrors = 20

// appendTransientError appends msg to errs, dropping the oldest transient
// entries beyond maxTransientErrors.
func appendTransientError(errs []string, msg string) []string {
	errs = append(errs, msg)
	n := 0
	for _, e := range errs {
		if strings.HasPrefix(e, transientErrorPrefix) {
			n++
		}
	}
	for i := 0; n > maxTransientErrors && i < len(errs); {
		if strings.HasPrefix(errs[i], transientErrorPrefix) {
			errs = slices.Delete(errs, i, i+1)
			n--
			continue
		}
		i++
	}
	return errs
}

// commitJob writes the job by compare-and-swap; on a lost swap it reloads it
// and returns errConflict.
func (r *bfRun) commitJob(ctx context.Context) error {
	c := r.c
	if err := r.keepLease(ctx); err != nil {
		return err
	}
	r.job.UpdatedAt = c.clock.Now().UTC()
	r.job.UpdatedBy = c.opts.RunID
	data, err := json.Marshal(r.job)
	if err != nil {
		return fmt.Errorf("failed to encode backfill job: %w", err)
	}
	gen, err := c.state.Write(ctx, c.backfillKey(r.job.ID), data, contentTypeJSON, r.gen)
	if errors.Is(err, sink.ErrPrecondition) {
		job, g, lerr := c.loadBackfill(ctx, r.job.ID)
		if lerr != nil {
			return lerr
		}
		r.job, r.gen = job, g
		return errConflict
	}
	if err != nil {
		job, g, lerr := c.loadBackfill(ctx, r.job.ID) // unknown outcome
		if lerr == nil {
			r.job, r.gen = job, g
		}
		return fmt.Errorf("failed to write backfill job %s: %w", r.job.ID, err)
	}
	r.gen = gen
	return nil
}

// projectLeased works on job project i under the project's backfill lease;
// errProjectBusy when another run holds it.
func (r *bfRun) projectLeased(ctx context.Context, i int) error {
	c := r.c
	key := c.backfillProjectLeaseKey(r.job.Projects[i].ID)
	if err := c.lease.Acquire(ctx, key, c.opts.RunID, r.leaseTTL); err != nil {
		if errors.Is(err, ErrLeaseHeld) {
			return errProjectBusy
		}
		return transient(fmt.Errorf("failed to acquire the backfill lease of project %s: %w", r.job.Projects[i].ID, err))
	}
	r.subLease = key
	defer func() {
		r.subLease = ""
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := c.lease.Release(rctx, key, c.opts.RunID); err != nil {
			c.log.WarnContext(ctx, "failed to release the lease", "lease", key, "error", err)
		}
	}()
	return r.project(ctx, i)
}

// project works on job project i until it is done or the budget runs out.
func (r *bfRun) project(ctx context.Context, i int) error {
	c := r.c
	for !r.job.Projects[i].Done {
		p := &r.job.Projects[i]
		if r.remaining() < r.pageReserve() || c.stopRequested() {
			return errStop
		}
		if p.Window == nil {
			if !p.Cursor.Before(p.End) {
				p.Done = true
				if err := r.commitJob(ctx); err != nil {
					return err
				}
				continue
			}
			end := p.Cursor.Add(c.slice())
			if end.After(p.End) {
				end = p.End
			}
			p.Window = &window{Start: p.Cursor, End: end}
			p.NextEpoch = end.Unix() // objects of this slice: epoch = slice end
			if err := r.commitJob(ctx); err != nil {
				return err
			}
			p = &r.job.Projects[i]
		}
		if err := r.slice(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// slice de-duplicates job project i's slice against the bucket, then reads it
// from Sentry and writes what is new, until the slice is complete.
func (r *bfRun) slice(ctx context.Context, i int) error {
	p := &r.job.Projects[i]
	w := *p.Window
	seen, pred, err := r.scan(ctx, p, w.Start, w.End)
	if err != nil {
		return err
	}
	jp := &project{id: p.ID, slug: p.Slug}
	for {
		p = &r.job.Projects[i]
		if p.Window == nil || !p.Window.Start.Equal(w.Start) {
			return nil // changed concurrently: caller reloads
		}
		b := newBatch(p.Window, seen)
		stop := false
		for b.pages < maxPagesPerObject && !b.complete && b.bytes < maxObjectBytes {
			if r.remaining() < r.pageReserve() || r.c.stopRequested() {
				stop = true
				break
			}
			jp.cp = &checkpoint{Window: p.Window}
			page, err := r.fetch(ctx, jp, b.cursor)
			if err != nil {
				return err
			}
			p.Failing = false // committed with the slice's progress
			if page.HasNext && (page.NextCursor == "" || page.NextCursor == b.cursor) {
				return transient(fmt.Errorf("failed to page events of project %s: sentry announced a next page without a new cursor", p.ID))
			}
			b.addPage(page)
		}
		if err := r.flushSlice(ctx, i, b, seen, pred); err != nil {
			return err
		}
		if stop {
			return errStop
		}
		if b.complete {
			return nil
		}
	}
}

// flushSlice writes the batch (if any) and commits the slice's progress.
func (r *bfRun) flushSlice(ctx context.Context, i int, b *batch, seen seenSet, pred string) error {
	c := r.c
	for {
		p := &r.job.Projects[i]
		advance := func() {
			p.Pages += b.pages
			p.DuplicatesSkipped += b.dups
			r.sum.Pages += b.pages
			r.sum.DuplicatesSkipped += b.dups
			p.Window.Pages += int64(b.pages)
			if b.complete {
				p.Cursor = p.Window.End
				p.Window = nil
				p.WindowsDone++
				p.StreamPred, p.PredResolved = pred, true
				if !p.Cursor.Before(p.End) {
					p.Done = true
				}
				return
			}
			p.Window.Cursor = b.cursor
			p.Window.Frontier = b.frontier
		}
		if len(b.events) == 0 {
			if b.pages == 0 {
				return nil
			}
			advance()
			return r.commitJob(ctx)
		}
		if r.remaining() < r.writeReserve()-r.maxWrite {
			return errStop
		}
		name := backfillObjectName(c.opts.DataPrefix, c.opts.Org, p.ID, r.job.ID, p.NextEpoch, p.NextSeq)
		t0 := c.clock.Now()
		if err := r.keepLease(ctx); err != nil {
			return err
		}
		err := c.data.Create(ctx, name, b.ndjson(&r.buf), ContentTypeNDJSON)
		switch {
		case err == nil:
			for id, t := range b.ids {
				seen[id] = t
			}
			n := len(b.events)
			p.NextSeq++
			p.EventsWritten += n
			p.Objects++
			advance()
			if err := r.commitJob(ctx); err != nil {
				return err
			}
			r.maxWrite = max(r.maxWrite, c.clock.Now().Sub(t0))
			r.sum.EventsWritten += n
			r.sum.Objects++
			return nil
		case errors.Is(err, sink.ErrExists):
			ids, rerr := r.readObjectIDs(ctx, name)
			if rerr != nil {
				return rerr
			}
			for id, t := range ids {
				seen[id] = t
			}
			p.NextSeq++
			if err := r.commitJob(ctx); err != nil {
				return err
			}
			r.sum.ObjectsRecovered++
			b.refilter(seen)
		default:
			return transient(fmt.Errorf("failed to write data object: %w", err))
		}
	}
}

// backfillObjectName names a backfill data object:
// <prefix>YYYY/MM/DD/HH/<org>-<project>-bf<job>-<epoch>-<seq>.ndjson.
func backfillObjectName(prefix, org, projectID, jobID string, epoch, seq int64) string {
	t := time.Unix(epoch, 0).UTC()
	return fmt.Sprintf("%s%04d/%02d/%02d/%02d/%s-%s-bf%s-%d-%06d.ndjson",
		prefix, t.Year(), int(t.Month()), t.Day(), t.Hour(), org, projectID, jobID, epoch, seq)
}

// streamObjectKey parses a stream object's base name after the project
// prefix ("<epoch>-<seq>.ndjson").
func streamObjectKey(rest string) (epoch, seq int64, ok bool) {
	e, s, found := strings.Cut(strings.TrimSuffix(rest, ".ndjson"), "-")
	if !found {
		return 0, 0, false
	}
	ep, err1 := strconv.ParseInt(e, 10, 64)
	sq, err2 := strconv.ParseInt(s, 10, 64)
	return ep, sq, err1 == nil && err2 == nil
}

// listDay lists a day folder (cached within the run).
func (r *bfRun) listDay(ctx context.Context, day time.Time) ([]string, error) {
	prefix := r.c.opts.DataPrefix + day.Format("2006/01/02/")
	if names, ok := r.lists[prefix]; ok {
		return names, nil
	}
	names, err := r.lister.List(ctx, prefix)
	if err != nil {
		return nil, transient(fmt.Errorf("failed to list %s: %w", prefix, err))
	}
	if len(r.lists) >= backfillListCache {
		clear(r.lists)
	}
	r.lists[prefix] = names
	return names, nil
}

// projectObjects returns the names of p's data objects in the hour folders
// [from, to] (both hours), and the greatest stream object before hourCut.
func (r *bfRun) projectObjects(ctx context.Context, pid string, from, to, hourCut time.Time, pred string) ([]string, string, error) {
	c := r.c
	base := c.opts.Org + "-" + pid + "-"
	var out []string
	predKey := func(name string) (int64, int64, bool) {
		i := strings.LastIndex(name, "/")
		return streamObjectKey(strings.TrimPrefix(name[i+1:], base))
	}
	for day := from.Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		names, err := r.listDay(ctx, day)
		if err != nil {
			return nil, "", err
		}
		for _, n := range names {
			rest := strings.TrimPrefix(n, c.opts.DataPrefix)
			if len(rest) < 14 {
				continue
			}
			hour, err := time.Parse("2006/01/02/15", rest[:13])
			if err != nil || hour.Before(from) || hour.After(to) || !strings.HasPrefix(rest[14:], base) {
				continue
			}
			out = append(out, n)
			if e, s, ok := predKey(n); ok && e < hourCut.Unix() {
				if pe, ps, pok := predKey(pred); !pok || e > pe || (e == pe && s > ps) {
					pred = n
				}
			}
		}
	}
	return out, pred, nil
}

// scan builds the ids already stored for project p with dateCreated in
// [a, b), and the stream predecessor for the next slice (b).
func (r *bfRun) scan(ctx context.Context, p *BackfillProject, a, b time.Time) (seenSet, string, error) {
	c := r.c
	from := a.Truncate(time.Hour)
	// Assumption (the review's L7): the hour folders listed are computed
	// with the CURRENT MaxWindow and Overlap. A stream object's epoch is the
	// end of a window that started at or before its events' timestamps, and
	// windows are capped at MaxWindow, so an object holding an event of
	// time t < b has an epoch before b + MaxWindow (+ Overlap as a margin).
	// This holds for every object only if no window was ever longer than
	// the current MaxWindow (+ Overlap): MaxWindow is fixed today (no
	// setting changes it). If it is ever made configurable, or objects were
	// written by a version with a larger cap or an unbounded overlap, this
	// bound must use the largest value ever in effect, or the scan misses
	// those objects and their events are written a second time.
	to := b.Add(c.opts.MaxWindow + c.opts.Overlap).Truncate(time.Hour)
	pred := p.StreamPred
	if !p.PredResolved {
		// Walk back day by day to the project's last stream object before
		// hour(a).
		floor := a.Add(-backfillPredFloor)
		for day := from.Add(-time.Hour).Truncate(24 * time.Hour); pred == "" && !day.Before(floor); day = day.Add(-24 * time.Hour) {
			if r.remaining() < r.pageReserve() {
				return nil, "", errStop
			}
			last := day.Add(23 * time.Hour)
			if last.After(from.Add(-time.Hour)) {
				last = from.Add(-time.Hour)
			}
			_, found, err := r.projectObjects(ctx, p.ID, day, last, from, "")
			if err != nil {
				return nil, "", err
			}
			pred = found
		}
		p.StreamPred, p.PredResolved = pred, true
	}
	names, next, err := r.projectObjects(ctx, p.ID, from, to, b.Truncate(time.Hour), pred)
	if err != nil {
		return nil, "", err
	}
	if pred != "" && !slices.Contains(names, pred) {
		names = append(names, pred)
	}
	seen := make(seenSet)
	lo, hi := a.Unix(), b.Unix()
	for _, n := range names {
		if r.remaining() < r.pageReserve() {
			return nil, "", errStop
		}
		ids, err := r.readObjectIDs(ctx, n)
		if err != nil {
			if errors.Is(err, sink.ErrNotFound) {
				continue // deleted after transfer
			}
			return nil, "", transient(err)
		}
		r.sum.ObjectsScanned++
		for id, t := range ids {
			if t >= lo && t < hi {
				seen[id] = t
			}
		}
	}
	return seen, next, nil
}
