package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// simpleEvent renders a realistic SimpleEventSerializer row (compact, as
// Sentry's JSON renderer sends it).
func simpleEvent(i int, projectID string, ts time.Time) string {
	return fmt.Sprintf(`{"id":"%032x","eventID":"%032x","event.type":"error","groupID":"1889724436","projectID":"%s",`+
		`"message":"ZeroDivisionError: division by zero","title":"ZeroDivisionError: division by zero","location":"example.py:123",`+
		`"culprit":"/books/new/","user":{"id":"884","email":"jane.doe@example.com","username":"jdoe","ip_address":"203.0.113.7","name":"Jane Doe","geo":{"country_code":"DE","city":"Berlin","region":"Berlin"},"data":null},`+
		`"tags":[{"key":"browser","value":"Chrome 120.0.0"},{"key":"browser.name","value":"Chrome"},{"key":"environment","value":"production"},{"key":"handled","value":"no"},{"key":"level","value":"error"},{"key":"mechanism","value":"excepthook"},{"key":"os.name","value":"Linux"},{"key":"release","value":"backend@2.14.1"},{"key":"server_name","value":"web-7c9d\u00e9"},{"key":"transaction","value":"/books/new/"},{"key":"url","value":"https://example.com/books/new/?q=\"x\""},{"key":"user","value":"id:884"}],`+
		`"platform":"python","dateCreated":"%s","crashFile":null,"metadata":{"type":"ZeroDivisionError","value":"division by zero","filename":"example.py","function":"create_book","in_app_frame_mix":"in-app-only"}}`,
		i+1, i+1, projectID, ts.UTC().Format(time.RFC3339))
}

func eventsPage(n int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(simpleEvent(i, "4508123", t0.Add(-time.Duration(i)*time.Second)))
	}
	b.WriteByte(']')
	return []byte(b.String())
}

