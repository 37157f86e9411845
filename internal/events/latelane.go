package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// lateLane is a project's sequence of late objects, recorded in its
// checkpoint beside the windows' lane (same document, same commit).
//
// Name: <data>YYYY/MM/DD/HH/<org>-<project>-late-<hour>-<seq>.ndjson, where
// hour is the hour of the timestamps of the events it holds (LateHour,
// committed before the first object of an hour's group is written), so that
// a bucket scan of that hour finds it, and seq is LateSeq + 1.
type lateLane struct{ lane }

var _ engine.Lane = lateLane{}

// Next implements engine.Lane.
func (l lateLane) Next() string {
	cp := l.p.cp()
	o := l.x.s.opts
	return engine.ObjectName(o.DataPrefix, o.Org, l.p.id+"-late", cp.LateHour, cp.LateSeq+1)
}

// Absorb implements engine.Lane: the records are stored; they leave the
// queue for Late and are counted in their hour.
func (l lateLane) Absorb(recs []engine.Record) {
	cp := l.p.cp()
	now := l.x.r.Now().Unix()
	ids := make(map[string]bool, len(recs))
	if cp.Late == nil {
		cp.Late = make(engine.Seen)
	}
	for _, r := range recs {
		ids[r.ID] = true
		cp.Late[r.ID] = now
		cp.countHour(r.Time, 1)
	}
	cp.Pending = slices.DeleteFunc(cp.Pending, func(st Straggler) bool { return ids[st.ID] })
	cp.LateSeq++
	l.p.late += len(recs)
}

