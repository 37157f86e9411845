package sentrysim

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func issuesPath(query string) string { return "/api/0/organizations/acme/issues/?" + query }

func window(from, to time.Time) string {
	return "start=" + url.QueryEscape(from.UTC().Format(time.RFC3339)) + "&end=" + url.QueryEscape(to.UTC().Format(time.RFC3339))
}

func strp(s string) *string { return &s }

// TestIssuesRowsDescribeTheWindow mirrors StreamGroupSerializerSnuba
// (src/sentry/api/serializers/models/group_stream.py): the top-level
// count, userCount, firstSeen and lastSeen come from _seen_stats_error with
// start=self.start, end=self.end (the request's window); "lifetime" holds
// count and firstSeen of the group itself and lastSeen and userCount over
// all events, with "stats": None ("Not needed in current implementation");
// "filtered" is None without event conditions; "stats" is
// {stats_period: [[ts, n], ...]}: 24 hourly points ending now by default
// (GroupStatsMixin.STATS_PERIOD_CHOICES), 14 daily points for 14d, none for
// groupStatsPeriod= (calculate_stats_period).
func TestIssuesRowsDescribeTheWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	for _, ago := range []time.Duration{72 * time.Hour, 2 * time.Hour, 90 * time.Minute, 10 * time.Minute} {
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-ago), Message: "KeyError: a"})
	}
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	hourly := func(counts map[int]int64) [][2]int64 {
		var out [][2]int64
		for i := range 24 {
			ts := day.Add(-11*time.Hour + time.Duration(i)*time.Hour) // 13:00 the day before … 12:00
			out = append(out, [2]int64{ts.Unix(), counts[ts.Hour()]})
		}
		return out
	}
	daily := func() [][2]int64 {
		var out [][2]int64
		for i := range 14 {
			ts := day.Add(time.Duration(i-13) * 24 * time.Hour)
			var n int64
			switch ts.Day() {
			case 11:
				n = 1
			case 14:
				n = 3
			}
			out = append(out, [2]int64{ts.Unix(), n})
		}
		return out
	}
	lifetime := map[string]any{"count": "4", "userCount": 4.0, "firstSeen": "2026-03-11T12:27:28.303000Z", "lastSeen": "2026-03-14T12:17:28Z", "stats": nil}
	lifetimeNoStats := map[string]any{"count": "4", "userCount": 4.0, "firstSeen": "2026-03-11T12:27:28.303000Z", "lastSeen": "2026-03-14T12:17:28Z"}
	tests := []struct {
		name      string
		query     string
		wantCount string
		wantUsers int
		wantFirst *string
		wantLast  *string
		wantStats map[string][][2]int64
		wantLife  map[string]any
	}{
		{
			name: "three_hour_window", query: window(t0.Add(-3*time.Hour), t0),
			wantCount: "3", wantUsers: 3, wantFirst: strp("2026-03-14T10:27:28Z"), wantLast: strp("2026-03-14T12:17:28Z"),
			wantStats: map[string][][2]int64{"24h": hourly(map[int]int64{10: 2, 12: 1})}, wantLife: lifetime,
		},
		{
			name: "window_with_the_oldest_event_only", query: window(t0.Add(-4*24*time.Hour), t0.Add(-24*time.Hour)),
			wantCount: "1", wantUsers: 1, wantFirst: strp("2026-03-11T12:27:28Z"), wantLast: strp("2026-03-11T12:27:28Z"),
			wantStats: map[string][][2]int64{"24h": hourly(map[int]int64{10: 2, 12: 1})}, wantLife: lifetime,
		},
		{
			name: "stats_period_14d", query: "statsPeriod=7d&groupStatsPeriod=14d",
			wantCount: "4", wantUsers: 4, wantFirst: strp("2026-03-11T12:27:28Z"), wantLast: strp("2026-03-14T12:17:28Z"),
			wantStats: map[string][][2]int64{"14d": daily()}, wantLife: lifetime,
		},
		{
			name: "no_stats", query: "statsPeriod=1h&groupStatsPeriod=",
			wantCount: "1", wantUsers: 1, wantFirst: strp("2026-03-14T12:17:28Z"), wantLast: strp("2026-03-14T12:17:28Z"),
			wantLife: lifetimeNoStats,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows := decodeIssues(t, h.get(t, "tok", issuesPath(tc.query)))
			if len(rows) != 1 {
				t.Fatalf("%d rows, want 1", len(rows))
			}
			got := rows[0]
			if got.Count != tc.wantCount || got.UserCount != tc.wantUsers || !cmp.Equal(got.FirstSeen, tc.wantFirst) || !cmp.Equal(got.LastSeen, tc.wantLast) {
				t.Errorf("window numbers: count %s users %d first %v last %v; want %s %d %v %v", got.Count, got.UserCount, deref(got.FirstSeen), deref(got.LastSeen), tc.wantCount, tc.wantUsers, deref(tc.wantFirst), deref(tc.wantLast))
			}
			if diff := cmp.Diff(tc.wantStats, got.Stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLife, got.Lifetime); diff != "" {
				t.Errorf("lifetime (-want +got):\n%s", diff)
			}
			if string(got.Filtered) != "null" {
				t.Errorf("filtered = %s, want null", got.Filtered)
			}
		})
	}

	t.Run("auto_spreads_the_window", func(t *testing.T) {
		t.Parallel()
		rows := decodeIssues(t, h.get(t, "tok", issuesPath(window(t0.Add(-3*time.Hour), t0)+"&groupStatsPeriod=auto")))
		pts := rows[0].Stats["auto"]
		// Under a day: rollup = total / CUSTOM_SEGMENTS = 10800 / 29 → 372 s.
		var sum int64
		for i, pt := range pts {
			sum += pt[1]
			if i > 0 && pt[0]-pts[i-1][0] != 372 {
				t.Fatalf("points %v and %v are not 372 s apart", pts[i-1], pt)
			}
		}
		if len(pts) != 30 || sum != 3 {
			t.Errorf("%d points with %d events, want 30 and 3: %v", len(pts), sum, pts)
		}
	})
	t.Run("invalid_group_stats_period", func(t *testing.T) {
		t.Parallel()
		r := h.get(t, "tok", issuesPath("groupStatsPeriod=7d"))
		if r.status != 400 || r.detail(t) != "Invalid stats_period. Valid choices are '', '24h', '14d' and 'auto'" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// TestIssuesSearchOnlyFindsIssuesWithEventsInTheWindow: the search
// (search.backend.query with date_from=start, date_to=end) aggregates the
// events of the window, so an issue is found only if it has an event in
// [start, end). A status change without an event is therefore invisible to
// a window in which the issue has no event, and visible in one where it
// has.
func TestIssuesSearchOnlyFindsIssuesWithEventsInTheWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-5 * time.Hour), Message: "KeyError: around"})
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-1 * time.Hour), Message: "KeyError: around"})
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-3 * time.Hour), Message: "KeyError: inside"})
	byTitle := map[string]string{}
	for _, is := range decodeIssues(t, h.get(t, "tok", issuesPath("query="))) {
		byTitle[is.Title] = is.ID
	}
	h.s.SetIssueStatus(byTitle["KeyError: around"], "resolved")

	titles := func(query string) []string {
		t.Helper()
		out := []string{}
		for _, is := range decodeIssues(t, h.get(t, "tok", issuesPath(query))) {
			out = append(out, is.Title+" "+is.Status)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"window_between_the_events_of_an_issue", "query=&" + window(t0.Add(-4*time.Hour), t0.Add(-2*time.Hour)), []string{"KeyError: inside unresolved"}},
		{"resolved_issue_without_event_in_window", "query=is:resolved&" + window(t0.Add(-4*time.Hour), t0.Add(-2*time.Hour)), []string{}},
		{"resolved_issue_with_an_event_in_window", "query=is:resolved&" + window(t0.Add(-2*time.Hour), t0), []string{"KeyError: around resolved"}},
		{"default_window_is_90_days", "query=", []string{"KeyError: around resolved", "KeyError: inside unresolved"}},
		{"stats_period_without_start_end", "query=&statsPeriod=2h", []string{"KeyError: around resolved"}},
		{"half_open_end", "query=&" + window(t0.Add(-4*time.Hour), t0.Add(-3*time.Hour)), []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, titles(tc.query)); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIssueChangesWithoutEvents: status, substatus, priority and assignee
// change without an event and show in the rows (and the search) of every
// window in which the issue has events.
func TestIssueChangesWithoutEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	for _, m := range []string{"a", "b", "c", "d"} {
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Hour), Message: "KeyError: " + m})
	}
	id := map[string]string{}
	for _, row := range decodeIssues(t, h.get(t, "tok", issuesPath("query="))) {
		id[row.Title[len("KeyError: "):]] = row.ID
	}
	h.clock.Advance(time.Minute)
	h.s.SetIssueStatus(id["a"], "ignored")
	h.s.SetIssueStatus(id["b"], "resolved")
	h.s.SetIssueSubstatus(id["c"], "escalating")
	h.s.SetIssuePriority(id["c"], "high")
	h.s.SetIssueAssignee(id["d"], "42")

	type row struct {
		Title, Status, Substatus, Priority, PriorityLockedAt, Assignee string
	}
	get := func(query string) []row {
		t.Helper()
		var out []row
		for _, is := range decodeIssues(t, h.get(t, "tok", issuesPath(query))) {
			r := row{Title: is.Title, Status: is.Status, Substatus: deref(is.Substatus), Priority: is.Priority, PriorityLockedAt: deref(is.PriorityLockedAt), Assignee: "-"}
			if is.AssignedTo != nil {
				r.Assignee = is.AssignedTo.ID
			}
			out = append(out, r)
		}
		slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.Title, b.Title) })
		return out
	}
	a := row{"KeyError: a", "ignored", "archived_forever", "medium", "null", "-"}
	b := row{"KeyError: b", "resolved", "null", "medium", "null", "-"}
	c := row{"KeyError: c", "unresolved", "escalating", "high", "2026-03-14T12:28:28.303000Z", "-"}
	d := row{"KeyError: d", "unresolved", "ongoing", "medium", "null", "42"}
	tests := []struct {
		query string
		want  []row
	}{
		{"query=", []row{a, b, c, d}},
		{"query=is:archived", []row{a}},
		{"query=is:escalating", []row{c}},
		{"query=issue.priority:high", []row{c}},
		{"query=is:assigned", []row{d}},
		{"query=assigned:user42@example.com", []row{d}},
		{"query=is:unresolved+is:unassigned", []row{c}},
		{"query=!is:unresolved", []row{a, b}},
		{"query=" + url.QueryEscape("is:[resolved, ignored]"), []row{a, b}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, get(tc.query)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
	want := []IssueInfo{}
	for _, is := range h.s.Issues() {
		if is.ID == id["c"] {
			want = append(want, is)
		}
	}
	if len(want) != 1 || want[0].Substatus != "escalating" || want[0].Priority != "high" {
		t.Errorf("Issues() for c: %+v", want)
	}
}

// TestIssuesSeenStatsMissing mirrors _parse_seen_stats_results
// (src/sentry/api/serializers/models/group.py): when the windowed
// seen-stats query returns no row for a group the search found, its row has
// times_seen 0, user_count 0 and first_seen/last_seen None (rendered as
// "0", 0, null, null), while the search order is unchanged.
func TestIssuesSeenStatsMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	for i := range 3 {
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Duration(3-i) * time.Minute), Message: "KeyError: " + strconv.Itoa(i)})
	}
	rows := decodeIssues(t, h.get(t, "tok", issuesPath("query=")))
	h.s.SetIssueSeenStatsMissing(rows[1].ID, true)
	got := decodeIssues(t, h.get(t, "tok", issuesPath("query=")))
	if len(got) != 3 || got[1].ID != rows[1].ID {
		t.Fatalf("order changed: %+v", got)
	}
	m := got[1]
	if m.Count != "0" || m.UserCount != 0 || m.FirstSeen != nil || m.LastSeen != nil || m.Lifetime["count"] != "1" {
		t.Errorf("missing row: count %s users %d first %s last %s lifetime %v", m.Count, m.UserCount, deref(m.FirstSeen), deref(m.LastSeen), m.Lifetime)
	}
	if got[0].LastSeen == nil || got[2].LastSeen == nil {
		t.Errorf("other rows lost their lastSeen")
	}
	h.s.SetIssueSeenStatsMissing(rows[1].ID, false)
	if got := decodeIssues(t, h.get(t, "tok", issuesPath("query="))); got[1].LastSeen == nil {
		t.Errorf("lastSeen still null after clearing the flag")
	}

	// Config.MissingSeenStats picks issues reproducibly from the seed.
	missing := func(seed int64, frac float64) []string {
		h := newHarness(t, Config{Seed: seed, MissingSeenStats: frac})
		p := h.s.AddProject("web", "Web")
		for i := range 40 {
			h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Minute), Message: "KeyError: " + strconv.Itoa(i)})
		}
		var out []string
		for _, is := range decodeIssues(t, h.get(t, "tok", issuesPath("query="))) {
			if is.LastSeen == nil {
				out = append(out, is.Title)
			}
		}
		slices.Sort(out)
		return out
	}
	a, b, c := missing(1, 0.25), missing(1, 0.25), missing(2, 0.25)
	if !cmp.Equal(a, b) || cmp.Equal(a, c) || len(a) == 0 || len(a) > 20 {
		t.Errorf("seed 1: %v, again: %v, seed 2: %v", a, b, c)
	}
	if got := missing(1, 0); len(got) != 0 {
		t.Errorf("fraction 0: %v", got)
	}
}

