package sentrysim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
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
