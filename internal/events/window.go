package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// lane is a project's sequence of data objects, recorded in its checkpoint.
type lane struct {
	x *run
	p *project
}

var _ engine.Lane = lane{}

func (x *run) lane(p *project) lane { return lane{x: x, p: p} }

// Next implements engine.Lane.
func (l lane) Next() string {
	return l.p.cp().Name(l.x.s.opts.DataPrefix, l.x.s.opts.Org, l.p.id)
}

// Parse implements engine.Lane.
func (l lane) Parse(line []byte) (engine.Record, error) { return ParseEvent(line) }

// ParseEvent reads a data object's line back into the record it was written
// from: the event's id and dateCreated.
func ParseEvent(line []byte) (engine.Record, error) {
	var ev struct {
		ID          string    `json:"id"`
		DateCreated time.Time `json:"dateCreated"`
	}
	if err := json.Unmarshal(line, &ev); err != nil || ev.ID == "" {
		return engine.Record{}, errors.New("not an event")
	}
	return engine.Record{ID: ev.ID, Time: ev.DateCreated.Unix(), Raw: line}, nil
}

// Absorb implements engine.Lane: the records are stored; the next object is
// named from the window in progress.
func (l lane) Absorb(recs []engine.Record) {
	cp := l.p.cp()
	for _, r := range recs {
		cp.Seen[r.ID] = r.Time
		cp.countHour(r.Time, 1)
	}
	cp.Advance(cp.Window.End.Unix())
}

// Commit implements engine.Lane: it prunes the seen set and saves the
// checkpoint by compare-and-swap.
func (l lane) Commit(ctx context.Context) error {
	p, cp := l.p, l.p.cp()
	cp.UpdatedAt = l.x.r.Now().UTC()
	cp.UpdatedBy = l.x.r.ID()
	cp.Failing = p.failed
	switch {
	case !p.failed:
		cp.FailingSince = time.Time{}
	case cp.FailingSince.IsZero():
		cp.FailingSince = cp.UpdatedAt
	}
	cp.Slug = p.slug
	if cp.HoursSince == 0 && (cp.Window != nil || !cp.Watermark.IsZero()) {
		// Read by a version that did not count: hours from now on are
		// counted in full. (A project never read starts counting where
		// its first window starts: openWindow, HandOff.)
		cp.HoursSince = cp.UpdatedAt.Unix()
	}
	cp.prune(l.x.s.overlap())
	cp.pruneLate(cp.UpdatedAt)
	cp.pruneReads(cp.UpdatedAt)
	return p.doc.Save(ctx, l.x.r)
}

// turn gives project p one turn: read up to engine.MaxPagesPerObject pages
// of its window (opening one when needed) and write them as one object.
func (x *run) turn(ctx context.Context, p *project) error {
	if p.doc == nil {
		if err := x.load(ctx, p); err != nil {
			return err
		}
	}
	if err := x.clipExpiredWindow(ctx, p); err != nil {
		return err
	}
	cp := p.cp()
	if len(cp.Pending) > 0 && !p.lateTried && (cp.Window != nil || !cp.Watermark.IsZero()) {
		// Late events first (once a run): they are older than anything
		// the windows read.
		p.lateTried = true
		if err := x.writeLate(ctx, p); err != nil {
			return err
		}
		cp = p.cp()
	}
	if cp.Window == nil {
		if !x.r.CanRead() {
			return engine.ErrStop
		}
		minGap := time.Second
		if p.completedWindow {
			// Another window in the same run only when it is worth it
			// (after a backlog, not for the seconds the run took).
			minGap = catchUpGap
		}
		opened, err := x.openWindow(ctx, p, minGap)
		if err != nil {
			return err
		}
		if !opened {
			p.done = true
			x.progress(p, "", nil)
			return nil
		}
	}
	limit := engine.MaxPagesPerObject
	if m := x.s.opts.MaxPagesPerProject; m > 0 {
		limit = min(limit, m-p.pages)
	}
	wr := NewWindowReader(x.s.api, x.s.opts.Org, p.id, p.slug, cp.Window, cp.Seen)
	b, err := x.r.Turn(ctx, x.lane(p), cp.Window.Cursor, limit, func(ctx context.Context, b *engine.Batch) error {
		if err := wr.Read(ctx, b); err != nil {
			return err
		}
		p.pages++
		return nil
	}, func(b *engine.Batch) {
		p.events += len(b.Records)
		p.dups += b.Dups
		wr.Progress(b)
		if b.Done {
			w := cp.Window
			cp.addRead(Read{S: w.Start.Unix(), E: w.End.Unix(), O: unixOrZero(w.Opened), C: x.r.Now().Unix()}, x.r.Now())
			cp.Watermark = w.End
			cp.Window = nil
		}
	})
	if err != nil && !errors.Is(err, engine.ErrStop) {
		return x.retentionHint(err, cp)
	}
	if p.cp() != nil && p.cp().Window == nil {
		p.completedWindow = true
	}
	if m := x.s.opts.MaxPagesPerProject; m > 0 && p.pages >= m {
		p.done = true
	}
	x.progress(p, b.Object, nil)
	return err
}

