package sentrysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPopulateReproducible(t *testing.T) {
	t.Parallel()
	sc := Scenario{Projects: 20, Backlog: 3000, Arrivals: 800, LateFraction: 0.1, MaxLate: 5 * time.Minute}
	build := func(seed int64) *harness {
		h := newHarness(t, Config{Seed: seed})
		h.s.Populate(sc)
		h.clock.Advance(2 * time.Hour)
		return h
	}
	a, b, c := build(5), build(5), build(6)
	if diff := cmp.Diff(a.s.GroundTruth(), b.s.GroundTruth()); diff != "" {
		t.Errorf("same seed, different ground truth (-a +b):\n%s", diff)
	}
	if diff := cmp.Diff(a.s.Projects(), b.s.Projects()); diff != "" {
		t.Errorf("same seed, different projects (-a +b):\n%s", diff)
	}
	if cmp.Equal(a.s.GroundTruth(), c.s.GroundTruth()) {
		t.Errorf("different seeds, same ground truth")
	}
	if got := a.s.VisibleCount(); got != sc.Backlog+sc.Arrivals {
		t.Errorf("VisibleCount after everything arrived = %d, want %d", got, sc.Backlog+sc.Arrivals)
	}
	r := a.get(t, "tok", "/api/0/organizations/acme/audit-logs/")
	var audit struct{ Rows []json.RawMessage }
	if err := json.Unmarshal(r.body, &audit); err != nil || len(audit.Rows) != 20 {
		t.Errorf("audit rows = %d (%v), want 20", len(audit.Rows), err)
	}
}

func TestVisibilityLag(t *testing.T) {
	t.Parallel()
	sc := Scenario{Projects: 5, Backlog: 2000, Arrivals: 500, ArrivalSpan: 10 * time.Minute, LateFraction: 0.2, MaxLate: 4 * time.Minute}
	h := newHarness(t, Config{Seed: 9})
	h.s.Populate(sc)

	// Lags: most a few seconds, the late fraction minutes.
	var seconds, minutes, total int
	h.s.mu.RLock()
	for _, p := range h.s.projects {
		p.mu.Lock()
		for _, e := range append(append([]event{}, p.pending...), p.visible...) {
			lag := time.Duration(e.visibleAt - e.ts*int64(time.Second))
			total++
			switch {
			case lag <= 7*time.Second:
				seconds++
			case lag > 30*time.Second && lag <= sc.MaxLate+7*time.Second:
				minutes++
			}
		}
		p.mu.Unlock()
	}
	h.s.mu.RUnlock()
	if total != 2500 || seconds < 1800 || minutes < 300 || seconds+minutes < 2400 {
		t.Errorf("lags: %d within seconds, %d minutes late, of %d", seconds, minutes, total)
	}

	prev := h.s.VisibleCount()
	if prev >= sc.Backlog {
		t.Errorf("at start %d visible, want fewer than the backlog %d (recent and late ones pending)", prev, sc.Backlog)
	}
	for range 20 {
		h.clock.Advance(time.Minute)
		n := h.s.VisibleCount()
		if n < prev {
			t.Fatalf("visible count went down: %d → %d", prev, n)
		}
		prev = n
	}
	if prev != 2500 {
		t.Errorf("after 20 min: %d visible, want 2500", prev)
	}
}

func TestInvisibleEventsAreNeverReturned(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	visible := h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Minute), Message: "KeyError: a"})
	late := h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-10 * time.Minute), VisibleAt: t0.Add(3 * time.Minute), Message: "KeyError: b"})

	check := func(wantIDs []string, wantIssues int) {
		t.Helper()
		r := h.get(t, "tok", eventsPath("acme", p.ID, ""))
		if diff := cmp.Diff(wantIDs, ids(decodeEvents(t, r.body))); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantIDs, h.s.Visible(p.ID)); diff != "" {
			t.Errorf("Visible (-want +got):\n%s", diff)
		}
		truth := map[string]bool{}
		for _, id := range wantIDs {
			truth[id] = true
		}
		if diff := cmp.Diff(map[string]map[string]bool{p.ID: truth}, h.s.GroundTruth()); diff != "" {
			t.Errorf("GroundTruth (-want +got):\n%s", diff)
		}
		r = h.get(t, "tok", "/api/0/organizations/acme/issues/")
		var issues []json.RawMessage
		if err := json.Unmarshal(r.body, &issues); err != nil || len(issues) != wantIssues {
			t.Errorf("issues = %d (%v), want %d", len(issues), err, wantIssues)
		}
	}
	check([]string{visible}, 1)
	h.clock.Advance(3*time.Minute - time.Nanosecond)
	check([]string{visible}, 1)
	h.clock.Advance(time.Nanosecond)
	check([]string{visible, late}, 2)
}

func TestAuditLogKeyset(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	base := time.Date(2026, 3, 14, 11, 0, 0, 0, time.UTC)
	var want []string
	for i := range 8 {
		// Entries 3 and 4 share a millisecond.
		at := base.Add(time.Duration(i)*time.Minute + 250*time.Microsecond)
		if i == 4 {
			at = base.Add(3*time.Minute + 700*time.Microsecond)
		}
		want = append([]string{h.s.AddAuditLog(AuditSpec{Event: "member.invite", At: at})}, want...)
	}
	page := func(q string) (rows []string, prev, next linkRel) {
		t.Helper()
		r := h.get(t, "tok", "/api/0/organizations/acme/audit-logs/?"+q)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var body struct {
			Rows []struct {
				ID          string `json:"id"`
				DateCreated string `json:"dateCreated"`
			} `json:"rows"`
			Options []string `json:"options"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || len(body.Options) == 0 {
			t.Fatalf("body %s: %v", r.body, err)
		}
		for _, row := range body.Rows {
			rows = append(rows, row.ID)
		}
		prev, next = parseLink(t, r.header.Get("Link"))
		return rows, prev, next
	}
	var got []string
	cursor := ""
	var firstPrev linkRel
	for i := range 10 {
		q := "per_page=3"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		rows, prev, next := page(q)
		if i == 0 {
			firstPrev = prev
		}
		got = append(got, rows...)
		if !next.results {
			break
		}
		cursor = next.cursor
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	newestMS := base.Add(7 * time.Minute).UnixMilli()
	if got, want := firstPrev.cursor, fmt.Sprintf("%d:0:1", newestMS); got != want || firstPrev.results {
		t.Errorf("first page prev = %q results=%v, want %q false", got, firstPrev.results, want)
	}

	// Keyset polling with the previous cursor finds a new entry …
	h.clock.Advance(time.Hour)
	fresh := h.s.AddAuditLog(AuditSpec{Event: "sso.disable", At: t0})
	rows, prev, _ := page("per_page=3&cursor=" + firstPrev.cursor)
	if diff := cmp.Diff([]string{fresh}, rows); diff != "" {
		t.Errorf("poll (-want +got):\n%s", diff)
	}
	// … and an empty poll hands back 0:0:1, which would replay from the
	// oldest row (the reference's trap).
	rows, prev, _ = page("per_page=3&cursor=" + prev.cursor)
	if len(rows) != 0 || prev.cursor != "0:0:1" || prev.results {
		t.Errorf("empty poll: rows %v prev %+v, want none and 0:0:1", rows, prev)
	}
	rows, _, _ = page("per_page=3&cursor=0:0:1")
	if diff := cmp.Diff([]string{want[5], want[6], want[7]}, rows); diff != "" {
		t.Errorf("replay from 0:0:1 (-want +got):\n%s", diff)
	}
}
