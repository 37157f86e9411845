package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// eventsRows renders n rows of one project, newest first, one second apart.
func eventsRows(n int) []string {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rows := make([]string, n)
	for i := range rows {
		rows[i] = simpleEvent(i, "4508123", t0.Add(-time.Duration(i)*time.Second))
	}
	return rows
}

func eventsPage(n int) []byte {
	return []byte("[" + strings.Join(eventsRows(n), ",") + "]")
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
		{name: "null_body_is_not_rows", body: `null`, wantErr: errShape},
		{name: "number_body_is_not_rows", body: ` 5 `, wantErr: errShape},
		{name: "row_null", body: `[{"id":"a1","projectID":"7"},null]`, wantErr: errShape},
		{name: "row_array", body: `[[]]`, wantErr: errShape},
		{name: "project_id_object", body: `[{"id":"a1","projectID":{"id":7}}]`, wantErr: errShape},
		{name: "project_id_bool", body: `[{"id":"a1","projectID":true}]`, wantErr: errShape},
		{name: "trailing_comma", body: `[{"id":"a1","projectID":"7"},]`, wantErr: errSyntax},
		{name: "invalid_escape", body: `[{"id":"a\x","projectID":"7"}]`, wantErr: errSyntax},
		{name: "raw_newline_in_string", body: "[{\"id\":\"a\n\",\"projectID\":\"7\"}]", wantErr: errSyntax},
		{name: "byte_order_mark", body: "\ufeff[]", wantErr: errSyntax},
		{name: "too_deep", body: `[{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}]`, wantErr: errSyntax},
		{name: "deep_but_allowed", body: `[{"id":"a1","projectID":"7","x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}]`,
			want: []Event{{ID: "a1", ProjectID: "7", Raw: json.RawMessage(`{"id":"a1","projectID":"7","x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`)}}},
		{name: "numeric_ids_kept_as_written", body: `[{"id":12,"projectID":-4.5e1}]`,
			want: []Event{{ID: "12", ProjectID: "-4.5e1", Raw: json.RawMessage(`{"id":12,"projectID":-4.5e1}`)}}},
		{name: "unicode_escapes_in_id_are_decoded", body: `[{"id":"\u0061\u00e9\ud83d\ude00\/","projectID":"\u0037"}]`,
			want: []Event{{ID: "a\u00e9\U0001F600/", ProjectID: "7", Raw: json.RawMessage(`{"id":"\u0061\u00e9\ud83d\ude00\/","projectID":"\u0037"}`)}}},
		{name: "null_and_missing_fields", body: `[{"id":null,"projectID":null,"dateCreated":null},{}]`,
			want: []Event{{Raw: json.RawMessage(`{"id":null,"projectID":null,"dateCreated":null}`)}, {Raw: json.RawMessage(`{}`)}}},
		{name: "id_of_other_kind_is_returned_invalid", body: `[{"id":{"v":"a1"},"projectID":"7"},{"id":["a2"],"projectID":"7"},{"id":true,"projectID":"7"}]`,
			want: []Event{
				{ProjectID: "7", Raw: json.RawMessage(`{"id":{"v":"a1"},"projectID":"7"}`)},
				{ProjectID: "7", Raw: json.RawMessage(`{"id":["a2"],"projectID":"7"}`)},
				{ProjectID: "7", Raw: json.RawMessage(`{"id":true,"projectID":"7"}`)},
			}},
		{name: "nested_id_is_not_the_row_id", body: `[{"user":{"id":"884"},"projectID":"7","id":"a1"}]`,
			want: []Event{{ID: "a1", ProjectID: "7", Raw: json.RawMessage(`{"user":{"id":"884"},"projectID":"7","id":"a1"}`)}}},
		{name: "whitespace_of_every_kind_between_tokens", body: " \t\r\n[ {\"id\"\t:\r\n\"a1\" ,\"projectID\" : \"7\", \"m\":\"a, b: {c}\" } ,\n{\"id\":\"b2\",\"projectID\":\"7\"}\r\n]\n\t ",
			want: []Event{
				{ID: "a1", ProjectID: "7", Raw: json.RawMessage(`{"id":"a1","projectID":"7","m":"a, b: {c}"}`)},
				{ID: "b2", ProjectID: "7", Raw: json.RawMessage(`{"id":"b2","projectID":"7"}`)},
			}},
		// The whole body is validated before any shape check, so a
		// truncated body is retried even when an earlier row has the wrong
		// shape (stopping at that row would fail the page permanently).
		{name: "shape_error_before_truncation_is_syntax", body: `["a",{"id":`, wantErr: errSyntax},
		// Sentry never repeats a key; if it did, the last value is read, as
		// by encoding/json and most JSON readers of the NDJSON downstream.
		{name: "duplicate_keys_last_wins", body: `[{"id":"a1","projectID":"7","id":"a2","dateCreated":5,"dateCreated":"2026-03-01T12:00:00Z"}]`,
			want: []Event{{ID: "a2", ProjectID: "7", DateCreated: t0, Raw: json.RawMessage(`{"id":"a1","projectID":"7","id":"a2","dateCreated":5,"dateCreated":"2026-03-01T12:00:00Z"}`)}}},
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

// TestDecodeEventsDateCreated covers the timestamp forms Sentry sends (RFC
// 3339, with or without fractional seconds, "Z" or an offset; naive
// timestamps, which are UTC in Sentry) and the unreadable ones, which leave
// the zero time (an invalid row) without failing the page.
func TestDecodeEventsDateCreated(t *testing.T) {
	t.Parallel()

	at := func(nsec int) time.Time { return time.Date(2026, 1, 2, 3, 4, 5, nsec, time.UTC) }
	cases := []struct {
		name string
		json string // the value of "dateCreated"; "" leaves the key out
		want time.Time
	}{
		{name: "whole_seconds_z", json: `"2026-01-02T03:04:05Z"`, want: at(0)},
		{name: "millis_z", json: `"2026-01-02T03:04:05.123Z"`, want: at(123_000_000)},
		{name: "micros_z", json: `"2026-01-02T03:04:05.123000Z"`, want: at(123_000_000)},
		{name: "one_digit_fraction", json: `"2026-01-02T03:04:05.5Z"`, want: at(500_000_000)},
		{name: "nanos_z", json: `"2026-01-02T03:04:05.123456789Z"`, want: at(123_456_789)},
		{name: "zero_offset", json: `"2026-01-02T03:04:05.123000+00:00"`, want: at(123_000_000)},
		{name: "positive_offset_to_utc", json: `"2026-01-02T05:04:05+02:00"`, want: at(0)},
		{name: "negative_offset_with_fraction_to_utc", json: `"2026-01-02T02:04:05.25-01:00"`, want: at(250_000_000)},
		{name: "naive_is_utc", json: `"2026-01-02T03:04:05"`, want: at(0)},
		{name: "naive_with_fraction_is_utc", json: `"2026-01-02T03:04:05.123456"`, want: at(123_456_000)},
		{name: "escaped_string", json: `"2026-01-02T03:04:05\u005a"`, want: at(0)},
		{name: "leap_day", json: `"2024-02-29T23:59:59Z"`, want: time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{name: "absent"},
		{name: "null", json: `null`},
		{name: "empty_string", json: `""`},
		{name: "unix_number", json: `1767323045`},
		{name: "object", json: `{"t":"2026-01-02T03:04:05Z"}`},
		{name: "words", json: `"yesterday"`},
		{name: "no_such_day", json: `"2026-02-30T03:04:05Z"`},
		{name: "hour_24", json: `"2026-01-02T24:00:00Z"`},
		{name: "space_separator", json: `"2026-01-02 03:04:05Z"`},
		{name: "fraction_without_digits", json: `"2026-01-02T03:04:05.Z"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			row := `{"id":"a1","projectID":"7"}`
			if tc.json != "" {
				row = `{"id":"a1","projectID":"7","dateCreated":` + tc.json + `}`
			}
			got, err := decodeEvents([]byte("["+row+"]"), 1)
			if err != nil {
				t.Fatalf("decodeEvents: %v (an unreadable date must not fail the page)", err)
			}
			want := []Event{{ID: "a1", ProjectID: "7", DateCreated: tc.want, Raw: json.RawMessage(row)}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if loc := got[0].DateCreated.Location(); loc != time.UTC {
				t.Errorf("DateCreated location = %v, want UTC", loc)
			}
		})
	}
}

// TestDecodeErrorClasses checks, for every decoder, that a body that is not
// JSON (truncated, HTML) wraps errSyntax, which the client retries, and that
// valid JSON of the wrong shape wraps errShape, which it does not.
func TestDecodeErrorClasses(t *testing.T) {
	t.Parallel()

	events := func(b []byte) error { _, err := decodeEvents(b, 100); return err }
	projects := func(b []byte) error { _, err := decodeProjects(b); return err }
	issues := func(b []byte) error { _, err := decodeIssues(b); return err }
	audit := func(b []byte) error { _, err := decodeAuditLogs(b); return err }
	org := func(b []byte) error { _, err := decodeOrganization(b); return err }
	stats := func(b []byte) error { _, err := decodeStats(b); return err }
	const issue = `"status":"unresolved","level":"error","count":"1"`
	cases := []struct {
		name    string
		decode  func([]byte) error
		body    string
		wantErr error // nil: decodes
	}{
		{name: "events_ok", decode: events, body: `[{"id":"a","projectID":"7"}]`},
		{name: "events_truncated_first_row", decode: events, body: `[{"id":"a","proj`, wantErr: errSyntax},
		{name: "events_truncated_literal", decode: events, body: `[{"id":"a","x":tru`, wantErr: errSyntax},
		{name: "events_truncated_number", decode: events, body: `[{"id":"a","x":-`, wantErr: errSyntax},
		{name: "events_only_whitespace", decode: events, body: " \n", wantErr: errSyntax},
		{name: "events_two_values", decode: events, body: `[] []`, wantErr: errSyntax},
		{name: "events_string_body", decode: events, body: `"rows"`, wantErr: errShape},

		{name: "projects_ok", decode: projects, body: `[{"id":"1","slug":"api","name":"API"}]`},
		{name: "projects_numeric_id", decode: projects, body: `[{"id":1,"slug":"api","name":"API"}]`},
		{name: "projects_truncated", decode: projects, body: `[{"id":"1","slug":"api"`, wantErr: errSyntax},
		{name: "projects_object", decode: projects, body: `{"detail":"x"}`, wantErr: errShape},
		{name: "projects_row_without_id", decode: projects, body: `[{"slug":"api","name":"API"}]`, wantErr: errShape},
		{name: "projects_slug_object", decode: projects, body: `[{"id":"1","slug":{},"name":"API"}]`, wantErr: errShape},
		{name: "projects_name_array", decode: projects, body: `[{"id":"1","slug":"api","name":[]}]`, wantErr: errShape},

		{name: "issues_ok", decode: issues, body: `[{"id":"42","project":{"id":"7"},` + issue + `}]`},
		{name: "issues_project_not_object_is_ignored", decode: issues, body: `[{"id":"42","project":"7",` + issue + `}]`},
		{name: "issues_project_id_object", decode: issues, body: `[{"id":"42","project":{"id":{}},` + issue + `}]`, wantErr: errShape},
		{name: "issues_status_object", decode: issues, body: `[{"id":"42","status":{},"level":"error","count":"1"}]`, wantErr: errShape},
		{name: "issues_level_bool", decode: issues, body: `[{"id":"42","status":"resolved","level":false,"count":"1"}]`, wantErr: errShape},
		{name: "issues_count_array", decode: issues, body: `[{"id":"42","status":"resolved","level":"error","count":[1]}]`, wantErr: errShape},
		{name: "issues_row_not_object", decode: issues, body: `[42]`, wantErr: errShape},
		{name: "issues_html", decode: issues, body: `<!DOCTYPE html>`, wantErr: errSyntax},

		{name: "audit_rows_null", decode: audit, body: `{"rows":null,"options":[]}`, wantErr: errShape},
		{name: "audit_object_without_rows", decode: audit, body: `{"options":["member.invite"]}`, wantErr: errShape},
		{name: "audit_rows_object", decode: audit, body: `{"rows":{"id":"9"}}`, wantErr: errShape},
		{name: "audit_event_object", decode: audit, body: `[{"id":"9","event":{"x":1}}]`, wantErr: errShape},
		{name: "audit_truncated_bare_list", decode: audit, body: `[{"id":"9"`, wantErr: errSyntax},
		{name: "audit_truncated_after_rows", decode: audit, body: `{"rows":[],"options":[`, wantErr: errSyntax},
		{name: "audit_trailing_garbage", decode: audit, body: `{"rows":[]}}`, wantErr: errSyntax},
		{name: "audit_string", decode: audit, body: `"rows"`, wantErr: errShape},

		{name: "org_ok", decode: org, body: `{"id":"1","slug":"acme","name":"Acme"}`},
		{name: "org_numeric_id", decode: org, body: `{"id":1,"slug":"acme","name":"Acme"}`},
		{name: "org_truncated", decode: org, body: `{"id":"1","slug":"ac`, wantErr: errSyntax},
		{name: "org_html", decode: org, body: `<html></html>`, wantErr: errSyntax},
		{name: "org_list", decode: org, body: `[{"id":"1"}]`, wantErr: errShape},
		{name: "org_without_id", decode: org, body: `{"slug":"acme"}`, wantErr: errShape},
		{name: "org_id_object", decode: org, body: `{"id":{"v":1},"slug":"acme"}`, wantErr: errShape},
		{name: "org_slug_number", decode: org, body: `{"id":"1","slug":5}`, wantErr: errShape},
		{name: "org_links_string", decode: org, body: `{"id":"1","links":"x"}`, wantErr: errShape},

		{name: "stats_ok", decode: stats, body: `{"start":"2026-03-01T00:00:00Z","end":"2026-03-01T01:00:00Z","groups":[]}`},
		{name: "stats_truncated", decode: stats, body: `{"start":"2026-03-01T00:00:00Z","groups":[{"by":`, wantErr: errSyntax},
		{name: "stats_list", decode: stats, body: `[]`, wantErr: errShape},
		{name: "stats_bad_start", decode: stats, body: `{"start":"soon"}`, wantErr: errShape},
		{name: "stats_start_number", decode: stats, body: `{"start":5}`, wantErr: errShape},
		{name: "stats_total_string", decode: stats, body: `{"groups":[{"totals":{"sum(quantity)":"many"}}]}`, wantErr: errShape},
		{name: "stats_series_object", decode: stats, body: `{"groups":[{"series":{"sum(quantity)":{}}}]}`, wantErr: errShape},
		{name: "stats_project_bool", decode: stats, body: `{"groups":[{"by":{"project":true}}]}`, wantErr: errShape},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.decode([]byte(tc.body))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			// The classes are exclusive: the client's retry decision
			// depends on which one it sees.
			if other := map[error]error{errSyntax: errShape, errShape: errSyntax}[tc.wantErr]; errors.Is(err, other) {
				t.Errorf("error = %v wraps both errSyntax and errShape", err)
			}
		})
	}
}

// TestDecodeEventsRawIsRowBytes checks that each Raw is exactly the bytes
// Sentry sent for its row, and that rows share no memory with each other or
// with the body: appending to one (as a writer adding "\n" might) changes
// neither the next row nor the body.
func TestDecodeEventsRawIsRowBytes(t *testing.T) {
	t.Parallel()

	rows := eventsRows(3)
	body := eventsPage(3)
	orig := bytes.Clone(body)
	evs, err := decodeEvents(body, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(rows) {
		t.Fatalf("%d rows, want %d", len(evs), len(rows))
	}
	for i, e := range evs {
		if string(e.Raw) != rows[i] {
			t.Errorf("row %d: Raw differs from the bytes sent:\n got %s\nwant %s", i, e.Raw, rows[i])
		}
		_ = append(e.Raw, "\n{\"x\":1}"...)
	}
	for i, e := range evs {
		if string(e.Raw) != rows[i] {
			t.Errorf("row %d changed when another row was appended to", i)
		}
	}
	if !bytes.Equal(body, orig) {
		t.Error("the body changed when a row was appended to")
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
	t.Run("issues_project_and_counts_forms", func(t *testing.T) {
		t.Parallel()
		rows := []string{
			`{"id":"42","project":{"id":7,"slug":"api"},"status":"resolved","level":"error","count":12}`,
			`{"id":"43","project":"api","status":null,"level":"error","count":"1"}`,
			`{"id":"44","status":"ignored","level":"warning","count":"3","firstSeen":"2026-03-01T12:00:00.5Z"}`,
		}
		got, err := decodeIssues([]byte("[" + strings.Join(rows, ",") + "]"))
		if err != nil {
			t.Fatal(err)
		}
		want := []Issue{
			{ID: "42", ProjectID: "7", Status: "resolved", Level: "error", Count: "12", Raw: json.RawMessage(rows[0])},
			{ID: "43", Level: "error", Count: "1", Raw: json.RawMessage(rows[1])},
			{ID: "44", Status: "ignored", Level: "warning", Count: "3", FirstSeen: ts.Add(500 * time.Millisecond), Raw: json.RawMessage(rows[2])},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("audit_rows_object_with_whitespace_compacted", func(t *testing.T) {
		t.Parallel()
		got, err := decodeAuditLogs([]byte("{\n  \"options\": [],\n  \"rows\": [\n    {\"id\": 9, \"event\": \"member.invite\", \"note\": \"a  b\"}\n  ]\n}\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := []AuditLogEntry{{ID: "9", Event: "member.invite", Raw: json.RawMessage(`{"id":9,"event":"member.invite","note":"a  b"}`)}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("stats_fractional_seconds_and_offsets", func(t *testing.T) {
		t.Parallel()
		got, err := decodeStats([]byte(`{"start":"2026-03-01T00:00:00.000000Z","end":"2026-03-01T03:00:00+01:00","intervals":["2026-03-01T00:00:00.5Z"],"groups":[{"by":{},"totals":{"sum(quantity)":2.0},"series":{"sum(quantity)":[2]}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		h := func(hour int) time.Time { return time.Date(2026, 3, 1, hour, 0, 0, 0, time.UTC) }
		want := &Stats{Start: h(0), End: h(2), Intervals: []time.Time{h(0).Add(500 * time.Millisecond)}, Groups: []StatsSeries{{Total: 2, Buckets: []int64{2}}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("organization_raw", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ body, wantRaw string }{
			{body: `{"id":"1","name":"Acme  Inc","links":{"regionUrl":"https://de.sentry.io"}}`, wantRaw: `{"id":"1","name":"Acme  Inc","links":{"regionUrl":"https://de.sentry.io"}}`},
			{body: "{\n\t\"id\": 1,\r\n \"name\": \"Acme  Inc\",\n \"links\": {\"regionUrl\": \"\"}\n}\n", wantRaw: `{"id":1,"name":"Acme  Inc","links":{"regionUrl":""}}`},
		} {
			got, err := decodeOrganization([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != "1" || got.Name != "Acme  Inc" || string(got.Raw) != tc.wantRaw {
				t.Errorf("decodeOrganization(%q) = %+v, want id 1, name %q and Raw %s", tc.body, got, "Acme  Inc", tc.wantRaw)
			}
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

// FuzzDecodeEvents checks the events decoder's contract on any input: a
// body that is not JSON wraps errSyntax (the client retries it) and yields no
// rows; valid JSON either decodes or wraps errShape, never both; and the rows
// of a decoded page, joined in order, are the body without its insignificant
// whitespace (nothing re-encoded, reordered or lost), each one NDJSON line.
func FuzzDecodeEvents(f *testing.F) {
	for _, s := range []string{
		`[]`, `null`, `{"detail":"x"}`, `[{"id":"x"}`, `["a",{"id":`, `[{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}]`,
		`[{"id":"\ud800","projectID":7}]`, `[{"id":"a","id":"b"}]`, "[ {\"id\" : \"a b\" } ,\n{}\t]\r\n", `[01]`, `[1.]`, `[{},]`,
		string(eventsPage(2)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		evs, err := decodeEvents(d, 100)
		switch {
		case !json.Valid(d):
			if !errors.Is(err, errSyntax) || errors.Is(err, errShape) || evs != nil {
				t.Fatalf("invalid JSON %q: got %d rows, error %v; want none and errSyntax only", d, len(evs), err)
			}
		case err != nil:
			if !errors.Is(err, errShape) || errors.Is(err, errSyntax) {
				t.Fatalf("valid JSON %q: error %v; want errShape only", d, err)
			}
		default:
			var want, got bytes.Buffer
			if err := json.Compact(&want, d); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('[')
			for i, e := range evs {
				if i > 0 {
					got.WriteByte(',')
				}
				if len(e.Raw) == 0 || e.Raw[0] != '{' || bytes.ContainsAny(e.Raw, "\r\n") {
					t.Fatalf("row %d of %q is not a one-line object: %q", i, d, e.Raw)
				}
				got.Write(e.Raw)
			}
			got.WriteByte(']')
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("rows of %q joined = %s, want the compacted body %s", d, got.Bytes(), want.Bytes())
			}
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

// TestDecodeErrorsAreBounded feeds each decoder a page that fails on a
// 2 MiB value (an id, a time, a number, a cursor): the error still names
// the problem and says the value was cut, and stays short, since it is
// logged on every level it passes (Cloud Logging drops lines over 256 KB).
func TestDecodeErrorsAreBounded(t *testing.T) {
	t.Parallel()

	big := strings.Repeat("B", 2<<20)
	digits := strings.Repeat("9", 2<<20)
	events := func(b []byte) error { _, err := decodeEvents(b, 100); return err }
	issues := func(b []byte) error { _, err := decodeIssues(b); return err }
	audit := func(b []byte) error { _, err := decodeAuditLogs(b); return err }
	org := func(b []byte) error { _, err := decodeOrganization(b); return err }
	stats := func(b []byte) error { _, err := decodeStats(b); return err }
	small := func(b []byte) error {
		var v struct {
			N int8 `json:"n"`
		}
		return jsonErr(json.Unmarshal(b, &v))
	}
	links := func(b []byte) error {
		// b is the cursor, repeated by the next link.
		h := http.Header{"Link": {`<https://x/?cursor=` + string(b) + `>; rel="next"; results="true"; cursor="` + string(b) + `"`}}
		var next string
		var more bool
		return pageLinks(h, []byte(`[{"id":"a"}]`), string(b), &next, &more)
	}
	cases := []struct {
		name    string
		decode  func([]byte) error
		body    string
		wantErr string // a substring of the error
	}{
		{name: "event_id", decode: events, body: `[{"id":"` + big + `","projectID":{"x":1}}]`, wantErr: `event "BBBB`},
		{name: "issue_id_project", decode: issues, body: `[{"id":"` + big + `","project":{"id":true}}]`, wantErr: `issue "BBBB`},
		{name: "issue_id_status", decode: issues, body: `[{"id":"` + big + `","status":{}}]`, wantErr: `has an invalid "status"`},
		{name: "audit_id", decode: audit, body: `[{"id":"` + big + `","event":[]}]`, wantErr: `audit-log entry "BBBB`},
		{name: "stats_time", decode: stats, body: `{"start":"` + big + `"}`, wantErr: `stats time "BBBB`},
		{name: "stats_interval", decode: stats, body: `{"intervals":["` + big + `"]}`, wantErr: `stats time "BBBB`},
		{name: "stats_number", decode: stats, body: `{"groups":[{"totals":{"sum(quantity)":` + digits + `e` + digits + `}}]}`, wantErr: `invalid number "9999`},
		{name: "organization_id", decode: org, body: `{"id":{"x":"` + big + `"}}`, wantErr: `organization has no "id"`},
		// No decoder reads an integer today; encoding/json quotes the
		// whole number it cannot store in one.
		{name: "json_type_error_quotes_the_number", decode: small, body: `{"n":` + digits + `}`, wantErr: "cannot unmarshal number 9999"},
		{name: "repeated_cursor", decode: links, body: big, wantErr: `repeats the current cursor "BBBB`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.decode([]byte(tc.body))
			if !errors.Is(err, errShape) {
				t.Fatalf("error %.300v…, want an errShape", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) || (len(msg) > maxQuoted && !strings.Contains(msg, "…(cut from ")) {
				t.Errorf("error %.500q… does not contain %q and say what was cut", msg, tc.wantErr)
			}
			if n := len(msg); n > 1<<10 {
				t.Errorf("error is %d bytes, want at most 1 KiB: %.300q…", n, msg)
			}
		})
	}
}
