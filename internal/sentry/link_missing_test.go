package sentry

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// TestMissingLinkHeaderIsNotTheEnd: a 2xx list page without a rel="next"
// link (stripped by a proxy) must not be taken as the last page; it is
// retried like a malformed body and then fails (not permanently), on every
// paginated endpoint.
func TestMissingLinkHeaderIsNotTheEnd(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body string
		call func(c *Client) error
	}{
		{name: "events", body: `[{"id":"0123456789abcdef0123456789abcdef","projectID":"1","dateCreated":"2026-03-10T11:00:00Z"}]`,
			call: func(c *Client) error {
				_, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
				return err
			}},
		{name: "projects", body: `[{"id":"1","slug":"a","name":"A"}]`,
			call: func(c *Client) error { _, err := c.ListProjects(t.Context(), "acme", ""); return err }},
		// A bare [] without a Link header is a complete answer instead (see
		// TestEmptyListWithoutLinkIsComplete), so the issues page has a row.
		{name: "issues", body: `[{"id":"7","project":{"id":"1"},"status":"unresolved","level":"error","count":"1","firstSeen":"2026-03-10T11:00:00Z","lastSeen":"2026-03-10T11:00:00Z"}]`,
			call: func(c *Client) error { _, err := c.ListIssues(t.Context(), IssuesQuery{Org: "acme"}); return err }},
		{name: "audit_logs", body: `{"rows":[]}`,
			call: func(c *Client) error { _, err := c.ListAuditLogs(t.Context(), AuditLogQuery{Org: "acme"}); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n, withLink atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) <= withLink.Load() {
					w.Header().Set("Link", `<`+r.URL.String()+`>; rel="next"; results="false"; cursor="0:100:0"`)
				}
				writeJSON(w, 200, tc.body)
			})
			c, _ := newTestClient(t, h, clock.NewFake(t0), func(o *Options) { o.MaxAttempts = 3 })
			err := tc.call(c)
			if err == nil {
				t.Fatal("a page without a Link header was accepted as the last page")
			}
			if IsPermanent(err) || n.Load() != 3 {
				t.Errorf("got %v after %d requests; want a transient error after 3 attempts", err, n.Load())
			}
			withLink.Store(1 << 30)
			if err := tc.call(c); err != nil {
				t.Errorf("with a Link header: %v", err)
			}
		})
	}
}
