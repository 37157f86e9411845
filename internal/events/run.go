package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// run is the state of one Run.
type run struct {
	s       *Stream
	r       *engine.Run
	sum     *engine.Summary
	scanner *Scanner // the bucket scan of this run, made when needed

	sweepAttrs []slog.Attr // the late sweep's summary fields (sweep.go)
	// clipped counts the projects whose windows skipped events older than
	// the retention in this run; clippedBefore is the latest edge used.
	clipped       map[string]bool
	clippedBefore time.Time
}

// project is a project's state within a run.
type project struct {
	id, slug string

	doc     *engine.Doc[checkpoint] // nil: not loaded (undecodable, or lost)
	loadErr error

	pages, events, dups int
	conflicts           int
	completedWindow     bool // a window was completed in this run
	done                bool // finished for this run
	failed              bool // skipped for this run after an error
	retry               bool // failed transiently: work remains
	progressed          bool // completed a turn without error
	skipped             bool // not read: stats_v2 shows it idle (idle.go)

	lateTried      bool // its late events were tried in this run
	late           int  // late events written in this run
	lateStored     int  // late events found stored, or left to a window
	lateUnreadable int  // late events dropped: not returned (late.go)
}

// cp is the project's loaded checkpoint (nil when not loaded).
func (p *project) cp() *checkpoint {
	if p.doc == nil {
		return nil
	}
	return &p.doc.V
}

func (x *run) do(ctx context.Context) error {
	projects, err := x.projects(ctx)
	if err != nil {
		return err
	}
	defer x.finish(projects)
	loaded := projects
	if i := slices.IndexFunc(projects, func(p *project) bool { return p.cp() == nil }); i >= 0 {
		loaded = projects[:i] // the others could not be decoded
	}
	if err := x.sweep(ctx, loaded); err != nil { // queues late-sent events (sweep.go)
		return err
	}
	progressed, readErrs, err := x.serve(ctx, x.selectActive(ctx, loaded)) // all, or not idle (idle.go)
	if err != nil {
		return err
	}
	if len(readErrs) > 0 && progressed == 0 {
		// Every project that was tried failed: the run failed.
		return &engine.ReadError{Err: failure.Transient(fmt.Errorf("every project tried failed: %w", errors.Join(readErrs...)))}
	}
	return nil
}

// projects lists the organisation's projects, loads their checkpoints and
// orders them: healthy projects first, then least recently served first, so
// that a budget that runs out before the end of the list does not starve
// the same projects every run, and a project that failed last run (marked
// Failing) cannot keep the head of the order. Projects whose checkpoint
// cannot be decoded come last.
func (x *run) projects(ctx context.Context) ([]*project, error) {
	list, truncated, err := ListProjects(ctx, x.s.api, x.s.opts.Org, x.s.opts.MaxProjects)
	if err != nil {
		return nil, err
	}
	if truncated {
		x.sum.Projects.Truncated = true
		logging.FromContext(ctx).WarnContext(ctx, "organization has more projects than the maximum; the others are not collected",
			"max_projects", x.s.opts.MaxProjects, "stream", Name)
	}
	projects := make([]*project, len(list))
	for i, p := range list {
		projects[i] = &project{id: p.ID, slug: p.Slug}
	}
	x.sum.Projects.Considered = len(projects)
	if err := x.loadAll(ctx, projects); err != nil {
		x.finish(projects)
		return nil, err
	}
	slices.SortStableFunc(projects, func(a, b *project) int {
		ca, cb := a.cp(), b.cp()
		switch {
		case ca == nil && cb == nil:
			return 0
		case ca == nil:
			return 1
		case cb == nil:
			return -1
		case ca.Failing != cb.Failing:
			if ca.Failing {
				return 1
			}
			return -1
		}
		return ca.UpdatedAt.Compare(cb.UpdatedAt)
	})
	return projects, nil
}

