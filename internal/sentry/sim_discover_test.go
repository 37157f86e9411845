package sentry

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// receivedQuery is the search for events received in [from, to).
func receivedQuery(from, to time.Time) string {
	const layout = "2006-01-02T15:04:05"
	return "error.received:>=" + from.UTC().Format(layout) + " error.received:<" + to.UTC().Format(layout)
}

// TestDiscoverAgainstSimulator sweeps closed received-hours of an
// organisation where a quarter of the events were sent days late, through
// Discover at the real rate limits (30 per second, 15 concurrent), and finds
// for every project exactly the events the simulator says were received in
// each hour, in (error.received, id) order; count_unique(id) per project
// agrees, and so does stats_v2's accepted count.
func TestDiscoverAgainstSimulator(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC))
	sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 7})
	sim.Populate(sentrysim.Scenario{Projects: 4, Backlog: 4000, BacklogSpan: 8 * time.Hour, Arrivals: 500,
		LateSentFraction: 0.25, LateSentMin: 30 * time.Minute, LateSentMax: 3 * 24 * time.Hour})
	clk.Advance(10 * time.Minute)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := New(Options{BaseURL: srv.URL, Token: testToken, Clock: clk, HTTPClient: srv.Client(), Limiters: NewLimiters()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	projects := sim.Projects()
	lateSent := 0
	start := clk.Now().Truncate(time.Hour).Add(-7 * time.Hour)
	for h := start; h.Add(time.Hour).Before(clk.Now()); h = h.Add(time.Hour) {
		want := map[string][]string{}
		for _, p := range projects {
			rh := sim.ReceivedHours(p.ID, h, h.Add(time.Hour))[0]
			if !rh.Closed {
				t.Fatalf("hour %v of %s is not closed", h, p.ID)
			}
			if len(rh.Visible) > 0 {
				want[p.ID] = rh.Visible
			}
		}
		q := DiscoverQuery{
			Org: sim.Org(), Projects: []string{AllProjects},
			Fields: []string{"id", "project.id", "timestamp", "error.received"},
			Query:  receivedQuery(h, h.Add(time.Hour)),
			Sort:   []string{"error.received", "id"},
			// Timestamps are at most 60 s after receipt and, here, at most
			// three days before it.
			Start: h.Add(-3*24*time.Hour - time.Hour), End: h.Add(time.Hour + time.Minute),
			PerPage: 50,
		}
		got := map[string][]string{}
		var last time.Time
		for {
			p, err := c.Discover(ctx, q)
			if err != nil {
				t.Fatalf("hour %v: %v", h, err)
			}
			for _, row := range p.Items {
				id, ok1 := row.String("id")
				pid, ok2 := row.String("project.id")
				recv, ok3 := row.Time("error.received")
				ts, ok4 := row.Time("timestamp")
				if !ok1 || !ok2 || !ok3 || !ok4 || recv.Before(last) || recv.Before(h) || !recv.Before(h.Add(time.Hour)) {
					t.Fatalf("hour %v: row %s", h, row.Raw)
				}
				if recv.Sub(ts) > time.Hour {
					lateSent++
				}
				last = recv
				got[pid] = append(got[pid], id)
			}
			if !p.HasNext {
				break
			}
			q.Cursor = p.NextCursor
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("hour %v: Discover vs ground truth (-want +got):\n%s", h, diff)
		}

		counts, err := c.Discover(ctx, DiscoverQuery{Org: sim.Org(), Projects: []string{AllProjects},
			Fields: []string{"project.id", "count_unique(id)"}, Query: q.Query, Start: q.Start, End: q.End})
		if err != nil {
			t.Fatalf("hour %v counts: %v", h, err)
		}
		byProject := map[string]int64{}
		for _, row := range counts.Items {
			pid, _ := row.String("project.id")
			n, ok := row.Int("count_unique(id)")
			if !ok {
				t.Fatalf("row %s", row.Raw)
			}
			byProject[pid] = n
		}
		stats, err := c.OrgStats(ctx, StatsQuery{Org: sim.Org(), Start: h, End: h.Add(time.Hour), Interval: time.Hour,
			Outcomes: []string{"accepted"}, Projects: []string{AllProjects}, GroupByProject: true})
		if err != nil {
			t.Fatalf("hour %v stats: %v", h, err)
		}
		for _, g := range stats.Groups {
			if byProject[g.ProjectID] != g.Total || int64(len(want[g.ProjectID])) != g.Total {
				t.Errorf("hour %v project %s: count_unique %d, stats_v2 %d, ids %d", h, g.ProjectID, byProject[g.ProjectID], g.Total, len(want[g.ProjectID]))
			}
		}
	}
	if lateSent < 300 {
		t.Errorf("only %d late-sent events found", lateSent)
	}
	st := sim.RequestStats()
	if st.RateLimited != 0 || c.Metrics().RateLimited != 0 || st.ByGroup[sentrysim.GroupDiscover] == 0 {
		t.Errorf("simulator: %d limited, by group %v; client %+v", st.RateLimited, st.ByGroup, c.Metrics())
	}
}

// TestDiscoverRefusalsAgainstSimulator: how each way Sentry can turn the
// late sweep down reaches the caller.
func TestDiscoverRefusalsAgainstSimulator(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)
	hour := now.Truncate(time.Hour).Add(-time.Hour)
	base := DiscoverQuery{Org: "acme", Fields: []string{"id", "error.received"}, Query: receivedQuery(hour, hour.Add(time.Hour)),
		Sort: []string{"error.received", "id"}, Start: hour.Add(-24 * time.Hour), End: hour.Add(2 * time.Hour)}
	with := func(f func(*DiscoverQuery)) DiscoverQuery {
		q := base
		q.Fields, q.Sort = slices.Clone(base.Fields), slices.Clone(base.Sort)
		f(&q)
		return q
	}
	tests := []struct {
		name      string
		cfg       sentrysim.Config
		user      bool // a user token that is a member of no project
		q         DiscoverQuery
		wantRows  int
		wantErr   string // a substring of the error
		unknown   bool   // IsUnknownField(err, "error.received")
		permanent bool
		kind      failure.Kind
		requests  int64
	}{
		{name: "supported", q: base, wantRows: 2, requests: 1},
		{name: "refused_field", cfg: sentrysim.Config{DiscoverNoReceived: true}, q: base,
			wantErr: "400 Bad Request: Invalid key for this search: error.received", unknown: true, permanent: true, kind: failure.KindConfig, requests: 1},
		{name: "refused_filter_only", cfg: sentrysim.Config{DiscoverNoReceived: true}, q: with(func(q *DiscoverQuery) { q.Fields, q.Sort = []string{"id"}, []string{"id"} }),
			wantErr: "Invalid key for this search: error.received", unknown: true, permanent: true, kind: failure.KindConfig, requests: 1},
		{name: "taken_for_a_tag", cfg: sentrysim.Config{DiscoverReceivedAsTag: true}, q: base,
			wantErr: `field "error.received" comes back as "string", not "date"`, unknown: true, permanent: true, kind: failure.KindConfig, requests: 1},
		// Without the field nothing tells: the filter is a text match.
		{name: "taken_for_a_tag_unselected", cfg: sentrysim.Config{DiscoverReceivedAsTag: true}, q: with(func(q *DiscoverQuery) { q.Fields, q.Sort = []string{"id"}, []string{"id"} }),
			wantRows: 0, requests: 1},
		{name: "no_global_views", cfg: sentrysim.Config{NoGlobalViews: true}, q: with(func(q *DiscoverQuery) { q.Projects = []string{AllProjects} }),
			wantErr: "You cannot view events from multiple projects.", permanent: true, kind: failure.KindConfig, requests: 1},
		{name: "sort_not_selected", q: with(func(q *DiscoverQuery) { q.Sort = []string{"timestamp"} }),
			wantErr: "Cannot sort by a field that is not selected.", permanent: true, kind: failure.KindConfig, requests: 1},
		{name: "no_visible_project", user: true, q: base, wantRows: 0, requests: 1},
		{name: "no_field", q: with(func(q *DiscoverQuery) { q.Fields = nil }), wantErr: "at least one field", permanent: true, kind: failure.KindUnexpected},
		{name: "too_many_fields", q: with(func(q *DiscoverQuery) { q.Fields = slices.Repeat([]string{"id"}, 21) }), wantErr: "at most 20 fields", permanent: true, kind: failure.KindUnexpected},
		{name: "no_range", q: with(func(q *DiscoverQuery) { q.Start = time.Time{} }), wantErr: "timestamp range", permanent: true, kind: failure.KindUnexpected},
		{name: "project_slug", q: with(func(q *DiscoverQuery) { q.Projects = []string{"web"} }), wantErr: `project "web" is not a numeric id`, permanent: true, kind: failure.KindUnexpected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(now)
			cfg := tc.cfg
			cfg.Clock = clk
			if tc.user {
				cfg.TokenInfo = map[string]sentrysim.TokenInfo{testToken: {Kind: sentrysim.TokenUser}}
			}
			sim := sentrysim.New(cfg)
			web, api := sim.AddProject("web", "Web"), sim.AddProject("api", "API")
			// One late-sent and one on-time event received in the hour.
			sim.AddEvent(web.ID, sentrysim.EventSpec{Timestamp: hour.Add(-20 * time.Hour), ReceivedAt: hour.Add(10 * time.Minute)})
			sim.AddEvent(api.ID, sentrysim.EventSpec{Timestamp: hour.Add(20 * time.Minute)})
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			c, err := New(Options{BaseURL: srv.URL, Token: testToken, Clock: clk, HTTPClient: srv.Client(), Limiters: NewLimiters()})
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Discover(t.Context(), tc.q)
			if got := sim.RequestStats().Total; got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if tc.wantErr == "" {
				if err != nil || len(p.Items) != tc.wantRows || p.HasNext {
					t.Fatalf("got %d rows, HasNext %v, err %v; want %d rows", len(p.Items), p.HasNext, err, tc.wantRows)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if got := IsUnknownField(err, "error.received"); got != tc.unknown {
				t.Errorf("IsUnknownField = %v, want %v", got, tc.unknown)
			}
			if IsUnknownField(err, "timestamp") {
				t.Errorf("IsUnknownField(timestamp) = true")
			}
			if got := IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			if got := failure.Classify(err); got != tc.kind {
				t.Errorf("failure.Classify = %v, want %v", got, tc.kind)
			}
		})
	}
}

// TestDiscoverDecoding checks, against fake answers, what the client sends
// and how it reads rows, paging and malformed answers.
func TestDiscoverDecoding(t *testing.T) {
	t.Parallel()
	const rows = `[{"id":"0123456789abcdef0123456789abcdef","project.id":4506000000007919,"error.received":"2026-03-01T10:20:05+00:00","count()":3,"note":null}]`
	const meta = `{"fields":{"id":"string","project.id":"integer","error.received":"date","count()":"integer"},"units":{},"isMetricsData":false}`
	link := func(r *http.Request, more bool) string {
		return sentryLink(r, "0:0:1", true, "0:4:0", more)
	}
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		fields   []string
		wantErr  string
		wantNext string
		wantRows int
		attempts int
	}{
		{name: "rows_and_next_page", fields: []string{"id", "count()"}, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", link(r, true))
			writeJSON(w, 200, `{"data":`+rows+`,"meta":`+meta+`}`)
		}, wantNext: "0:4:0", wantRows: 1, attempts: 1},
		{name: "last_page", fields: []string{"id"}, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", link(r, false))
			writeJSON(w, 200, `{"data":`+rows+`,"meta":`+meta+`}`)
		}, wantRows: 1, attempts: 1},
		{name: "no_projects_without_link", fields: []string{"id"}, handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 200, `{"data":[],"meta":{"tips":{"query":"Need at least one valid project to query."}}}`)
		}, attempts: 1},
		{name: "older_bare_list_without_link", fields: []string{"id"}, handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 200, `[]`)
		}, attempts: 1},
		{name: "rows_without_link_are_retried", fields: []string{"id"}, handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 200, `{"data":`+rows+`,"meta":`+meta+`}`)
		}, wantErr: "no Link header", attempts: 2},
		{name: "truncated_is_retried", fields: []string{"id"}, handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 200, `{"data":[{"id":`)
		}, wantErr: "invalid JSON", attempts: 2},
		{name: "data_not_a_list", fields: []string{"id"}, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", link(r, false))
			writeJSON(w, 200, `{"data":{"id":"x"},"meta":{}}`)
		}, wantErr: "unexpected response", attempts: 1},
		{name: "count_as_string", fields: []string{"count()"}, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", link(r, false))
			writeJSON(w, 200, `{"data":[{"count()":"3"}],"meta":{"fields":{"count()":"string"}}}`)
		}, wantErr: `field "count()" comes back as "string", not "integer"`, attempts: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var attempts int
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts++
				got = r
				tc.handler(w, r)
			}))
			t.Cleanup(srv.Close)
			c, err := New(Options{BaseURL: srv.URL, Token: testToken, Clock: clock.NewFake(t0), HTTPClient: srv.Client(), MaxAttempts: 2})
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Discover(t.Context(), DiscoverQuery{Org: "acme", Projects: []string{"1", "2"}, Fields: tc.fields,
				Query: "error.received:>=2026-03-01T10:00:00", Sort: []string{"-error.received", "id"},
				Start: t0.Add(-time.Hour + 500*time.Millisecond), End: t0, Cursor: "0:2:0", PerPage: 2})
			if attempts != tc.attempts {
				t.Errorf("%d attempts, want %d", attempts, tc.attempts)
			}
			wantQuery := map[string][]string{
				"dataset": {"errors"}, "field": tc.fields, "project": {"1", "2"},
				"start": {"2026-03-01T11:00:00Z"}, "end": {"2026-03-01T12:00:00Z"},
				"query": {"error.received:>=2026-03-01T10:00:00"}, "sort": {"-error.received", "id"},
				"per_page": {"2"}, "cursor": {"0:2:0"},
			}
			if diff := cmp.Diff(wantQuery, map[string][]string(got.URL.Query())); diff != "" {
				t.Errorf("query sent (-want +got):\n%s", diff)
			}
			if got.URL.Path != "/api/0/organizations/acme/events/" {
				t.Errorf("path %s", got.URL.Path)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(p.Items) != tc.wantRows || p.HasNext != (tc.wantNext != "") || (p.HasNext && p.NextCursor != tc.wantNext) {
				t.Fatalf("page %+v, err %v", p, err)
			}
			if tc.wantRows == 0 {
				return
			}
			row := p.Items[0]
			if string(row.Raw) != strings.Trim(rows, "[]") {
				t.Errorf("Raw = %s", row.Raw)
			}
			id, _ := row.String("id")
			pid, _ := row.Int("project.id")
			pidText, _ := row.String("project.id")
			recv, _ := row.Time("error.received")
			n, _ := row.Int("count()")
			_, nullOK := row.String("note")
			_, missingOK := row.Time("timestamp")
			values := []any{id, pid, pidText, recv, n, nullOK, missingOK}
			want := []any{"0123456789abcdef0123456789abcdef", int64(4506000000007919), "4506000000007919",
				time.Date(2026, 3, 1, 10, 20, 5, 0, time.UTC), int64(3), false, false}
			if diff := cmp.Diff(want, values); diff != "" {
				t.Errorf("row accessors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIsUnknownField covers the Sentry answers that do and do not say that
// a field is unknown.
func TestIsUnknownField(t *testing.T) {
	t.Parallel()
	bad := func(detail string) error { return &APIError{StatusCode: 400, Detail: detail} }
	tests := []struct {
		name  string
		err   error
		field string
		want  bool
	}{
		{"refused_key", bad("Invalid key for this search: error.received"), "error.received", true},
		{"refused_other_key", bad("Invalid key for this search: error.type"), "error.received", false},
		{"invalid_function", bad("count_foo is not a valid function"), "count_foo(id)", true},
		{"invalid_date_is_a_value_error", bad("error.received: Invalid date: x. Expected +/-duration (e.g. +1h) or ISO 8601-like (e.g. 2026-03-01T12:00:00.00)."), "error.received", false},
		{"global_views", bad("You cannot view events from multiple projects."), "error.received", false},
		{"not_a_400", &APIError{StatusCode: 403, Detail: "Invalid key for this search: error.received"}, "error.received", false},
		{"wrapped_type_error", errors.Join(errors.New("sweep"), &FieldTypeError{Field: "error.received", Want: "date", Got: "string"}), "error.received", true},
		{"type_error_of_another_field", &FieldTypeError{Field: "timestamp"}, "error.received", false},
		{"nil", nil, "error.received", false},
	}
	for _, tc := range tests {
		if got := IsUnknownField(tc.err, tc.field); got != tc.want {
			t.Errorf("%s: IsUnknownField = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestIsMultiProjectRefused tells the global-views refusal from other 400s.
func TestIsMultiProjectRefused(t *testing.T) {
	t.Parallel()
	bad := func(detail string) error { return &APIError{StatusCode: 400, Detail: detail} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", bad("You cannot view events from multiple projects."), true},
		{"wrapped", fmt.Errorf("sweep: %w", bad("You cannot view events from multiple projects.")), true},
		{"other_400", bad("Invalid key for this search: error.received"), false},
		{"not_a_400", &APIError{StatusCode: 403, Detail: "You cannot view events from multiple projects."}, false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		if got := IsMultiProjectRefused(tc.err); got != tc.want {
			t.Errorf("%s: IsMultiProjectRefused = %v, want %v", tc.name, got, tc.want)
		}
	}
}
