package sentry

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// TestLimiterResetWaitIsCapped holds every wait derived from
// X-Sentry-Rate-Limit-Reset to maxResetWait (plus jitter), whichever path
// stores the reset: a 429 or a 200 with Remaining 0 (release), or a budget
// that the limiter's own reservations use up (acquire). A single answer with
// an absurd reset must not block a token's endpoint group for hours.
func TestLimiterResetWaitIsCapped(t *testing.T) {
	t.Parallel()

	now := t0.Add(7 * time.Second)
	unix := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	resets := []struct {
		name   string
		header string
	}{
		{name: "1e11", header: "1e11"},
		{name: "ten_hours_ahead", header: unix(now.Add(10 * time.Hour))},
		{name: "just_over_cap", header: unix(now.Add(maxResetWait + time.Second))},
		{name: "negative", header: "-30"},
		{name: "past", header: unix(now.Add(-time.Hour))},
		{name: "zero", header: "0"},
	}
	paths := []struct {
		name string
		// run drives the limiter through one path and returns the time the
		// next request waited.
		run func(t *testing.T, l *limiter, clk *clock.Fake, reset string) time.Duration
	}{
		{name: "release_429", run: func(t *testing.T, l *limiter, clk *clock.Fake, reset string) time.Duration {
			mustAcquire(t, l, clk)
			l.release(clk, http.StatusTooManyRequests, headers("60", "0", reset), false)
			return mustAcquire(t, l, clk)
		}},
		{name: "release_200_remaining_0", run: func(t *testing.T, l *limiter, clk *clock.Fake, reset string) time.Duration {
			mustAcquire(t, l, clk)
			l.release(clk, http.StatusOK, headers("60", "0", reset), false)
			return mustAcquire(t, l, clk)
		}},
		{name: "acquire_own_budget_used_up", run: func(t *testing.T, l *limiter, clk *clock.Fake, reset string) time.Duration {
			mustAcquire(t, l, clk)
			l.release(clk, http.StatusOK, headers("60", "1", reset), false)
			mustAcquire(t, l, clk) // takes the last request of the window
			l.release(clk, http.StatusOK, rateHeaders{remaining: -1, concurrentRem: -1}, false)
			return mustAcquire(t, l, clk)
		}},
	}
	const limit = maxResetWait
	for _, p := range paths {
		for _, r := range resets {
			t.Run(p.name+"/"+r.name, func(t *testing.T) {
				t.Parallel()
				clk := clock.NewFake(now)
				l := NewLimiters().get([32]byte{}, groupDefault)
				waited := p.run(t, l, clk, r.header)
				if waited > limit {
					t.Errorf("next request waited %v, want at most %v", waited, limit)
				}
				t.Logf("reset %s: next request waited %v", r.header, waited)
				// The limiter recovers: after the wait, requests go through
				// without further waiting once the (capped) window is over.
				if again := mustAcquireAfterRelease(t, l, clk); again > limit {
					t.Errorf("the request after that waited %v, want at most %v", again, limit)
				}
			})
		}
	}
}

func headers(limit, remaining, reset string) rateHeaders {
	return parseRateHeaders(http.Header{
		"X-Sentry-Rate-Limit-Limit":     {limit},
		"X-Sentry-Rate-Limit-Remaining": {remaining},
		"X-Sentry-Rate-Limit-Reset":     {reset},
	})
}

func mustAcquire(t *testing.T, l *limiter, clk *clock.Fake) time.Duration {
	t.Helper()
	waited, err := l.acquire(t.Context(), clk)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return waited
}

func mustAcquireAfterRelease(t *testing.T, l *limiter, clk *clock.Fake) time.Duration {
	t.Helper()
	l.release(clk, http.StatusOK, rateHeaders{remaining: -1, concurrentRem: -1}, false)
	return mustAcquire(t, l, clk)
}

// TestFarFutureResetThroughClient measures, through the client, how long a
// request waits after Sentry answers 429 with a reset far in the future.
func TestFarFutureResetThroughClient(t *testing.T) {
	t.Parallel()

	for _, reset := range []string{"1e11", strconv.FormatInt(t0.Add(10*time.Hour).Unix(), 10)} {
		t.Run(reset, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			sc := newScript(
				func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Sentry-Rate-Limit-Limit", "60")
					w.Header().Set("X-Sentry-Rate-Limit-Remaining", "0")
					w.Header().Set("X-Sentry-Rate-Limit-Reset", reset)
					detail(http.StatusTooManyRequests, "You are attempting to use this endpoint too frequently. Limit is 60 requests in 60 seconds")(w, r)
				},
				newFakeEvents(1, "1").ServeHTTP,
			)
			c, _ := newTestClient(t, sc, clk, nil)
			if _, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"}); err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			if got := clk.Slept(); got > maxResetWait {
				t.Errorf("waited %v after a 429 with reset %s, want at most %v", got, reset, maxResetWait)
			}
			t.Logf("waited %v after a 429 with reset %s", clk.Slept(), reset)
		})
	}
}
