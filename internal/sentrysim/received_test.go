package sentrysim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// scenarioDigest hashes everything Populate generated: projects, issues and
// every event (visible or pending) with all its stored fields.
func scenarioDigest(s *Server) string {
	h := sha256.New()
	var buf [8]byte
	put := func(v int64) {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	for _, p := range ps {
		h.Write([]byte(p.idStr + "/" + p.slug + "/" + p.platform + "\n"))
		p.mu.Lock()
		for _, g := range p.groups {
			h.Write([]byte(g.idStr + "/" + g.tpl.title() + "/" + g.status + "\n"))
			put(int64(g.level))
		}
		evs := append(slices.Clone(p.visible), p.pending...)
		slices.SortFunc(evs, eventCmp)
		for _, e := range evs {
			h.Write(e.id[:])
			put(e.ts)
			put(int64(e.ms))
			put(e.visibleAt)
			put(e.received)
			put(int64(e.group))
			put(int64(e.level))
			put(int64(e.seq))
		}
		p.mu.Unlock()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestPopulateWithoutLateSentIsUnchanged pins the exact data of seeded
// scenarios (the digests were taken before the late-sent knobs existed):
// the product's tests depend on these event sets.
func TestPopulateWithoutLateSentIsUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		seed int64
		sc   Scenario
		want string
	}{
		{"late_arrivals", 5, Scenario{Projects: 20, Backlog: 3000, Arrivals: 800, LateFraction: 0.1, MaxLate: 5 * time.Minute},
			"c7e93b93bff706d05ca339669d97d52c1d96cfd64136e139867bdf47538aa7a7"},
		{"backlog_only", 42, Scenario{Projects: 4, Backlog: 9000, BacklogSpan: 6 * time.Hour},
			"d858f24dfba1ce4cb6b2b6d7b14380381e4a5b71a7f12013e70a08ef660e1080"},
		{"reference", 9, Scenario{Projects: 3, Backlog: 2500, BacklogSpan: 6 * time.Hour, Arrivals: 1500, ArrivalSpan: 30 * time.Minute, LateFraction: 0.2, MaxLate: 4 * time.Minute},
			"367e195400be60e4a0db21bd4f850855c48c2be094b536bb8d40f0e2cd728aca"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{Seed: tc.seed})
			h.s.Populate(tc.sc)
			// A second call draws from the next stream; its knobs only
			// take their defaults (LateSentMin and LateSentMax too).
			h.s.Populate(Scenario{Backlog: 50, Arrivals: 20})
			if got := scenarioDigest(h.s); got != tc.want {
				t.Errorf("digest = %s, want %s: a scenario without late-sent events changed", got, tc.want)
			}
		})
	}
}

// storedEvents returns every event of the server (visible or not) by id.
func storedEvents(s *Server) map[string]event {
	out := map[string]event{}
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	for _, p := range ps {
		p.mu.Lock()
		for _, e := range append(slices.Clone(p.visible), p.pending...) {
			out[hexID(e.id)] = e
		}
		p.mu.Unlock()
	}
	return out
}

