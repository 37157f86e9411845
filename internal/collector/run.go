package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// errConflict reports a lost compare-and-swap on a checkpoint; the project's
// state has been reloaded and the batch in hand must be dropped.
var errConflict = errors.New("checkpoint changed concurrently")

// errBadCheckpoint marks a checkpoint that cannot be decoded.
var errBadCheckpoint = errors.New("undecodable checkpoint")

// errStopped is the cause of a page request cut by the StopSignal.
var errStopped = errors.New("stop requested")

// errStop ends the run early without an error (budget reached).
var errStop = errors.New("stop")

// run is the state of one Run.
type run struct {
	c        *Collector
	start    time.Time
	deadline time.Time
	sum      Summary

	leaseKey     string
	leaseTTL     time.Duration
	leaseRenewAt time.Time
	// subLease is a second lease held with leaseKey (a backfill's project
	// lease), renewed with it; "" for none.
	subLease string

	maxPage  time.Duration // longest page request seen
	maxWrite time.Duration // longest write + commit seen

	stopping bool // budget reached: start nothing new

	buf bytes.Buffer // reused NDJSON buffer
}

// project is a project's state within a run.
type project struct {
	id, slug string
	key      string

	cp  *checkpoint // committed checkpoint; nil: not loaded
	gen int64       // its generation (0: does not exist)

	pages, events, dups int
	conflicts           int
	completedWindow     bool // a window was completed in this run
	done                bool // finished for this run
	failed              bool // skipped for this run after an error
	retry               bool // failed transiently: work remains
	progressed          bool // completed a turn without error
	skipped             bool // not read: stats_v2 shows it idle (idle.go)
	loadErr             error
}

// Run collects until every project is caught up, its page cap is reached or
// the budget runs out. It returns a nil error when it did what it could
// (Summary.WorkRemaining tells whether to run again soon), an error wrapping
// ErrConfig for configuration problems, and an error for which IsTransient
// is true when Sentry or storage failed; progress up to a failure is always
// committed. When another run holds the lease it returns at once with
// Summary.LeaseHeld set.
func (c *Collector) Run(ctx context.Context) (Summary, error) {
	start := c.clock.Now()
	r := &run{
		c:        c,
		start:    start,
		deadline: start.Add(c.opts.Budget),
		leaseKey: c.leaseKey(),
		leaseTTL: leaseTTL(c.opts.Budget),
		sum:      Summary{RunID: c.opts.RunID, Stream: StreamEvents},
	}
	if dl, ok := ctx.Deadline(); ok {
		// The caller's deadline is on the real clock: honour it when it
		// is tighter than the budget.
		if rem := time.Until(dl); rem < c.opts.Budget {
			r.deadline = start.Add(rem)
		}
	}
	err := countRequests(c.api, &r.sum, func() error { return r.run(ctx) })
	r.sum.Duration = c.clock.Now().Sub(start)
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
	}
	attrs := []any{"summary", r.sum}
	if err != nil {
		attrs = append(attrs, "error", err)
		if isSentryAuth(err) {
			attrs = append(attrs, "error_kind", ErrorKindSentryAuth)
			r.sum.AuthErrors++
			attrs[1] = r.sum
		}
	}
	c.log.Log(ctx, level, "run summary", append(attrs, "stream", StreamEvents)...)
	return r.sum, err
}

