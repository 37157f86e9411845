package sentrysim

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func rlHeaders(r result) []string {
	var out []string
	for _, k := range []string{"Limit", "Remaining", "Reset", "ConcurrentLimit", "ConcurrentRemaining"} {
		out = append(out, r.header.Get("X-Sentry-Rate-Limit-"+k))
	}
	return out
}

func TestRateLimitFixedWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: realLimits})
	p := h.s.AddProject("web", "Web")
	// t0 is 12:27:28.303; the 60 s window resets at 12:28:00.
	reset := strconv.FormatInt(time.Date(2026, 3, 14, 12, 28, 0, 0, time.UTC).Unix(), 10)
	for i := 1; i <= 60; i++ {
		r := h.get(t, "tok", eventsPath("acme", p.ID, ""))
		if r.status != 200 {
			t.Fatalf("request %d: status %d", i, r.status)
		}
		want := []string{"60", strconv.Itoa(60 - i), reset, "1", "0"}
		if diff := cmp.Diff(want, rlHeaders(r)); diff != "" {
			t.Fatalf("request %d headers (-want +got):\n%s", i, diff)
		}
	}
	r := h.get(t, "tok", eventsPath("acme", p.ID, ""))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("61st: status %d", r.status)
	}
	if got, want := r.detail(t), "You are attempting to use this endpoint too frequently. Limit is 60 requests in 60 seconds"; got != want {
		t.Errorf("429 detail = %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"60", "0", reset, "1", "1"}, rlHeaders(r)); diff != "" {
		t.Errorf("429 headers (-want +got):\n%s", diff)
	}
	if r.header.Get("Retry-After") != "" {
		t.Errorf("Retry-After must not be set")
	}
	// Another caller and another endpoint group are separate buckets. Any
	// token is an internal integration here, and those share the
	// organisation's budget; a user token has its own.
	if r := h.get(t, "other", eventsPath("acme", p.ID, "")); r.status != 429 {
		t.Errorf("another internal-integration token: status %d, want 429 (keyed by organisation)", r.status)
	}
	h.s.SetToken("user", TokenInfo{Kind: TokenUser})
	if r := h.get(t, "user", eventsPath("acme", p.ID, "")); r.status != 200 {
		t.Errorf("user token: status %d", r.status)
	}
	if r := h.get(t, "tok", "/api/0/organizations/acme/"); r.status != 200 || r.header.Get("X-Sentry-Rate-Limit-Limit") != "40" {
		t.Errorf("default group: status %d limit %q", r.status, r.header.Get("X-Sentry-Rate-Limit-Limit"))
	}
	// Just before the boundary: still limited; at it: a fresh window.
	h.clock.Set(time.Date(2026, 3, 14, 12, 27, 59, 999000000, time.UTC))
	if r := h.get(t, "tok", eventsPath("acme", p.ID, "")); r.status != 429 {
		t.Errorf("before reset: status %d, want 429", r.status)
	}
	h.clock.Set(time.Date(2026, 3, 14, 12, 28, 0, 0, time.UTC))
	r = h.get(t, "tok", eventsPath("acme", p.ID, ""))
	if r.status != 200 || r.header.Get("X-Sentry-Rate-Limit-Remaining") != "59" {
		t.Errorf("after reset: status %d remaining %q", r.status, r.header.Get("X-Sentry-Rate-Limit-Remaining"))
	}
	if got := h.s.RequestStats().RateLimited; got != 3 {
		t.Errorf("RateLimited = %d, want 3", got)
	}
}