// TestLateSentScenario: an SDK that cached an event offline sends it hours
// or days later, and Relay keeps its timestamp (normalize_timestamps only
// replaces one older than the retention or more than 60 s in the future).
func TestLateSentScenario(t *testing.T) {
	t.Parallel()
	const (
		minL = 10 * time.Minute
		maxL = 5 * 24 * time.Hour
	)
	base := Scenario{Projects: 5, Backlog: 4000, BacklogSpan: 6 * time.Hour, Arrivals: 2000, LateFraction: 0.05}
	withLate := base
	withLate.LateSentFraction, withLate.LateSentMin, withLate.LateSentMax = 0.2, minL, maxL

	plain, late := newHarness(t, Config{Seed: 77}), newHarness(t, Config{Seed: 77})
	plain.s.Populate(base)
	late.s.Populate(withLate)
	a, b := storedEvents(plain.s), storedEvents(late.s)
	if len(a) != 6000 || len(b) != 6000 {
		t.Fatalf("%d and %d events, want 6000 each", len(a), len(b))
	}
	var lateSent, underHour, overDay int
	for id, e := range b {
		p, ok := a[id]
		if !ok {
			t.Fatalf("event %s only exists with late-sent events on", id)
		}
		recv := time.Unix(0, e.received)
		ts := time.Unix(e.ts, int64(e.ms)*int64(time.Millisecond))
		// received − retention ≤ timestamp ≤ received + 60 s, and visible
		// only once received.
		if ts.After(recv.Add(time.Minute)) || ts.Before(recv.Add(-90*24*time.Hour)) || e.visibleAt < e.received {
			t.Errorf("event %s: timestamp %v, received %v, visible %v", id, ts, recv, time.Unix(0, e.visibleAt))
		}
		same := p
		same.ts, same.ms = e.ts, e.ms
		if same != e {
			t.Errorf("event %s differs in more than its timestamp:\n%+v\n%+v", id, p, e)
		}
		if p.ts == e.ts && p.ms == e.ms {
			continue
		}
		lateSent++
		l := recv.Sub(ts)
		// The timestamp is cut to milliseconds, so L may exceed the draw by
		// less than 1 ms.
		if l < minL || l >= maxL+time.Millisecond {
			t.Errorf("event %s sent %v after its timestamp, want [%v, %v]", id, l, minL, maxL)
		}
		if l < time.Hour {
			underHour++
		}
		if l > 24*time.Hour {
			overDay++
		}
	}
	// Log-uniform over [10m, 5d]: about 27 % under an hour, 24 % over a day.
	if lateSent < 1000 || lateSent > 1400 || underHour < 250 || overDay < 250 {
		t.Errorf("%d late-sent of 6000 (want about 1200), %d under an hour, %d over a day", lateSent, underHour, overDay)
	}
	again := newHarness(t, Config{Seed: 77})
	again.s.Populate(withLate)
	if scenarioDigest(again.s) != scenarioDigest(late.s) {
		t.Errorf("the same seed gave different late-sent events")
	}
}

// TestEventReceivedAndRelayBound checks the defaults of an EventSpec and the
// timestamp Relay stores: normalize_timestamps
// (relay-event-normalization/src/validation.rs) replaces a timestamp more
// than 60 s after receipt, or older than the event retention at receipt,
// with the receive time.
func TestEventReceivedAndRelayBound(t *testing.T) {
	t.Parallel()
	recv := time.Date(2026, 3, 14, 12, 0, 0, 250*int(time.Millisecond), time.UTC)
	tests := []struct {
		name      string
		retention time.Duration
		spec      EventSpec
		wantTS    time.Time
		wantRecv  time.Time
		wantVis   time.Time
	}{
		{"all_default_to_timestamp", 0, EventSpec{Timestamp: recv}, recv, recv, recv},
		{"received_defaults_to_visible", 0, EventSpec{Timestamp: recv, VisibleAt: recv.Add(3 * time.Second)}, recv, recv.Add(3 * time.Second), recv.Add(3 * time.Second)},
		{"visible_defaults_to_received", 0, EventSpec{Timestamp: recv.Add(-50 * time.Hour), ReceivedAt: recv}, recv.Add(-50 * time.Hour), recv, recv},
		{"late_sent_kept", 0, EventSpec{Timestamp: recv.Add(-89 * 24 * time.Hour), ReceivedAt: recv, VisibleAt: recv.Add(2 * time.Second)},
			recv.Add(-89 * 24 * time.Hour), recv, recv.Add(2 * time.Second)},
		{"older_than_retention_becomes_received", 0, EventSpec{Timestamp: recv.Add(-91 * 24 * time.Hour), ReceivedAt: recv}, recv, recv, recv},
		{"older_than_short_retention", 30 * 24 * time.Hour, EventSpec{Timestamp: recv.Add(-31 * 24 * time.Hour), ReceivedAt: recv}, recv, recv, recv},
		{"unlimited_retention_keeps_it", -1, EventSpec{Timestamp: recv.Add(-400 * 24 * time.Hour), ReceivedAt: recv}, recv.Add(-400 * 24 * time.Hour), recv, recv},
		{"sixty_seconds_ahead_kept", 0, EventSpec{Timestamp: recv.Add(time.Minute), ReceivedAt: recv}, recv.Add(time.Minute), recv, recv},
		{"further_ahead_becomes_received", 0, EventSpec{Timestamp: recv.Add(time.Minute + time.Millisecond), ReceivedAt: recv}, recv, recv, recv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{Retention: tc.retention})
			p := h.s.AddProject("web", "Web")
			id := h.s.AddEvent(p.ID, tc.spec)
			e := storedEvents(h.s)[id]
			got := []time.Time{time.Unix(e.ts, int64(e.ms)*int64(time.Millisecond)).UTC(), time.Unix(0, e.received).UTC(), time.Unix(0, e.visibleAt).UTC()}
			want := []time.Time{tc.wantTS.Truncate(time.Millisecond), tc.wantRecv, tc.wantVis}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("timestamp, received, visible (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddEventVisibleBeforeReceivedPanics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	defer func() {
		if recover() == nil {
			t.Errorf("AddEvent with VisibleAt before ReceivedAt did not panic")
		}
	}()
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0, ReceivedAt: t0.Add(time.Minute), VisibleAt: t0})
}