// writeLate places p's pending late events and writes those no read stored,
// holding the project's lease (shared with backfill jobs, whose reads it must
// not race). It returns ErrStop when the budget ran out, and leaves the
// queue for the next run when another run holds the project.
func (x *run) writeLate(ctx context.Context, p *project) error {
	err := x.r.WithLease(ctx, x.s.ProjectLeaseKey(p.id), func() error {
		// Reads noted by a backfill since the run loaded the checkpoint
		// must be seen before placing anything.
		if err := p.doc.Reload(ctx); err != nil {
			return err
		}
		if err := x.triage(ctx, p); err != nil {
			return err
		}
		capped := func() bool { m := x.s.opts.MaxPagesPerProject; return m > 0 && p.pages >= m }
		for len(p.cp().Pending) > 0 && !capped() {
			if err := x.lateTurn(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, state.ErrLeaseHeld) {
		logging.FromContext(ctx).InfoContext(ctx, "a backfill works on this project; its late events wait for the next run",
			"project_id", p.id, "project", p.slug, "late_pending", len(p.cp().Pending), "stream", Name)
		return nil
	}
	return err
}

// ProjectLeaseKey is the lease a run holds on a project while it writes
// events that no window reads (a backfill slice, late events).
func (s *Stream) ProjectLeaseKey(projectID string) string {
	return s.opts.StatePrefix + "backfill/projects/" + projectID + ".lease.json"
}

// triage places every pending event: it drops those stored or left to a
// window, looks in the bucket for the uncertain ones (one scan per hour of
// timestamps), and commits what is left to write.
func (x *run) triage(ctx context.Context, p *project) error {
	cp := p.cp()
	pl := x.s.placer(cp)
	var look []int64 // hours to scan
	keep := cp.Pending[:0:0]
	for _, st := range cp.Pending {
		switch pl.place(st) {
		case placeStored, placeWindow:
			p.lateStored++
			continue
		case placeLook:
			if h := hourOf(st.T); !slices.Contains(look, h) {
				look = append(look, h)
			}
		}
		keep = append(keep, st)
	}
	if len(look) > 0 {
		if x.s.opts.Bucket == nil {
			return fmt.Errorf("cannot place %d late events of project %s: no bucket listing to look in (Options.Bucket)", len(keep), p.id)
		}
		stored, err := x.scanHours(ctx, p, look)
		if err != nil {
			return err
		}
		keep = slices.DeleteFunc(keep, func(st Straggler) bool {
			if _, ok := stored[st.ID]; ok {
				p.lateStored++
				return true
			}
			return false
		})
	}
	if len(keep) == len(cp.Pending) {
		return nil
	}
	cp.Pending = keep
	return x.lane(p).Commit(ctx)
}

// scanHours reads back the ids the bucket holds of p in the given hours.
func (x *run) scanHours(ctx context.Context, p *project, hours []int64) (engine.Seen, error) {
	if x.scanner == nil {
		x.scanner = x.s.NewScanner(x.s.opts.Bucket, x.r)
	}
	all := make(engine.Seen)
	slices.Sort(hours)
	pred := Pred{}
	for i, h := range hours {
		if i > 0 && hours[i-1]+3600 != h {
			pred = Pred{} // not contiguous: walk back again
		}
		a := time.Unix(h, 0).UTC()
		seen, err := x.scanner.Scan(ctx, p.id, a, a.Add(time.Hour), &pred)
		if err != nil {
			return nil, err
		}
		for id, t := range seen {
			all[id] = t
		}
	}
	return all, nil
}

// lateTurn reads the pending events of one hour from Sentry and writes them
// as one object. The hour is committed first (LateHour), so that the name of
// the object is the same after a crash whatever the sweep queues meanwhile.
// An event whose range was read without it (deleted since it was listed) is
// tried again next time, and dropped after maxTries.
func (x *run) lateTurn(ctx context.Context, p *project) error {
	cp := p.cp()
	if cp.LateHour == 0 {
		cp.LateHour = hourOf(cp.Pending[0].T)
		if err := x.lane(p).Commit(ctx); err != nil {
			return err
		}
	}
	h := cp.LateHour
	want := make(map[string]int64)
	var ts []int64
	for _, st := range cp.Pending {
		if hourOf(st.T) == h {
			want[st.ID] = st.T
			ts = append(ts, st.T)
		}
	}
	if len(want) == 0 {
		// The hour's events were placed since (found stored): an
		// object written before a crash may still be under the name.
		return x.closeLateHour(ctx, p)
	}
	lr := &lateReader{api: x.s.api, org: x.s.opts.Org, pid: p.id,
		ranges: lateRanges(ts, cp.Hours[h]), want: want, found: make(map[string]bool), missed: make(map[string]bool)}
	_, err := x.r.Turn(ctx, lateLane{x.lane(p)}, "", engine.MaxPagesPerObject, func(ctx context.Context, b *engine.Batch) error {
		if err := lr.read(ctx, b); err != nil {
			return err
		}
		p.pages++
		return nil
	}, func(b *engine.Batch) {
		// Every range read to its end counts a try against the events
		// it did not return, so that each turn makes progress even when
		// it cannot read all the hour's ranges.
		x.missed(ctx, p, lr.missed)
		clear(lr.missed)
		if !slices.ContainsFunc(cp.Pending, func(st Straggler) bool { return hourOf(st.T) == h }) {
			cp.LateHour = 0
		}
	})
	return err
}

// closeLateHour absorbs the object under the late lane's current name if a
// crashed run left one, and ends the hour's group.
func (x *run) closeLateHour(ctx context.Context, p *project) error {
	l := lateLane{x.lane(p)}
	recs, err := x.r.ReadBack(ctx, l.Next(), ParseEvent)
	switch {
	case err == nil:
		l.Absorb(recs)
	case !errors.Is(err, sink.ErrNotFound):
		return err
	}
	p.cp().LateHour = 0
	return l.Commit(ctx)
}

// missed counts a try against each event a read of its range did not
// return, dropping (and reporting) those out of tries.
func (x *run) missed(ctx context.Context, p *project, missed map[string]bool) {
	if len(missed) == 0 {
		return
	}
	cp := p.cp()
	var dropped []string
	for i := range cp.Pending {
		st := &cp.Pending[i]
		if !missed[st.ID] {
			continue
		}
		if st.Tries++; st.Tries >= maxTries {
			dropped = append(dropped, st.ID)
		}
	}
	if len(dropped) == 0 {
		return
	}
	cp.Pending = slices.DeleteFunc(cp.Pending, func(st Straggler) bool { return slices.Contains(dropped, st.ID) })
	p.lateUnreadable += len(dropped)
	logging.FromContext(ctx).WarnContext(ctx, "late events listed by Sentry were not returned by the project's events; dropped (the coverage ledger reports them if they still exist)",
		"project_id", p.id, "project", p.slug, "event_ids", strings.Join(dropped, ","), "tries", maxTries, "stream", Name)
}

// lateRanges covers the sorted timestamps ts with [start, end) ranges, one
// request each: a second per timestamp, merged while the merged range is
// expected to hold at most a page of events by the hour's count so far
// (hourCount events over the hour), and at most an hour.
func lateRanges(ts []int64, hourCount int64) [][2]int64 {
	span := int64(3600)
	if hourCount > 0 {
		span = min(span, max(1, 100*3600/hourCount))
	}
	var out [][2]int64
	for _, t := range ts {
		if n := len(out); n > 0 && t+1-out[n-1][0] <= span {
			out[n-1][1] = max(out[n-1][1], t+1)
			continue
		}
		out = append(out, [2]int64{t, t + 1})
	}
	return out
}

// lateReader reads the ranges of one hour's late events, page by page. Its
// cursor is "<range>" or "<range>:<Sentry's cursor>".
type lateReader struct {
	api    API
	org    string
	pid    string
	ranges [][2]int64
	want   map[string]int64 // id → timestamp
	found  map[string]bool
	missed map[string]bool // wanted, and not returned by its range read to its end
}

func (lr *lateReader) read(ctx context.Context, b *engine.Batch) error {
	i, cursor := 0, ""
	if b.Cursor != "" {
		is, c, _ := strings.Cut(b.Cursor, ":")
		n, err := strconv.Atoi(is)
		if err != nil || n < 0 || n >= len(lr.ranges) {
			return fmt.Errorf("bad late cursor %q", b.Cursor)
		}
		i, cursor = n, c
	}
	rg := lr.ranges[i]
	page, err := lr.api.ListEvents(ctx, sentry.EventsQuery{
		Org: lr.org, Project: lr.pid, Start: time.Unix(rg[0], 0).UTC(), End: time.Unix(rg[1], 0).UTC(),
		Cursor: cursor, PerPage: 100,
	})
	if err != nil {
		return fmt.Errorf("failed to read late events of project %s: %w", lr.pid, err)
	}
	for j := range page.Items {
		ev := &page.Items[j]
		if _, ok := lr.want[ev.ID]; !ok || ev.DateCreated.IsZero() || len(ev.Raw) == 0 {
			continue
		}
		lr.found[ev.ID] = true
		b.Add(engine.Record{ID: ev.ID, Time: ev.DateCreated.Unix(), Raw: ev.Raw})
	}
	if !page.HasNext {
		for id, t := range lr.want {
			if t >= rg[0] && t < rg[1] && !lr.found[id] {
				lr.missed[id] = true
			}
		}
	}
	switch {
	case page.HasNext:
		b.Cursor = strconv.Itoa(i) + ":" + page.NextCursor
	case i+1 < len(lr.ranges):
		b.Cursor = strconv.Itoa(i + 1)
	default:
		b.Done = true
	}
	return nil
}