func TestRateLimitDefaultGroupPerSecond(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: RateLimitConfig{Default: Limit{Limit: 3, Window: time.Second, Concurrent: 25}}})
	var statuses []int
	for range 4 {
		statuses = append(statuses, h.get(t, "tok", "/api/0/organizations/acme/projects/").status)
	}
	if diff := cmp.Diff([]int{200, 200, 200, 429}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	r := h.get(t, "tok", "/api/0/organizations/acme/issues/")
	if got, want := r.detail(t), "You are attempting to use this endpoint too frequently. Limit is 3 requests in 1 seconds"; got != want {
		t.Errorf("detail %q, want %q", got, want)
	}
	if got, want := r.header.Get("X-Sentry-Rate-Limit-Reset"), strconv.FormatInt(t0.Unix()+1, 10); got != want {
		t.Errorf("Reset = %s, want %s", got, want)
	}
	h.clock.Advance(time.Second)
	if r := h.get(t, "tok", "/api/0/organizations/acme/projects/"); r.status != 200 {
		t.Errorf("next second: status %d", r.status)
	}
}

func TestRateLimitConcurrency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: realLimits, Faults: Faults{PHang: 1, HangFor: 10 * time.Second}})
	p := h.s.AddProject("web", "Web")
	const eventsKey = "org:default:ProjectEventsEndpoint:GET:1000001"

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.ts.URL+eventsPath("acme", p.ID, ""), nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitInFlight(t, h.s, eventsKey, 1)
	h.s.SetFaults(Faults{})

	r := h.get(t, "tok", eventsPath("acme", p.ID, ""))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second concurrent request: status %d: %s", r.status, r.body)
	}
	if got, want := r.detail(t), "You are attempting to go above the allowed concurrency for this endpoint. Concurrency limit is 1"; got != want {
		t.Errorf("detail = %q, want %q", got, want)
	}
	if got := r.header.Get("X-Sentry-Rate-Limit-ConcurrentRemaining"); got != "0" {
		t.Errorf("ConcurrentRemaining = %q, want 0", got)
	}
	// The default group has its own concurrency budget.
	if r := h.get(t, "tok", "/api/0/organizations/acme/"); r.status != 200 {
		t.Errorf("default group during events hang: %d", r.status)
	}
	cancel()
	if err := <-done; err == nil {
		t.Errorf("hung request returned without error after cancel")
	}
	waitInFlight(t, h.s, eventsKey, 0)
	if r := h.get(t, "tok", eventsPath("acme", p.ID, "")); r.status != 200 {
		t.Errorf("after the hang ended: status %d", r.status)
	}
}

// waitInFlight polls the limiter (a few ms at most in practice).
func waitInFlight(t *testing.T, s *Server, key string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.limiter.mu.Lock()
		b := s.limiter.buckets[key]
		n := -1
		if b != nil {
			n = b.inFlight
		}
		s.limiter.mu.Unlock()
		if n == want || (want == 0 && n == -1) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("in-flight on %s never reached %d", key, want)
}

func TestRateLimitOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"self_hosted", Config{SelfHosted: true}},
		{"disabled", Config{RateLimits: RateLimitConfig{Disabled: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.cfg)
			p := h.s.AddProject("web", "Web")
			for i := range 70 {
				r := h.get(t, "tok", eventsPath("acme", p.ID, "per_page=1"))
				if r.status != 200 {
					t.Fatalf("request %d: status %d", i, r.status)
				}
				for k := range r.header {
					if strings.HasPrefix(k, "X-Sentry-Rate-Limit") {
						t.Fatalf("unexpected header %s", k)
					}
				}
			}
		})
	}
}