func (r *run) run(ctx context.Context) error {
	release, held, err := r.acquireLease(ctx, "events")
	if err != nil {
		return err
	}
	if !held {
		r.sum.LeaseHeld = true
		return nil
	}
	defer release()

	projects, err := r.listProjects(ctx)
	if err != nil {
		return err
	}
	r.sum.Projects = len(projects)
	if err := r.loadAll(ctx, projects); err != nil {
		r.finish(projects)
		return err
	}
	// Healthy projects first, then least recently served first, so that a
	// budget that runs out before the end of the list does not starve the
	// same projects every run, and a project that failed last run (marked
	// Failing by markAttempt) cannot keep the head of the order.
	slices.SortStableFunc(projects, func(a, b *project) int {
		switch {
		case a.cp == nil && b.cp == nil:
			return 0
		case a.cp == nil:
			return 1
		case b.cp == nil:
			return -1
		case a.cp.Failing != b.cp.Failing:
			if a.cp.Failing {
				return 1
			}
			return -1
		}
		return a.cp.UpdatedAt.Compare(b.cp.UpdatedAt)
	})
	loaded := projects
	if i := slices.IndexFunc(projects, func(p *project) bool { return p.cp == nil }); i >= 0 {
		loaded = projects[:i] // the others failed to load (undecodable checkpoint)
	}

	var (
		progressed int     // projects that completed a turn without error
		sentryErrs []error // projects skipped after a Sentry error
	)
	active := r.selectActive(ctx, loaded) // all, or not idle (idle.go)
	for len(active) > 0 && !r.stopping {
		next := active[:0]
		for _, p := range active {
			if r.stopping {
				next = append(next, p)
				continue
			}
			if r.c.stopRequested() {
				r.stopping = true
				next = append(next, p)
				continue
			}
			err := r.turn(ctx, p)
			switch {
			case err == nil:
				if !p.progressed {
					p.progressed = true
					progressed++
				}
			case errors.Is(err, errStop):
				r.stopping = true
				if !p.progressed {
					p.progressed = true
					progressed++
				}
			case errors.Is(err, errConflict):
				p.conflicts++
				r.sum.Conflicts++
				if p.conflicts >= maxConflictsPerRun {
					p.done = true
				}
			case isPermanentProjectError(err):
				p.failed, p.done = true, true
				r.fail(ctx, p, err)
				if merr := r.markAttempt(ctx, p); merr != nil {
					r.finish(projects)
					return transient(merr)
				}
			case isSentryFailure(err) && ctx.Err() == nil:
				// Sentry still failing after the client's retries, on this
				// project only as far as we know: skip it for this run and
				// serve the others; a later run retries it.
				p.failed, p.retry, p.done = true, true, true
				r.fail(ctx, p, err)
				sentryErrs = append(sentryErrs, err)
				if merr := r.markAttempt(ctx, p); merr != nil {
					r.finish(projects)
					return transient(merr)
				}
			default:
				r.finish(projects)
				return transient(err)
			}
			if !p.done {
				next = append(next, p)
			}
		}
		active = next
	}
	r.finish(projects)
	if len(sentryErrs) > 0 && progressed == 0 {
		// Every project that was tried failed: the run failed.
		return transient(markSentry(fmt.Errorf("every project tried failed: %w", errors.Join(sentryErrs...))))
	}
	return nil
}

// fail records p's failure in the summary and the log.
func (r *run) fail(ctx context.Context, p *project, err error) {
	r.sum.ProjectsFailed++
	r.sum.Failures = append(r.sum.Failures, ProjectFailure{ProjectID: p.id, Slug: p.slug, Error: err.Error()})
	attrs := []any{"project_id", p.id, "project", p.slug, "error", err}
	if isSentryAuth(err) {
		attrs = append(attrs, "error_kind", ErrorKindSentryAuth)
		r.sum.AuthErrors++
	}
	r.c.log.WarnContext(ctx, "skipping project for this run", append(attrs, "stream", StreamEvents)...)
	r.progress(p, "", err)
}

// markAttempt commits p's checkpoint after a failure, marked Failing: the
// next run serves it after the healthy projects (and failing ones by
// UpdatedAt), so a project that keeps failing cannot starve the others. A lost swap is fine (someone else
// committed); a storage error is returned.
func (r *run) markAttempt(ctx context.Context, p *project) error {
	if p.cp == nil {
		return nil
	}
	if err := r.commit(ctx, p); err != nil && !errors.Is(err, errConflict) {
		return err
	}
	return nil
}

// sentryFailure marks an error of a Sentry request (after the client's
// retries) as opposed to a storage or lease failure: it concerns the project
// (or the single-document stream) being read, not the whole run.
type sentryFailure struct{ err error }

func (e *sentryFailure) Error() string { return e.err.Error() }
func (e *sentryFailure) Unwrap() error { return e.err }

// markSentry wraps err (nil stays nil) so that isSentryFailure reports true.
func markSentry(err error) error {
	if err == nil {
		return nil
	}
	return &sentryFailure{err: err}
}

// isSentryFailure reports whether err is a Sentry request failure.
func isSentryFailure(err error) bool {
	var s *sentryFailure
	return errors.As(err, &s)
}

// isPermanentProjectError reports a Sentry error that concerns one project
// (404 deleted, 403 no access to it, 400 refused query) rather than the run.
func isPermanentProjectError(err error) bool {
	return sentry.IsPermanent(err)
}