// clipExpiredWindow closes p's window in progress unread when everything
// it could still return lies before the retention edge: Sentry has deleted
// it and would answer the window with a 500 for ever.
func (x *run) clipExpiredWindow(ctx context.Context, p *project) error {
	cp := p.cp()
	w := cp.Window
	if w == nil {
		return nil
	}
	edge, ok := x.s.retentionEdge(x.r.Now())
	if !ok || w.End.After(edge) {
		return nil
	}
	x.clip(ctx, p, w.Start, w.End, edge)
	cp.Watermark, cp.Window = w.End, nil
	return x.lane(p).Commit(ctx)
}

// openWindow persists a new window for p, or reports that there is nothing
// new to read.
func (x *run) openWindow(ctx context.Context, p *project, minGap time.Duration) (bool, error) {
	o := x.s.opts
	cp := p.cp()
	now := x.r.Now().UTC()
	end := now.Add(-o.Lag).Truncate(time.Second)
	var start time.Time
	if w := cp.Watermark; w.IsZero() {
		start = now.Add(-o.InitialLookback).Truncate(time.Second)
	} else {
		if end.Sub(w) < minGap {
			return false, nil
		}
		start = w.Add(-x.s.overlap())
	}
	if edge, ok := x.s.retentionEdge(now); ok && start.Before(edge) {
		// Sentry has deleted the events before edge, and answers a
		// window that ends before it with a 500: start at edge.
		x.clip(ctx, p, start, edge, edge)
		start = edge
	}
	if end.Sub(start) > o.MaxWindow {
		// Catch up window by window: a window never spans more than
		// MaxWindow (backfill de-duplication relies on this bound).
		end = start.Add(o.MaxWindow)
	}
	if w := cp.Watermark; !w.IsZero() && !end.After(w) {
		return false, fmt.Errorf("window [%s, %s) would not move the watermark %s forward", start, end, w)
	}
	if !end.After(start) {
		return false, nil
	}
	if cp.HoursSince == 0 && cp.Watermark.IsZero() {
		// A project never read: every event from start on is written
		// (and counted) from now on.
		cp.HoursSince = start.Unix()
	}
	cp.Window = &Window{Start: start, End: end, Opened: now.Truncate(time.Second)}
	cp.Begin(end.Unix())
	if err := x.lane(p).Commit(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// clip records that p's events in [from, to) are skipped because they are
// older than the retention edge: logged once per skip, counted per project
// in the run summary.
func (x *run) clip(ctx context.Context, p *project, from, to, edge time.Time) {
	if x.clipped == nil {
		x.clipped = make(map[string]bool)
	}
	x.clipped[p.id] = true
	x.clippedBefore = edge
	logging.FromContext(ctx).WarnContext(ctx, "events older than the organisation's retention are deleted by Sentry; skipping them",
		"project_id", p.id, "project", p.slug, "skipped_from", from.UTC(), "skipped_to", to.UTC(),
		"retention", x.s.opts.Retention.String(), "stream", Name)
}

// retentionHint adds to a window's read error that the window may lie
// beyond the organisation's retention, when it ends before the shortest
// retention of Sentry's plans: Sentry answers such a window with a server
// error that no retry can cure, and only a shorter Options.Retention does.
func (x *run) retentionHint(err error, cp *checkpoint) error {
	w := cp.Window
	if w == nil || !engine.IsReadError(err) || !w.End.Before(x.r.Now().Add(-minPlanRetention)) {
		return err
	}
	assumed := "unlimited"
	if r := x.s.opts.Retention; r > 0 {
		assumed = fmt.Sprintf("%g days", r.Hours()/24)
	}
	return fmt.Errorf("%w (the window ends %s, more than %d days ago: if the organisation's plan keeps events for less than the retention the collector assumes, %s, Sentry answers this window with a server error on every run; configure the shorter retention)",
		err, w.End.UTC().Format(time.RFC3339), int(minPlanRetention/(24*time.Hour)), assumed)
}

// WindowReader reads the pages of one window of a project's events (a stream
// window or a backfill slice) into batches: rows outside the window are
// dropped, rows at or above the frontier and rows in seen are duplicates.
type WindowReader struct {
	api       API
	org       string
	projectID string
	slug      string
	w         *Window
	f         filter
}

// NewWindowReader returns the reader of w; seen holds the ids already stored
// (read only).
func NewWindowReader(api API, org, projectID, slug string, w *Window, seen engine.Seen) *WindowReader {
	return &WindowReader{api: api, org: org, projectID: projectID, slug: slug, w: w,
		f: filter{start: w.Start.Unix(), end: w.End.Unix(), frontier: w.Frontier.clone(), seen: seen}}
}

// Read is the engine.Reader of the window: it reads the page at b.Cursor
// into b.
func (r *WindowReader) Read(ctx context.Context, b *engine.Batch) error {
	page, err := r.api.ListEvents(ctx, sentry.EventsQuery{
		Org: r.org, Project: r.projectID, Start: r.w.Start, End: r.w.End, Cursor: b.Cursor, PerPage: 100,
	})
	if err == nil {
		err = r.f.add(page, b)
	}
	if err != nil {
		return fmt.Errorf("failed to read events of project %s (%s): %w", r.projectID, r.slug, err)
	}
	return nil
}

// Progress records in the window what a written batch read: its pages, and
// unless the window is done, the cursor and the frontier to resume from.
func (r *WindowReader) Progress(b *engine.Batch) {
	r.w.Pages += int64(b.Pages)
	if !b.Done {
		r.w.Cursor = b.Cursor
		r.w.Frontier = r.f.frontier
	}
}

// filter turns pages of one window into new records.
type filter struct {
	start, end int64 // the window, unix seconds, half-open
	frontier   *frontier
	seen       engine.Seen // the ids already stored (read only)
}

// errOutOfOrder reports a page whose rows are not in Sentry's documented
// order (-timestamp, -event_id).
var errOutOfOrder = errors.New("rows out of Sentry's order (-timestamp, -event_id)")

// add filters a page's rows into the batch and moves the cursor. Pages are
// newest first; rows at or after the window's end are dropped and rows
// before its start end the window (both only happen with servers that ignore
// start and end). A page whose rows are out of order breaks the frontier's
// assumption: it fails as a protocol error (retried, then reported), never
// skipping rows silently.
func (f *filter) add(page sentry.Page[sentry.Event], b *engine.Batch) error {
	if err := checkOrder(page.Items); err != nil {
		return failure.Transient(err)
	}
	older := false
	for i := range page.Items {
		ev := &page.Items[i]
		if !engine.ValidID(ev.ID) || ev.DateCreated.IsZero() || len(ev.Raw) == 0 {
			b.Invalid++
			continue
		}
		t := ev.DateCreated.Unix()
		if t >= f.end {
			continue
		}
		if t < f.start {
			older = true
			continue
		}
		if f.frontier.newer(t) || f.frontier.has(t, ev.ID) {
			b.Dups++
			continue
		}
		f.frontier = f.frontier.add(t, ev.ID)
		if _, ok := f.seen[ev.ID]; ok {
			b.Dups++
			continue
		}
		b.Add(engine.Record{ID: ev.ID, Time: t, Raw: ev.Raw})
	}
	if !page.HasNext || older {
		b.Done = true
		return nil
	}
	b.Cursor = page.NextCursor
	return nil
}

// checkOrder verifies that rows with a usable id and date are in Sentry's
// order: dateCreated's second descending, then event id descending.
func checkOrder(rows []sentry.Event) error {
	var prevT int64
	prevID := ""
	for i := range rows {
		ev := &rows[i]
		if !engine.ValidID(ev.ID) || ev.DateCreated.IsZero() {
			continue
		}
		t := ev.DateCreated.Unix()
		if prevID != "" && (t > prevT || (t == prevT && ev.ID > prevID)) {
			return fmt.Errorf("%w: %s (%s) follows %s", errOutOfOrder, ev.ID, ev.DateCreated.UTC().Format(time.RFC3339), prevID)
		}
		prevT, prevID = t, ev.ID
	}
	return nil
}
