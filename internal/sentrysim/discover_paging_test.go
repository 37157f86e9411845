package sentrysim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDiscoverPaging walks a late-sent scenario by received time with an
// offset cursor (GenericOffsetPaginator: results="true" only while a
// further row exists) and finds exactly the ground truth.
func TestDiscoverPaging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Seed: 11})
	h.s.Populate(Scenario{Projects: 3, Backlog: 1500, BacklogSpan: 6 * time.Hour, LateSentFraction: 0.3, LateSentMax: 5 * 24 * time.Hour})
	h.clock.Advance(time.Minute)
	now := h.clock.Now()
	from, to := now.Truncate(time.Hour).Add(-3*time.Hour), now.Truncate(time.Hour).Add(-time.Hour)
	var want []string
	for _, p := range h.s.Projects() {
		want = append(want, h.s.ReceivedIn(p.ID, from, to)...)
	}
	slices.Sort(want)
	if len(want) < 300 {
		t.Fatalf("only %d events received in two hours", len(want))
	}
	query := "error.received:>=" + from.Format("2006-01-02T15:04:05") + " error.received:<" + to.Format("2006-01-02T15:04:05")
	first := dq("field", "id", "field", "error.received", "dataset", "errors", "project", "-1",
		"start", now.Add(-6*24*time.Hour).Format(time.RFC3339), "end", now.Format(time.RFC3339),
		"query", query, "sort", "error.received", "sort", "id", "per_page", "37")

	var got []string
	var lastRecv string
	path := discoverPath + first
	pages := 0
	for {
		r := h.get(t, "tok", path)
		b := decodeDiscover(t, r)
		prev, next := parseLink(t, r.header.Get("Link"))
		if pages == 0 {
			// build_cursor_link keeps every value of every parameter,
			// quoted, and the previous page of the first is empty.
			wantURL := h.ts.URL + "/api/0/organizations/acme/events/?field=id&field=error.received&dataset=errors&project=-1&start=" +
				url.QueryEscape(now.Add(-6*24*time.Hour).Format(time.RFC3339)) +
				"&end=" + url.QueryEscape(now.Format(time.RFC3339)) +
				"&query=" + strings.ReplaceAll(url.QueryEscape(query), "+", "%20") + "&sort=error.received&sort=id&per_page=37&cursor=0:37:0"
			if next.url != wantURL || prev.results || prev.cursor != "0:0:1" {
				t.Errorf("first page links:\n got next %s prev %+v\nwant next %s", next.url, prev, wantURL)
			}
		}
		pages++
		for _, row := range b.Data {
			var id, recv string
			if err := json.Unmarshal(row["id"], &id); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(row["error.received"], &recv); err != nil {
				t.Fatal(err)
			}
			if recv < lastRecv {
				t.Fatalf("page %d: received %s after %s", pages, recv, lastRecv)
			}
			lastRecv = recv
			got = append(got, id)
		}
		if !next.results {
			if len(b.Data) == 37 && len(got) != len(want) {
				t.Errorf("stopped after a full page")
			}
			break
		}
		if len(b.Data) != 37 {
			t.Fatalf("page %d has %d rows and results=\"true\"", pages, len(b.Data))
		}
		path = strings.TrimPrefix(next.url, h.ts.URL)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk vs ReceivedIn (-want +got):\n%s", diff)
	}
	if pages != (len(want)+36)/37 {
		t.Errorf("%d pages for %d rows", pages, len(want))
	}
}

// TestDiscoverTiesAreNotStable: rows equal on every sort key come in an
// order ClickHouse does not promise to keep between queries, so offset
// paging over a sort on error.received alone (whole seconds) can repeat
// and skip rows; ending the sort with id makes the walk exact.
func TestDiscoverTiesAreNotStable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("mobile", "Mobile")
	recv := t0.Add(-time.Hour).Truncate(time.Second)
	var want []string
	for i := range 40 {
		// 40 events received within one second, sent days late.
		want = append(want, h.s.AddEvent(p.ID, EventSpec{Timestamp: recv.Add(-time.Duration(i+1) * time.Hour), ReceivedAt: recv.Add(time.Duration(i) * time.Millisecond)}))
	}
	slices.Sort(want)
	walk := func(sorts ...string) []string {
		var ids []string
		for offset := 0; ; offset += 6 {
			q := "field=id&field=error.received&project=-1&statsPeriod=14d&per_page=6&cursor=0:" + strconv.Itoa(offset) + ":0"
			for _, s := range sorts {
				q += "&sort=" + s
			}
			r := h.get(t, "tok", discoverPath+q)
			b := decodeDiscover(t, r)
			for _, id := range column(b.Data, "id") {
				ids = append(ids, strings.Trim(id, `"`))
			}
			if _, next := parseLink(t, r.header.Get("Link")); !next.results {
				return ids
			}
		}
	}
	got := walk("error.received")
	slices.Sort(got)
	if len(got) != 40 || cmp.Equal(want, got) {
		t.Errorf("sort on error.received alone: walk of %d rows equals the set (%v); want repeats and gaps", len(got), cmp.Equal(want, got))
	}
	got = walk("error.received", "id")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sort on error.received, id (-want +got):\n%s", diff)
	}
}

