package sentry

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// TestEmptyListWithoutLinkIsComplete: Sentry answers a bare `[]` with no
// Link header when it does not paginate at all, as the issues endpoint does
// when the caller can see no project (organization_group_index.py:
// `if not projects: return Response([])`). That is an empty, complete page
// (one request, HasNext false), not a malformed answer retried until the
// attempts run out. A body that is not an empty list still needs a Link
// header (TestMissingLinkHeaderIsNotTheEnd).
func TestEmptyListWithoutLinkIsComplete(t *testing.T) {
	t.Parallel()
	type page struct {
		n       int
		hasNext bool
		next    string
	}
	calls := map[string]func(c *Client) (page, error){
		"events": func(c *Client) (page, error) {
			p, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
			return page{len(p.Items), p.HasNext, p.NextCursor}, err
		},
		"projects": func(c *Client) (page, error) {
			p, err := c.ListProjects(t.Context(), "acme", "")
			return page{len(p.Items), p.HasNext, p.NextCursor}, err
		},
		"issues": func(c *Client) (page, error) {
			p, err := c.ListIssues(t.Context(), IssuesQuery{Org: "acme"})
			return page{len(p.Items), p.HasNext, p.NextCursor}, err
		},
		"audit_logs": func(c *Client) (page, error) {
			p, err := c.ListAuditLogs(t.Context(), AuditLogQuery{Org: "acme"})
			return page{len(p.Items), p.HasNext, p.NextCursor}, err
		},
	}
	cases := []struct {
		name      string
		endpoint  string
		body      string
		wantErr   bool
		wantCalls int64
	}{
		{name: "issues_no_project", endpoint: "issues", body: `[]`, wantCalls: 1},
		{name: "issues_white_space", endpoint: "issues", body: " [ \n ] \n", wantCalls: 1},
		{name: "events", endpoint: "events", body: `[]`, wantCalls: 1},
		{name: "projects", endpoint: "projects", body: `[]`, wantCalls: 1},
		{name: "audit_logs_bare_list", endpoint: "audit_logs", body: `[]`, wantCalls: 1},
		// Not a bare empty list: still a page that lost its Link header.
		{name: "audit_logs_object", endpoint: "audit_logs", body: `{"rows":[],"options":[]}`, wantErr: true, wantCalls: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				n.Add(1)
				writeJSON(w, http.StatusOK, tc.body)
			})
			c, _ := newTestClient(t, h, clock.NewFake(t0), func(o *Options) { o.MaxAttempts = 3 })
			got, err := calls[tc.endpoint](c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if n.Load() != tc.wantCalls {
				t.Errorf("%d requests, want %d", n.Load(), tc.wantCalls)
			}
			if !tc.wantErr && got != (page{}) {
				t.Errorf("page %+v, want empty and complete", got)
			}
			var se *ShapeError
			if tc.wantErr && (IsPermanent(err) || errors.As(err, &se)) {
				t.Errorf("err = %v, want a transient error", err)
			}
		})
	}
}
