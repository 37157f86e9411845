package sentrysim

import (
	"cmp"
	"slices"
	"time"
)

// Ground truth of what is visible now: the events the endpoints can list,
// those within the retention.

// retainedLocked returns the visible events of p that are within retention at
// now, oldest first. p.mu must be held.
func (s *Server) retainedLocked(p *project, now time.Time) []event {
	p.promoteLocked(now.UnixNano())
	edge, _ := s.retentionEdge(now)
	lo, hi := p.window(edge, maxInt64)
	return p.visible[lo:hi]
}

// Visible returns the ids of the project's events visible now (and within
// retention), newest first (the order of the events endpoint).
func (s *Server) Visible(projectID string) []string {
	p := s.lookupProject(projectID)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	evs := s.retainedLocked(p, s.clock.Now())
	out := make([]string, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, hexID(evs[i].id))
	}
	return out
}

// GroundTruth returns, per project id, the set of event ids visible now
// (events older than the retention are gone). Every project (also deleted
// ones) is present, possibly with an empty set.
func (s *Server) GroundTruth() map[string]map[string]bool {
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	now := s.clock.Now()
	out := make(map[string]map[string]bool, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		evs := s.retainedLocked(p, now)
		set := make(map[string]bool, len(evs))
		for _, e := range evs {
			set[hexID(e.id)] = true
		}
		p.mu.Unlock()
		out[p.idStr] = set
	}
	return out
}

// VisibleCount returns the number of events visible now (and within
// retention) across the org.
func (s *Server) VisibleCount() int {
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	now := s.clock.Now()
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		n += len(s.retainedLocked(p, now))
		p.mu.Unlock()
	}
	return n
}

// Ground truth by received time. A timestamp-hour never closes (an event
// cached offline may arrive up to the retention later, with an old
// timestamp), but a received-hour does: once ingestion has drained, every
// event received in [h, h+1h) is visible. These helpers tell a test what a
// per-received-hour check (stats_v2's accepted counts, Discover's
// error.received, what the product collected) should find.

// receivedSec is Snuba's received column of an event: whole seconds
// (floor), which is what Discover's error.received shows and filters on.
func (e event) receivedSec() int64 { return floorDiv(e.received, int64(time.Second)) }

// ReceivedIn returns the ids of the project's (numeric id or slug) events
// that are visible now (and within the retention, as GroundTruth) and were
// received in [from, to), compared at Snuba's whole-second resolution of
// received: the ids Discover returns for
// "error.received:>=from error.received:<to" (with a timestamp range wide
// enough to hold them). They are ordered by received second, then id; nil
// when there are none, or the project is unknown. Deleted projects still answer, as in
// GroundTruth, though Discover no longer covers them.
func (s *Server) ReceivedIn(projectID string, from, to time.Time) []string {
	p := s.lookupProject(projectID)
	if p == nil {
		return nil
	}
	lo, hi := ceilSec(from), ceilSec(to)
	p.mu.Lock()
	evs := s.retainedLocked(p, s.clock.Now())
	var hits []event
	for _, e := range evs {
		if r := e.receivedSec(); r >= lo && r < hi {
			hits = append(hits, e)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(hits, func(a, b event) int {
		if c := cmp.Compare(a.receivedSec(), b.receivedSec()); c != 0 {
			return c
		}
		return compareID(a.id, b.id)
	})
	var out []string
	for _, e := range hits {
		out = append(out, hexID(e.id))
	}
	return out
}

// ReceivedHour is the ground truth of one project for one hour of received
// time.
type ReceivedHour struct {
	// Hour is the start of the hour, UTC.
	Hour time.Time
	// Visible are the ids of the events received in the hour that are
	// visible now and within the retention (ReceivedIn for the hour),
	// sorted by received second, then id: what Discover can return.
	Visible []string
	// Pending is the number of events received in the hour (by now) that
	// are not visible yet: ingestion has not drained.
	Pending int
	// Accepted is what stats_v2 (category=error, outcome=accepted,
	// interval=1h) counts for the project in this hour now: every event
	// received in the hour whose accepted outcome has been counted (see
	// Config.OutcomeDelay), including events since gone from the
	// retention. It can differ from len(Visible) while outcomes are due,
	// and for events whose timestamp fell out of the retention.
	Accepted int64
	// Closed reports that the hour has ended and nothing received in it is
	// pending: its Visible set will not grow any more.
	Closed bool
}

// ReceivedHours returns the project's ground truth for every hour of
// received time that starts in [from, to), from's hour first (from is
// truncated to the hour). An unknown project gives nil.
func (s *Server) ReceivedHours(projectID string, from, to time.Time) []ReceivedHour {
	p := s.lookupProject(projectID)
	if p == nil {
		return nil
	}
	now := s.clock.Now()
	start := from.UTC().Truncate(time.Hour)
	var out []ReceivedHour
	for h := start; h.Before(to); h = h.Add(time.Hour) {
		out = append(out, ReceivedHour{Hour: h, Visible: s.ReceivedIn(projectID, h, h.Add(time.Hour))})
	}
	if len(out) == 0 {
		return nil
	}
	idx := func(sec int64) int {
		i := floorDiv(sec-start.Unix(), 3600)
		if i < 0 || i >= int64(len(out)) {
			return -1
		}
		return int(i)
	}
	p.mu.Lock()
	p.promoteLocked(now.UnixNano())
	for _, e := range p.pending {
		if e.received > now.UnixNano() {
			continue
		}
		if i := idx(e.receivedSec()); i >= 0 {
			out[i].Pending++
		}
	}
	for minute, n := range p.minutes {
		if i := idx(minute * 60); i >= 0 {
			out[i].Accepted += n
		}
	}
	p.mu.Unlock()
	for i := range out {
		out[i].Closed = !out[i].Hour.Add(time.Hour).After(now) && out[i].Pending == 0
	}
	return out
}
