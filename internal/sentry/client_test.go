package sentry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/buildinfo"
	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// collectEvents pages through a query until HasNext is false.
func collectEvents(ctx context.Context, c *Client, q EventsQuery) (ids []string, pageSizes []int, err error) {
	for {
		p, err := c.ListEvents(ctx, q)
		if err != nil {
			return ids, pageSizes, err
		}
		pageSizes = append(pageSizes, len(p.Items))
		for _, e := range p.Items {
			ids = append(ids, e.ID)
		}
		if !p.HasNext {
			return ids, pageSizes, nil
		}
		q.Cursor = p.NextCursor
	}
}

func TestListEventsPagination(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		events     int
		pageSizes  []int // rows actually served per page (short pages)
		wantPages  []int
		wantCursor []string // cursors sent, in order
	}{
		{name: "end_via_results_false_with_full_page", events: 200, wantPages: []int{100, 100}, wantCursor: []string{"", "0:100:0"}},
		{name: "partial_last_page", events: 150, wantPages: []int{100, 50}, wantCursor: []string{"", "0:100:0"}},
		{name: "empty", events: 0, wantPages: []int{0}, wantCursor: []string{""}},
		{name: "short_page_with_results_true_continues", events: 300, pageSizes: []int{100, 37, 0}, wantPages: []int{100, 37, 0}, wantCursor: []string{"", "1:100:0", "2:200:0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fe := newFakeEvents(tc.events, "4508")
			fe.pageSizes = tc.pageSizes
			sc := newScript(fe.ServeHTTP)
			c, _ := newTestClient(t, sc, clock.NewFake(t0), nil)
			ids, pages, err := collectEvents(t.Context(), c, EventsQuery{Org: "acme", Project: "4508"})
			if err != nil {
				t.Fatalf("collect: %v", err)
			}
			if diff := cmp.Diff(tc.wantPages, pages); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
			var cursors []string
			for _, r := range sc.requests() {
				cursors = append(cursors, r.Query.Get("cursor"))
				if got := r.Query.Get("per_page"); got != "100" {
					t.Errorf("per_page = %q, want 100", got)
				}
			}
			if diff := cmp.Diff(tc.wantCursor, cursors); diff != "" {
				t.Errorf("cursors sent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListEventsRequestShape(t *testing.T) {
	t.Parallel()

	berlin := time.FixedZone("CET", 3600)
	cases := []struct {
		name      string
		q         EventsQuery
		wantPath  string
		wantQuery url.Values
	}{
		{
			name:      "window_in_utc_whole_seconds",
			q:         EventsQuery{Org: "acme", Project: "4508", Start: time.Date(2026, 3, 1, 13, 0, 0, 999, berlin), End: time.Date(2026, 3, 1, 14, 30, 5, 500_000_000, berlin)},
			wantPath:  "/api/0/projects/acme/4508/events/",
			wantQuery: url.Values{"per_page": {"100"}, "start": {"2026-03-01T12:00:00Z"}, "end": {"2026-03-01T13:30:05Z"}},
		},
		{
			name:      "per_page_clamped_to_100",
			q:         EventsQuery{Org: "acme", Project: "web", PerPage: 500, Cursor: "0:300:0"},
			wantPath:  "/api/0/projects/acme/web/events/",
			wantQuery: url.Values{"per_page": {"100"}, "cursor": {"0:300:0"}},
		},
		{
			name:      "small_per_page_and_escaped_slug",
			q:         EventsQuery{Org: "acme", Project: "a b", PerPage: 7},
			wantPath:  "/api/0/projects/acme/a%20b/events/",
			wantQuery: url.Values{"per_page": {"7"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := newScript(newFakeEvents(1, "4508").ServeHTTP)
			c, _ := newTestClient(t, sc, clock.NewFake(t0), nil)
			if _, err := c.ListEvents(t.Context(), tc.q); err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			r := sc.requests()[0]
			if diff := cmp.Diff(tc.wantQuery, r.Query); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if r.Header.Get("Authorization") != "Bearer "+testToken {
				t.Errorf("Authorization header not the bearer token")
			}
			if got, want := r.Header.Get("User-Agent"), buildinfo.UserAgent(); got != want {
				t.Errorf("User-Agent = %q, want %q", got, want)
			}
			if got := r.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q", got)
			}
		})
	}

	t.Run("invalid_queries_are_rejected_before_sending", func(t *testing.T) {
		t.Parallel()
		sc := newScript(newFakeEvents(1, "4508").ServeHTTP)
		c, _ := newTestClient(t, sc, clock.NewFake(t0), nil)
		for _, q := range []EventsQuery{
			{Org: "acme"},
			{Org: "acme", Project: "1", Start: t0},
			{Org: "acme", Project: "1", Start: t0, End: t0},
		} {
			if _, err := c.ListEvents(t.Context(), q); !IsPermanent(err) {
				t.Errorf("ListEvents(%+v) err = %v, want a permanent QueryError", q, err)
			}
		}
		if n := len(sc.requests()); n != 0 {
			t.Errorf("%d requests sent for invalid queries", n)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()

	okPage := newFakeEvents(3, "4508").ServeHTTP
	html502 := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		_, _ = w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"))
	}
	truncatedJSON := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", sentryLink(r, "0:0:1", false, "0:100:0", true))
		writeJSON(w, 200, `[{"id":"0000000000000000000000000000000a","projectID":"4508","dateCreated":"2026-03-01T12:00:00Z"},{"id":"00`)
	}
	shortBody := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "5000")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`[{"id":"0000000000000000000000000000000a","projectID":"4508"`))
	}
	html200 := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!DOCTYPE html><html><body>Please log in</body></html>"))
	}
	renamed := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "https://other.example/api/0/projects/acme/backend-v2/events/")
		writeJSON(w, 302, `{"slug":"backend-v2","detail":{"code":"resource-moved","message":"Resource has been moved","extra":{"url":"/api/0/projects/acme/backend-v2/events/","slug":"backend-v2"}}}`)
	}
	sso := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 401, `{"detail":{"code":"sso-required","message":"Must login via SSO","extra":{"loginUrl":"https://sentry.io/auth/login/acme/"}}}`)
	}
	fieldErrors := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 400, `{"actor":["Ensure this value is less than or equal to 2147483647."]}`)
	}

	cases := []struct {
		name          string
		steps         []http.HandlerFunc
		maxAttempts   int
		wantRequests  int
		wantErr       bool
		wantPermanent bool
		wantStatus    int // of the *APIError in the chain, 0 = none expected
		wantDetail    string
		wantCode      string
		wantInError   []string
		wantRateLimit bool
	}{
		{name: "unauthorized_invalid_token", steps: []http.HandlerFunc{detail(401, "Invalid token")}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 401, wantDetail: "Invalid token",
			wantInError: []string{"GET /api/0/projects/acme/4508/events/", "401 Unauthorized", "Invalid token", "SENTRY_AUTH_TOKEN"}},
		{name: "unauthorized_sso_object_detail", steps: []http.HandlerFunc{sso}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 401, wantDetail: "Must login via SSO", wantCode: "sso-required",
			wantInError: []string{"Must login via SSO", "sso-required"}},
		{name: "forbidden_names_scope", steps: []http.HandlerFunc{detail(403, "You do not have permission to perform this action.")}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 403,
			wantDetail: "You do not have permission to perform this action.", wantInError: []string{"403 Forbidden", "You do not have permission", "project:read"}},
		{name: "not_found", steps: []http.HandlerFunc{detail(404, "The requested resource does not exist")}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 404,
			wantDetail: "The requested resource does not exist", wantInError: []string{"404 Not Found", "base URL"}},
		{name: "bad_request_invalid_cursor", steps: []http.HandlerFunc{detail(400, "Invalid cursor parameter.")}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 400, wantDetail: "Invalid cursor parameter."},
		{name: "bad_request_field_map", steps: []http.HandlerFunc{fieldErrors}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 400,
			wantDetail: `{"actor":["Ensure this value is less than or equal to 2147483647."]}`},
		{name: "renamed_project_302_reported_not_followed", steps: []http.HandlerFunc{renamed}, wantRequests: 1, wantErr: true, wantPermanent: true, wantStatus: 302,
			wantDetail: "Resource has been moved", wantCode: "resource-moved", wantInError: []string{"302 Found", `renamed to "backend-v2"`}},
		{name: "query_timeout_400_retried", steps: []http.HandlerFunc{detail(400, "Query timeout. Please try again. If the problem persists try a smaller date range or fewer projects."), okPage}, wantRequests: 2},
		{name: "server_error_500_retried", steps: []http.HandlerFunc{detail(500, "Internal Error"), okPage}, wantRequests: 2},
		{name: "html_502_retried", steps: []http.HandlerFunc{html502, html502, okPage}, wantRequests: 3},
		{name: "empty_503_retried", steps: []http.HandlerFunc{func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, okPage}, wantRequests: 2},
		{name: "truncated_json_retried", steps: []http.HandlerFunc{truncatedJSON, okPage}, wantRequests: 2},
		{name: "short_body_retried", steps: []http.HandlerFunc{shortBody, okPage}, wantRequests: 2},
		{name: "html_200_retried", steps: []http.HandlerFunc{html200, okPage}, wantRequests: 2},
		{name: "retries_exhausted", steps: []http.HandlerFunc{detail(500, "Internal Error")}, maxAttempts: 3, wantRequests: 3, wantErr: true, wantStatus: 500,
			wantInError: []string{"after 3 attempt(s)", "500 Internal Server Error", "Internal Error"}},
		{name: "html_502_exhausted_body_not_data", steps: []http.HandlerFunc{html502}, maxAttempts: 2, wantRequests: 2, wantErr: true, wantStatus: 502,
			wantDetail: "non-JSON response body (text/html, 74 bytes)"},
		{name: "rate_limited_exhausted", steps: []http.HandlerFunc{detail(429, "You are attempting to use this endpoint too frequently. Limit is 60 requests in 60 seconds")}, maxAttempts: 2,
			wantRequests: 2, wantErr: true, wantStatus: 429, wantRateLimit: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := newScript(tc.steps...)
			clk := clock.NewFake(t0)
			var logs bytes.Buffer
			var mu sync.Mutex
			c, _ := newTestClient(t, sc, clk, func(o *Options) {
				o.MaxAttempts = tc.maxAttempts
				o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			p, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "4508"})
			if got := len(sc.requests()); got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr {
				if len(p.Items) != 3 {
					t.Errorf("page = %d items, want 3", len(p.Items))
				}
				if m := c.Metrics(); m.Retries != int64(tc.wantRequests-1) || m.Requests != int64(tc.wantRequests) {
					t.Errorf("metrics = %+v", m)
				}
				return
			}
			if len(p.Items) != 0 {
				t.Errorf("error response returned %d items as data", len(p.Items))
			}
			if got := IsPermanent(err); got != tc.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v (err %v)", got, tc.wantPermanent, err)
			}
			if got := errors.Is(err, ErrRateLimited); got != tc.wantRateLimit {
				t.Errorf("errors.Is(ErrRateLimited) = %v, want %v", got, tc.wantRateLimit)
			}
			var ae *APIError
			if tc.wantStatus != 0 {
				if !errors.As(err, &ae) {
					t.Fatalf("err %v is not an *APIError", err)
				}
				if ae.StatusCode != tc.wantStatus {
					t.Errorf("StatusCode = %d, want %d", ae.StatusCode, tc.wantStatus)
				}
				if tc.wantDetail != "" && ae.Detail != tc.wantDetail {
					t.Errorf("Detail = %q, want %q", ae.Detail, tc.wantDetail)
				}
				if ae.Code != tc.wantCode {
					t.Errorf("Code = %q, want %q", ae.Code, tc.wantCode)
				}
				if ae.Endpoint != "GET /api/0/projects/{org}/{project}/events/" {
					t.Errorf("Endpoint = %q", ae.Endpoint)
				}
			}
			for _, s := range tc.wantInError {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err.Error(), s)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(err.Error(), testToken) || strings.Contains(logs.String(), testToken) {
				t.Errorf("token leaked: error %q / logs %q", err, logs.String())
			}
		})
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRenamedProjectDetails(t *testing.T) {
	t.Parallel()

	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/0/projects/acme/backend/events/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/api/0/projects/acme/backend-v2/events/")
		writeJSON(w, 302, `{"slug":"backend-v2","detail":{"extra":{"url":"/api/0/projects/acme/backend-v2/events/","slug":"backend-v2"}}}`)
	})
	mux.HandleFunc("GET /api/0/projects/acme/backend-v2/events/", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		newFakeEvents(1, "1").ServeHTTP(w, r)
	})
	c, _ := newTestClient(t, mux, clock.NewFake(t0), nil)
	_, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "backend"})
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	want := &APIError{StatusCode: 302, Endpoint: "GET /api/0/projects/{org}/{project}/events/", Path: "/api/0/projects/acme/backend/events/",
		Detail: "project moved", Location: "/api/0/projects/acme/backend-v2/events/", NewSlug: "backend-v2", Scope: "project:read"}
	if diff := cmp.Diff(want, ae); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if !IsPermanent(err) {
		t.Error("302 not permanent")
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("redirect followed %d times", n)
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	t.Parallel()

	// A hostile or buggy server echoing the token in every place it could.
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			w.Header().Set("Location", "https://evil.example/?t="+tok)
			writeJSON(w, status, fmt.Sprintf(`{"slug":%q,"detail":{"code":%q,"message":"bad token %s"}}`, tok, tok, tok))
		}
	}
	for _, status := range []int{302, 400, 401, 403, 404, 429, 500} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			var mu sync.Mutex
			c, _ := newTestClient(t, newScript(echo(status)), clock.NewFake(t0), func(o *Options) {
				o.MaxAttempts = 2
				o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			_, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
			if err == nil {
				t.Fatal("no error")
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for what, s := range map[string]string{"error": err.Error(), "detail": ae.Detail, "code": ae.Code, "location": ae.Location, "slug": ae.NewSlug, "logs": logs.String(), "%+v": fmt.Sprintf("%+v %#v", err, ae)} {
				if strings.Contains(s, testToken) {
					t.Errorf("token leaked in %s: %q", what, s)
				}
			}
		})
	}
	t.Run("transport_error", func(t *testing.T) {
		t.Parallel()
		c, err := New(Options{BaseURL: "http://127.0.0.1:1", Token: testToken, Clock: clock.NewFake(t0), MaxAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
		if err == nil || strings.Contains(err.Error(), testToken) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestTimeoutRetried(t *testing.T) {
	t.Parallel()

	var n atomic.Int32
	h := func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-r.Context().Done() // hang until the client gives up
			return
		}
		newFakeEvents(2, "1").ServeHTTP(w, r)
	}
	c, _ := newTestClient(t, http.HandlerFunc(h), clock.NewFake(t0), func(o *Options) {
		hc := *o.HTTPClient
		hc.Timeout = 100 * time.Millisecond
		o.HTTPClient = &hc
	})
	p, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	if len(p.Items) != 2 || n.Load() != 2 {
		t.Errorf("items = %d, requests = %d; want 2, 2", len(p.Items), n.Load())
	}
}

// cancelOnSleep is a clock whose Sleep cancels the caller's context first,
// modelling a cancellation that arrives during a wait.
type cancelOnSleep struct {
	*clock.Fake
	cancel context.CancelFunc
	sleeps atomic.Int32
}

func (c *cancelOnSleep) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps.Add(1)
	c.cancel()
	return c.Fake.Sleep(ctx, d)
}

func TestContextCancelledDuringWait(t *testing.T) {
	t.Parallel()

	reset := t0.Add(40 * time.Second)
	r429 := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Sentry-Rate-Limit-Limit", "60")
		w.Header().Set("X-Sentry-Rate-Limit-Remaining", "0")
		w.Header().Set("X-Sentry-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
		detail(429, "You are attempting to use this endpoint too frequently. Limit is 60 requests in 60 seconds")(w, r)
	}
	cases := []struct {
		name          string
		step          http.HandlerFunc
		wantRateLimit bool
	}{
		{name: "during_backoff_after_500", step: detail(500, "Internal Error")},
		{name: "during_429_reset_wait", step: r429, wantRateLimit: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			clk := &cancelOnSleep{Fake: clock.NewFake(t0), cancel: cancel}
			sc := newScript(tc.step)
			c, _ := newTestClient(t, sc, clk, nil)
			_, err := c.ListEvents(ctx, EventsQuery{Org: "acme", Project: "1"})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if got := errors.Is(err, ErrRateLimited); got != tc.wantRateLimit {
				t.Errorf("errors.Is(ErrRateLimited) = %v, want %v", got, tc.wantRateLimit)
			}
			if n := len(sc.requests()); n != 1 {
				t.Errorf("requests = %d, want 1", n)
			}
			if clk.sleeps.Load() == 0 {
				t.Error("no wait happened")
			}
		})
	}
}

