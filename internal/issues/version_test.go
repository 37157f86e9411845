package issues

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// baseRow is an issues row as Sentry sends it for a windowed request.
const baseRow = `{"id":"6000000001","shortId":"WEB-1","title":"KeyError: a","level":"error","status":"unresolved",` +
	`"statusDetails":{},"substatus":"ongoing","project":{"id":"7","slug":"web"},"assignedTo":{"type":"user","id":"5","name":"A","email":"a@example.com"},"hasSeen":false,` +
	`"isBookmarked":false,"priority":"medium","priorityLockedAt":null,"count":"2","userCount":1,` +
	`"firstSeen":"2026-03-10T11:00:00Z","lastSeen":"2026-03-10T11:30:00Z","stats":{"24h":[[1773140400,2]]},` +
	`"lifetime":{"count":"9","userCount":4,"firstSeen":"2026-03-01T08:00:00.123Z","lastSeen":"2026-03-10T11:30:00Z","stats":null},"filtered":null}`

// withField returns baseRow with one field (a dotted path for lifetime's)
// replaced by the raw JSON value v, or removed when v is "".
func withField(t *testing.T, path, v string) []byte {
	t.Helper()
	var row map[string]json.RawMessage
	if err := json.Unmarshal([]byte(baseRow), &row); err != nil {
		t.Fatal(err)
	}
	set := func(m map[string]json.RawMessage, k string) {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = json.RawMessage(v)
		}
	}
	if k, ok := strings.CutPrefix(path, "lifetime."); ok {
		var lt map[string]json.RawMessage
		if err := json.Unmarshal(row["lifetime"], &lt); err != nil {
			t.Fatal(err)
		}
		set(lt, k)
		b, _ := json.Marshal(lt)
		row["lifetime"] = b
	} else {
		set(row, path)
	}
	b, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVersionFollowsTheIssueNotTheWindow: the version changes with what
// happens to the issue, and not with the window a row was read in, the
// reader, or numbers that can move without the issue changing.
func TestVersionFollowsTheIssueNotTheWindow(t *testing.T) {
	t.Parallel()
	base, err := Parse([]byte(baseRow))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, value string
		wantNew           bool
	}{
		// Another window: the top-level numbers describe its events only.
		{name: "window_count", path: "count", value: `"1"`},
		{name: "window_userCount", path: "userCount", value: `7`},
		{name: "window_firstSeen", path: "firstSeen", value: `"2026-03-10T11:20:00Z"`},
		{name: "window_lastSeen_null", path: "lastSeen", value: `null`},
		{name: "window_stats", path: "stats", value: `{"24h":[[1773140400,0]]}`},
		// The reader, and numbers that move by themselves.
		{name: "has_seen", path: "hasSeen", value: `true`},
		{name: "bookmarked", path: "isBookmarked", value: `true`},
		{name: "lifetime_userCount_after_expiry", path: "lifetime.userCount", value: `3`},
		{name: "assignee_renamed", path: "assignedTo", value: `{"type":"user","id":"5","name":"B","email":"b@example.com"}`},
		// Changes of the issue.
		{name: "resolved", path: "status", value: `"resolved"`, wantNew: true},
		{name: "substatus", path: "substatus", value: `"escalating"`, wantNew: true},
		{name: "level", path: "level", value: `"fatal"`, wantNew: true},
		{name: "priority", path: "priority", value: `"high"`, wantNew: true},
		{name: "assigned_to_a_team", path: "assignedTo", value: `{"type":"team","id":"5"}`, wantNew: true},
		{name: "unassigned", path: "assignedTo", value: `null`, wantNew: true},
		{name: "new_event", path: "lifetime.count", value: `"10"`, wantNew: true},
		{name: "later_event", path: "lifetime.lastSeen", value: `"2026-03-10T11:31:00Z"`, wantNew: true},
		{name: "merged", path: "lifetime.firstSeen", value: `"2026-02-01T00:00:00Z"`, wantNew: true},
		{name: "lifetime_lastSeen_null", path: "lifetime.lastSeen", value: `null`, wantNew: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, err := Parse(withField(t, tc.path, tc.value))
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Version != base.Version; got != tc.wantNew {
				t.Errorf("new version: got %v, want %v", got, tc.wantNew)
			}
			if rec.ID != base.ID {
				t.Errorf("id %q, want %q", rec.ID, base.ID)
			}
		})
	}
}

// TestParse covers what a record files a row under, and which rows are
// invalid.
func TestParse(t *testing.T) {
	t.Parallel()
	ls := time.Date(2026, 3, 10, 11, 30, 0, 0, time.UTC).Unix()
	cases := []struct {
		name        string
		row         func(t *testing.T) []byte
		wantTime    int64
		wantInvalid bool
	}{
		{name: "lifetime_lastSeen", row: func(*testing.T) []byte { return []byte(baseRow) }, wantTime: ls},
		{name: "window_lastSeen_null", row: func(t *testing.T) []byte { return withField(t, "lastSeen", "null") }, wantTime: ls},
		{name: "window_lastSeen_unreadable_is_not_read", row: func(t *testing.T) []byte { return withField(t, "lastSeen", `"yesterday"`) }, wantTime: ls},
		{name: "lifetime_lastSeen_null_is_unknown", row: func(t *testing.T) []byte { return withField(t, "lifetime.lastSeen", "null") }, wantTime: 0},
		{name: "no_lifetime_uses_the_top_level", row: func(t *testing.T) []byte { return withField(t, "lifetime", "") }, wantTime: ls},
		{name: "lifetime_lastSeen_unreadable", row: func(t *testing.T) []byte { return withField(t, "lifetime.lastSeen", `"yesterday"`) }, wantInvalid: true},
		{name: "no_id", row: func(t *testing.T) []byte { return withField(t, "id", "") }, wantInvalid: true},
		{name: "id_with_a_slash", row: func(t *testing.T) []byte { return withField(t, "id", `"6/1"`) }, wantInvalid: true},
		{name: "not_an_object", row: func(*testing.T) []byte { return []byte(`[1]`) }, wantInvalid: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := tc.row(t)
			rec, err := Parse(raw)
			if (err != nil) != tc.wantInvalid {
				t.Fatalf("Parse: err %v, want invalid %v", err, tc.wantInvalid)
			}
			if err != nil {
				return
			}
			if rec.Time != tc.wantTime || string(rec.Raw) != string(raw) || len(rec.Version) != 16 {
				t.Errorf("record time %d, version %q, raw kept %v; want %d, 16 hex, true", rec.Time, rec.Version, string(rec.Raw) == string(raw), tc.wantTime)
			}
		})
	}
}
