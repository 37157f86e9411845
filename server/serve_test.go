package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// startServe runs serveConfig in the background on 127.0.0.1:0 and returns
// its base URL, the time from the call to the listening address being
// known, and a stop function that shuts it down and returns its error.
func startServe(t *testing.T, env map[string]string, deps serveDeps) (string, func() error) {
	t.Helper()
	cfg, err := config.Load(t.Context(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logging.WithLogger(context.WithoutCancel(t.Context()), logging.TestLogger(t)))
	ready := make(chan net.Addr, 1)
	deps.ListenHost = "127.0.0.1"
	deps.Ready = func(a net.Addr) { ready <- a }
	errc := make(chan error, 1)
	go func() { errc <- serveConfig(ctx, cfg, deps) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serveConfig returned early: %v", err)
	}
	stop := func() error {
		cancel()
		return <-errc
	}
	return "http://" + addr.String(), stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe_smoke boots the service as runServe does, with the real
// collector wired to the simulated Sentry and a local output directory, on
// PORT=0: /health answers, a tick collects the simulator's events into the
// directory, and cancelling the context shuts it down cleanly.
func TestServe_smoke(t *testing.T) {
	t.Parallel()

	sim, err := sentrysim.Start(sentrysim.Config{Org: "acme", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	p := sim.AddProject("web", "Web")
	now := time.Now().UTC()
	var want []string
	for i := range 3 {
		want = append(want, sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: now.Add(-time.Duration(10+i) * time.Minute), Message: "boom"}))
	}

	out := t.TempDir()
	start := time.Now()
	base, stop := startServe(t, map[string]string{
		"PORT":               "0",
		"PUSH_AUTH_DISABLED": "true",
		"SENTRY_ORG":         "acme",
		"SENTRY_AUTH_TOKEN":  "test-token",
		"SENTRY_API_BASE":    sim.URL(),
		"LOCAL_OUTPUT_DIR":   out,
	}, serveDeps{})

	// First /health 200 (polling without sleeping: the listener is up,
	// so the first request normally succeeds).
	code, body := get(t, base+pathHealth)
	startup := time.Since(start)
	if code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("health: %d %s", code, body)
	}
	t.Logf("start-up to first /health 200: %s", startup)

	code, body = post(t, base+pathPush, wrapped("tick-1", "{}", 0), http.Header{"Content-Type": {"application/json"}})
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	if !strings.Contains(body, `"outcome":"done"`) && !strings.Contains(body, `"outcome":"next_tick"`) {
		t.Errorf("push outcome: %s", body)
	}

	var data strings.Builder
	err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".ndjson") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			data.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Only event rows (the directory sink keeps generation files beside
	// the objects).
	var lines []string
	for _, l := range strings.Split(data.String(), "\n") {
		if strings.HasPrefix(l, "{") {
			lines = append(lines, l)
		}
	}
	if got, want := len(lines), len(want); got != want {
		t.Errorf("stored %d events, want %d:\n%s", got, want, data.String())
	}
	for _, id := range want {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, `"id":"`+id+`"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("event %s stored %d times, want once", id, n)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestServe_oidcWired checks that serveConfig builds the token verifier from
// PUSH_AUDIENCE and PUSH_SERVICE_ACCOUNTS.
func TestServe_oidcWired(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	fc := &fakeCollector{drained: make(chan struct{})}
	base, stop := startServe(t, map[string]string{
		"PORT":                  "0",
		"SENTRY_ORG":            "acme",
		"SENTRY_AUTH_TOKEN":     "test-token",
		"LOCAL_OUTPUT_DIR":      t.TempDir(),
		"PUSH_AUDIENCE":         testAudience,
		"PUSH_SERVICE_ACCOUNTS": "other@p.iam.gserviceaccount.com," + testPushSA,
	}, serveDeps{Collector: fc, Validator: signer.Validator(t)})

	if code, body := post(t, base+pathPush, wrapped("m1", "{}", 0), nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", code, body)
	}
	tok := "Bearer " + signer.Token(t, authtest.PushClaims(testAudience, testPushSA))
	if code, body := post(t, base+pathPush, wrapped("m2", "{}", 0), http.Header{"Authorization": {tok}}); code != http.StatusOK {
		t.Errorf("valid token: %d %s", code, body)
	}
	if got, want := fc.Calls(), 1; got != want {
		t.Errorf("runs: got %d, want %d", got, want)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestRunServe_refusesInsecureOnCloudRun runs the real entry point with the
// process environment (so it cannot be parallel).
func TestRunServe_refusesInsecureOnCloudRun(t *testing.T) {
	t.Setenv("K_SERVICE", "sentry-gcs")
	t.Setenv("PUSH_AUTH_DISABLED", "true")
	t.Setenv("ALLOW_INSECURE_ON_CLOUD_RUN", "")
	t.Setenv("SENTRY_ORG", "acme")
	t.Setenv("SENTRY_AUTH_TOKEN", "x")
	t.Setenv("PORT", "0")

	err := runServe(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "ALLOW_INSECURE_ON_CLOUD_RUN") {
		t.Fatalf("got %v, want a refusal naming ALLOW_INSECURE_ON_CLOUD_RUN", err)
	}
	if err := runServe(t.Context(), []string{"extra"}); err == nil {
		t.Error("runServe accepted an argument")
	}
}