// serve gives the active projects turns, round-robin, until each is done or
// the budget or the soft stop ends the run. It returns how many projects
// progressed, the Sentry errors of the projects skipped for this run, and
// an error when the run as a whole failed (storage, lease).
func (x *run) serve(ctx context.Context, active []*project) (progressed int, readErrs []error, err error) {
	stopping := false
	for len(active) > 0 && !stopping {
		next := active[:0]
		for _, p := range active {
			if stopping || x.r.StopRequested() {
				stopping = true
				next = append(next, p)
				continue
			}
			terr := x.turn(ctx, p)
			switch {
			case terr == nil || errors.Is(terr, engine.ErrStop):
				stopping = errors.Is(terr, engine.ErrStop)
				if !p.progressed {
					p.progressed = true
					progressed++
				}
			case errors.Is(terr, engine.ErrConflict):
				if p.conflicts++; p.conflicts >= maxConflictsPerRun {
					p.done = true
				}
			case engine.IsReadError(terr) && ctx.Err() == nil:
				if x.skip(ctx, p, terr) {
					readErrs = append(readErrs, terr)
				}
				if merr := x.markAttempt(ctx, p); merr != nil {
					return progressed, readErrs, merr
				}
			default:
				return progressed, readErrs, failure.Transient(terr)
			}
			if !p.done {
				next = append(next, p)
			}
		}
		active = next
	}
	return progressed, readErrs, nil
}

// skip ends p for this run after a Sentry error (after the client's
// retries), so that the others are served. A permanent answer (a deleted
// project, no access) ends it for the run; a transient one leaves work for a
// later run, which serves it after the healthy projects: skip reports that.
func (x *run) skip(ctx context.Context, p *project, err error) (transient bool) {
	p.failed, p.done = true, true
	p.retry = failure.Classify(err) != failure.KindConfig
	x.fail(ctx, p, err)
	return p.retry
}

// fail records p's failure in the summary and logs it once.
func (x *run) fail(ctx context.Context, p *project, err error) {
	pc := x.sum.Projects
	pc.Failed++
	pc.Failures = append(pc.Failures, engine.ProjectFailure{ProjectID: p.id, Slug: p.slug, Error: err.Error()})
	attrs := []any{"project_id", p.id, "project", p.slug, "error", err, "stream", Name}
	if failure.IsAuth(err) {
		attrs = append(attrs, "error_kind", failure.ErrorKindAuth)
		x.sum.AuthErrors++
	}
	logger := logging.FromContext(ctx)
	logger.WarnContext(ctx, "skipping project for this run", attrs...)
	if cp := p.cp(); cp != nil && !cp.FailingSince.IsZero() && x.r.Now().Sub(cp.FailingSince) >= failingAlertAfter {
		// A project that fails every run (a deleted project, a token
		// without access to it, an answer the client cannot read) would
		// otherwise only show as a warning per run: this line feeds the
		// "project failing" alert.
		logger.ErrorContext(ctx, "project has failed every run for over an hour; its events are not being collected",
			"project_id", p.id, "project", p.slug, "failing_since", cp.FailingSince, "error", err,
			"error_kind", ErrorKindProjectFailing, "stream", Name)
	}
	x.progress(p, "", err)
}

// ErrorKindProjectFailing is logged as error_kind when a project has failed
// every run for failingAlertAfter: the "project failing" alert counts these.
const ErrorKindProjectFailing = "project_failing"

// failingAlertAfter is how long a project may fail every run before the
// alert line is logged: long enough for Sentry's own incidents to pass.
const failingAlertAfter = time.Hour

// markAttempt commits p's checkpoint after a failure, marked Failing: the
// next run serves it after the healthy projects. A lost swap is fine
// (someone else committed); a storage error fails the run.
func (x *run) markAttempt(ctx context.Context, p *project) error {
	if p.doc == nil {
		return nil
	}
	if err := x.lane(p).Commit(ctx); err != nil && !errors.Is(err, engine.ErrConflict) {
		return failure.Transient(err)
	}
	return nil
}

// finish fills the end-of-run fields of the summary.
func (x *run) finish(projects []*project) {
	now := x.r.Now()
	var oldest time.Time
	ready := now.Add(-x.s.opts.Lag)
	for _, p := range projects {
		cp := p.cp()
		if p.retry || !p.failed && !p.skipped && (cp == nil || cp.Window != nil || ready.Sub(cp.Watermark) >= catchUpGap) {
			// Not reached, interrupted, capped, or far behind.
			x.sum.WorkRemaining = true
		}
		if cp == nil {
			continue
		}
		if len(cp.Pending) > 0 && !p.failed {
			x.sum.WorkRemaining = true // late events left for the next run
		}
		if p.skipped || x.caughtUp(cp) {
			x.sum.Projects.Completed++
		}
		w := cp.Watermark
		if w.IsZero() && cp.Window != nil {
			w = cp.Window.Start
		}
		if !w.IsZero() && (oldest.IsZero() || w.Before(oldest)) {
			oldest = w
		}
	}
	if !oldest.IsZero() {
		x.sum.Lag = now.Sub(oldest)
	}
	x.lateSummary(projects)
	if len(x.clipped) > 0 {
		x.sum.Extra = append(x.sum.Extra,
			slog.Int("retention_clipped_projects", len(x.clipped)),
			slog.Time("retention_clipped_before", x.clippedBefore.UTC()))
	}
}