func TestRateLimit429WaitsUntilReset(t *testing.T) {
	t.Parallel()

	clk := clock.NewFake(t0.Add(23 * time.Second))
	reset := t0.Add(60 * time.Second)
	var secondAt time.Time
	sc := newScript(
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Sentry-Rate-Limit-Limit", "60")
			w.Header().Set("X-Sentry-Rate-Limit-Remaining", "0")
			w.Header().Set("X-Sentry-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
			w.Header().Set("X-Sentry-Rate-Limit-ConcurrentLimit", "1")
			w.Header().Set("X-Sentry-Rate-Limit-ConcurrentRemaining", "0")
			detail(429, "You are attempting to use this endpoint too frequently. Limit is 60 requests in 60 seconds")(w, r)
		},
		func(w http.ResponseWriter, r *http.Request) {
			secondAt = clk.Now()
			newFakeEvents(1, "1").ServeHTTP(w, r)
		},
	)
	c, _ := newTestClient(t, sc, clk, nil)
	if _, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"}); err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	if secondAt.Before(reset) || secondAt.After(reset.Add(time.Second)) {
		t.Errorf("retry at %v, want within [reset, reset+1s] = [%v, …]", secondAt, reset)
	}
	if got, want := c.Metrics(), (Metrics{Requests: 2, RateLimited: 1, Retries: 1}); got != want {
		t.Errorf("Metrics = %+v, want %+v", got, want)
	}
}

