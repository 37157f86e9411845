package sentrysim

import (
	"context"
	"net/http"
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
	// Another token and another endpoint group are separate buckets.
	if r := h.get(t, "other", eventsPath("acme", p.ID, "")); r.status != 200 {
		t.Errorf("other token: status %d", r.status)
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
	if got := h.s.RequestStats().RateLimited; got != 2 {
		t.Errorf("RateLimited = %d, want 2", got)
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
	waitInFlight(t, h.s, "token:tok|"+GroupEvents, 1)
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
	waitInFlight(t, h.s, "token:tok|"+GroupEvents, 0)
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