// finish fills the end-of-run fields of the summary.
func (r *run) finish(projects []*project) {
	now := r.c.clock.Now()
	var oldest time.Time
	ready := now.Add(-r.c.opts.Lag)
	for _, p := range projects {
		if p.retry || !p.failed && !p.skipped && (p.cp == nil || p.cp.Window != nil || ready.Sub(p.cp.Watermark) >= catchUpGap) {
			// Not reached, interrupted, capped, or far behind.
			r.sum.WorkRemaining = true
		}
		if p.cp == nil {
			continue
		}
		if p.cp.Window == nil {
			r.sum.ProjectsCompleted++
		}
		w := p.cp.Watermark
		if w.IsZero() && p.cp.Window != nil {
			w = p.cp.Window.Start
		}
		if !w.IsZero() && (oldest.IsZero() || w.Before(oldest)) {
			oldest = w
		}
	}
	if !oldest.IsZero() {
		r.sum.LagBehindNow = now.Sub(oldest)
	}
}

// listProjects pages through the organisation's projects, up to MaxProjects.
func (r *run) listProjects(ctx context.Context) ([]*project, error) {
	c := r.c
	var out []*project
	seen := make(map[string]bool)
	cursor := ""
	for {
		page, err := c.api.ListProjects(ctx, c.opts.Org, cursor)
		if err != nil {
			if sentry.IsPermanent(err) {
				return nil, fmt.Errorf("%w: failed to list the projects of organization %q: check SENTRY_ORG and that the token has the org:read and project:read scopes: %w", ErrConfig, c.opts.Org, err)
			}
			return nil, transient(fmt.Errorf("failed to list the projects of organization %q: %w", c.opts.Org, err))
		}
		for _, p := range page.Items {
			if p.ID == "" || seen[p.ID] {
				continue
			}
			if len(out) == c.opts.MaxProjects {
				r.sum.ProjectsTruncated = true
				c.log.WarnContext(ctx, "organization has more projects than the maximum; the others are not collected",
					"max_projects", c.opts.MaxProjects)
				return out, nil
			}
			seen[p.ID] = true
			out = append(out, &project{id: p.ID, slug: p.Slug, key: c.checkpointKey(p.ID)})
		}
		if !page.HasNext || page.NextCursor == "" || page.NextCursor == cursor {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// loadAll reads every project's checkpoint, a few at a time.
func (r *run) loadAll(ctx context.Context, projects []*project) error {
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
			if err := r.load(ctx, p); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var fatal []error
	for _, err := range errs {
		if !errors.Is(err, errBadCheckpoint) {
			fatal = append(fatal, err)
		}
	}
	if len(fatal) > 0 {
		return transient(errors.Join(fatal...))
	}
	for _, p := range projects {
		if p.cp == nil {
			// Undecodable: only this project fails (every run, until an
			// operator repairs or removes the document).
			p.failed, p.done = true, true
			err := p.loadErr
			r.sum.ProjectsFailed++
			r.sum.Failures = append(r.sum.Failures, ProjectFailure{ProjectID: p.id, Slug: p.slug, Error: err.Error()})
			r.c.log.ErrorContext(ctx, "skipping project: its checkpoint cannot be decoded; repair or delete it",
				"project_id", p.id, "project", p.slug, "checkpoint", p.key, "error", err, "stream", StreamEvents)
			r.progress(p, "", err)
		}
	}
	return nil
}

// load reads p's checkpoint (a missing one is a fresh project).
func (r *run) load(ctx context.Context, p *project) error {
	data, gen, err := r.c.state.Read(ctx, p.key)
	if errors.Is(err, sink.ErrNotFound) {
		p.cp = &checkpoint{Version: checkpointVersion, ProjectID: p.id, Slug: p.slug, Seen: make(seenSet)}
		p.gen = 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read the checkpoint of project %s: %w", p.id, err)
	}
	cp, err := decodeCheckpoint(data)
	if err != nil {
		p.loadErr = fmt.Errorf("failed to load %s: %w: %w", p.key, errBadCheckpoint, err)
		return p.loadErr
	}
	p.cp, p.gen = cp, gen
	return nil
}

// commit writes p.cp by compare-and-swap on p.gen. On a lost swap it reloads
// p's checkpoint and returns errConflict.
func (r *run) commit(ctx context.Context, p *project) error {
	c := r.c
	if err := r.keepLease(ctx); err != nil {
		p.cp = nil
		return err
	}
	p.cp.UpdatedAt = c.clock.Now().UTC()
	p.cp.UpdatedBy = c.opts.RunID
	p.cp.Failing = p.failed
	p.cp.Slug = p.slug
	p.cp.prune(c.opts.Overlap)
	data, err := p.cp.encode()
	if err != nil {
		return err
	}
	gen, err := c.state.Write(ctx, p.key, data, contentTypeJSON, p.gen)
	if errors.Is(err, sink.ErrPrecondition) {
		c.log.InfoContext(ctx, "checkpoint changed concurrently; reloading", "project_id", p.id)
		if lerr := r.load(ctx, p); lerr != nil {
			p.cp = nil
			return lerr
		}
		return errConflict
	}
	if err != nil {
		p.cp = nil // unknown outcome: reload before any further use
		return fmt.Errorf("failed to write the checkpoint of project %s: %w", p.id, err)
	}
	p.gen = gen
	return nil
}

// acquireLease takes the run's lease (what names it in messages). held is
// false, with a nil error, when another run holds it. release gives it up.
func (r *run) acquireLease(ctx context.Context, what string) (release func(), held bool, err error) {
	c := r.c
	if err := c.lease.Acquire(ctx, r.leaseKey, c.opts.RunID, r.leaseTTL); err != nil {
		if errors.Is(err, ErrLeaseHeld) {
			c.log.InfoContext(ctx, "another run holds the lease", "lease", what, "error", err)
			return nil, false, nil
		}
		return nil, false, transient(fmt.Errorf("failed to acquire the %s lease: %w", what, err))
	}
	r.leaseRenewAt = c.clock.Now().Add(r.leaseTTL / 2)
	release = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := c.lease.Release(rctx, r.leaseKey, c.opts.RunID); err != nil {
			c.log.WarnContext(ctx, "failed to release the lease", "lease", what, "error", err)
		}
	}
	return release, true, nil
}

// keepLease renews the lease when due; a lost lease stops all writing.
func (r *run) keepLease(ctx context.Context) error {
	c := r.c
	now := c.clock.Now()
	if now.Before(r.leaseRenewAt) {
		return nil
	}
	if err := c.lease.Renew(ctx, r.leaseKey, c.opts.RunID, r.leaseTTL); err != nil {
		return fmt.Errorf("failed to keep the lease %s, stopping: %w", r.leaseKey, err)
	}
	if r.subLease != "" {
		if err := c.lease.Renew(ctx, r.subLease, c.opts.RunID, r.leaseTTL); err != nil {
			return fmt.Errorf("failed to keep the lease %s, stopping: %w", r.subLease, err)
		}
	}
	r.leaseRenewAt = now.Add(r.leaseTTL / 2)
	return nil
}

// remaining is the time left before the deadline.
func (r *run) remaining() time.Duration { return r.deadline.Sub(r.c.clock.Now()) }

// writeReserve is the time kept to write and commit a batch.
func (r *run) writeReserve() time.Duration { return minSafetyMargin + 2*r.maxWrite }

// pageReserve is the time needed to start a page request.
func (r *run) pageReserve() time.Duration { return r.writeReserve() + r.maxPage }

// turn gives project p one turn: read up to maxPagesPerObject pages of its
// window (opening one when needed) and write them as one object.
func (r *run) turn(ctx context.Context, p *project) error {
	c := r.c
	if p.cp == nil {
		if err := r.load(ctx, p); err != nil {
			return err
		}
	}
	if p.cp.Window == nil {
		if r.remaining() < r.pageReserve() || c.stopRequested() {
			return errStop
		}
		minGap := time.Second
		if p.completedWindow {
			// Another window in the same run only when it is worth it
			// (after a backlog, not for the seconds the run took).
			minGap = catchUpGap
		}
		opened, err := r.openWindow(ctx, p, minGap)
		if err != nil {
			return err
		}
		if !opened {
			p.done = true
			r.progress(p, "", nil)
			return nil
		}
	}
	limit := maxPagesPerObject
	if m := c.opts.MaxPagesPerProject; m > 0 {
		limit = min(limit, m-p.pages)
	}
	b := newBatch(p.cp.Window, p.cp.Seen)
	var stop error
	for b.pages < limit && !b.complete && b.bytes < maxObjectBytes {
		if r.remaining() < r.pageReserve() || c.stopRequested() {
			stop = errStop
			break
		}
		page, err := r.fetch(ctx, p, b.cursor)
		if err != nil {
			if ctx.Err() != nil {
				return transient(err)
			}
			// Keep what was read: commit it, then report the error.
			r.sum.InvalidRows += b.invalid
			if ferr := r.flush(ctx, p, b); ferr != nil && !errors.Is(ferr, errStop) && !errors.Is(ferr, errConflict) {
				// A storage failure: the run's problem, not the project's.
				return transient(fmt.Errorf("failed to commit project %s after a Sentry error (%v): %w", p.id, err, ferr))
			}
			if c.stopRequested() && errors.Is(err, errStopped) {
				return errStop
			}
			return err
		}
		if page.HasNext && (page.NextCursor == "" || page.NextCursor == b.cursor) {
			return transient(fmt.Errorf("failed to page events of project %s: sentry announced a next page without a new cursor (%q)", p.id, page.NextCursor))
		}
		p.pages++
		r.sum.Pages++
		b.addPage(page)
	}
	r.sum.InvalidRows += b.invalid
	if err := r.flush(ctx, p, b); err != nil {
		return err
	}
	if p.cp.Window == nil {
		p.completedWindow = true
	}
	if m := c.opts.MaxPagesPerProject; m > 0 && p.pages >= m {
		p.done = true
	}
	r.progress(p, b.object, nil)
	return stop
}

// openWindow persists a new window for p, or reports that there is nothing
// new to read.
func (r *run) openWindow(ctx context.Context, p *project, minGap time.Duration) (bool, error) {
	o := r.c.opts
	now := r.c.clock.Now().UTC()
	end := now.Add(-o.Lag).Truncate(time.Second)
	var start time.Time
	if w := p.cp.Watermark; w.IsZero() {
		start = now.Add(-o.InitialLookback).Truncate(time.Second)
	} else {
		if end.Sub(w) < minGap {
			return false, nil
		}
		// New validates Overlap ≤ MaxWindow/2; bound it here as well, so
		// that a capped window always ends after W (the watermark can
		// never stand still or move back).
		start = w.Add(-r.c.streamOverlap())
	}
	if o.MaxWindow > 0 && end.Sub(start) > o.MaxWindow {
		// Catch up window by window: a window never spans more than
		// MaxWindow (backfill de-duplication relies on this bound).
		end = start.Add(o.MaxWindow)
	}
	if w := p.cp.Watermark; !w.IsZero() && !end.After(w) {
		return false, fmt.Errorf("window [%s, %s) would not move the watermark %s forward", start, end, w)
	}
	if !end.After(start) {
		return false, nil
	}
	p.cp.Window = &window{Start: start, End: end}
	if p.cp.NextEpoch == 0 {
		// First window ever: nothing can have been written yet, so the
		// first object name may be chosen freely.
		p.cp.NextSeq, p.cp.NextEpoch = 1, end.Unix()
	}
	if err := r.commit(ctx, p); err != nil {
		return false, err
	}
	return true, nil
}

// fetch reads one page of p's window, bounded so that a hung request leaves
// time to commit what was read.
func (r *run) fetch(ctx context.Context, p *project, cursor string) (sentry.Page[sentry.Event], error) {
	w := p.cp.Window
	pctx, cancel := context.WithTimeout(ctx, max(r.remaining()-r.writeReserve(), time.Second))
	defer cancel()
	if sig := r.c.opts.StopSignal; sig != nil {
		// A soft stop cuts the request in flight: what was read is
		// committed before the process goes away.
		sctx, scancel := context.WithCancelCause(pctx)
		defer scancel(nil)
		go func() {
			select {
			case <-sig:
				scancel(errStopped)
			case <-sctx.Done():
			}
		}()
		pctx = sctx
	}
	t0 := r.c.clock.Now()
	page, err := r.c.api.ListEvents(pctx, sentry.EventsQuery{
		Org:     r.c.opts.Org,
		Project: p.id,
		Start:   w.Start,
		End:     w.End,
		Cursor:  cursor,
		PerPage: 100,
	})
	r.maxPage = max(r.maxPage, r.c.clock.Now().Sub(t0))
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			if errors.Is(context.Cause(pctx), errStopped) {
				return page, fmt.Errorf("failed to read events of project %s: %w", p.id, errStopped)
			}
			return page, transient(markSentry(fmt.Errorf("failed to read events of project %s: %w: %w", p.id, ErrBudgetExhausted, err)))
		}
		if sentry.IsPermanent(err) {
			return page, fmt.Errorf("failed to read events of project %s (%s): %w", p.id, p.slug, err)
		}
		return page, transient(markSentry(fmt.Errorf("failed to read events of project %s: %w", p.id, err)))
	}
	return page, nil
}

