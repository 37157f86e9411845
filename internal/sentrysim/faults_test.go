package sentrysim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func faultSequence(t *testing.T, seed int64) []string {
	t.Helper()
	h := newHarness(t, Config{Seed: seed, RateLimits: RateLimitConfig{Disabled: true}, Faults: Faults{P5xx: 0.15, P502HTML: 0.1, PTruncated: 0.15, PQueryTimeout: 0.1}})
	p := h.s.AddProject("web", "Web")
	addEvents(h.s, p.ID, 20, t0.Add(-time.Minute))
	errorID := regexp.MustCompile(`^\{"detail":"Internal Error","errorId":"[0-9a-f]{32}"\}$`)
	var seq []string
	for range 60 {
		r := h.get(t, "tok", eventsPath("acme", p.ID, ""))
		var kind string
		switch {
		case r.status == 200 && json.Valid(r.body):
			kind = "ok"
		case r.status == 200:
			kind = "truncated"
		case r.status == 500:
			if !errorID.Match(r.body) {
				t.Errorf("500 body %s", r.body)
			}
			kind = "500"
		case r.status == 502:
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "502 Bad Gateway") {
				t.Errorf("502: %s %s", r.header.Get("Content-Type"), r.body)
			}
			kind = "502"
		case r.status == 400:
			if got := r.detail(t); got != "Query timeout. Please try again. If the problem persists try a smaller date range or fewer projects." {
				t.Errorf("400 detail %q", got)
			}
			kind = "timeout"
		default:
			t.Fatalf("unexpected status %d", r.status)
		}
		seq = append(seq, kind)
	}
	return seq
}

func TestFaultsDeterministicFromSeed(t *testing.T) {
	t.Parallel()
	a, b, c := faultSequence(t, 42), faultSequence(t, 42), faultSequence(t, 43)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults (-a +b):\n%s", diff)
	}
	if cmp.Equal(a, c) {
		t.Errorf("different seeds gave identical fault sequences")
	}
	seen := map[string]int{}
	for _, k := range a {
		seen[k]++
	}
	for _, k := range []string{"ok", "truncated", "500", "502", "timeout"} {
		if seen[k] == 0 {
			t.Errorf("fault kind %q never injected in 60 requests: %v", k, seen)
		}
	}
}

func TestHang(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		hangFor     time.Duration
		timeout     time.Duration
		wantTimeout bool
	}{
		{name: "ends_when_client_gives_up", hangFor: time.Minute, timeout: 30 * time.Millisecond, wantTimeout: true},
		{name: "short_hang_then_served", hangFor: 10 * time.Millisecond, timeout: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{Faults: Faults{PHang: 1, HangFor: tc.hangFor}})
			ctx, cancel := context.WithTimeout(t.Context(), tc.timeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.ts.URL+"/api/0/organizations/acme/", nil)
			req.Header.Set("Authorization", "Bearer tok")
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if tc.wantTimeout {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want deadline exceeded", err)
				}
				if time.Since(start) > 5*time.Second {
					t.Errorf("hang did not end with the request context")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
}
