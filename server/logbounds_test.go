package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// hostileSentry answers as Sentry would, except that the events of its one
// project come as a 200 page whose row has a 2 MiB id and an object as
// projectID (a shape error). Every other list is empty.
func hostileSentry(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(nil)
	link := func(r *http.Request) string {
		base := srv.URL + r.URL.Path
		return `<` + base + `?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", ` +
			`<` + base + `?cursor=0:100:0>; rel="next"; results="false"; cursor="0:100:0"`
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		p := r.URL.Path
		switch {
		case p == "/api/0/organizations/acme/":
			_, _ = w.Write([]byte(`{"id":"1","slug":"acme","name":"Acme","links":{}}`))
		case p == "/api/0/organizations/acme/projects/":
			w.Header().Set("Link", link(r))
			_, _ = w.Write([]byte(`[{"id":"11","slug":"web","name":"Web"}]`))
		case strings.HasPrefix(p, "/api/0/projects/acme/") && strings.HasSuffix(p, "/events/"):
			w.Header().Set("Link", link(r))
			row := map[string]any{"id": strings.Repeat("B", 2<<20), "projectID": map[string]int{"x": 1},
				"dateCreated": time.Now().UTC().Add(-10 * time.Minute).Format(time.RFC3339)}
			_ = json.NewEncoder(w).Encode([]any{row})
		default:
			w.Header().Set("Link", link(r))
			_, _ = w.Write([]byte(`[]`))
		}
	})
	t.Cleanup(srv.Close)
	return srv
}

// hostileEnv is the service over the real app, reading hostileSentry, with
// a plain JSON logger (the server bounds it) and room for 16 MiB bodies.
func hostileEnv(t *testing.T) (*testEnv, *syncBuffer) {
	t.Helper()
	store, err := sink.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, hostileSentry(t).URL, store, map[string]string{
		"LATE_SWEEP": "false", "COVERAGE_LEDGER": "false", "FULL_SWEEP_INTERVAL": "0", "INITIAL_LOOKBACK": "1h",
	})
	logs := &syncBuffer{}
	env := newTestEnv(t, func(o *serverOptions) {
		o.Collector, o.Backfill = a, a
		o.Verifier, o.AuthDisabled = nil, true
		o.Logger = unboundedLogger(logs)
		o.MaxBodyBytes = 16 << 20
	})
	return env, logs
}

// longestLine is the length of the longest line of logs, and the line's
// message.
func longestLine(t *testing.T, logs *syncBuffer) (int, string) {
	t.Helper()
	longest, msg := 0, ""
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > longest {
			longest = len(line)
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			msg = fmt.Sprint(m["msg"])
		}
	}
	return longest, msg
}

// TestLogBounds_hostileInput sends the hostile input an audit found to make
// log lines of megabytes, which Cloud Logging drops (over 256 KB): each
// request's answer and every log line must stay short, the answer still
// saying what was wrong. The sources clip what they quote, so lines stay
// far below the logger's own bound.
func TestLogBounds_hostileInput(t *testing.T) {
	t.Parallel()

	const start, end = `"2026-12-03T00:00:00Z"`, `"2026-12-03T01:00:00Z"`
	big := func(c string, n int) string { return strings.Repeat(c, n) }
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("unknown-%04d-%s", i, big("x", 10<<10))
	}
	many, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	names45 := make([]string, 20)
	for i := range names45 {
		names45[i] = fmt.Sprintf("L%03d%s", i, big("x", 45<<10))
	}
	twenty, err := json.Marshal(names45)
	if err != nil {
		t.Fatal(err)
	}
	json900 := func(c string) string { b, _ := json.Marshal(big(c, 900<<10)); return string(b) }
	cases := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantError   string // in the answer
		wantLog     string // in the logs
	}{
		// The page fails the project and the run: retried by Pub/Sub.
		{name: "push_page_with_a_2_mib_event_id", method: http.MethodPost, path: pathPush, body: wrapped("m1", "{}", 0),
			wantStatus: http.StatusServiceUnavailable, wantLog: `event \"BBBB`},
		{name: "1000_unknown_projects_of_10_kb", method: http.MethodPost, path: pathBackfill,
			body: `{"start":` + start + `,"end":` + end + `,"projects":` + string(many) + `}`, wantStatus: http.StatusBadRequest,
			wantError: `unknown projects "unknown-0000-xxx`},
		{name: "20_unknown_projects_of_45_kib", method: http.MethodPost, path: pathBackfill,
			body: `{"start":` + start + `,"end":` + end + `,"projects":` + string(twenty) + `}`, wantStatus: http.StatusBadRequest,
			wantError: `unknown projects "L000xxx`},
		{name: "start_of_900_kib", method: http.MethodPost, path: pathBackfill, body: `{"start":` + json900("x") + `,"end":` + end + `}`,
			wantStatus: http.StatusBadRequest, wantError: `start must be an RFC 3339 time such as 2026-01-01T00:00:00Z, got "xxx`},
		{name: "end_of_900_kib", method: http.MethodPost, path: pathBackfill, body: `{"start":` + start + `,"end":` + json900("y") + `}`,
			wantStatus: http.StatusBadRequest, wantError: `end must be an RFC 3339 time such as 2026-01-08T00:00:00Z, got "yyy`},
		{name: "projects_string_of_900_kib", method: http.MethodPost, path: pathBackfill,
			body: `{"start":` + start + `,"end":` + end + `,"projects":` + json900("p") + `}`, wantStatus: http.StatusBadRequest,
			wantError: `projects must be "all" or a list of project ids or slugs, got "ppp`},
		{name: "stream_of_900_kib", method: http.MethodPost, path: pathBackfill,
			body: `{"start":` + start + `,"end":` + end + `,"streams":[` + json900("s") + `]}`, wantStatus: http.StatusBadRequest,
			wantError: `stream "sss`},
		{name: "unknown_field_of_900_kib", method: http.MethodPost, path: pathBackfill, body: `{` + json900("f") + `:1}`,
			wantStatus: http.StatusBadRequest, wantError: `unknown field "fff`},
		{name: "content_type_of_60_kib", method: http.MethodPost, path: pathBackfill, contentType: "application/" + big("c", 60<<10),
			body: `{}`, wantStatus: http.StatusBadRequest, wantError: `Content-Type: application/json, got "application/ccc`},
		// Only the request line's bound clips the path.
		{name: "job_id_of_60_kib", method: http.MethodGet, path: pathBackfill + "/" + big("j", 60<<10), wantStatus: http.StatusNotFound,
			wantError: "no such backfill job"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, logs := hostileEnv(t)
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			rec := env.do(t, tc.method, tc.path, tc.body, http.Header{"Content-Type": {ct}})
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %.500s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantError != "" {
				msg := fmt.Sprint(decodeBody(t, rec)["error"])
				if !strings.Contains(msg, tc.wantError) {
					t.Errorf("error %.300q… does not contain %q", msg, tc.wantError)
				}
				if n := len(msg); n > 4<<10 {
					t.Errorf("error answer is %d bytes, want at most 4 KiB", n)
				}
			}
			logs.Lines(t) // every line parses
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("logs lack %q:\n%.3000s", tc.wantLog, logs.String())
			}
			longest, msg := longestLine(t, logs)
			if longest > 8<<10 {
				t.Errorf("longest log line (%.200q) is %d bytes, want at most 8 KiB", msg, longest)
			}
			t.Logf("longest log line %d bytes (%q)", longest, msg)
		})
	}
}