// TestReceivedHours: a received-hour closes once everything received in it
// is visible; its visible set is what Discover can return (whole-second
// received, as Snuba stores it), and its accepted count is stats_v2's,
// which keeps counting events whose timestamp has left the retention.
func TestReceivedHours(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Retention: 30 * 24 * time.Hour, OutcomeDelay: -1}) // now 2026-03-14T12:27:28.303Z
	p := h.s.AddProject("mobile", "Mobile")
	hour := func(hh int) time.Time { return time.Date(2026, 3, 14, hh, 0, 0, 0, time.UTC) }
	onTime := h.s.AddEvent(p.ID, EventSpec{Timestamp: hour(10).Add(5 * time.Minute)})
	// Received at 10:59:59.6: Snuba's whole second is 10:59:59, in hour 10.
	edge := h.s.AddEvent(p.ID, EventSpec{Timestamp: hour(10).Add(-2 * time.Hour), ReceivedAt: hour(11).Add(-400 * time.Millisecond)})
	// Received in hour 11, visible only at 12:40 (ingestion backlog).
	slow := h.s.AddEvent(p.ID, EventSpec{Timestamp: hour(11).Add(-24 * time.Hour), ReceivedAt: hour(11).Add(time.Minute), VisibleAt: hour(12).Add(40 * time.Minute)})
	// Received in hour 11 with a timestamp 29 days old: it leaves the
	// 30-day retention at 11:00 the next day.
	old := h.s.AddEvent(p.ID, EventSpec{Timestamp: hour(11).Add(-29 * 24 * time.Hour), ReceivedAt: hour(11).Add(2 * time.Minute)})

	got := h.s.ReceivedHours(p.ID, hour(10).Add(30*time.Minute), hour(13))
	want := []ReceivedHour{
		{Hour: hour(10), Visible: []string{onTime, edge}, Accepted: 2, Closed: true},
		// The slow event's accepted outcome is tracked when it is saved
		// (event_manager.py, _track_outcome_accepted_many), so stats_v2 does
		// not count it yet either.
		{Hour: hour(11), Visible: []string{old}, Pending: 1, Accepted: 1},
		{Hour: hour(12), Accepted: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("at 12:27 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{edge}, h.s.ReceivedIn(p.ID, hour(10).Add(59*time.Minute+59*time.Second), hour(11))); diff != "" {
		t.Errorf("ReceivedIn the last second of hour 10 (-want +got):\n%s", diff)
	}

	h.clock.Advance(15 * time.Minute) // 12:42: the slow event is visible
	got = h.s.ReceivedHours(p.ID, hour(11), hour(12))
	want = []ReceivedHour{{Hour: hour(11), Visible: []string{slow, old}, Accepted: 2, Closed: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("at 12:42 (-want +got):\n%s", diff)
	}

	h.clock.Advance(24 * time.Hour) // the old event left the retention
	got = h.s.ReceivedHours(p.ID, hour(11), hour(12))
	want = []ReceivedHour{{Hour: hour(11), Visible: []string{slow}, Accepted: 2, Closed: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a day later (-want +got):\n%s", diff)
	}
	if got := h.s.ReceivedHours("nope", hour(11), hour(12)); got != nil {
		t.Errorf("unknown project: %v", got)
	}
}