// flush writes the batch as one data object and commits the checkpoint
// (write, then commit). An object found under the name (written by a run
// that did not get to commit) is read back and absorbed first.
func (r *run) flush(ctx context.Context, p *project, b *batch) error {
	c := r.c
	if p.cp == nil || p.cp.Window == nil {
		return nil
	}
	for {
		cp := p.cp
		if len(b.events) == 0 {
			if b.pages == 0 {
				return nil
			}
			if r.remaining() < minSafetyMargin {
				return errStop
			}
			b.apply(cp)
			p.dups += b.dups
			r.sum.DuplicatesSkipped += b.dups
			return r.commit(ctx, p)
		}
		if r.remaining() < r.writeReserve()-r.maxWrite {
			// Not enough time to write safely: drop the batch, it is read
			// again next run.
			return errStop
		}
		name := objectName(c.opts.DataPrefix, c.opts.Org, p.id, cp.NextEpoch, cp.NextSeq)
		t0 := c.clock.Now()
		if err := r.keepLease(ctx); err != nil {
			return err
		}
		err := c.data.Create(ctx, name, b.ndjson(&r.buf), ContentTypeNDJSON)
		switch {
		case err == nil:
			for id, t := range b.ids {
				cp.Seen[id] = t
			}
			cp.NextSeq, cp.NextEpoch = cp.NextSeq+1, cp.Window.End.Unix()
			b.apply(cp)
			if err := r.commit(ctx, p); err != nil {
				return err
			}
			r.maxWrite = max(r.maxWrite, c.clock.Now().Sub(t0))
			n := len(b.events)
			p.events += n
			p.dups += b.dups
			r.sum.EventsWritten += n
			r.sum.DuplicatesSkipped += b.dups
			r.sum.Objects++
			b.object = name
			return nil
		case errors.Is(err, sink.ErrExists):
			ids, rerr := r.readObjectIDs(ctx, name)
			if rerr != nil {
				return rerr
			}
			for id, t := range ids {
				cp.Seen[id] = t
			}
			cp.NextSeq, cp.NextEpoch = cp.NextSeq+1, cp.Window.End.Unix()
			if err := r.commit(ctx, p); err != nil {
				return err
			}
			r.sum.ObjectsRecovered++
			c.log.InfoContext(ctx, "recovered an object written by an interrupted run",
				"project_id", p.id, "object", name, "events", len(ids))
			b.refilter(cp.Seen)
		default:
			return fmt.Errorf("failed to write data object: %w", err)
		}
	}
}