func TestPacingFromHeaders(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		limit      int
		window     time.Duration
		requests   int
		wantResets int // window boundaries the client must wait for
	}{
		{name: "events_60_per_60s", limit: 60, window: 60 * time.Second, requests: 150, wantResets: 2},
		{name: "tight_3_per_10s", limit: 3, window: 10 * time.Second, requests: 10, wantResets: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0.Add(7 * time.Second))
			fl := &fakeLimit{clk: clk, limit: tc.limit, window: tc.window, concurrent: 1}
			c, _ := newTestClient(t, fl.wrap(newFakeEvents(1, "1"), false), clk, nil)
			start := clk.Now()
			for i := range tc.requests {
				if _, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"}); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			reqs, n429, _ := fl.stats()
			if n429 != 0 || reqs != tc.requests {
				t.Errorf("server saw %d requests, %d 429s; want %d, 0", reqs, n429, tc.requests)
			}
			// Started 7s into a window; each wait ends at a reset plus < 1s jitter.
			lo := time.Duration(tc.wantResets)*tc.window - 7*time.Second
			hi := lo + time.Duration(tc.wantResets)*time.Second
			if d := clk.Now().Sub(start); d < lo || d > hi {
				t.Errorf("fake time passed %v, want within [%v, %v]", d, lo, hi)
			}
		})
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		header     int // ConcurrentLimit the server announces (0: none)
		events     bool
		wantMax    int
		allowLower bool
	}{
		{name: "events_one_in_flight_from_the_start", header: 1, events: true, wantMax: 1},
		{name: "events_without_headers_stay_at_one", header: 0, events: true, wantMax: 1},
		{name: "default_group_follows_header", header: 3, events: false, wantMax: 3, allowLower: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			fl := &fakeLimit{clk: clk, limit: 1 << 30, window: time.Second, concurrent: tc.header}
			var h http.Handler = fl.wrap(newFakeEvents(2, "1"), true)
			if tc.header == 0 {
				// Count in-flight requests without sending any header.
				h = countOnly(fl, newFakeEvents(2, "1"))
			}
			mux := http.NewServeMux()
			mux.Handle("/api/0/projects/", h)
			mux.Handle("/api/0/organizations/", fl.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `<`+r.URL.String()+`>; rel="next"; results="false"; cursor="0:100:0"`)
				writeJSON(w, 200, `[{"id":"1","slug":"a","name":"A"}]`)
			}), true))
			lims := NewLimiters()
			c, srv := newTestClient(t, mux, clk, func(o *Options) { o.Limiters = lims })
			// A second client sharing the registry and a region copy: all
			// pace together.
			c2, err := New(Options{BaseURL: srv.URL, Token: testToken, Clock: clk, Limiters: lims, HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			clients := []*Client{c, c2, c.WithBaseURL(srv.URL + "/")}
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for g := range 12 {
				wg.Go(func() {
					cl := clients[g%len(clients)]
					for range 5 {
						var err error
						if tc.events {
							_, err = cl.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
						} else {
							_, err = cl.ListProjects(t.Context(), "acme", "")
						}
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("request failed: %v", err)
			}
			reqs, n429, maxIn := fl.stats()
			if reqs != 60 || n429 != 0 {
				t.Errorf("server saw %d requests and %d 429s, want 60 and 0", reqs, n429)
			}
			if maxIn > tc.wantMax || (!tc.allowLower && maxIn != tc.wantMax) {
				t.Errorf("max in flight = %d, want %d", maxIn, tc.wantMax)
			}
		})
	}
}

// countOnly counts in-flight requests like fakeLimit but sends no headers
// (self-hosted).
func countOnly(fl *fakeLimit, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl.mu.Lock()
		fl.requests++
		fl.inFlight++
		fl.maxInFlight = max(fl.maxInFlight, fl.inFlight)
		fl.mu.Unlock()
		for range 200 {
			runtime.Gosched()
		}
		h.ServeHTTP(w, r)
		fl.mu.Lock()
		fl.inFlight--
		fl.mu.Unlock()
	})
}

