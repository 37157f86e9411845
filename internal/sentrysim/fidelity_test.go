package sentrysim

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// arrive adds n events with timestamps from now on (10 per second), visible
// 2 s after their timestamp, and returns their ids newest first.
func arrive(s *Server, projectID string, n int, now time.Time) []string {
	out := make([]string, n)
	for i := range n {
		ts := now.Add(time.Duration(i) * 100 * time.Millisecond)
		out[n-1-i] = s.AddEvent(projectID, EventSpec{Timestamp: ts, VisibleAt: ts.Add(2 * time.Second), Message: "TypeError: x"})
	}
	return out
}

// referenceRun replays the reference function with plain net/http: with no
// stored cursor it fetches the newest page; otherwise it requests the
// stored cursor and follows rel="previous" while results="true". It stores
// the rel="previous" cursor of the newest page it fetched.
func referenceRun(t *testing.T, h *harness, pid, stored string) (got []string, newStored string, requests int) {
	t.Helper()
	cursor := stored
	for {
		q := ""
		if cursor != "" {
			q = "cursor=" + url.QueryEscape(cursor)
		}
		r := h.get(t, "tok", eventsPath("acme", pid, q))
		requests++
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		got = append(got, ids(decodeEvents(t, r.body))...)
		prev, _ := parseLink(t, r.header.Get("Link"))
		newStored = prev.cursor
		if stored == "" || !prev.results || requests > 50 {
			return got, newStored, requests
		}
		cursor = prev.cursor
	}
}

func TestFidelityReferenceStrategyDuplicatesAndLoses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: RateLimitConfig{Disabled: true}})
	p := h.s.AddProject("web", "Web")
	arrive(h.s, p.ID, 300, t0.Add(-time.Hour))
	h.clock.Advance(time.Minute)

	seen := map[string]int{}
	record := func(got []string) (fresh, dup int) {
		for _, id := range got {
			if seen[id] == 0 {
				fresh++
			} else {
				dup++
			}
			seen[id]++
		}
		return fresh, dup
	}

	// Run 1: the newest page; the stored previous cursor is "0:0:1".
	got, stored, _ := referenceRun(t, h, p.ID, "")
	record(got)
	if stored != "0:0:1" {
		t.Fatalf("stored cursor = %q, want 0:0:1", stored)
	}

	type run struct {
		Arrivals, Fetched, Fresh, Dup, Requests int
		Stored                                  string
	}
	var runs []run
	var arrived, wantLost []string
	for _, n := range []int{30, 150, 0} {
		arrived = append(arrived, arrive(h.s, p.ID, n, h.clock.Now())...)
		h.clock.Advance(time.Minute)
		if n == 150 {
			wantLost = slices.Clone(h.s.Visible(p.ID)[100:150])
		}
		got, newStored, reqs := referenceRun(t, h, p.ID, stored)
		fresh, dup := record(got)
		runs = append(runs, run{Arrivals: n, Fetched: len(got), Fresh: fresh, Dup: dup, Requests: reqs, Stored: newStored})
		stored = newStored
	}
	// N=30 < 100: the N new events plus 100−N = 70 already-seen ones.
	// N=150 > 100: only the newest 100; the other 50 are lost for good.
	// N=0: page 1 again, all duplicates. One request each: the previous
	// link of offset 0 never has results.
	want := []run{
		{Arrivals: 30, Fetched: 100, Fresh: 30, Dup: 70, Requests: 1, Stored: "0:0:1"},
		{Arrivals: 150, Fetched: 100, Fresh: 100, Dup: 0, Requests: 1, Stored: "0:0:1"},
		{Arrivals: 0, Fetched: 100, Fresh: 0, Dup: 100, Requests: 1, Stored: "0:0:1"},
	}
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("reference runs (-want +got):\n%s", diff)
	}
	var lost []string
	truth := h.s.GroundTruth()[p.ID]
	for _, id := range arrived {
		if !truth[id] {
			t.Fatalf("arrival %s not visible in ground truth", id)
		}
		if seen[id] == 0 {
			lost = append(lost, id)
		}
	}
	// The lost ones are exactly the 50 oldest of the 150 batch (rows
	// 100..149 of the list right after it arrived).
	slices.Sort(wantLost)
	slices.Sort(lost)
	if len(lost) != 50 {
		t.Errorf("lost %d events, want 50", len(lost))
	}
	if diff := cmp.Diff(wantLost, lost); diff != "" {
		t.Errorf("lost events (-want +got):\n%s", diff)
	}

	// A deeper stored previous cursor (0:k:1) is only a row number from the
	// current head: walking previous from it re-downloads every row above
	// it, newest page last.
	vis := h.s.Visible(p.ID)
	got, _, reqs := referenceRun(t, h, p.ID, "0:200:1")
	wantWalk := append(append(append([]string{}, vis[200:300]...), vis[100:200]...), vis[0:100]...)
	if reqs != 3 {
		t.Errorf("deep previous walk: %d requests, want 3", reqs)
	}
	if diff := cmp.Diff(wantWalk, got); diff != "" {
		t.Errorf("deep previous walk rows (-want +got):\n%s", diff)
	}
	if _, dup := record(got); dup < 200 {
		t.Errorf("deep previous walk: %d duplicates, want most of 300", dup)
	}
}