// TestIssuesDateSortKeysetDrift: sort=date pages a SequencePaginator on
// the score toUInt64(max(timestamp)) * 1000 over the window, recomputed on
// every request, and the cursor keeps the pages below its score (having
// last_seen <= cursor). An issue that gets an event while a pass is paging
// moves above the cursor and is not returned again in that pass.
func TestIssuesDateSortKeysetDrift(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	for i, m := range []string{"d", "c", "b", "a"} { // a newest
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Duration(10-i) * time.Minute), Message: "KeyError: " + m})
	}
	const q = "query=&sort=date&limit=2&statsPeriod=1d"
	pass := func(between func()) []string {
		var out []string
		cursor := ""
		for range 10 {
			path := q
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := h.get(t, "tok", issuesPath(path))
			for _, is := range decodeIssues(t, r) {
				out = append(out, is.Title[len("KeyError: "):])
			}
			_, next := parseLink(t, r.header.Get("Link"))
			if !next.results {
				return out
			}
			cursor = next.cursor
			if between != nil {
				between()
				between = nil
			}
		}
		t.Fatal("paging did not end")
		return nil
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d"}, pass(nil)); diff != "" {
		t.Fatalf("quiet pass (-want +got):\n%s", diff)
	}
	got := pass(func() {
		h.clock.Advance(time.Minute)
		h.s.AddEvent(p.ID, EventSpec{Timestamp: h.clock.Now().Add(-time.Second), Message: "KeyError: d"})
	})
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("pass during which d got an event (-want +got):\n%s", diff)
	}
}