func TestSelfHostedNoPacing(t *testing.T) {
	t.Parallel()

	clk := clock.NewFake(t0)
	sc := newScript(newFakeEvents(1, "1").ServeHTTP)
	c, _ := newTestClient(t, sc, clk, nil)
	for range 200 {
		if _, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	if d := clk.Slept(); d != 0 {
		t.Errorf("slept %v without rate-limit headers or errors", d)
	}
}

func TestOtherEndpoints(t *testing.T) {
	t.Parallel()

	mux := http.NewServeMux()
	var mu sync.Mutex
	got := map[string]url.Values{}
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got[r.URL.Path] = r.URL.Query()
	}
	mux.HandleFunc("GET /api/0/organizations/acme/{$}", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		writeJSON(w, 200, `{"id":"17","slug":"acme","name":"Acme Inc","links":{"organizationUrl":"https://acme.sentry.io","regionUrl":"https://de.sentry.io"},"require2FA":true}`)
	})
	mux.HandleFunc("GET /api/0/organizations/acme/projects/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Link", sentryLink(r, "100:0:1", false, "100:1:0", true))
		writeJSON(w, 200, `[{"id":"4508","slug":"api","name":"API","isMember":true}]`)
	})
	mux.HandleFunc("GET /api/0/organizations/acme/issues/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Link", sentryLink(r, "1772366400000:0:1", false, "1772366400000:0:0", false))
		writeJSON(w, 200, `[{"id":"9","project":{"id":"4508","slug":"api"},"status":"resolved","level":"error","count":"3","firstSeen":"2026-03-01T12:00:00Z","lastSeen":"2026-03-01T12:00:00Z"}]`)
	})
	mux.HandleFunc("GET /api/0/organizations/acme/audit-logs/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Link", sentryLink(r, "1772366400000:0:1", false, "1772366399000:0:0", true))
		writeJSON(w, 200, `{"rows":[{"id":"5","event":"member.invite","dateCreated":"2026-03-01T12:00:00.000000Z"}],"options":["member.invite"]}`)
	})
	mux.HandleFunc("GET /api/0/organizations/acme/stats_v2/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		writeJSON(w, 200, `{"start":"2026-03-01T11:00:00Z","end":"2026-03-01T13:00:00Z","groups":[{"by":{"project":4508},"totals":{"sum(quantity)":12}}]}`)
	})
	c, _ := newTestClient(t, mux, clock.NewFake(t0), nil)
	ctx := t.Context()

	org, err := c.Organization(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if org.ID != "17" || org.RegionURL != "https://de.sentry.io" || !strings.Contains(string(org.Raw), `"require2FA":true`) {
		t.Errorf("Organization = %+v", org)
	}
	if r := c.WithBaseURL(org.RegionURL); r.BaseURL() != "https://de.sentry.io" {
		t.Errorf("WithBaseURL = %q", r.BaseURL())
	}

	pp, err := c.ListProjects(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pp.Items) != 1 || pp.Items[0].ID != "4508" || pp.NextCursor != "100:1:0" || !pp.HasNext {
		t.Errorf("ListProjects = %+v", pp)
	}

	ip, err := c.ListIssues(ctx, IssuesQuery{Org: "acme", Projects: []string{"4508", "12"}, Start: t0.Add(-time.Hour), End: t0, Sort: "date"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ip.Items) != 1 || ip.Items[0].ProjectID != "4508" || ip.Items[0].Status != "resolved" || ip.HasNext {
		t.Errorf("ListIssues = %+v", ip)
	}

	ap, err := c.ListAuditLogs(ctx, AuditLogQuery{Org: "acme", PerPage: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(ap.Items) != 1 || ap.Items[0].Event != "member.invite" || ap.NextCursor != "1772366399000:0:0" || !ap.HasNext {
		t.Errorf("ListAuditLogs = %+v", ap)
	}

	st, err := c.OrgStats(ctx, StatsQuery{Org: "acme", Start: t0.Add(-time.Hour), End: t0, Interval: time.Hour, Outcomes: []string{"accepted"}, Projects: []string{"4508"}, GroupByProject: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]StatsSeries{{ProjectID: "4508", Total: 12}}, st.Groups); diff != "" {
		t.Errorf("OrgStats groups (-want +got):\n%s", diff)
	}

	want := map[string]url.Values{
		"/api/0/organizations/acme/":          {},
		"/api/0/organizations/acme/projects/": {"per_page": {"100"}},
		"/api/0/organizations/acme/issues/": {"limit": {"100"}, "query": {""}, "project": {"4508", "12"}, "sort": {"date"},
			"start": {"2026-03-01T11:00:00Z"}, "end": {"2026-03-01T12:00:00Z"}},
		"/api/0/organizations/acme/audit-logs/": {"per_page": {"50"}},
		"/api/0/organizations/acme/stats_v2/": {"field": {"sum(quantity)"}, "category": {"error"}, "outcome": {"accepted"}, "interval": {"1h"},
			"start": {"2026-03-01T11:00:00Z"}, "end": {"2026-03-01T12:00:00Z"}, "project": {"4508"}, "groupBy": {"project"}},
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queries sent (-want +got):\n%s", diff)
	}
}

func TestScopeHints(t *testing.T) {
	t.Parallel()

	forbidden := detail(403, "You do not have permission to perform this action.")
	c, _ := newTestClient(t, forbidden, clock.NewFake(t0), nil)
	ctx := t.Context()
	calls := []struct {
		name  string
		call  func() error
		scope string
	}{
		{"events", func() error { _, err := c.ListEvents(ctx, EventsQuery{Org: "a", Project: "1"}); return err }, "project:read"},
		{"projects", func() error { _, err := c.ListProjects(ctx, "a", ""); return err }, "org:read"},
		{"organization", func() error { _, err := c.Organization(ctx, "a"); return err }, "org:read"},
		{"stats", func() error { _, err := c.OrgStats(ctx, StatsQuery{Org: "a"}); return err }, "org:read"},
		{"issues", func() error { _, err := c.ListIssues(ctx, IssuesQuery{Org: "a"}); return err }, "event:read"},
		{"audit_logs", func() error { _, err := c.ListAuditLogs(ctx, AuditLogQuery{Org: "a"}); return err }, "org:write"},
	}
	for _, tc := range calls {
		err := tc.call()
		if !IsPermanent(err) || !strings.Contains(err.Error(), "needs scope "+tc.scope) {
			t.Errorf("%s: err = %v, want permanent with scope %s", tc.name, err, tc.scope)
		}
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name     string
		opts     Options
		wantBase string
		wantErr  bool
	}{
		{name: "defaults", opts: Options{Token: testToken}, wantBase: "https://sentry.io"},
		{name: "region_trailing_slash", opts: Options{Token: testToken, BaseURL: "https://us.sentry.io/"}, wantBase: "https://us.sentry.io"},
		{name: "self_hosted_with_api_suffix", opts: Options{Token: testToken, BaseURL: "https://sentry.corp.example/sub/api/0/"}, wantBase: "https://sentry.corp.example/sub"},
		{name: "missing_token", opts: Options{}, wantErr: true},
		{name: "token_with_newline", opts: Options{Token: testToken + "\r\nX-Evil: 1"}, wantErr: true},
		{name: "bad_scheme", opts: Options{Token: testToken, BaseURL: "ftp://sentry.io"}, wantErr: true},
		{name: "no_host", opts: Options{Token: testToken, BaseURL: "https://"}, wantErr: true},
		{name: "negative_attempts", opts: Options{Token: testToken, MaxAttempts: -1}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if tc.opts.Token != "" && strings.Contains(err.Error(), tc.opts.Token) {
					t.Errorf("error %q contains the token", err)
				}
				return
			}
			if c.BaseURL() != tc.wantBase {
				t.Errorf("BaseURL = %q, want %q", c.BaseURL(), tc.wantBase)
			}
		})
	}

	t.Run("invalid_with_base_url_fails_calls", func(t *testing.T) {
		t.Parallel()
		c, err := New(Options{Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WithBaseURL("not a url").Organization(t.Context(), "acme"); err == nil {
			t.Error("no error from an invalid base URL")
		}
	})

	t.Run("caller_http_client_not_modified", func(t *testing.T) {
		t.Parallel()
		hc := &http.Client{}
		if _, err := New(Options{Token: "t", HTTPClient: hc}); err != nil {
			t.Fatal(err)
		}
		if hc.CheckRedirect != nil {
			t.Error("New changed the caller's http.Client")
		}
	})
}

func TestLimitersKeyedByTokenAndGroup(t *testing.T) {
	t.Parallel()

	ls := NewLimiters()
	a, _ := New(Options{Token: "token-a", Limiters: ls})
	a2 := a.WithBaseURL("https://de.sentry.io")
	b, _ := New(Options{Token: "token-b", Limiters: ls})
	get := func(c *Client, g string) *limiter { return c.limiters.get(c.tokenHash, g) }
	if get(a, groupEvents) != get(a2, groupEvents) {
		t.Error("WithBaseURL copy has its own limiter")
	}
	if get(a, groupEvents) == get(b, groupEvents) {
		t.Error("different tokens share a limiter")
	}
	if get(a, groupEvents) == get(a, groupDefault) {
		t.Error("groups share a limiter")
	}
	if strings.Contains(get(a, groupEvents).name, "token-a") {
		t.Error("limiter name contains the token")
	}
}