// readObjectIDs returns the ids and dates of the events in a data object.
func (r *run) readObjectIDs(ctx context.Context, name string) (map[string]int64, error) {
	data, _, err := r.c.data.Read(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("failed to read back existing object %s: %w", name, err)
	}
	ids := make(map[string]int64)
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var ev struct {
			ID          string    `json:"id"`
			DateCreated time.Time `json:"dateCreated"`
		}
		if err := json.Unmarshal(line, &ev); err != nil || ev.ID == "" {
			return nil, fmt.Errorf("failed to read back existing object %s: a line is not an event", name)
		}
		ids[ev.ID] = ev.DateCreated.Unix()
	}
	return ids, nil
}

// progress reports p's progress to the Progress callback.
func (r *run) progress(p *project, object string, err error) {
	f := r.c.opts.Progress
	if f == nil {
		return
	}
	f(ProgressEvent{
		ProjectID:   p.id,
		ProjectSlug: p.slug,
		Pages:       p.pages,
		Events:      p.events,
		Duplicates:  p.dups,
		Object:      object,
		Done:        p.done,
		CaughtUp:    p.cp != nil && p.cp.Window == nil,
		Err:         err,
	})
}

// ErrorKindSentryAuth is logged as error_kind when Sentry rejected the token
// (401) or its scopes (403): the log-based alert on authentication failures
// keys on it.
const ErrorKindSentryAuth = "sentry_auth"

// isSentryAuth reports whether err carries a Sentry 401 or 403.
func isSentryAuth(err error) bool {
	var apiErr *sentry.APIError
	return errors.As(err, &apiErr) && (apiErr.StatusCode == 401 || apiErr.StatusCode == 403)
}
