package sentrysim

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDiscoverErrors checks each refusal and its detail, in Sentry's order
// of checks.
func TestDiscoverErrors(t *testing.T) {
	t.Parallel()
	w := newDiscoverWorld(t, Config{Retention: 30 * 24 * time.Hour})
	q := func(s string) string { return "&query=" + url.QueryEscape(s) }
	many := strings.Repeat("field=id&", 21)
	const ok = "field=id&project=-1&" + allTime
	tests := []struct {
		name   string
		query  string
		status int
		detail string
	}{
		{"too_many_fields", many + allTime, 400, "You can view up to 20 fields at a time. Please delete some and try again."},
		{"start_without_end", "field=id&start=2026-03-01T00:00:00", 400, "start and end are both required"},
		{"bad_start", "field=id&start=monday&end=2026-03-14T00:00:00", 400, "monday is not a valid ISO8601 date query"},
		{"bad_stats_period", "field=id&statsPeriod=1y", 400, "Invalid statsPeriod: '1y'"},
		{"project_not_numeric", "field=id&project=web&" + allTime, 400, "Invalid project parameter. Values must be numbers."},
		{"project_unknown", "field=id&project=42&" + allTime, 403, "You do not have permission to perform this action."},
		{"bad_dataset", ok + "&dataset=spans", 400, "sentrysim does not simulate dataset=spans"},
		{"per_page_zero", ok + "&per_page=0", 400, "Invalid per_page value. Must be between 1 and 100."},
		{"per_page_over_100", ok + "&per_page=101", 400, "Invalid per_page value. Must be between 1 and 100."},
		{"bad_cursor", ok + "&cursor=abc", 400, "Invalid cursor parameter."},
		{"no_field", "project=-1&" + allTime, 400, "No columns selected"},
		{"invalid_date", ok + q("timestamp:>=yesterday"), 400, "timestamp: Invalid date: >=yesterday. Expected +/-duration (e.g. +1h) or ISO 8601-like (e.g. 2026-03-14T12:27:28.30)."},
		{"negated_date", ok + q("!error.received:>=2026-03-14T00:00:00"), 400, "error.received: Invalid date: >=2026-03-14T00:00:00. Expected +/-duration (e.g. +1h) or ISO 8601-like (e.g. 2026-03-14T12:27:28.30)."},
		{"invalid_number", ok + q("project.id:mobile"), 400, "project.id: Invalid number: mobile. Expected number then optional k, m, or b suffix (e.g. 500k)."},
		{"empty_value", ok + q("level: x"), 400, "Empty string after 'level:'"},
		{"unmatched_paren", ok + q("(level:error"), 400, "Parse error at '(level' (column 1). This is commonly caused by unmatched parentheses. Enclose any text in double quotes."},
		{"unmatched_inner_paren", ok + q("level:error (title:x (message:y)"), 400, "Parse error at 'ror (title' (column 13). This is commonly caused by unmatched parentheses. Enclose any text in double quotes."},
		{"stray_paren", ok + q("level:error)"), 400, "Parse error at 'rror)' (column 12). This is commonly caused by unmatched parentheses. Enclose any text in double quotes."},
		{"newline", ok + q("level:error\nfoo"), 400, "Parse error at 'rror\nfoo' (column 12). This is commonly caused by unmatched parentheses. Enclose any text in double quotes."},
		{"unterminated_quote", ok + q(`title:"abc`), 400, `Invalid quote at '"abc': quotes must enclose text or be escaped.`},
		{"dangling_or", ok + q("level:error OR"), 400, "Condition is missing on the right side of 'OR' operator"},
		{"leading_and", ok + q("AND level:error"), 400, "Condition is missing on the left side of 'AND' operator"},
		{"two_operators", ok + q("level:error OR AND level:info"), 400, "Missing condition in between two condition operators: 'OR AND'"},
		{"is_filter", ok + q("is:unresolved"), 400, `"is:" queries are not supported in this search.`},
		{"aggregate_filter", ok + q("count():>5"), 400, "sentrysim does not simulate aggregate filters (count())"},
		{"outside_retention", "field=id&project=-1&start=2026-01-01T00:00:00&end=2026-02-01T00:00:00", 400, "Invalid date range. Please try a more recent date range."},
		{"invalid_function", "field=counter()&project=-1&" + allTime, 400, "counter is not a valid function"},
		{"unsimulated_function", "field=p95(transaction.duration)&project=-1&" + allTime, 400, "sentrysim does not simulate p95()"},
		{"invalid_characters", "field=user email&project=-1&" + allTime, 400, "Invalid characters in field user email"},
		{"sort_not_selected", ok + "&sort=-timestamp", 400, "Cannot sort by a field that is not selected."},
		{"sort_one_of_two_not_selected", "field=timestamp&project=-1&" + allTime + "&sort=timestamp&sort=error.received", 400, "Cannot sort by a field that is not selected."},
		{"sort_invalid_characters", ok + "&sort=a b", 400, "Invalid characters in field a b"},
		{"sort_auto_field", "field=timestamp&project=-1&" + allTime + "&sort=-id", 200, ""},
		{"negative_offset", ok + "&cursor=0:-1:0", 500, "Internal Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := w.get(t, strings.ReplaceAll(tc.query, " ", "%20"))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.detail != "" {
				if got := r.detail(t); got != tc.detail {
					t.Errorf("detail = %q, want %q", got, tc.detail)
				}
			}
			if r.status != 200 && r.header.Get("Link") != "" {
				t.Errorf("an error has a Link header")
			}
		})
	}
}

