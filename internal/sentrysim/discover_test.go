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

// dq builds a query string from key, value pairs, in order.
func dq(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}

const discoverPath = "/api/0/organizations/acme/events/?"

type discoverBody struct {
	Data []map[string]json.RawMessage `json:"data"`
	Meta struct {
		Fields                 map[string]string  `json:"fields"`
		Units                  map[string]*string `json:"units"`
		IsMetricsData          *bool              `json:"isMetricsData"`
		IsMetricsExtractedData *bool              `json:"isMetricsExtractedData"`
		Tips                   map[string]*string `json:"tips"`
		DatasetReason          string             `json:"datasetReason"`
		Dataset                string             `json:"dataset"`
	} `json:"meta"`
}

func decodeDiscover(t *testing.T, r result) discoverBody {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var b discoverBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return b
}

// cells renders each row as "key=value" strings in key order, values as
// raw JSON.
func cells(rows []map[string]json.RawMessage) [][]string {
	out := [][]string{}
	for _, r := range rows {
		var row []string
		for k, v := range r {
			row = append(row, k+"="+string(v))
		}
		slices.Sort(row)
		out = append(out, row)
	}
	return out
}

// column returns the raw values of one key.
func column(rows []map[string]json.RawMessage, key string) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, string(r[key]))
	}
	return out
}

// discoverWorld: two projects, events on time and late-sent, one not yet
// visible and one in the future. now = 2026-03-14T12:27:28.303Z.
type discoverWorld struct {
	h            *harness
	mobile, web  Project
	a, b, c      string // mobile
	d, e, f, g   string // web
	mobID, webID string
}

func newDiscoverWorld(t *testing.T, cfg Config) *discoverWorld {
	t.Helper()
	h := newHarness(t, cfg)
	w := &discoverWorld{h: h}
	w.mobile = h.s.AddProject("mobile", "Mobile")
	w.web = h.s.AddProject("web", "Web")
	w.mobID, w.webID = w.mobile.ID, w.web.ID
	at := func(d, hh, mm, ss, ms int) time.Time {
		return time.Date(2026, 3, d, hh, mm, ss, ms*int(time.Millisecond), time.UTC)
	}
	add := func(pid, id string, ts, recv time.Time, vis time.Duration, msg string) string {
		return h.s.AddEvent(pid, EventSpec{ID: id, Timestamp: ts, ReceivedAt: recv, VisibleAt: recv.Add(vis), Message: msg})
	}
	// Cached three days on a phone, received at 10:20:05.7.
	w.a = add(w.mobID, "a0000000000000000000000000000001", at(11, 8, 15, 0, 500), at(14, 10, 20, 5, 700), 2*time.Second, "KeyError: cached")
	w.b = add(w.mobID, "b0000000000000000000000000000002", at(14, 9, 59, 59, 900), at(14, 10, 0, 0, 100), time.Second, "ValueError: edge")
	w.c = add(w.mobID, "c0000000000000000000000000000003", at(14, 11, 30, 0, 0), at(14, 11, 30, 0, 0), time.Second, "ValueError: plain")
	// Cached two days, received in the last second of 11h.
	w.d = add(w.webID, "d0000000000000000000000000000004", at(12, 3, 0, 0, 0), at(14, 11, 59, 59, 999), time.Second, "KeyError: desktop")
	w.e = add(w.webID, "e0000000000000000000000000000005", at(14, 10, 45, 0, 0), at(14, 10, 45, 0, 0), time.Second, "ValueError: plain")
	// Received at 12:27:00, stored only at 12:30: not visible yet.
	w.f = add(w.webID, "f0000000000000000000000000000006", at(14, 12, 20, 0, 0), at(14, 12, 27, 0, 0), 3*time.Minute, "ValueError: slow")
	// Not received yet.
	w.g = add(w.webID, "a7000000000000000000000000000007", at(14, 12, 40, 0, 0), at(14, 12, 40, 0, 0), time.Second, "ValueError: future")
	return w
}

func (w *discoverWorld) get(t *testing.T, query string) result {
	t.Helper()
	return w.h.get(t, "tok", discoverPath+query)
}

const (
	allTime  = "start=2026-03-01T00:00:00&end=2026-03-15T00:00:00"
	idFields = "field=id&field=project.id&field=timestamp&field=error.received&dataset=errors&project=-1&"
)