// windowedRun is the correct strategy: a start/end window on event time
// with overlap and lag, following only rel="next", de-duplicated by id.
func windowedRun(t *testing.T, h *harness, pid string, watermark time.Time, seen map[string]bool) (newWatermark time.Time, dups int) {
	t.Helper()
	const lag, overlap = 2 * time.Minute, 30 * time.Minute
	end := h.clock.Now().Add(-lag).Truncate(time.Second)
	start := watermark.Add(-overlap)
	base := "per_page=100&start=" + start.UTC().Format(time.RFC3339) + "&end=" + end.UTC().Format(time.RFC3339)
	cursor := ""
	for range 1000 {
		q := base
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := h.get(t, "tok", eventsPath("acme", pid, q))
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		for _, id := range ids(decodeEvents(t, r.body)) {
			if seen[id] {
				dups++
			}
			seen[id] = true
		}
		_, next := parseLink(t, r.header.Get("Link"))
		if !next.results {
			return end, dups
		}
		cursor = next.cursor
	}
	t.Fatal("pagination did not end")
	return end, dups
}

func TestFidelityWindowedStrategyLosesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: RateLimitConfig{Disabled: true}})
	p := h.s.AddProject("web", "Web")
	arrive(h.s, p.ID, 300, t0.Add(-time.Hour))
	h.clock.Advance(time.Minute)

	seen := map[string]bool{}
	w := t0.Add(-2 * time.Hour)
	w, _ = windowedRun(t, h, p.ID, w, seen)
	for _, n := range []int{30, 150, 0, 420} {
		arrive(h.s, p.ID, n, h.clock.Now())
		// Late events: timestamps 10 min old, visible only now.
		now := h.clock.Now()
		for range 5 {
			h.s.AddEvent(p.ID, EventSpec{Timestamp: now.Add(-10 * time.Minute), VisibleAt: now.Add(30 * time.Second)})
		}
		h.clock.Advance(5 * time.Minute)
		w, _ = windowedRun(t, h, p.ID, w, seen)
	}
	h.clock.Advance(10 * time.Minute)
	windowedRun(t, h, p.ID, w, seen)

	truth := h.s.GroundTruth()[p.ID]
	if diff := cmp.Diff(truth, seen); diff != "" {
		t.Errorf("windowed collection vs ground truth (-truth +seen):\n%s", diff)
	}
	if len(truth) != 300+30+150+420+4*5 {
		t.Errorf("ground truth has %d events", len(truth))
	}
}