// TestIssuesQuery covers the query parameter: absent, it is DEFAULT_QUERY
// "is:unresolved issue.priority:[high, medium]" (src/sentry/api/helpers/
// group_index/index.py); query= means every issue; lastSeen and timesSeen
// aggregate the window's events, firstSeen/age the issue's own.
func TestIssuesQuery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	add := func(msg string, level string, agos ...time.Duration) {
		for _, ago := range agos {
			h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-ago), Message: msg, Level: level})
		}
	}
	add("KeyError: old", "error", 40*time.Hour, 30*time.Minute)         // firstSeen 40 h ago, last 30 min
	add("KeyError: busy", "error", 3*time.Hour, 2*time.Hour, time.Hour) // three events
	add("KeyError: quiet", "warning", 5*time.Hour)                      // low priority
	add("KeyError: done", "fatal", 20*time.Minute)                      // resolved below
	for _, is := range h.s.Issues() {
		if is.Level == "fatal" {
			h.s.SetIssueStatus(is.ID, "resolved")
		}
	}
	names := func(r result) []string {
		out := []string{}
		for _, is := range decodeIssues(t, r) {
			out = append(out, is.Title[len("KeyError: "):])
		}
		slices.Sort(out)
		return out
	}
	at := func(d time.Duration) string { return t0.Add(-d).UTC().Format("2006-01-02T15:04:05") }
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantDetail string
		want       []string
	}{
		{name: "absent_is_unresolved_high_or_medium", query: "", want: []string{"busy", "old"}},
		{name: "empty_is_everything", query: "query=", want: []string{"busy", "done", "old", "quiet"}},
		{name: "low_priority", query: "query=issue.priority:low", want: []string{"quiet"}},
		{name: "last_seen_within_the_hour", query: "query=lastSeen:-1h", want: []string{"done", "old"}},
		{name: "last_seen_older_than_an_hour", query: "query=lastSeen:%2B1h", want: []string{"busy", "quiet"}},
		{name: "last_seen_after_a_datetime", query: "query=lastSeen:>" + at(45*time.Minute), want: []string{"done", "old"}},
		{name: "last_seen_is_within_the_window", query: "query=lastSeen:>" + at(45*time.Minute) + "&" + window(t0.Add(-48*time.Hour), t0.Add(-35*time.Minute)), want: []string{}},
		{name: "first_seen_is_the_issue_s_own", query: "query=firstSeen:<" + at(24*time.Hour) + "&statsPeriod=1h", want: []string{"old"}},
		{name: "age", query: "query=age:-4h", want: []string{"busy", "done"}},
		{name: "times_seen_counts_the_window", query: "query=timesSeen:>=2", want: []string{"busy", "old"}},
		{name: "times_seen_in_a_short_window", query: "query=timesSeen:>=2&statsPeriod=90m", want: []string{}},
		{name: "level_list", query: "query=level:[warning,fatal]", want: []string{"done", "quiet"}},
		{name: "free_text", query: "query=bus", want: []string{"busy"}},
		{name: "bad_is", query: "query=is:sleeping", wantStatus: 400, wantDetail: `Error parsing search query: Invalid value for "is" search, valid values are ['archived', 'archived_forever', 'archived_until_condition_met', 'archived_until_escalating', 'assigned', 'escalating', 'ignored', 'new', 'ongoing', 'regressed', 'resolved', 'unassigned', 'unresolved']`},
		{name: "tag_keys_are_not_simulated", query: "query=environment:production", wantStatus: 400, wantDetail: `Error parsing search query: sentrysim does not simulate the search key "environment"`},
		{name: "bad_sort", query: "sort=size", wantStatus: 400, wantDetail: "Sort key 'size' not supported."},
		{name: "bad_limit", query: "limit=ten", wantStatus: 400, wantDetail: "invalid limit"},
		{name: "bad_stats_period", query: "statsPeriod=forever", wantStatus: 400, wantDetail: "Invalid statsPeriod: 'forever'"},
		{name: "bad_cursor", query: "cursor=x", wantStatus: 400, wantDetail: "Invalid cursor parameter."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", issuesPath(tc.query))
			if tc.wantStatus != 0 {
				if r.status != tc.wantStatus || r.detail(t) != tc.wantDetail {
					t.Errorf("%d %s, want %d %q", r.status, r.body, tc.wantStatus, tc.wantDetail)
				}
				return
			}
			if diff := cmp.Diff(tc.want, names(r)); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIssuesLimitAndRetention: limit above 100 is clamped by the
// SequencePaginator (max_limit 100); a window entirely outside the search
// horizon (retention, at most 90 days) is an empty result with a Link
// header ("backwards compatibility with Django search"), not an error.
func TestIssuesLimitAndRetention(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	h := newHarness(t, Config{Retention: 30 * day})
	p := h.s.AddProject("web", "Web")
	for i := range 120 {
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Hour), Message: "KeyError: " + strconv.Itoa(i)})
	}
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-31 * day), Message: "KeyError: expired"})
	r := h.get(t, "tok", issuesPath("query=&limit=500"))
	if rows := decodeIssues(t, r); len(rows) != 100 || r.header.Get("X-Hits") != "120" {
		t.Errorf("limit=500: %d rows, X-Hits %s; want 100 and 120", len(rows), r.header.Get("X-Hits"))
	}
	r = h.get(t, "tok", issuesPath("query=&"+window(t0.Add(-40*day), t0.Add(-31*day))))
	if r.status != 200 || string(r.body) != "[]" || r.header.Get("Link") == "" {
		t.Errorf("window outside retention: %d %s Link %q", r.status, r.body, r.header.Get("Link"))
	}
	for _, is := range h.s.Issues() {
		if is.LastSeen.Before(t0.Add(-30 * day)) {
			t.Errorf("Issues() lists the expired issue %+v", is)
		}
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(h.get(t, "tok", issuesPath("query=&limit=1")).body, &raw); err != nil || len(raw) != 1 {
		t.Fatalf("%v", err)
	}
	for _, k := range []string{"lifetime", "filtered", "stats", "count", "userCount", "firstSeen", "lastSeen", "substatus", "priorityLockedAt"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("row has no %q", k)
		}
	}
}