// loadAll reads every project's checkpoint, a few at a time. A checkpoint
// that cannot be decoded fails only its project (every run, until an
// operator repairs or removes it); one that cannot be read fails the run.
func (x *run) loadAll(ctx context.Context, projects []*project) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, loadConcurrency)
	)
	for _, p := range projects {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := x.load(ctx, p); err != nil && !errors.Is(err, state.ErrUndecodable) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return failure.Transient(errors.Join(errs...))
	}
	for _, p := range projects {
		if p.doc != nil {
			continue
		}
		p.failed, p.done = true, true
		err := p.loadErr
		pc := x.sum.Projects
		pc.Failed++
		pc.Failures = append(pc.Failures, engine.ProjectFailure{ProjectID: p.id, Slug: p.slug, Error: err.Error()})
		logging.FromContext(ctx).ErrorContext(ctx, "skipping project: its checkpoint cannot be decoded; repair or delete it",
			"project_id", p.id, "project", p.slug, "checkpoint", x.s.CheckpointKey(p.id), "error", err, "stream", Name)
		x.progress(p, "", err)
	}
	return nil
}

// load reads p's checkpoint (a missing one is a fresh project).
func (x *run) load(ctx context.Context, p *project) error {
	doc, err := loadCheckpoint(ctx, x.s, p.id, p.slug)
	if err != nil {
		p.doc, p.loadErr = nil, err
		return err
	}
	p.doc = doc
	return nil
}

// loadCheckpoint reads a project's checkpoint; a missing one is fresh. An
// undecodable one is an error wrapping state.ErrUndecodable.
func loadCheckpoint(ctx context.Context, s *Stream, id, slug string) (*engine.Doc[checkpoint], error) {
	key := s.CheckpointKey(id)
	doc, err := engine.LoadDoc(ctx, s.env.State, key, func() checkpoint {
		return checkpoint{Version: checkpointVersion, ProjectID: id, Slug: slug, Seen: make(engine.Seen)}
	})
	if err != nil {
		return nil, fmt.Errorf("failed to load the checkpoint of project %s: %w", id, err)
	}
	if err := doc.V.check(); err != nil {
		return nil, fmt.Errorf("failed to load %s: %w: %w", key, state.ErrUndecodable, err)
	}
	return doc, nil
}

// caughtUp reports whether cp has no window open and its watermark within
// catchUpGap of what is ready: a project the run never reached, or one a
// window has yet to bring up to date, is not caught up.
func (x *run) caughtUp(cp *checkpoint) bool {
	return cp.Window == nil && !cp.Watermark.IsZero() && x.r.Now().Add(-x.s.opts.Lag).Sub(cp.Watermark) < catchUpGap
}

// progress reports p's progress to the Progress callback.
func (x *run) progress(p *project, object string, err error) {
	f := x.s.opts.Progress
	if f == nil {
		return
	}
	cp := p.cp()
	f(ProgressEvent{
		ProjectID:   p.id,
		ProjectSlug: p.slug,
		Pages:       p.pages,
		Events:      p.events,
		Duplicates:  p.dups,
		Object:      object,
		Done:        p.done,
		CaughtUp:    cp != nil && x.caughtUp(cp),
		Err:         err,
	})
}

// lateSummary adds the late lane's and the sweep's figures to the summary.
func (x *run) lateSummary(projects []*project) {
	var written, stored, unreadable, pending int
	for _, p := range projects {
		written += p.late
		stored += p.lateStored
		unreadable += p.lateUnreadable
		if cp := p.cp(); cp != nil {
			pending += len(cp.Pending)
		}
	}
	if x.s.opts.Discover == nil && written+stored+unreadable+pending == 0 {
		return
	}
	x.sum.Extra = append(x.sum.Extra, x.sweepAttrs...)
	x.sum.Extra = append(x.sum.Extra,
		slog.Int("late_events_written", written),
		slog.Int("late_events_already_stored", stored),
		slog.Int("late_events_pending", pending))
	if unreadable > 0 {
		x.sum.Extra = append(x.sum.Extra, slog.Int("late_events_unreadable", unreadable))
	}
	if x.scanner != nil {
		x.sum.Extra = append(x.sum.Extra, slog.Int("late_objects_scanned", x.scanner.Objects))
	}
}
