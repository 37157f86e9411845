package sentrysim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

var t0 = time.Date(2026, 3, 14, 12, 27, 28, 303000000, time.UTC)

type harness struct {
	s     *Server
	ts    *httptest.Server
	clock *clock.Fake
}

var realLimits = RateLimitConfig{
	Events:  Limit{Limit: 60, Window: time.Minute, Concurrent: 1},
	Default: Limit{Limit: 40, Window: time.Second, Concurrent: 25},
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	fc := clock.NewFake(t0)
	if cfg.Clock == nil {
		cfg.Clock = fc
	}
	if cfg.RateLimits == (RateLimitConfig{}) {
		// Most tests are not about rate limits and run subtests in parallel.
		cfg.RateLimits.Disabled = true
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &harness{s: s, ts: ts, clock: fc}
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (h *harness) get(t *testing.T, token, path string) result {
	t.Helper()
	return h.getCtx(t, t.Context(), token, path)
}

func (h *harness) getCtx(t *testing.T, ctx context.Context, token, path string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.ts.URL+path, nil)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: body}
}

func (r result) detail(t *testing.T) string {
	t.Helper()
	var v struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v.Detail
}

type linkRel struct {
	url     string
	results bool
	cursor  string
}

var linkRE = regexp.MustCompile(`<([^>]*)>; rel="(previous|next)"; results="(true|false)"; cursor="([^"]*)"`)

// parseLink parses a Sentry Link header into its two relations.
func parseLink(t *testing.T, h string) (prev, next linkRel) {
	t.Helper()
	m := linkRE.FindAllStringSubmatch(h, -1)
	if len(m) != 2 || m[0][2] != "previous" || m[1][2] != "next" {
		t.Fatalf("malformed Link header %q", h)
	}
	return linkRel{m[0][1], m[0][3] == "true", m[0][4]}, linkRel{m[1][1], m[1][3] == "true", m[1][4]}
}

type eventRow struct {
	ID          string `json:"id"`
	EventID     string `json:"eventID"`
	ProjectID   string `json:"projectID"`
	DateCreated string `json:"dateCreated"`
}

func decodeEvents(t *testing.T, body []byte) []eventRow {
	t.Helper()
	var rows []eventRow
	if err := json.Unmarshal(body, &rows); err != nil {
		t.Fatalf("decode events %q: %v", body, err)
	}
	return rows
}

func ids(rows []eventRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// addEvents adds n events one second apart, the newest at newest, and
// returns their ids newest first.
func addEvents(s *Server, projectID string, n int, newest time.Time) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = s.AddEvent(projectID, EventSpec{Timestamp: newest.Add(-time.Duration(i) * time.Second), Message: "ValueError: boom " + strconv.Itoa(i%3)})
	}
	return out
}

func eventsPath(org, project, query string) string {
	p := "/api/0/projects/" + org + "/" + project + "/events/"
	if query != "" {
		p += "?" + query
	}
	return p
}
