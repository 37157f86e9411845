package collector

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Regression test for the review's L3 on the issues and audit streams: a
// row with a missing id or an unreadable date no longer fails the whole page
// (permanently, so the stream never advanced); the stream counts it as
// invalid, never writes it, and collects the other rows.
func TestBadIssueAndAuditRowsAreCountedAndSkipped(t *testing.T) {
	t.Parallel()
	ts := t0.Add(-time.Hour).Format(time.RFC3339)
	issue := func(id, lastSeen string) string {
		return `{` + id + `"project":{"id":"7"},"status":"unresolved","level":"error","count":"3","firstSeen":"` + ts + `","lastSeen":` + lastSeen + `}`
	}
	audit := func(id, date string) string {
		return `{` + id + `"event":"member.add","dateCreated":` + date + `,"data":{}}`
	}
	tests := []struct {
		name   string
		path   string
		body   string
		good   []string // ids of the valid rows
		bad    int      // invalid rows
		stream func(t *testing.T, c *sentry.Client, store Objects) (Summary, error)
	}{
		{
			name: "issues",
			path: "/api/0/organizations/acme/issues/",
			body: "[" + strings.Join([]string{
				issue(`"id":"41",`, `"`+ts+`"`),
				issue(``, `"`+ts+`"`),               // no id
				issue(`"id":"42",`, `"yesterday"`),  // unreadable lastSeen
				issue(`"id":{"n":43},`, `"`+ts+`"`), // id not a string
				issue(`"id":"44",`, `"`+ts+`"`),
			}, ",") + "]",
			good: []string{"41", "44"},
			bad:  3,
			stream: func(t *testing.T, c *sentry.Client, store Objects) (Summary, error) {
				ic, err := NewIssues(badRowOptions(testIssues), c, store, store)
				if err != nil {
					t.Fatal(err)
				}
				return ic.Run(t.Context())
			},
		},
		{
			name: "audit",
			path: "/api/0/organizations/acme/audit-logs/",
			body: `{"rows":[` + strings.Join([]string{
				audit(`"id":"9",`, `"`+ts+`"`),
				audit(``, `"`+ts+`"`),              // no id
				audit(`"id":"10",`, `"last week"`), // unreadable dateCreated
				audit(`"id":"11",`, `"`+ts+`"`),
			}, ",") + `],"options":[]}`,
			good: []string{"9", "11"},
			bad:  2,
			stream: func(t *testing.T, c *sentry.Client, store Objects) (Summary, error) {
				ac, err := NewAudit(badRowOptions(testAudit), c, store, store)
				if err != nil {
					t.Fatal(err)
				}
				return ac.Run(t.Context())
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tc.path {
					http.NotFound(w, r)
					return
				}
				u := "http://" + r.Host + r.URL.Path
				w.Header().Set("Link", `<`+u+`>; rel="previous"; results="false"; cursor="0:0:1", <`+u+`>; rel="next"; results="false"; cursor="0:100:0"`)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			c, err := sentry.New(sentry.Options{BaseURL: srv.URL, Token: "tok", Clock: clock.NewFake(t0), MaxAttempts: 2})
			if err != nil {
				t.Fatal(err)
			}
			store, err := sink.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s, err := tc.stream(t, c, store)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if s.Records != len(tc.good) || s.InvalidRows != tc.bad {
				t.Errorf("records %d, invalid rows %d; want %d and %d", s.Records, s.InvalidRows, len(tc.good), tc.bad)
			}
			names, err := store.List(t.Context(), "sentry/")
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, n := range names {
				if !strings.HasSuffix(n, ".ndjson") {
					continue
				}
				data, _, err := store.Read(t.Context(), n)
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, strings.Split(strings.TrimSpace(string(data)), "\n")...)
			}
			if len(lines) != len(tc.good) {
				t.Fatalf("bucket lines %q; want only the %d valid rows", lines, len(tc.good))
			}
			for i, id := range tc.good {
				if !strings.Contains(lines[i], `"id":"`+id+`"`) {
					t.Errorf("line %d = %s, want row %s", i, lines[i], id)
				}
			}
		})
	}
}

func badRowOptions(prefix string) Options {
	return Options{
		Org: "acme", DataPrefix: prefix, StatePrefix: testState,
		Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
		Budget: 7 * time.Minute, Clock: clock.NewFake(t0), RunID: "r",
		Logger: slog.New(slog.DiscardHandler),
	}
}
