package issues

// The passes: opening a window or a sweep, reading its pages into batches,
// and the lane through which both write and commit.

import (
	"context"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// lane implements engine.Lane over the state document, for the pass of
// kind k.
type lane struct {
	x *run
	k kind
}

var _ engine.Lane = lane{}

// Next implements engine.Lane.
func (l lane) Next() string { return l.x.st().Name(l.x.s.opts.DataPrefix, l.x.s.opts.Org, Name) }

// Parse implements engine.Lane.
func (l lane) Parse(line []byte) (engine.Record, error) { return Parse(line) }

// Absorb implements engine.Lane: the versions are written. A version whose
// lastSeen is unknown (null in the row) is filed under now: the row was read
// before now, so its real lastSeen is not later, and pruning keeps its mark
// at least as long as needed.
func (l lane) Absorb(recs []engine.Record) {
	st := l.x.st()
	now := l.x.r.Now().Unix()
	for _, r := range recs {
		t := r.Time
		if t == 0 {
			t = now
		}
		st.Marks[r.ID] = mark{v: r.Version, hour: hourOf(t)}
	}
	st.Advance(l.x.pass(l.k).End.Unix())
}

// Commit implements engine.Lane: it prunes and saves the state.
func (l lane) Commit(ctx context.Context) error { return l.x.commit(ctx) }

// commit prunes the marks and saves the state.
func (x *run) commit(ctx context.Context) error {
	st := x.st()
	now := x.r.Now()
	st.UpdatedAt = now.UTC()
	st.UpdatedBy = x.r.ID()
	if from, ok := x.keepFrom(now); ok {
		st.Marks.prune(from.Unix())
	}
	return x.doc.Save(ctx, x.r)
}

// keepFrom is the start of the earliest pass still to read: the window in
// progress or the next one (W − Overlap), and the sweep in progress or the
// next one (which starts after now − SweepPeriod). ok is false before the
// first window: nothing may be pruned yet.
func (x *run) keepFrom(now time.Time) (time.Time, bool) {
	st := x.st()
	var from time.Time
	switch {
	case st.Window != nil:
		from = st.Window.Start
	case !st.Watermark.IsZero():
		from = st.Watermark.Add(-x.s.opts.Overlap)
	default:
		return time.Time{}, false
	}
	if x.s.sweeps() {
		next := now.Add(-x.s.opts.SweepPeriod)
		if st.Sweep != nil && st.Sweep.Start.Before(next) {
			next = st.Sweep.Start
		}
		if next.Before(from) {
			from = next
		}
	}
	return from, true
}

// sweepDue reports whether a sweep should start at now.
func (x *run) sweepDue(now time.Time) bool {
	st := x.st()
	if !x.s.sweeps() || st.Sweep != nil {
		return false
	}
	end := now.Add(-x.s.opts.Lag).Truncate(time.Second)
	return st.SweptTo.IsZero() || end.Sub(st.SweptTo) >= x.s.opts.SweepInterval
}

// open persists a new pass of kind k, or reports that none is due. A
// window opens when the watermark is at least a second behind now − Lag
// (catchUpGap when the run already completed one); a sweep every
// SweepInterval.
func (x *run) open(ctx context.Context, k kind, completed bool) (bool, error) {
	o := x.s.opts
	st := x.st()
	now := x.r.Now().UTC()
	end := now.Add(-o.Lag).Truncate(time.Second)
	var start time.Time
	switch k {
	case sweepPass:
		if !x.sweepDue(now) {
			return false, nil
		}
		start = now.Add(-o.SweepPeriod).Truncate(time.Second)
	default:
		if st.Watermark.IsZero() {
			start = now.Add(-o.InitialLookback).Truncate(time.Second)
		} else {
			minGap := time.Second
			if completed {
				minGap = catchUpGap
			}
			if end.Sub(st.Watermark) < minGap {
				return false, nil
			}
			start = st.Watermark.Add(-o.Overlap)
		}
		if end.Sub(start) > o.MaxWindow {
			end = start.Add(o.MaxWindow)
		}
	}
	if !end.After(start) {
		return false, nil
	}
	p := &pass{Start: start, End: end}
	if k == sweepPass {
		st.Sweep = p
	} else {
		st.Window = p
	}
	st.Begin(end.Unix())
	if err := x.commit(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// turn reads up to engine.MaxPagesPerObject pages of the pass of kind k and
// writes them as one object.
//
// Both kinds ask for every accessible project (project=-1: without it Sentry
// covers only the projects of the token user's teams), all statuses
// (query= explicitly: Sentry's default is unresolved issues only), and
// sort=new. The order is the issue's first event, which does not move while
// a pass pages through it; sort=date pages on the last event of the window,
// so an issue that gets a late event (stamped inside the window, visible
// only now) while the pass is paging jumps above the cursor and is not
// returned by that pass.
func (x *run) turn(ctx context.Context, k kind) error {
	p := x.pass(k)
	inBatch := make(map[string]bool) // issue ids with a version in the batch
	_, err := x.r.Turn(ctx, lane{x, k}, p.Cursor, engine.MaxPagesPerObject, func(ctx context.Context, b *engine.Batch) error {
		page, err := x.s.api.ListIssues(ctx, sentry.IssuesQuery{
			Org:      x.s.opts.Org,
			Projects: []string{sentry.AllProjects},
			Query:    "", // explicit: all statuses
			Start:    p.Start,
			End:      p.End,
			Sort:     "new",
			Cursor:   b.Cursor,
			Limit:    pageLimit,
		})
		if err != nil {
			return fmt.Errorf("issues stream: failed to read the organization's issues: %w",
				failure.Hint(err, "check SENTRY_ORG and that SENTRY_AUTH_TOKEN has the event:read scope"))
		}
		addPage(page, p, x.st().Marks, inBatch, b)
		return nil
	}, func(b *engine.Batch) {
		p := x.pass(k)
		p.Pages += int64(b.Pages)
		if !b.Done {
			p.Cursor = b.Cursor
			return
		}
		st := x.st()
		if k == sweepPass {
			st.SweptTo, st.Sweep = p.End, nil
		} else {
			st.Watermark, st.Window = p.End, nil
		}
	})
	return err
}

// addPage filters a page into the batch. A row is new when its version
// differs from the last one written, or when another version of the issue is
// already in the batch (it changed back). A row whose lifetime lastSeen is
// before the pass's start has no event in the pass (only a server that
// ignores start returns it) and is left out.
func addPage(page sentry.Page[sentry.Issue], p *pass, written marks, inBatch map[string]bool, b *engine.Batch) {
	for _, is := range page.Items {
		rec, err := Parse(is.Raw)
		if err != nil {
			b.Invalid++
			continue
		}
		if rec.Time != 0 && rec.Time < p.Start.Unix() {
			continue
		}
		if prev, ok := written[rec.ID]; ok && prev.v == rec.Version && !inBatch[rec.ID] {
			b.Dups++
			continue
		}
		if b.Add(rec) {
			inBatch[rec.ID] = true
		}
	}
	if !page.HasNext {
		b.Done = true
		return
	}
	b.Cursor = page.NextCursor
}