func TestRequestStats(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Tokens: map[string][]string{"a": {"org:read"}}})
	h.get(t, "a", "/api/0/organizations/acme/")
	h.get(t, "", "/api/0/organizations/acme/")
	h.get(t, "a", "/api/0/projects/acme/x/events/")
	st := h.s.RequestStats()
	want := RequestStats{Total: 3, ByStatus: map[int]int64{200: 1, 401: 1, 404: 1}, ByGroup: map[string]int64{GroupDefault: 2, GroupEvents: 1}}
	if diff := cmp.Diff(want, st, cmp.AllowUnexported()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestRateLimitBudgetsPerViewAndCaller mirrors get_rate_limit_key
// (src/sentry/ratelimits/utils.py): endpoints with their own rate_limits
// add the view to the key (f"{category}:{group}:{view}:{http_method}:{id}"),
// so project events, stats_v2 and the default group are separate budgets;
// the category is "org" (organisation id) for internal integrations and
// "user" (user id) for user tokens. stats_v2 allows 20 requests per second
// (organization_stats_v2.py: RateLimit(limit=20, window=1)).
func TestRateLimitBudgetsPerViewAndCaller(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{RateLimits: realLimits})
	p := h.s.AddProject("web", "Web")
	h.s.SetToken("alice-1", TokenInfo{Kind: TokenUser, UserID: "alice"})
	h.s.SetToken("alice-2", TokenInfo{Kind: TokenUser, UserID: "alice"})
	h.s.SetToken("bob", TokenInfo{Kind: TokenUser})
	const stats = "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&statsPeriod=1h"
	const org = "/api/0/organizations/acme/"

	// Use up the default group (40/s) of the organisation's integrations.
	for i := range 40 {
		if r := h.get(t, "tok", org); r.status != 200 {
			t.Fatalf("default request %d: %d", i, r.status)
		}
	}
	if r := h.get(t, "tok", org); r.status != 429 {
		t.Fatalf("41st default request: %d, want 429", r.status)
	}
	// stats_v2 has its own budget of 20 per second.
	for i := range 20 {
		r := h.get(t, "tok", stats)
		if r.status != 200 || r.header.Get("X-Sentry-Rate-Limit-Limit") != "20" || r.header.Get("X-Sentry-Rate-Limit-Remaining") != strconv.Itoa(19-i) {
			t.Fatalf("stats request %d: %d limit %q remaining %q", i, r.status, r.header.Get("X-Sentry-Rate-Limit-Limit"), r.header.Get("X-Sentry-Rate-Limit-Remaining"))
		}
	}
	r := h.get(t, "tok", stats)
	if r.status != 429 {
		t.Fatalf("21st stats request: %d, want 429", r.status)
	}
	if got, want := r.detail(t), "You are attempting to use this endpoint too frequently. Limit is 20 requests in 1 seconds"; got != want {
		t.Errorf("detail %q, want %q", got, want)
	}
	// Project events are a third budget.
	if r := h.get(t, "tok", eventsPath("acme", p.ID, "")); r.status != 200 {
		t.Errorf("events after default and stats are spent: %d", r.status)
	}

	tests := []struct {
		name, token, path string
		wantStatus        int
	}{
		{"other_integration_token_shares_the_org_budget", "another", stats, 429},
		{"user_token_has_its_own_budget", "alice-1", stats, 200},
		{"user_default_group_is_its_own", "alice-1", org, 200},
		{"same_user_other_token_shares", "alice-2", stats, 200},
		{"other_user", "bob", stats, 200},
	}
	for _, tc := range tests {
		if r := h.get(t, tc.token, tc.path); r.status != tc.wantStatus {
			t.Errorf("%s: status %d, want %d", tc.name, r.status, tc.wantStatus)
		}
	}

	h.s.limiter.mu.Lock()
	var keys []string
	for k := range h.s.limiter.buckets {
		keys = append(keys, k)
	}
	h.s.limiter.mu.Unlock()
	slices.Sort(keys)
	wantKeys := []string{
		"org:default:GET:1000001",
		"org:default:OrganizationStatsEndpointV2:GET:1000001",
		"org:default:ProjectEventsEndpoint:GET:1000001",
		"user:default:GET:alice",
		"user:default:OrganizationStatsEndpointV2:GET:alice",
		"user:default:OrganizationStatsEndpointV2:GET:bob",
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("rate-limit keys (-want +got):\n%s", diff)
	}
	// alice's two tokens used one stats budget.
	if r := h.get(t, "alice-2", stats); r.header.Get("X-Sentry-Rate-Limit-Remaining") != "17" {
		t.Errorf("alice's third stats request: remaining %q, want 17", r.header.Get("X-Sentry-Rate-Limit-Remaining"))
	}
	if got := h.s.RequestStats().ByGroup[GroupStats]; got != 26 {
		t.Errorf("ByGroup[GroupStats] = %d, want 26", got)
	}
}
