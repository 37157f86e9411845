package sentrysim

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

type statsResp struct {
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Intervals []string `json:"intervals"`
	Groups    []struct {
		By     map[string]any     `json:"by"`
		Totals map[string]int64   `json:"totals"`
		Series map[string][]int64 `json:"series"`
	} `json:"groups"`
}

func TestStatsRounding(t *testing.T) {
	t.Parallel()
	// Sentry's own test freezes time at 2021-03-14T12:27:28.303Z.
	fc := clock.NewFake(time.Date(2021, 3, 14, 12, 27, 28, 303000000, time.UTC))
	h := newHarness(t, Config{Clock: fc})
	tests := []struct {
		name      string
		query     string
		wantStart string
		wantEnd   string
		wantN     int
	}{
		{"one_day_by_day", "statsPeriod=1d&interval=1d", "2021-03-13T00:00:00Z", "2021-03-15T00:00:00Z", 2},
		{"one_day_by_6h", "statsPeriod=1d&interval=6h", "2021-03-13T12:00:00Z", "2021-03-14T18:00:00Z", 5},
		{"one_hour_by_15m", "statsPeriod=1h&interval=15m", "2021-03-14T11:15:00Z", "2021-03-14T12:30:00Z", 5},
		{"future_range_start_clamped_to_now", "start=2021-03-14T15:30:00Z&end=2021-03-14T16:30:00Z&interval=1h", "2021-03-14T12:00:00Z", "2021-03-14T17:00:00Z", 5},
		{"end_on_boundary_adds_nothing", "start=2021-03-14T08:00:00Z&end=2021-03-14T10:00:00Z&interval=1h", "2021-03-14T08:00:00Z", "2021-03-14T10:00:00Z", 2},
		{"unparsable_interval_is_1h", "statsPeriod=2h&interval=soon", "2021-03-14T10:00:00Z", "2021-03-14T13:00:00Z", 3},
		{"ninety_minutes", "start=2021-03-14T01:00:00Z&end=2021-03-14T04:00:00Z&interval=90m", "2021-03-14T00:00:00Z", "2021-03-14T04:30:00Z", 3},
		{"epoch_seconds", "start=1615680000&end=1615683600&interval=1h", "2021-03-14T00:00:00Z", "2021-03-14T01:00:00Z", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&"+tc.query)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var got statsResp
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Start != tc.wantStart || got.End != tc.wantEnd || len(got.Intervals) != tc.wantN {
				t.Errorf("got %s..%s (%d), want %s..%s (%d)", got.Start, got.End, len(got.Intervals), tc.wantStart, tc.wantEnd, tc.wantN)
			}
			if len(got.Groups) != 1 || len(got.Groups[0].By) != 0 || len(got.Groups[0].Series["sum(quantity)"]) != tc.wantN {
				t.Errorf("want one zero group with %d points: %s", tc.wantN, r.body)
			}
		})
	}
}

func TestStatsValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.s.AddProject("web", "Web")
	const ok = "field=sum(quantity)&category=error&statsPeriod=1d"
	tests := []struct {
		name   string
		query  string
		status int
		detail string
	}{
		{"no_field", "category=error&statsPeriod=1d", 400, `At least one "field" is required.`},
		{"bad_field", "field=count()&category=error&statsPeriod=1d", 400, `Invalid field: "count()"`},
		{"bad_group_by", ok + "&groupBy=key_id", 400, `Invalid groupBy: "key_id"`},
		{"no_category", "field=sum(quantity)&statsPeriod=1d", 400, "Query must have category as groupby or filter"},
		{"category_groupby_is_enough", "field=sum(quantity)&groupBy=category&statsPeriod=1d", 200, ""},
		{"bad_category", "field=sum(quantity)&category=errors&statsPeriod=1d", 400, `Invalid category: "errors"`},
		{"attachment_with_other", "field=sum(quantity)&category=attachment&category=error&statsPeriod=1d", 400, "if filtering by attachment no other category may be present"},
		{"bad_outcome", ok + "&outcome=eaten", 400, `Invalid outcome: "eaten"`},
		{"outcome_case_insensitive", ok + "&outcome=ACCEPTED", 200, ""},
		{"interval_not_minutes", ok + "&interval=90", 400, "The interval has to be a multiple of the minimum interval of one minute."},
		{"interval_over_day", "field=sum(quantity)&category=error&statsPeriod=7d&interval=2d", 400, "The interval has to be less than one day."},
		{"interval_not_dividing_day", ok + "&interval=7m", 400, "The interval should divide one day without a remainder."},
		{"bad_stats_period", "field=sum(quantity)&category=error&statsPeriod=1y", 400, "Invalid statsPeriod: '1y'"},
		{"start_without_end", "field=sum(quantity)&category=error&start=2026-03-14T00:00:00Z", 400, "start and end are both required"},
		{"bad_start", "field=sum(quantity)&category=error&start=monday&end=2026-03-14T00:00:00Z", 400, "monday is not a valid ISO8601 date query"},
		{"start_after_end", "field=sum(quantity)&category=error&start=2026-03-14T00:00:00Z&end=2026-03-13T00:00:00Z", 400, "start must be before end"},
		{"default_90_days_too_many_points", "field=sum(quantity)&category=error", 400, "Your interval and date range would create too many results. Use a larger interval, or a smaller date range."},
		{"project_not_numeric", ok + "&project=web", 400, "Invalid project parameter. Values must be numbers."},
		{"project_unknown", ok + "&project=42", 403, "You do not have permission to perform this action."},
		{"project_all_mixed", ok + "&project=-1&project=42", 403, "You do not have permission to perform this action."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", "/api/0/organizations/acme/stats_v2/?"+tc.query)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.detail != "" {
				if got := r.detail(t); got != tc.detail {
					t.Errorf("detail = %q, want %q", got, tc.detail)
				}
			}
		})
	}
}

func TestStatsCountsByReceivedTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}) // now = 2026-03-14T12:27:28.303Z, outcome delay 5s
	p := h.s.AddProject("web", "Web")
	q := h.s.AddProject("api", "API")
	at := func(hh, mm, ss int) time.Time { return time.Date(2026, 3, 14, hh, mm, ss, 0, time.UTC) }
	// Offline client: timestamp 09:10, received 12:05 → counted at 12:00.
	h.s.AddEvent(p.ID, EventSpec{Timestamp: at(9, 10, 0), ReceivedAt: at(12, 5, 0), VisibleAt: at(12, 5, 2)})
	h.s.AddEvent(p.ID, EventSpec{Timestamp: at(11, 30, 0)})
	h.s.AddEvent(q.ID, EventSpec{Timestamp: at(11, 45, 0)})
	// Received a second ago: its outcome is not counted yet.
	h.s.AddEvent(p.ID, EventSpec{Timestamp: at(12, 27, 27)})

	get := func(query string) statsResp {
		t.Helper()
		r := h.get(t, "tok", "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&field=sum(times_seen)&category=error&outcome=accepted&"+query)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var s statsResp
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := get("statsPeriod=4h&interval=1h")
	wantIntervals := []string{"2026-03-14T08:00:00Z", "2026-03-14T09:00:00Z", "2026-03-14T10:00:00Z", "2026-03-14T11:00:00Z", "2026-03-14T12:00:00Z"}
	if diff := cmp.Diff(wantIntervals, s.Intervals); diff != "" {
		t.Errorf("intervals (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{0, 0, 0, 2, 1}, s.Groups[0].Series["sum(quantity)"]); diff != "" {
		t.Errorf("series before the outcome delay (-want +got):\n%s", diff)
	}
	h.clock.Advance(10 * time.Second)
	s = get("statsPeriod=4h&interval=1h")
	if diff := cmp.Diff([]int64{0, 0, 0, 2, 2}, s.Groups[0].Series["sum(times_seen)"]); diff != "" {
		t.Errorf("series after the outcome delay (-want +got):\n%s", diff)
	}

	s = get("statsPeriod=4h&interval=1h&groupBy=project&groupBy=outcome")
	if s.Intervals != nil || s.Groups[0].Series != nil {
		t.Errorf("groupBy=project must have no intervals and no series")
	}
	got := map[float64]int64{}
	for _, g := range s.Groups {
		got[g.By["project"].(float64)] = g.Totals["sum(quantity)"]
		if g.By["outcome"] != "accepted" {
			t.Errorf("by = %v", g.By)
		}
	}
	pid, qid := float64(mustInt(t, p.ID)), float64(mustInt(t, q.ID))
	if diff := cmp.Diff(map[float64]int64{pid: 3, qid: 1}, got); diff != "" {
		t.Errorf("per-project totals (-want +got):\n%s", diff)
	}

	// Below one hour the raw table is read: minute buckets, reason null.
	s = get("start=2026-03-14T12:00:00Z&end=2026-03-14T12:30:00Z&interval=5m&groupBy=reason")
	if diff := cmp.Diff([]int64{0, 1, 0, 0, 0, 1}, s.Groups[0].Series["sum(quantity)"]); diff != "" {
		t.Errorf("5m series (-want +got):\n%s", diff)
	}
	if v, ok := s.Groups[0].By["reason"]; !ok || v != nil {
		t.Errorf("raw reason = %v, want null", s.Groups[0].By)
	}
	// Filtering a project and an outcome without data.
	s = get("statsPeriod=4h&interval=1h&project=" + q.ID)
	if diff := cmp.Diff([]int64{0, 0, 0, 1, 0}, s.Groups[0].Series["sum(quantity)"]); diff != "" {
		t.Errorf("project filter (-want +got):\n%s", diff)
	}
	r := h.get(t, "tok", "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&statsPeriod=4h&outcome=filtered&groupBy=outcome")
	if err := json.Unmarshal(r.body, &s); err != nil || len(s.Groups) != 0 {
		t.Errorf("groupBy with no data: want no groups: %s", r.body)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStatsCountsLateSentAtReceivedHour: an error's ACCEPTED outcome
// carries start_time = received_at (relay-server services/store.rs;
// event_manager.py _track_outcome_accepted_many), so stats_v2 counts a
// late-sent event in the hour it was received, not the hour of its
// timestamp. Grouped by project it returns one total per project for the
// whole range, without series; ungrouped, a series.
func TestStatsCountsLateSentAtReceivedHour(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}) // now = 2026-03-14T12:27:28.303Z
	p := h.s.AddProject("mobile", "Mobile")
	q := h.s.AddProject("desktop", "Desktop")
	at := func(d, hh, mm, ss, ms int) time.Time {
		return time.Date(2026, 3, d, hh, mm, ss, ms*int(time.Millisecond), time.UTC)
	}
	add := func(pid string, ts, recv time.Time) {
		h.s.AddEvent(pid, EventSpec{Timestamp: ts, ReceivedAt: recv, VisibleAt: recv.Add(2 * time.Second)})
	}
	add(p.ID, at(11, 8, 15, 0, 0), at(14, 10, 20, 5, 0))     // cached three days
	add(p.ID, at(14, 9, 59, 59, 900), at(14, 10, 0, 0, 100)) // timestamp 09h, received 10h
	add(p.ID, at(14, 11, 30, 0, 0), at(14, 11, 30, 0, 0))    // on time
	add(q.ID, at(12, 3, 0, 0, 0), at(14, 11, 59, 59, 999))   // cached two days
	add(q.ID, at(14, 10, 45, 0, 0), at(14, 10, 45, 0, 0))    // on time
	add(q.ID, at(13, 12, 20, 0, 0), at(14, 12, 20, 0, 0))    // cached a day
	add(q.ID, at(10, 0, 0, 0, 0), at(14, 8, 59, 59, 0))      // before the range
	h.clock.Advance(10 * time.Second)                        // every outcome counted

	const base = "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&outcome=accepted&interval=1h&start=2026-03-14T09:00:00Z&end=2026-03-14T13:00:00Z"
	get := func(extra string) statsResp {
		t.Helper()
		r := h.get(t, "tok", base+extra)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var s statsResp
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name  string
		extra string
		want  []int64
	}{
		{"org", "", []int64{0, 3, 2, 1}},
		{"one_project", "&project=" + p.ID, []int64{0, 2, 1, 0}},
		{"other_project", "&project=" + q.ID, []int64{0, 1, 1, 1}},
	}
	for _, tc := range tests {
		s := get(tc.extra)
		if len(s.Groups) != 1 || len(s.Intervals) != 4 {
			t.Fatalf("%s: want one group over 4 hours: %+v", tc.name, s)
		}
		if diff := cmp.Diff(tc.want, s.Groups[0].Series["sum(quantity)"]); diff != "" {
			t.Errorf("%s: hourly series (-want +got):\n%s", tc.name, diff)
		}
	}
	s := get("&groupBy=project")
	if s.Intervals != nil {
		t.Errorf("grouped by project: intervals %v, want none", s.Intervals)
	}
	totals := map[float64]int64{}
	for _, g := range s.Groups {
		if g.Series != nil {
			t.Errorf("grouped by project: series %v, want none", g.Series)
		}
		totals[g.By["project"].(float64)] = g.Totals["sum(quantity)"]
	}
	if diff := cmp.Diff(map[float64]int64{float64(mustInt(t, p.ID)): 3, float64(mustInt(t, q.ID)): 3}, totals); diff != "" {
		t.Errorf("per-project totals (-want +got):\n%s", diff)
	}

	// The ground truth agrees hour by hour.
	for _, pr := range []struct {
		id   string
		want []int64
	}{{p.ID, tests[1].want}, {q.ID, tests[2].want}} {
		var acc, vis []int64
		for _, rh := range h.s.ReceivedHours(pr.id, at(14, 9, 0, 0, 0), at(14, 13, 0, 0, 0)) {
			acc = append(acc, rh.Accepted)
			vis = append(vis, int64(len(rh.Visible)))
		}
		if diff := cmp.Diff(pr.want, acc); diff != "" {
			t.Errorf("project %s: ReceivedHours accepted (-stats +truth):\n%s", pr.id, diff)
		}
		if diff := cmp.Diff(pr.want, vis); diff != "" {
			t.Errorf("project %s: ReceivedHours visible (-stats +truth):\n%s", pr.id, diff)
		}
	}
}

// TestStatsMatchReceivedHoursOfScenario: with late-sent events spread over
// days, stats_v2's hourly accepted counts equal the ground truth of every
// received-hour, per project and for the organisation.
func TestStatsMatchReceivedHoursOfScenario(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Seed: 3})
	h.s.Populate(Scenario{Projects: 4, Backlog: 3000, BacklogSpan: 8 * time.Hour, LateSentFraction: 0.3, LateSentMax: 4 * 24 * time.Hour})
	h.clock.Advance(time.Minute) // ingestion drained, outcomes counted
	now := h.clock.Now()
	from, to := now.Truncate(time.Hour).Add(-9*time.Hour), now.Truncate(time.Hour).Add(time.Hour)
	q := "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&outcome=accepted&interval=1h&start=" +
		from.Format(time.RFC3339) + "&end=" + to.Format(time.RFC3339)
	org := make([]int64, 10)
	for _, p := range h.s.Projects() {
		var want []int64
		for i, rh := range h.s.ReceivedHours(p.ID, from, to) {
			if !rh.Closed && rh.Hour.Add(time.Hour).Before(now) {
				t.Errorf("project %s hour %v not closed: %+v", p.ID, rh.Hour, rh)
			}
			if rh.Accepted != int64(len(rh.Visible)) {
				t.Errorf("project %s hour %v: accepted %d, visible %d", p.ID, rh.Hour, rh.Accepted, len(rh.Visible))
			}
			want = append(want, rh.Accepted)
			org[i] += rh.Accepted
		}
		var got statsResp
		r := h.get(t, "tok", q+"&project="+p.ID)
		if err := json.Unmarshal(r.body, &got); err != nil || len(got.Groups) != 1 {
			t.Fatalf("status %d %s: %v", r.status, r.body, err)
		}
		if diff := cmp.Diff(want, got.Groups[0].Series["sum(quantity)"]); diff != "" {
			t.Errorf("project %s: stats_v2 hourly (-truth +stats):\n%s", p.ID, diff)
		}
	}
	var got statsResp
	r := h.get(t, "tok", q)
	if err := json.Unmarshal(r.body, &got); err != nil || len(got.Groups) != 1 {
		t.Fatalf("status %d %s: %v", r.status, r.body, err)
	}
	if diff := cmp.Diff(org, got.Groups[0].Series["sum(quantity)"]); diff != "" {
		t.Errorf("organisation: stats_v2 hourly (-truth +stats):\n%s", diff)
	}
	var total int64
	for _, n := range org {
		total += n
	}
	if total != 3000 {
		t.Errorf("%d accepted over the range, want all 3000", total)
	}
}