// TestDiscoverRows checks the rows of the organisation events endpoint:
// timestamp >= start and < end on Snuba's whole seconds, only visible
// events, the search syntax of src/sentry/api/event_search.py
// (error.received and timestamp are date_keys, project.id a numeric key),
// the field keys exactly as asked (transform_alias_to_input_format) and
// auto_fields' id and project.name.
func TestDiscoverRows(t *testing.T) {
	t.Parallel()
	w := newDiscoverWorld(t, Config{})
	sorted := "&sort=error.received&sort=id"
	q := func(s string) string { return url.QueryEscape(s) }
	tests := []struct {
		name  string
		query string
		want  []string // ids, in order
	}{
		{"received_window", idFields + allTime + sorted + "&query=" + q("error.received:>=2026-03-14T10:00:00 error.received:<2026-03-14T12:00:00"), []string{w.b, w.a, w.e, w.c, w.d}},
		{"received_last_second", idFields + allTime + sorted + "&query=" + q("error.received:>=2026-03-14T11:59:59 error.received:<2026-03-14T12:00:00"), []string{w.d}},
		{"received_gt_le", idFields + allTime + sorted + "&query=" + q("error.received:>2026-03-14T10:00:00 error.received:<=2026-03-14T10:45:00"), []string{w.a, w.e}},
		{"timestamp_window_misses_late_sent", idFields + "start=2026-03-14T00:00:00&end=2026-03-15T00:00:00" + sorted, []string{w.b, w.e, w.c}},
		{"timestamp_filter", idFields + allTime + sorted + "&query=" + q("timestamp:<2026-03-13T00:00:00"), []string{w.a, w.d}},
		{"end_compares_the_instant", idFields + "start=2026-03-14T09:00:00&end=2026-03-14T09:59:59.5" + sorted, []string{w.b}},
		{"end_is_exclusive", idFields + "start=2026-03-14T09:00:00&end=2026-03-14T09:59:59" + sorted, []string{}},
		{"start_rounds_up_to_seconds", idFields + "start=2026-03-14T09:59:59.5&end=2026-03-14T10:00:00" + sorted, []string{}},
		{"start_on_the_second", idFields + "start=2026-03-14T09:59:59&end=2026-03-14T10:00:00" + sorted, []string{w.b}},
		{"project_id", idFields + allTime + sorted + "&query=" + q("project.id:"+w.mobID), []string{w.b, w.a, w.c}},
		{"project_id_list", idFields + allTime + sorted + "&query=" + q("project.id:["+w.webID+", 1]"), []string{w.e, w.d}},
		{"project_id_negated", idFields + allTime + sorted + "&query=" + q("!project.id:"+w.mobID), []string{w.e, w.d}},
		{"project_parameter", "field=id&field=project.id&field=error.received&" + allTime + sorted + "&project=" + w.webID, []string{w.e, w.d}},
		{"or_and_parens", idFields + allTime + sorted + "&query=" + q("(project.id:"+w.mobID+" AND error.received:<2026-03-14T10:30:00) OR timestamp:<2026-03-13"), []string{w.b, w.a, w.d}},
		{"and_binds_tighter", idFields + allTime + sorted + "&query=" + q("timestamp:<2026-03-12 OR project.id:"+w.webID+" error.received:<2026-03-14T11:00:00"), []string{w.a, w.e}},
		{"datetime_means_five_minutes_around", idFields + allTime + sorted + "&query=" + q("error.received:2026-03-14T10:03:00"), []string{w.b}},
		{"date_means_the_day", idFields + allTime + sorted + "&query=" + q("timestamp:2026-03-11"), []string{w.a}},
		{"relative", idFields + allTime + sorted + "&query=" + q("error.received:-1h"), []string{w.c, w.d}},
		{"plus_offset_taken_as_utc", idFields + allTime + sorted + "&query=" + q("error.received:>=2026-03-14T11:30:00+02:00"), []string{w.c, w.d}},
		{"minus_offset_converted", idFields + allTime + sorted + "&query=" + q("error.received:>=2026-03-14T10:30:00-01:00"), []string{w.c, w.d}},
		{"free_text_case_insensitive", idFields + allTime + sorted + "&query=" + q("keyerror"), []string{w.a, w.d}},
		{"message_contains", idFields + allTime + sorted + "&query=" + q("message:plain"), []string{w.e, w.c}},
		{"title_wildcard", idFields + allTime + sorted + "&query=" + q("title:value*"), []string{w.b, w.e, w.c}},
		{"title_wildcard_is_anchored", idFields + allTime + sorted + "&query=" + q("title:*desk"), []string{}},
		{"message_wildcard_is_not", idFields + allTime + sorted + "&query=" + q("message:*desk"), []string{w.d}},
		{"text_in_list", idFields + allTime + sorted + "&query=" + q(`id:[`+w.a+`, "`+w.c+`"]`), []string{w.a, w.c}},
		{"event_type", idFields + allTime + sorted + "&query=" + q("event.type:error"), []string{w.b, w.a, w.e, w.c, w.d}},
		{"unknown_key_is_a_tag", idFields + allTime + sorted + "&query=" + q("browser:Chrome"), []string{}},
		{"negated_unknown_key", idFields + allTime + sorted + "&query=" + q("!browser:Chrome"), []string{w.b, w.a, w.e, w.c, w.d}},
		{"has_unknown_key", idFields + allTime + sorted + "&query=" + q("has:browser"), []string{}},
		{"not_has_unknown_key", idFields + allTime + sorted + "&query=" + q("!has:browser project.id:"+w.webID), []string{w.e, w.d}},
		{"has_received", idFields + allTime + sorted + "&query=" + q("has:error.received project.id:"+w.webID), []string{w.e, w.d}},
		{"operator_on_text_key_is_text", idFields + allTime + sorted + "&query=" + q("level:>=error"), []string{}},
		{"default_range_is_90_days", "field=id&field=error.received&project=-1" + sorted, []string{w.b, w.a, w.e, w.c, w.d}},
		{"sort_descending", idFields + allTime + "&sort=-timestamp&query=" + q("project.id:"+w.mobID), []string{w.c, w.b, w.a}},
		{"orderby_when_no_sort", idFields + allTime + "&orderby=-timestamp&query=" + q("project.id:"+w.mobID), []string{w.c, w.b, w.a}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := decodeDiscover(t, w.get(t, tc.query))
			got := column(b.Data, "id")
			for i := range got {
				got[i] = strings.Trim(got[i], `"`)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDiscoverRowShape: keys are the fields as asked; dates are Snuba's
// DateTime, whole seconds with "+00:00"; error.received is the received
// column (whole seconds: 10:20:05.7 is 10:20:05); meta gives each column's
// type (get_json_meta_type) and a null unit.
func TestDiscoverRowShape(t *testing.T) {
	t.Parallel()
	w := newDiscoverWorld(t, Config{})
	pq := "&query=" + url.QueryEscape("project.id:"+w.mobID) + "&sort=timestamp"
	tests := []struct {
		name      string
		query     string
		wantRows  [][]string
		wantTypes map[string]string
	}{
		{"asked_fields", idFields + allTime + pq,
			[][]string{
				{`error.received="2026-03-14T10:20:05+00:00"`, `id="` + w.a + `"`, `project.id=` + w.mobID, `timestamp="2026-03-11T08:15:00+00:00"`},
				{`error.received="2026-03-14T10:00:00+00:00"`, `id="` + w.b + `"`, `project.id=` + w.mobID, `timestamp="2026-03-14T09:59:59+00:00"`},
				{`error.received="2026-03-14T11:30:00+00:00"`, `id="` + w.c + `"`, `project.id=` + w.mobID, `timestamp="2026-03-14T11:30:00+00:00"`},
			},
			map[string]string{"id": "string", "project.id": "integer", "timestamp": "date", "error.received": "date"}},
		{"auto_id_and_project_name", "field=timestamp&field=title&project=-1&" + allTime + pq,
			[][]string{
				{`id="` + w.a + `"`, `project.name="mobile"`, `timestamp="2026-03-11T08:15:00+00:00"`, `title="KeyError: cached"`},
				{`id="` + w.b + `"`, `project.name="mobile"`, `timestamp="2026-03-14T09:59:59+00:00"`, `title="ValueError: edge"`},
				{`id="` + w.c + `"`, `project.name="mobile"`, `timestamp="2026-03-14T11:30:00+00:00"`, `title="ValueError: plain"`},
			},
			map[string]string{"id": "string", "project.name": "string", "timestamp": "date", "title": "string"}},
		{"unknown_field_is_an_empty_tag", "field=id&field=browser&field=project&project=-1&" + allTime + "&sort=id&per_page=1&query=" + url.QueryEscape("project.id:"+w.mobID),
			[][]string{{`browser=""`, `id="` + w.a + `"`, `project.name="mobile"`, `project="mobile"`}},
			map[string]string{"id": "string", "browser": "string", "project": "string", "project.name": "string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := decodeDiscover(t, w.get(t, tc.query))
			if diff := cmp.Diff(tc.wantRows, cells(b.Data)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTypes, b.Meta.Fields); diff != "" {
				t.Errorf("meta.fields (-want +got):\n%s", diff)
			}
			for k, u := range b.Meta.Units {
				if u != nil || tc.wantTypes[k] == "" {
					t.Errorf("meta.units[%q] = %v", k, u)
				}
			}
			if b.Meta.Dataset != "discover" && b.Meta.Dataset != "errors" || b.Meta.DatasetReason != "unchanged" ||
				b.Meta.IsMetricsData == nil || *b.Meta.IsMetricsData || b.Meta.IsMetricsExtractedData == nil {
				t.Errorf("meta = %+v", b.Meta)
			}
		})
	}
	// The body is {"data": [...], "meta": {...}}, meta listing every column
	// even when there is no row.
	r := w.get(t, idFields+allTime+"&query="+url.QueryEscape("browser:x"))
	want := `{"data":[],"meta":{"fields":{"id":"string","project.id":"integer","timestamp":"date","error.received":"date"},"units":{"id":null,"project.id":null,"timestamp":null,"error.received":null},"isMetricsData":false,"isMetricsExtractedData":false,"tips":{"query":null,"columns":null},"datasetReason":"unchanged","dataset":"errors"}}`
	if string(r.body) != want {
		t.Errorf("empty answer:\n got %s\nwant %s", r.body, want)
	}
}

// TestDiscoverVisibility: only events Sentry has received and stored are
// returned; one stored later appears then.
func TestDiscoverVisibility(t *testing.T) {
	t.Parallel()
	w := newDiscoverWorld(t, Config{})
	q := "field=id&field=error.received&project=" + w.webID + "&start=2026-03-14T00:00:00&end=2026-03-15T00:00:00&sort=id"
	ids := func() []string {
		got := column(decodeDiscover(t, w.get(t, q)).Data, "id")
		for i := range got {
			got[i] = strings.Trim(got[i], `"`)
		}
		return got
	}
	if diff := cmp.Diff([]string{w.e}, ids()); diff != "" {
		t.Errorf("at 12:27:28 (-want +got):\n%s", diff)
	}
	w.h.clock.Set(time.Date(2026, 3, 14, 12, 30, 0, 0, time.UTC))
	if diff := cmp.Diff([]string{w.e, w.f}, ids()); diff != "" {
		t.Errorf("at 12:30 (-want +got):\n%s", diff)
	}
	w.h.clock.Set(time.Date(2026, 3, 14, 12, 40, 1, 0, time.UTC))
	if diff := cmp.Diff([]string{w.g, w.e, w.f}, ids()); diff != "" {
		t.Errorf("at 12:40:01 (-want +got):\n%s", diff)
	}
}

// TestDiscoverAggregates: with aggregate functions the rows are grouped by
// the other fields (resolve_groupby); count_unique(id) is exact. Without
// another field there is one row even over nothing (count() is 0).
func TestDiscoverAggregates(t *testing.T) {
	t.Parallel()
	w := newDiscoverWorld(t, Config{})
	win := "&query=" + url.QueryEscape("error.received:>=2026-03-14T10:00:00 error.received:<2026-03-14T12:00:00")
	none := "&query=" + url.QueryEscape("error.received:<2026-01-01")
	tests := []struct {
		name  string
		query string
		want  [][]string
		types map[string]string
	}{
		{"per_project", "field=project.id&field=count_unique(id)&field=count()&project=-1&" + allTime + win + "&sort=project.id",
			[][]string{
				{`count()=3`, `count_unique(id)=3`, `project.id=` + w.mobID},
				{`count()=2`, `count_unique(id)=2`, `project.id=` + w.webID},
			}, map[string]string{"project.id": "integer", "count_unique(id)": "integer", "count()": "integer"}},
		{"sorted_by_count", "field=project&field=count()&project=-1&" + allTime + win + "&sort=-count()",
			[][]string{{`count()=3`, `project="mobile"`}, {`count()=2`, `project="web"`}},
			map[string]string{"project": "string", "count()": "integer"}},
		{"total", "field=count_unique(id)&project=-1&" + allTime + win,
			[][]string{{`count_unique(id)=5`}}, map[string]string{"count_unique(id)": "integer"}},
		{"total_of_nothing", "field=count()&project=-1&" + allTime + none,
			[][]string{{`count()=0`}}, map[string]string{"count()": "integer"}},
		{"groups_of_nothing", "field=project.id&field=count()&project=-1&" + allTime + none,
			[][]string{}, map[string]string{"project.id": "integer", "count()": "integer"}},
		{"count_unique_of_project", "field=count_unique(project.id)&project=-1&" + allTime + win,
			[][]string{{`count_unique(project.id)=2`}}, map[string]string{"count_unique(project.id)": "integer"}},
		{"by_received_second", "field=error.received&field=count()&project=" + w.mobID + "&" + allTime + win + "&sort=error.received",
			[][]string{
				{`count()=1`, `error.received="2026-03-14T10:00:00+00:00"`},
				{`count()=1`, `error.received="2026-03-14T10:20:05+00:00"`},
				{`count()=1`, `error.received="2026-03-14T11:30:00+00:00"`},
			}, map[string]string{"error.received": "date", "count()": "integer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := decodeDiscover(t, w.get(t, tc.query))
			if diff := cmp.Diff(tc.want, cells(b.Data)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.types, b.Meta.Fields); diff != "" {
				t.Errorf("meta.fields (-want +got):\n%s", diff)
			}
		})
	}
}

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