// TestDiscoverRateLimit: Discover has its own budget
// (organization_events.py: LEGACY_RATE_LIMIT = 30 per second, 15
// concurrent), separate from the other endpoints'.
func TestDiscoverRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: realLimits})
	h.s.AddProject("web", "Web")
	const q = discoverPath + "field=id&statsPeriod=1d"
	reset := strconv.FormatInt(time.Date(2026, 3, 14, 12, 27, 29, 0, time.UTC).Unix(), 10)
	for i := 1; i <= 30; i++ {
		r := h.get(t, "tok", q)
		if r.status != 200 {
			t.Fatalf("request %d: status %d %s", i, r.status, r.body)
		}
		if diff := cmp.Diff([]string{"30", strconv.Itoa(30 - i), reset, "15", "14"}, rlHeaders(r)); diff != "" {
			t.Fatalf("request %d headers (-want +got):\n%s", i, diff)
		}
	}
	r := h.get(t, "tok", q)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("31st: status %d", r.status)
	}
	if got, want := r.detail(t), "You are attempting to use this endpoint too frequently. Limit is 30 requests in 1 seconds"; got != want {
		t.Errorf("429 detail = %q, want %q", got, want)
	}
	for _, path := range []string{"/api/0/organizations/acme/", "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&statsPeriod=1d"} {
		if r := h.get(t, "tok", path); r.status != 200 {
			t.Errorf("%s after Discover's budget ran out: status %d", path, r.status)
		}
	}
	h.clock.Advance(time.Second)
	if r := h.get(t, "tok", q); r.status != 200 {
		t.Errorf("next window: status %d", r.status)
	}
	if got := h.s.RequestStats().ByGroup[GroupDiscover]; got != 32 {
		t.Errorf("ByGroup[%q] = %d, want 32", GroupDiscover, got)
	}
}

// TestDiscoverStatsPeriodIsQuantised: a relative range over an hour is
// rounded by quantize_date_params (snuba.quantize_time keyed on the
// organisation id: start down, end up, to the minute with a per-org
// offset); an absolute start/end is used as given.
func TestDiscoverStatsPeriodIsQuantised(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	// now 12:27:28.303, statsPeriod=2h: 10:27:28.303 quantised down with
	// jitter 1000001 % 60 = 41 s is 10:26:41.
	in := h.s.AddEvent(p.ID, EventSpec{Timestamp: time.Date(2026, 3, 14, 10, 26, 41, 0, time.UTC)})
	h.s.AddEvent(p.ID, EventSpec{Timestamp: time.Date(2026, 3, 14, 10, 26, 40, 0, time.UTC)})
	b := decodeDiscover(t, h.get(t, "tok", discoverPath+"field=id&statsPeriod=2h&query="+url.QueryEscape("timestamp:<2026-03-14T11:00:00")))
	if diff := cmp.Diff([]string{`"` + in + `"`}, column(b.Data, "id")); diff != "" {
		t.Errorf("statsPeriod=2h (-want +got):\n%s", diff)
	}
	b = decodeDiscover(t, h.get(t, "tok", discoverPath+"field=id&start=2026-03-14T10:27:28&end=2026-03-14T12:27:28"))
	if len(b.Data) != 0 {
		t.Errorf("absolute range: %d rows, want none", len(b.Data))
	}
}

// TestDiscoverRetention: the range is cut to the retention, and one that
// ends before it is refused (outside_retention_with_modified_start,
// QueryOutsideRetentionError through handle_query_errors: a 400). An event
// received yesterday with a timestamp 29 days old is there until its
// timestamp leaves the 30-day retention.
func TestDiscoverRetention(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Retention: 30 * 24 * time.Hour})
	p := h.s.AddProject("web", "Web")
	old := h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-29 * 24 * time.Hour), ReceivedAt: t0.Add(-24 * time.Hour)})
	q := discoverPath + "field=id&start=2026-01-01T00:00:00&end=2026-03-15T00:00:00"
	if diff := cmp.Diff([]string{`"` + old + `"`}, column(decodeDiscover(t, h.get(t, "tok", q)).Data, "id")); diff != "" {
		t.Errorf("within the retention (-want +got):\n%s", diff)
	}
	h.clock.Advance(24 * time.Hour)
	if got := column(decodeDiscover(t, h.get(t, "tok", q)).Data, "id"); len(got) != 0 {
		t.Errorf("after the retention: %v", got)
	}
	r := h.get(t, "tok", discoverPath+"field=id&start=2026-01-01T00:00:00&end=2026-02-12T00:00:00")
	if r.status != 400 || r.detail(t) != "Invalid date range. Please try a more recent date range." {
		t.Errorf("range before the retention: %d %s", r.status, r.body)
	}
}
