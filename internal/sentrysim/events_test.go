package sentrysim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEventsLinkHeaderExactFormat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	addEvents(h.s, p.ID, 150, t0.Add(-time.Minute))

	tests := []struct {
		name  string
		query string
		want  string
	}{
		{
			name: "first_page_no_query",
			want: `<URL?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <URL?&cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"`,
		},
		{
			name:  "second_page_keeps_query_minus_cursor",
			query: "per_page=100&cursor=0:100:0",
			want:  `<URL?per_page=100&cursor=0:0:1>; rel="previous"; results="true"; cursor="0:0:1", <URL?per_page=100&cursor=0:200:0>; rel="next"; results="false"; cursor="0:200:0"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", eventsPath("acme", p.ID, tc.query))
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			want := strings.ReplaceAll(tc.want, "URL", h.ts.URL+"/api/0/projects/acme/"+p.ID+"/events/")
			if diff := cmp.Diff(want, r.header.Get("Link")); diff != "" {
				t.Errorf("Link (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventsPaginationFollowsNext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	want := addEvents(h.s, p.ID, 250, t0.Add(-time.Hour))
	// Two events in the same second: ordered by event id descending.
	a := h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat("a", 32), Timestamp: t0.Add(-30 * time.Minute)})
	b := h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat("b", 32), Timestamp: t0.Add(-30 * time.Minute).Add(500 * time.Millisecond)})
	want = append([]string{b, a}, want...)
	if diff := cmp.Diff(want, h.s.Visible(p.ID)); diff != "" {
		t.Fatalf("Visible order (-want +got):\n%s", diff)
	}

	var got []string
	var sizes []int
	cursor := ""
	for {
		q := "per_page=100"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := h.get(t, "tok", eventsPath("acme", "web", q))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		rows := decodeEvents(t, r.body)
		sizes = append(sizes, len(rows))
		got = append(got, ids(rows)...)
		_, next := parseLink(t, r.header.Get("Link"))
		if !next.results {
			break
		}
		cursor = next.cursor
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{100, 100, 52}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
}

func TestEventsIsPrevIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	addEvents(h.s, p.ID, 250, t0.Add(-time.Hour))
	for _, off := range []string{"0", "100", "200"} {
		fwd := h.get(t, "tok", eventsPath("acme", p.ID, "cursor=0:"+off+":0"))
		back := h.get(t, "tok", eventsPath("acme", p.ID, "cursor=0:"+off+":1"))
		if fwd.status != 200 || back.status != 200 {
			t.Fatalf("status %d/%d", fwd.status, back.status)
		}
		if diff := cmp.Diff(string(fwd.body), string(back.body)); diff != "" {
			t.Errorf("offset %s: is_prev changed the page (-fwd +prev):\n%s", off, diff)
		}
	}
	// The value part is ignored too.
	x := h.get(t, "tok", eventsPath("acme", p.ID, "cursor=1234:100:1"))
	y := h.get(t, "tok", eventsPath("acme", p.ID, "cursor=0:100:0"))
	if string(x.body) != string(y.body) {
		t.Errorf("cursor value changed the page")
	}
}

func TestEventsDateRange(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	// Events at 10:00:00, 10:00:01 … 10:00:09, plus one at 10:00:05.700
	// (second resolution: it sorts and filters as 10:00:05).
	var all []string
	for i := range 10 {
		all = append(all, h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat(string("0123456789"[i]), 32), Timestamp: base.Add(time.Duration(i) * time.Second)}))
	}
	frac := h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat("f", 32), Timestamp: base.Add(5*time.Second + 700*time.Millisecond)})
	_ = all

	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantDetail string
		wantIDs    []string
	}{
		{name: "start_without_end", query: "start=2026-03-14T10:00:00Z", wantStatus: 400, wantDetail: "Invalid date range parameters provided"},
		{name: "end_without_start", query: "end=2026-03-14T10:00:00Z", wantStatus: 400, wantDetail: "Invalid date range parameters provided"},
		{name: "start_equals_end", query: "start=2026-03-14T10:00:00Z&end=2026-03-14T10:00:00Z", wantStatus: 400, wantDetail: "Invalid date range parameters provided"},
		{name: "unparsable", query: "start=yesterday&end=2026-03-14T10:00:00Z", wantStatus: 400, wantDetail: "Invalid date range parameters provided"},
		{name: "bad_stats_period", query: "statsPeriod=forever", wantStatus: 400, wantDetail: "Invalid date range parameters provided"},
		{
			name:       "half_open",
			query:      "start=2026-03-14T10:00:03Z&end=2026-03-14T10:00:06Z",
			wantStatus: 200,
			wantIDs:    []string{frac, strings.Repeat("5", 32), strings.Repeat("4", 32), strings.Repeat("3", 32)},
		},
		{
			name:       "naive_is_utc",
			query:      "start=2026-03-14T10:00:08&end=2026-03-14T10:00:10",
			wantStatus: 200,
			wantIDs:    []string{strings.Repeat("9", 32), strings.Repeat("8", 32)},
		},
		{
			name:       "offset_converted",
			query:      "start=2026-03-14T11:00:08%2B01:00&end=2026-03-14T11:00:09%2B01:00",
			wantStatus: 200,
			wantIDs:    []string{strings.Repeat("8", 32)},
		},
		{
			name:       "stats_period_overrides_start_end",
			query:      "statsPeriod=1h&start=2026-03-14T10:00:08Z&end=2026-03-14T10:00:10Z",
			wantStatus: 200,
			wantIDs:    []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", eventsPath("acme", p.ID, tc.query))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus != 200 {
				if got := r.detail(t); got != tc.wantDetail {
					t.Errorf("detail = %q, want %q", got, tc.wantDetail)
				}
				return
			}
			if diff := cmp.Diff(tc.wantIDs, ids(decodeEvents(t, r.body))); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventsIgnoreDateRange(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{IgnoreDateRange: true})
	p := h.s.AddProject("web", "Web")
	addEvents(h.s, p.ID, 5, t0.Add(-time.Hour))
	r := h.get(t, "tok", eventsPath("acme", p.ID, "start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z"))
	if got := len(decodeEvents(t, r.body)); r.status != 200 || got != 5 {
		t.Errorf("status %d, %d rows; want 200 with all 5 (range ignored)", r.status, got)
	}
	r = h.get(t, "tok", eventsPath("acme", p.ID, "start=2020-01-01T00:00:00Z"))
	if r.status != 200 {
		t.Errorf("start alone: status %d, want 200 (no validation on old servers)", r.status)
	}
}

func TestEventsParameters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	addEvents(h.s, p.ID, 120, t0.Add(-time.Hour))

	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantDetail string
		wantRows   int
		wantFull   bool
	}{
		{name: "default_100", wantStatus: 200, wantRows: 100},
		{name: "per_page_100", query: "per_page=100", wantStatus: 200, wantRows: 100},
		{name: "per_page_7", query: "per_page=7", wantStatus: 200, wantRows: 7},
		// clamp_pagination_per_page: `if per_page < 1 or per_page > max_per_page:
		// raise ValueError(f"Invalid per_page value. Must be between 1 and {max_per_page}.")`.
		{name: "per_page_over_max", query: "per_page=101", wantStatus: 400, wantDetail: "Invalid per_page value. Must be between 1 and 100."},
		{name: "per_page_not_int", query: "per_page=ten", wantStatus: 400, wantDetail: "Invalid per_page parameter."},
		{name: "per_page_zero", query: "per_page=0", wantStatus: 400, wantDetail: "Invalid per_page value. Must be between 1 and 100."},
		{name: "per_page_negative", query: "per_page=-3", wantStatus: 400, wantDetail: "Invalid per_page value. Must be between 1 and 100."},
		{name: "full_1_clamps_to_10", query: "full=1&per_page=50", wantStatus: 200, wantRows: 10, wantFull: true},
		{name: "full_true_clamps_default", query: "full=true", wantStatus: 200, wantRows: 10, wantFull: true},
		{name: "full_false_is_simple", query: "full=false", wantStatus: 200, wantRows: 100},
		{name: "full_still_validates_max", query: "full=1&per_page=500", wantStatus: 400, wantDetail: "Invalid per_page value. Must be between 1 and 100."},
		{name: "cursor_two_parts", query: "cursor=0:100", wantStatus: 400, wantDetail: "Invalid cursor parameter."},
		{name: "cursor_garbage", query: "cursor=abc", wantStatus: 400, wantDetail: "Invalid cursor parameter."},
		{name: "cursor_float_offset", query: "cursor=0:1.5:0", wantStatus: 400, wantDetail: "Invalid cursor parameter."},
		{name: "cursor_float_value_ok", query: "cursor=0.5:100:0", wantStatus: 200, wantRows: 20},
		{name: "query_substring_of_message", query: "query=BOOM+2", wantStatus: 200, wantRows: 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", eventsPath("acme", p.ID, tc.query))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus != 200 {
				if got := r.detail(t); got != tc.wantDetail {
					t.Errorf("detail = %q, want %q", got, tc.wantDetail)
				}
				return
			}
			var rows []map[string]any
			if err := json.Unmarshal(r.body, &rows); err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.wantRows {
				t.Errorf("rows = %d, want %d", len(rows), tc.wantRows)
			}
			_, hasReceived := rows[0]["dateReceived"]
			_, hasType := rows[0]["type"]
			_, hasEventType := rows[0]["event.type"]
			if hasReceived != tc.wantFull || hasType != tc.wantFull || hasEventType == tc.wantFull {
				t.Errorf("full shape: dateReceived=%v type=%v event.type=%v, want full=%v", hasReceived, hasType, hasEventType, tc.wantFull)
			}
		})
	}
}

func TestSimpleEventShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Seed: 7})
	h.s.Populate(Scenario{Projects: 6, Backlog: 600})
	h.clock.Advance(time.Minute)
	wantKeys := []string{"crashFile", "culprit", "dateCreated", "event.type", "eventID", "groupID", "id", "location", "message", "metadata", "platform", "projectID", "tags", "title", "user"}
	for _, p := range h.s.Projects() {
		r := h.get(t, "tok", eventsPath("acme", p.ID, "per_page=100"))
		var rows []json.RawMessage
		if err := json.Unmarshal(r.body, &rows); err != nil {
			t.Fatalf("%s: %v", p.Slug, err)
		}
		for _, raw := range rows {
			if len(raw) < 400 || len(raw) > 1200 {
				t.Errorf("row size %d outside 400..1200: %s", len(raw), raw)
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if diff := cmp.Diff(wantKeys, keys); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			if m["id"] != m["eventID"] || m["projectID"] != p.ID {
				t.Errorf("id/eventID/projectID mismatch: %s", raw)
			}
			if _, err := time.Parse("2006-01-02T15:04:05Z", m["dateCreated"].(string)); err != nil {
				t.Errorf("dateCreated %v: %v", m["dateCreated"], err)
			}
		}
	}
}

// TestEventsDateCreatedMilliseconds mirrors BaseEvent.datetime
// (src/sentry/services/eventstore/models.py), which prefers the
// timestamp_ms column, rendered by Django REST framework's JSONEncoder
// (isoformat(), "+00:00" → "Z": six fractional digits, none for a whole
// second), while start/end filter and the order -timestamp, -event_id use
// the whole-second timestamp column: floor(dateCreated) is the second the
// filter sees.
func TestEventsDateCreatedMilliseconds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	base := time.Date(2026, 3, 14, 10, 0, 5, 0, time.UTC)
	add := func(id string, at time.Time) {
		h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat(id, 32), Timestamp: at})
	}
	add("a", base.Add(999*time.Millisecond)) // 10:00:05.999, the smallest id of the second
	add("b", base.Add(123*time.Millisecond)) // 10:00:05.123
	add("c", base)                           // 10:00:05 exactly
	add("d", base.Add(-time.Millisecond))    // 10:00:04.999
	add("e", base.Add(time.Second))          // 10:00:06

	tests := []struct {
		name  string
		query string
		want  []string // id letter and dateCreated
	}{
		{"whole_range", "", []string{"e 2026-03-14T10:00:06Z", "c 2026-03-14T10:00:05Z", "b 2026-03-14T10:00:05.123000Z", "a 2026-03-14T10:00:05.999000Z", "d 2026-03-14T10:00:04.999000Z"}},
		{"second_5_only", "start=2026-03-14T10:00:05Z&end=2026-03-14T10:00:06Z", []string{"c 2026-03-14T10:00:05Z", "b 2026-03-14T10:00:05.123000Z", "a 2026-03-14T10:00:05.999000Z"}},
		// A fractional start excludes the whole second: timestamp 05 < 05.5.
		{"fractional_start", "start=2026-03-14T10:00:05.500Z&end=2026-03-14T10:00:07Z", []string{"e 2026-03-14T10:00:06Z"}},
		// A fractional end includes its second: timestamp 05 < 05.5.
		{"fractional_end", "start=2026-03-14T10:00:05Z&end=2026-03-14T10:00:05.500Z", []string{"c 2026-03-14T10:00:05Z", "b 2026-03-14T10:00:05.123000Z", "a 2026-03-14T10:00:05.999000Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, "tok", eventsPath("acme", p.ID, tc.query))
			var got []string
			for _, row := range decodeEvents(t, r.body) {
				got = append(got, row.ID[:1]+" "+row.DateCreated)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
	// The full serializer renders the same instant.
	r := h.get(t, "tok", eventsPath("acme", p.ID, "full=1&start=2026-03-14T10:00:04Z&end=2026-03-14T10:00:05Z"))
	if rows := decodeEvents(t, r.body); len(rows) != 1 || rows[0].DateCreated != "2026-03-14T10:00:04.999000Z" {
		t.Errorf("full rows: %+v", rows)
	}
}

// TestEventsRetention mirrors outside_retention_with_modified_start
// (src/sentry/utils/dates.py): start moves up to now − retention and a
// window that ends before that raises QueryOutsideRetentionError, which the
// project events endpoint does not catch (it has no handle_query_errors):
// a 500 with Sentry's error body. Events older than retention are gone.
func TestEventsRetention(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	h := newHarness(t, Config{Retention: 30 * day})
	p := h.s.AddProject("web", "Web")
	old := h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat("0", 32), Timestamp: t0.Add(-31 * day)})
	kept := h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat("1", 32), Timestamp: t0.Add(-29 * day)})
	recent := h.s.AddEvent(p.ID, EventSpec{ID: strings.Repeat("2", 32), Timestamp: t0.Add(-time.Hour)})
	rng := func(from, to time.Duration) string {
		return "start=" + t0.Add(-from).Format(time.RFC3339) + "&end=" + t0.Add(-to).Format(time.RFC3339)
	}
	tests := []struct {
		name       string
		query      string
		wantStatus int
		want       []string
	}{
		{name: "no_range_lists_retained_events", wantStatus: 200, want: []string{recent, kept}},
		{name: "window_straddling_the_edge", query: rng(40*day, 20*day), wantStatus: 200, want: []string{kept}},
		{name: "window_entirely_older", query: rng(40*day, 31*day), wantStatus: 500},
		{name: "window_ending_just_after_the_edge", query: rng(40*day, 30*day-time.Second), wantStatus: 200, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { // not parallel: the clock moves below
			r := h.get(t, "tok", eventsPath("acme", p.ID, tc.query))
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus == 500 {
				if !regexp.MustCompile(`^\{"detail":"Internal Error","errorId":"[0-9a-f]{32}"\}$`).Match(r.body) {
					t.Errorf("500 body %s", r.body)
				}
				return
			}
			if diff := cmp.Diff(tc.want, ids(decodeEvents(t, r.body))); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
	if truth := h.s.GroundTruth()[p.ID]; truth[old] || !truth[kept] || len(truth) != 2 {
		t.Errorf("ground truth %v: the expired event must be gone", truth)
	}
	// Two days later the 29-day-old event has expired too.
	h.clock.Advance(2 * day)
	if diff := cmp.Diff([]string{recent}, h.s.Visible(p.ID)); diff != "" {
		t.Errorf("Visible after two days (-want +got):\n%s", diff)
	}
}

// TestEventsWithoutRangeEndAtNowPlusOneSecond: with no start/end,
// _prepare_start_end (src/sentry/utils/snuba.py) queries up to
// utcnow() + 1 s, so a visible event timestamped in the future (Relay
// accepts up to 60 s ahead) is listed only once its second has come.
func TestEventsWithoutRangeEndAtNowPlusOneSecond(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	future := h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(30 * time.Second), VisibleAt: t0})
	if got := ids(decodeEvents(t, h.get(t, "tok", eventsPath("acme", p.ID, "")).body)); len(got) != 0 {
		t.Errorf("now: %v, want nothing yet", got)
	}
	h.clock.Advance(30 * time.Second)
	if diff := cmp.Diff([]string{future}, ids(decodeEvents(t, h.get(t, "tok", eventsPath("acme", p.ID, "")).body))); diff != "" {
		t.Errorf("30 s later (-want +got):\n%s", diff)
	}
}

// TestPerPageOnEveryPaginatedEndpoint: every endpoint that paginates with
// per_page goes through clamp_pagination_per_page.
func TestPerPageOnEveryPaginatedEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	const msg = "Invalid per_page value. Must be between 1 and 100."
	for _, path := range []string{eventsPath("acme", p.ID, ""), "/api/0/organizations/acme/projects/", "/api/0/organizations/acme/audit-logs/"} {
		for _, pp := range []string{"0", "101", "-1"} {
			r := h.get(t, "tok", path+"?per_page="+pp)
			if r.status != 400 || r.detail(t) != msg {
				t.Errorf("%s per_page=%s: %d %s", path, pp, r.status, r.body)
			}
		}
		for _, pp := range []string{"1", "100"} {
			if r := h.get(t, "tok", path+"?per_page="+pp); r.status != 200 {
				t.Errorf("%s per_page=%s: %d %s", path, pp, r.status, r.body)
			}
		}
	}
}