// TestDiscoverReceivedModes: error.received is a known column of the events
// dataset (Columns.ERROR_RECEIVED, received) and a date key of the search.
// A deployment can refuse it (Config.DiscoverNoReceived: 400 naming it) or
// not know it (Config.DiscoverReceivedAsTag: Sentry takes an unknown name
// for a tag, so the field is "" of type "string" and a date comparison on
// it is a text match that finds nothing).
func TestDiscoverReceivedModes(t *testing.T) {
	t.Parallel()
	refused := "Invalid key for this search: error.received"
	base := "project=-1&" + allTime + "&"
	window := "query=" + url.QueryEscape("error.received:>=2026-03-14T10:00:00")
	tests := []struct {
		name      string
		cfg       Config
		query     string
		status    int
		detail    string
		wantRows  int
		wantType  string
		wantValue string
	}{
		{"known_field", Config{}, "field=id&field=error.received&" + base, 200, "", 5, "date", `"2026-03-14T10:20:05+00:00"`},
		{"known_filter", Config{}, "field=id&field=error.received&" + base + window, 200, "", 5, "date", `"2026-03-14T10:20:05+00:00"`},
		{"refused_field", Config{DiscoverNoReceived: true}, "field=id&field=error.received&" + base, 400, refused, 0, "", ""},
		{"refused_filter", Config{DiscoverNoReceived: true}, "field=id&" + base + window, 400, refused, 0, "", ""},
		{"refused_has", Config{DiscoverNoReceived: true}, "field=id&" + base + "query=has:error.received", 400, refused, 0, "", ""},
		{"refused_sort", Config{DiscoverNoReceived: true}, "field=id&" + base + "sort=error.received", 400, refused, 0, "", ""},
		{"tag_field", Config{DiscoverReceivedAsTag: true}, "field=id&field=error.received&" + base, 200, "", 5, "string", `""`},
		{"tag_filter_matches_nothing", Config{DiscoverReceivedAsTag: true}, "field=id&field=error.received&" + base + window, 200, "", 0, "string", ""},
		{"tag_sort", Config{DiscoverReceivedAsTag: true}, "field=id&field=error.received&" + base + "sort=-error.received", 200, "", 5, "string", `""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newDiscoverWorld(t, tc.cfg)
			query := tc.query
			if !strings.Contains(query, "sort=") {
				query += "&sort=id"
			}
			r := w.get(t, query)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != 200 {
				if got := r.detail(t); got != tc.detail {
					t.Errorf("detail = %q, want %q", got, tc.detail)
				}
				return
			}
			b := decodeDiscover(t, r)
			if len(b.Data) != tc.wantRows || b.Meta.Fields["error.received"] != tc.wantType {
				t.Errorf("%d rows, error.received type %q; want %d, %q", len(b.Data), b.Meta.Fields["error.received"], tc.wantRows, tc.wantType)
			}
			if tc.wantValue != "" && string(b.Data[0]["error.received"]) != tc.wantValue {
				t.Errorf("error.received = %s, want %s", b.Data[0]["error.received"], tc.wantValue)
			}
		})
	}
}

// TestDiscoverProjects: without the global-views feature a query over more
// than one project is refused (get_snuba_params: "You cannot view events
// from multiple projects."), whichever way the projects were chosen; with
// no project parameter the query covers the member projects
// (get_projects); with none at all the answer is empty, with tips and no
// Link header (NoProjects).
func TestDiscoverProjects(t *testing.T) {
	t.Parallel()
	const multi = "You cannot view events from multiple projects."
	tests := []struct {
		name     string
		noGlobal bool
		token    string
		projects []int // indexes into mobile, web; -1 for project=-1
		status   int
		detail   string
		wantIDs  int
	}{
		{"global_all", false, "tok", []int{-1}, 200, "", 5},
		{"global_two", false, "tok", []int{0, 1}, 200, "", 5},
		{"global_member_default", false, "half", nil, 200, "", 3},
		{"no_global_all", true, "tok", []int{-1}, 400, multi, 0},
		{"no_global_two", true, "tok", []int{0, 1}, 400, multi, 0},
		{"no_global_one", true, "tok", []int{1}, 200, "", 2},
		{"no_global_integration_default", true, "tok", nil, 400, multi, 0},
		{"no_global_one_member_default", true, "half", nil, 200, "", 3},
		{"no_global_all_for_one_accessible", true, "closed", []int{-1}, 200, "", 3},
		{"no_projects", false, "nobody", nil, 200, "", 0},
		{"inaccessible", false, "closed", []int{1}, 403, "You do not have permission to perform this action.", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newDiscoverWorld(t, Config{NoGlobalViews: tc.noGlobal})
			w.h.s.SetToken("half", TokenInfo{Kind: TokenUser, Projects: []string{"mobile"}})
			w.h.s.SetToken("closed", TokenInfo{Kind: TokenUser, Projects: []string{w.mobID}, NoGlobalAccess: true})
			w.h.s.SetToken("nobody", TokenInfo{Kind: TokenUser})
			q := "field=id&" + allTime
			for _, i := range tc.projects {
				if i < 0 {
					q += "&project=-1"
				} else {
					q += "&project=" + []string{w.mobID, w.webID}[i]
				}
			}
			r := w.h.get(t, tc.token, discoverPath+q)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.detail != "" {
				if got := r.detail(t); got != tc.detail {
					t.Errorf("detail = %q, want %q", got, tc.detail)
				}
				return
			}
			if tc.name == "no_projects" {
				if want := `{"data":[],"meta":{"tips":{"query":"Need at least one valid project to query."}}}`; string(r.body) != want || r.header.Get("Link") != "" {
					t.Errorf("body %s, Link %q; want %s and no Link", r.body, r.header.Get("Link"), want)
				}
				return
			}
			if got := len(decodeDiscover(t, r).Data); got != tc.wantIDs {
				t.Errorf("%d rows, want %d", got, tc.wantIDs)
			}
		})
	}
	// The organisation endpoint lists the feature only when it is on.
	for _, noGlobal := range []bool{false, true} {
		w := newDiscoverWorld(t, Config{NoGlobalViews: noGlobal})
		var org struct{ Features []string }
		if err := json.Unmarshal(w.h.get(t, "tok", "/api/0/organizations/acme/").body, &org); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(org.Features, "global-views") == noGlobal {
			t.Errorf("NoGlobalViews=%v: features %v", noGlobal, org.Features)
		}
	}
}

// FuzzParseSearch: any query either parses or is refused, without a panic
// and in bounded time (every step of the parser consumes input).
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{"", "a:b", "!a:[1, 2]", `a:"x\"y"`, "(a:b OR c:>=2026-01-01T00:00:00) d", "has:x", "count():>1",
		"error.received:-1h", "project.id:5k", "timestamp:2026-01-01", "a\nb", "((", "))", `"`, "a:\"", "OR AND", "tags[x]:y", "()"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, q string, tag bool) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			n, err := parseSearch(q, t0, discoverKeys{receivedIsTag: tag})
			if err == nil && n != nil {
				n.match(&drow{g: &group{}})
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("parseSearch(%q) did not return", q)
		}
	})
}