func TestDecodeEvents(t *testing.T) {
	t.Parallel()

	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		body    string
		want    []Event
		wantErr error
	}{
		{
			name: "two_rows_raw_bytes_kept",
			body: `[{"id":"a1","projectID":"7","dateCreated":"2026-03-01T12:00:00Z","x":{"y":[1,2.5e3,"\u00e9\"]"]}},{"projectID":7,"id":"b2","dateCreated":"2026-03-01T11:59:59.123456Z"}]`,
			want: []Event{
				{ID: "a1", ProjectID: "7", DateCreated: t0, Raw: json.RawMessage(`{"id":"a1","projectID":"7","dateCreated":"2026-03-01T12:00:00Z","x":{"y":[1,2.5e3,"\u00e9\"]"]}}`)},
				{ID: "b2", ProjectID: "7", DateCreated: t0.Add(-time.Second + 123456*time.Microsecond), Raw: json.RawMessage(`{"projectID":7,"id":"b2","dateCreated":"2026-03-01T11:59:59.123456Z"}`)},
			},
		},
		{
			name: "whitespace_is_compacted_not_reencoded",
			body: "[\n  {\"id\": \"a1\", \"projectID\": \"7\", \"dateCreated\": \"2026-03-01T12:00:00+00:00\", \"m\": \"a  b\\u00e9\"}\n]\n",
			want: []Event{{ID: "a1", ProjectID: "7", DateCreated: t0, Raw: json.RawMessage(`{"id":"a1","projectID":"7","dateCreated":"2026-03-01T12:00:00+00:00","m":"a  b\u00e9"}`)}},
		},
		{name: "empty_list", body: `[]`, want: []Event{}},
		{name: "escaped_key_matches", body: `[{"\u0069d":"a1","projectID":"7"}]`, want: []Event{{ID: "a1", ProjectID: "7", Raw: json.RawMessage(`{"\u0069d":"a1","projectID":"7"}`)}}},
		{name: "truncated", body: `[{"id":"a1","projectID":"7"},{"id":"b`, wantErr: errSyntax},
		{name: "truncated_after_row", body: `[{"id":"a1","projectID":"7"}`, wantErr: errSyntax},
		{name: "trailing_garbage", body: `[{"id":"a1"}] x`, wantErr: errSyntax},
		{name: "html", body: `<html><body>502 Bad Gateway</body></html>`, wantErr: errSyntax},
		{name: "empty_body", body: ``, wantErr: errSyntax},
		{name: "error_object_is_not_rows", body: `{"detail":"Invalid token"}`, wantErr: errShape},
		{name: "row_not_object", body: `["a"]`, wantErr: errShape},
		{name: "row_without_id_is_returned_invalid", body: `[{"projectID":"7","dateCreated":"2026-03-01T12:00:00Z"}]`,
			want: []Event{{ProjectID: "7", DateCreated: t0, Raw: json.RawMessage(`{"projectID":"7","dateCreated":"2026-03-01T12:00:00Z"}`)}}},
		{name: "bad_date_is_returned_invalid", body: `[{"id":"a","projectID":"7","dateCreated":"yesterday"},{"id":"b","projectID":"7","dateCreated":"2026-03-01T12:00:00Z"}]`,
			want: []Event{
				{ID: "a", ProjectID: "7", Raw: json.RawMessage(`{"id":"a","projectID":"7","dateCreated":"yesterday"}`)},
				{ID: "b", ProjectID: "7", DateCreated: t0, Raw: json.RawMessage(`{"id":"b","projectID":"7","dateCreated":"2026-03-01T12:00:00Z"}`)},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeEvents([]byte(tc.body), 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("decodeEvents error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decodeEvents mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEventsRawIsSubsliceOfBody(t *testing.T) {
	t.Parallel()

	body := eventsPage(3)
	evs, err := decodeEvents(body, 100)
	if err != nil {
		t.Fatal(err)
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if !bytes.Equal(e.Raw, rows[i]) {
			t.Errorf("row %d: raw bytes differ from the body's", i)
		}
		if cap(e.Raw) != len(e.Raw) {
			t.Errorf("row %d: cap %d > len %d; appending would overwrite the next row", i, cap(e.Raw), len(e.Raw))
		}
		// Shares memory with body: no copy was made.
		if &e.Raw[0] != &body[bytes.Index(body, rows[i])] {
			t.Errorf("row %d is a copy, want a sub-slice of the body", i)
		}
	}
}

func TestDecodeOtherEndpoints(t *testing.T) {
	t.Parallel()

	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t.Run("projects", func(t *testing.T) {
		t.Parallel()
		got, err := decodeProjects([]byte(`[{"id":"1","slug":"api","name":"API","teams":[]},{"id":"2","slug":"web","name":"Web"}]`))
		if err != nil {
			t.Fatal(err)
		}
		want := []Project{
			{ID: "1", Slug: "api", Name: "API", Raw: json.RawMessage(`{"id":"1","slug":"api","name":"API","teams":[]}`)},
			{ID: "2", Slug: "web", Name: "Web", Raw: json.RawMessage(`{"id":"2","slug":"web","name":"Web"}`)},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("issues", func(t *testing.T) {
		t.Parallel()
		row := `{"id":"42","shortId":"API-1","project":{"id":"7","slug":"api"},"status":"unresolved","level":"error","count":"12","userCount":3,"firstSeen":"2026-03-01T12:00:00.000000Z","lastSeen":"2026-03-01T12:00:00Z"}`
		got, err := decodeIssues([]byte("[" + row + "]"))
		if err != nil {
			t.Fatal(err)
		}
		want := []Issue{{ID: "42", ProjectID: "7", Status: "unresolved", Level: "error", Count: "12", FirstSeen: ts, LastSeen: ts, Raw: json.RawMessage(row)}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	for _, tc := range []struct{ name, body string }{
		{name: "audit_rows_object", body: `{"rows":[{"id":"9","event":"member.invite","dateCreated":"2026-03-01T12:00:00.000000Z","data":{}}],"options":["member.invite"]}`},
		{name: "audit_bare_list", body: `[{"id":"9","event":"member.invite","dateCreated":"2026-03-01T12:00:00.000000Z","data":{}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeAuditLogs([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			want := []AuditLogEntry{{ID: "9", Event: "member.invite", DateCreated: ts, Raw: json.RawMessage(`{"id":"9","event":"member.invite","dateCreated":"2026-03-01T12:00:00.000000Z","data":{}}`)}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("issues_bad_rows_are_returned_invalid", func(t *testing.T) {
		t.Parallel()
		rows := []string{
			`{"project":{"id":"7"},"status":"unresolved","level":"error","count":"1","firstSeen":"2026-03-01T12:00:00Z","lastSeen":"2026-03-01T12:00:00Z"}`,
			`{"id":"43","project":{"id":"7"},"status":"unresolved","level":"error","count":"1","firstSeen":"2026-03-01T12:00:00Z","lastSeen":"yesterday"}`,
			`{"id":"44","project":{"id":"7"},"status":"unresolved","level":"error","count":"1","firstSeen":12,"lastSeen":"2026-03-01T12:00:00Z"}`,
			`{"id":{"n":45},"project":{"id":"7"},"status":"unresolved","level":"error","count":"1","firstSeen":"2026-03-01T12:00:00Z","lastSeen":"2026-03-01T12:00:00Z"}`,
			`{"id":"46","project":{"id":"7"},"status":"unresolved","level":"error","count":"1","firstSeen":"2026-03-01T12:00:00Z","lastSeen":"2026-03-01T12:00:00Z"}`,
		}
		got, err := decodeIssues([]byte("[" + strings.Join(rows, ",") + "]"))
		if err != nil {
			t.Fatalf("one bad row failed the page: %v", err)
		}
		base := Issue{ProjectID: "7", Status: "unresolved", Level: "error", Count: "1"}
		with := func(id string, first, last time.Time, raw string) Issue {
			is := base
			is.ID, is.FirstSeen, is.LastSeen, is.Raw = id, first, last, json.RawMessage(raw)
			return is
		}
		want := []Issue{
			with("", ts, ts, rows[0]),
			with("43", ts, time.Time{}, rows[1]),
			with("44", time.Time{}, ts, rows[2]),
			with("", ts, ts, rows[3]),
			with("46", ts, ts, rows[4]),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("audit_bad_rows_are_returned_invalid", func(t *testing.T) {
		t.Parallel()
		rows := []string{
			`{"event":"member.invite","dateCreated":"2026-03-01T12:00:00Z"}`,
			`{"id":"10","event":"member.invite","dateCreated":"last week"}`,
			`{"id":{"x":1},"event":"member.invite","dateCreated":"2026-03-01T12:00:00Z"}`,
			`{"id":"11","event":"member.add","dateCreated":"2026-03-01T12:00:00Z"}`,
		}
		got, err := decodeAuditLogs([]byte(`{"rows":[` + strings.Join(rows, ",") + `]}`))
		if err != nil {
			t.Fatalf("one bad row failed the page: %v", err)
		}
		want := []AuditLogEntry{
			{Event: "member.invite", DateCreated: ts, Raw: json.RawMessage(rows[0])},
			{ID: "10", Event: "member.invite", Raw: json.RawMessage(rows[1])},
			{Event: "member.invite", DateCreated: ts, Raw: json.RawMessage(rows[2])},
			{ID: "11", Event: "member.add", DateCreated: ts, Raw: json.RawMessage(rows[3])},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("audit_truncated", func(t *testing.T) {
		t.Parallel()
		if _, err := decodeAuditLogs([]byte(`{"rows":[{"id":"9"}`)); !errors.Is(err, errSyntax) {
			t.Errorf("err = %v, want errSyntax", err)
		}
	})
	t.Run("stats_group_by_project", func(t *testing.T) {
		t.Parallel()
		got, err := decodeStats([]byte(`{"start":"2026-03-01T00:00:00Z","end":"2026-03-01T02:00:00Z","groups":[{"by":{"project":4508},"totals":{"sum(quantity)":17}},{"by":{"project":"12"},"totals":{"sum(quantity)":0}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := &Stats{
			Start:  time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			End:    time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC),
			Groups: []StatsSeries{{ProjectID: "4508", Total: 17}, {ProjectID: "12", Total: 0}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("stats_series", func(t *testing.T) {
		t.Parallel()
		got, err := decodeStats([]byte(`{"start":"2021-03-13T00:00:00Z","end":"2021-03-15T00:00:00Z","intervals":["2021-03-13T00:00:00Z","2021-03-14T00:00:00Z"],"groups":[{"by":{"category":"error","outcome":"accepted"},"totals":{"sum(quantity)":6},"series":{"sum(quantity)":[0,6]}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		d := func(day int) time.Time { return time.Date(2021, 3, day, 0, 0, 0, 0, time.UTC) }
		want := &Stats{Start: d(13), End: d(15), Intervals: []time.Time{d(13), d(14)}, Groups: []StatsSeries{{Total: 6, Buckets: []int64{0, 6}}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("organization", func(t *testing.T) {
		t.Parallel()
		got, err := decodeOrganization([]byte(`{"id":"1","slug":"acme","name":"Acme","links":{"organizationUrl":"https://acme.sentry.io","regionUrl":"https://us.sentry.io"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "1" || got.Slug != "acme" || got.Name != "Acme" || got.RegionURL != "https://us.sentry.io" {
			t.Errorf("got %+v", got)
		}
	})
}

func TestFastRFC3339MatchesTimeParse(t *testing.T) {
	t.Parallel()

	for _, s := range []string{
		"2026-03-01T12:00:00Z", "2026-03-01T12:00:00.5Z", "2026-03-01T12:00:00.123456Z", "2026-03-01T12:00:00.123456789Z",
		"2024-02-29T23:59:59Z", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T12:00:00.Z",
		"2026-03-01 12:00:00Z", "2026-03-01T12:00:00.1234567890Z",
	} {
		want, werr := time.Parse(time.RFC3339Nano, s)
		got, ok := fastRFC3339([]byte(s))
		if !ok {
			continue // falls back to time.Parse
		}
		if werr != nil || !got.Equal(want) {
			t.Errorf("fastRFC3339(%q) = %v, time.Parse = %v, %v", s, got, want, werr)
		}
	}
}

// FuzzScanValue checks that the row scanner accepts exactly what
// encoding/json accepts.
func FuzzScanValue(f *testing.F) {
	for _, s := range []string{`[]`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}`, `[{"id":"x"}`, `"\ud800"`, `01`, `1.`, `[1,]`, " [ ] ", string(eventsPage(2))} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		got := validJSON(d) == nil
		if want := json.Valid(d); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", d, got, want)
		}
		// scanRows never hands out rows of an invalid body, and rows are valid.
		n := 0
		err := scanRows(d, eventKeys, func(row []byte, _ [][]byte) error {
			if !json.Valid(row) {
				t.Fatalf("row %q is not valid JSON", row)
			}
			n++
			return nil
		})
		if err == nil && !json.Valid(d) {
			t.Fatalf("scanRows accepted invalid %q", d)
		}
	})
}

// BenchmarkDecodeEventsPage decodes a realistic 100-row events page.
//
//	go test -run=^$ -bench=BenchmarkDecodeEventsPage -benchmem ./internal/sentry/
func BenchmarkDecodeEventsPage(b *testing.B) {
	body := eventsPage(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		evs, err := decodeEvents(body, 100)
		if err != nil || len(evs) != 100 {
			b.Fatalf("decodeEvents: %d rows, %v", len(evs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/event")
}
