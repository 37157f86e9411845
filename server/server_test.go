package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
	"github.com/secops-collectors/sentry-gcs/internal/buildinfo"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

const (
	testAudience = "https://sentry-gcs-xyz.a.run.app/pubsub/push"
	testPushSA   = "push@proj.iam.gserviceaccount.com"
	testSub      = "projects/proj/subscriptions/sentry-gcs-push"
	testProject  = "proj"
)

var errConfigTest = fmt.Errorf("%w: sentry: 401 Unauthorized: invalid token", failure.ErrConfig)

// fakeCollector returns a fixed result.
type fakeCollector struct {
	result RunResult
	err    error
	panic  bool
	// block makes Run wait for ctx (or drain when a drainer).
	block bool

	mu        sync.Mutex
	calls     int
	deadlines []time.Duration
	drained   chan struct{}
}

func (f *fakeCollector) RunStreams(ctx context.Context, _ string) (RunResult, error) {
	f.mu.Lock()
	f.calls++
	if dl, ok := ctx.Deadline(); ok {
		f.deadlines = append(f.deadlines, time.Until(dl))
	}
	drained := f.drained
	f.mu.Unlock()
	logging.FromContext(ctx).InfoContext(ctx, "fake run")
	if f.panic {
		panic("collector exploded")
	}
	if f.block {
		select {
		case <-ctx.Done():
			return RunResult{}, fmt.Errorf("run cancelled: %w", ctx.Err())
		case <-drained:
			return RunResult{WorkRemaining: true}, nil
		}
	}
	return f.result, f.err
}

func (f *fakeCollector) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// drainingCollector is a fakeCollector that implements Drainer.
type drainingCollector struct{ *fakeCollector }

func (d drainingCollector) Drain() { close(d.drained) }

// fakePublisher records what it publishes.
type fakePublisher struct {
	err error

	mu   sync.Mutex
	sent []pubsub.Work
}

func (p *fakePublisher) Publish(_ context.Context, w pubsub.Work) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return "", p.err
	}
	p.sent = append(p.sent, w)
	return fmt.Sprintf("cont-%d", len(p.sent)), nil
}

func (p *fakePublisher) Sent() []pubsub.Work {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pubsub.Work(nil), p.sent...)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a server wired with fakes and a real token verifier.
type testEnv struct {
	srv       *Server
	collector *fakeCollector
	publisher *fakePublisher
	signer    *authtest.Signer
	logs      *syncBuffer
}

// sharedSigner avoids generating an RSA key per test.
var sharedSigner = sync.OnceValue(func() *authtest.Signer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &authtest.Signer{Key: key, KeyID: "shared-test-key"}
})

func newTestEnv(t *testing.T, mutate func(*serverOptions)) *testEnv {
	t.Helper()
	env := &testEnv{
		collector: &fakeCollector{drained: make(chan struct{})},
		publisher: &fakePublisher{},
		signer:    sharedSigner(),
		logs:      &syncBuffer{},
	}
	verifier, err := auth.NewVerifier(env.signer.Validator(t), testAudience, []string{testPushSA})
	if err != nil {
		t.Fatal(err)
	}
	opts := serverOptions{
		Collector:  env.collector,
		Verifier:   verifier,
		Publisher:  env.publisher,
		Logger:     logging.New(env.logs, logging.Options{Level: slog.LevelDebug}),
		ProjectID:  testProject,
		RunTimeout: 5 * time.Minute,
		MaxHops:    10,
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := newServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	env.srv = srv
	return env
}

func (e *testEnv) token(t *testing.T, mutate func(authtest.Claims)) string {
	t.Helper()
	c := authtest.PushClaims(testAudience, testPushSA)
	if mutate != nil {
		mutate(c)
	}
	return "Bearer " + e.signer.Token(t, c)
}

// wrapped returns a wrapped envelope for data.
func wrapped(id, data string, attempt int) string {
	env := map[string]any{
		"message": map[string]any{
			"data":        base64.StdEncoding.EncodeToString([]byte(data)),
			"messageId":   id,
			"publishTime": "2026-11-26T01:00:00.123Z",
		},
		"subscription": testSub,
	}
	if attempt > 0 {
		env["deliveryAttempt"] = attempt
	}
	b, _ := json.Marshal(env)
	return string(b)
}

func (e *testEnv) do(t *testing.T, method, path, body string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func (e *testEnv) push(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, http.MethodPost, pathPush, body, http.Header{
		"Authorization": {e.token(t, nil)},
		"Content-Type":  {"application/json"},
	})
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("response body is not JSON: %q: %v", rec.Body.String(), err)
	}
	return m
}

func TestPush_statusTable(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name        string
		result      RunResult
		runErr      error
		panics      bool
		noPublisher bool
		publishErr  error
		body        string
		wantStatus  int
		wantOutcome string
		wantError   string // public error message substring
		wantRuns    int
		wantSent    []pubsub.Work
	}{
		{
			name:        "done",
			body:        wrapped("m1", "", 0),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeDone,
			wantRuns:    1,
		},
		{
			name:        "nothing_to_do_tick_object",
			body:        wrapped("m1", "{}", 1),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeDone,
			wantRuns:    1,
		},
		{
			name:        "lease_held",
			result:      RunResult{LeaseHeld: true},
			body:        wrapped("m1", "{}", 0),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeLeaseHeld,
			wantRuns:    1,
		},
		{
			name:        "work_remaining_publishes_continuation",
			result:      RunResult{WorkRemaining: true},
			body:        wrapped("m1", "{}", 0),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeContinued,
			wantRuns:    1,
			wantSent:    []pubsub.Work{{Kind: pubsub.KindContinue, Stream: "events", Hop: 1}},
		},
		{
			name:        "continuation_of_continuation",
			result:      RunResult{WorkRemaining: true},
			body:        wrapped("m1", `{"type":"continue","stream":"events","hop":3}`, 0),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeContinued,
			wantRuns:    1,
			wantSent:    []pubsub.Work{{Kind: pubsub.KindContinue, Stream: "events", Hop: 4}},
		},
		{
			name:        "work_remaining_hop_limit",
			result:      RunResult{WorkRemaining: true},
			body:        wrapped("m1", `{"type":"continue","stream":"events","hop":10}`, 0),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeTooManyHops,
			wantRuns:    1,
		},
		{
			name:        "work_remaining_without_topic",
			result:      RunResult{WorkRemaining: true},
			noPublisher: true,
			body:        wrapped("m1", "{}", 0),
			wantStatus:  http.StatusOK,
			wantOutcome: outcomeNextTick,
			wantRuns:    1,
		},
		{
			name:       "work_remaining_publish_fails",
			result:     RunResult{WorkRemaining: true},
			publishErr: errors.New("rpc error: code = PermissionDenied"),
			body:       wrapped("m1", "{}", 0),
			wantStatus: http.StatusServiceUnavailable,
			wantError:  "continuation",
			wantRuns:   1,
		},
		{
			name:       "transient_failure",
			runErr:     failure.Transient(errors.New("gcs: 503 backend error")),
			body:       wrapped("m1", "{}", 0),
			wantStatus: http.StatusServiceUnavailable,
			wantError:  "temporarily",
			wantRuns:   1,
		},
		{
			name:       "config_failure",
			runErr:     fmt.Errorf("failed to list projects: %w", errConfigTest),
			body:       wrapped("m1", "{}", 0),
			wantStatus: http.StatusInternalServerError,
			wantError:  "configuration error",
			wantRuns:   1,
		},
		{
			name:       "panic_in_collector",
			panics:     true,
			body:       wrapped("m1", "{}", 0),
			wantStatus: http.StatusInternalServerError,
			wantError:  "Internal Server Error",
			wantRuns:   1,
		},
		{name: "poison_not_json", body: "{not json", wantStatus: http.StatusBadRequest, wantError: "malformed"},
		{name: "poison_no_message", body: `{"subscription":"x"}`, wantStatus: http.StatusBadRequest, wantError: "malformed"},
		{name: "poison_missing_message_id", body: `{"message":{"data":""}}`, wantStatus: http.StatusBadRequest, wantError: "missing message id"},
		{name: "poison_invalid_base64", body: `{"message":{"messageId":"1","data":"***"}}`, wantStatus: http.StatusBadRequest, wantError: "base64"},
		{name: "poison_unknown_type", body: wrapped("m1", `{"type":"reboot"}`, 0), wantStatus: http.StatusBadRequest, wantError: "unknown message type"},
		{name: "poison_bad_data_json", body: wrapped("m1", `{"type":`, 0), wantStatus: http.StatusBadRequest, wantError: "not valid JSON"},
		{name: "poison_empty_body", body: "", wantStatus: http.StatusBadRequest, wantError: "empty body"},
		{name: "backfill_not_supported_yet", body: wrapped("m1", `{"type":"backfill","job_id":"j1"}`, 0), wantStatus: http.StatusNotImplemented, wantError: "backfill"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, func(o *serverOptions) {
				if tc.noPublisher {
					o.Publisher = nil
				}
			})
			env.collector.result = tc.result
			env.collector.err = tc.runErr
			env.collector.panic = tc.panics
			env.publisher.err = tc.publishErr

			rec := env.push(t, tc.body)
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
			}
			body := decodeBody(t, rec)
			if tc.wantOutcome != "" {
				if got, want := body["outcome"], tc.wantOutcome; got != want {
					t.Errorf("outcome: got %v, want %v", got, want)
				}
				if got, want := body["message_id"], "m1"; got != want {
					t.Errorf("message_id: got %v, want %v", got, want)
				}
			}
			if tc.wantError != "" {
				msg, _ := body["error"].(string)
				if !strings.Contains(msg, tc.wantError) {
					t.Errorf("error message %q does not contain %q", msg, tc.wantError)
				}
				if tc.runErr != nil && strings.Contains(msg, tc.runErr.Error()) {
					t.Errorf("public message leaks the internal cause: %q", msg)
				}
			}
			if got, want := env.collector.Calls(), tc.wantRuns; got != want {
				t.Errorf("collector runs: got %d, want %d", got, want)
			}
			if diff := cmp.Diff(tc.wantSent, env.publisher.Sent()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			if tc.wantOutcome == outcomeContinued {
				if got, want := body["continuation_id"], "cont-1"; got != want {
					t.Errorf("continuation_id: got %v, want %v", got, want)
				}
			}
		})
	}
}

func TestPush_oidc(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, nil)
	cases := []struct {
		name       string
		header     func(t *testing.T) string
		wantStatus int
		wantAuthn  bool // WWW-Authenticate expected
	}{
		{name: "valid", header: func(t *testing.T) string { return env.token(t, nil) }, wantStatus: http.StatusOK},
		{name: "missing_header", header: func(*testing.T) string { return "" }, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "malformed_header", header: func(*testing.T) string { return "Token abc" }, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "malformed_jwt", header: func(*testing.T) string { return "Bearer abc.def" }, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "wrong_audience", header: func(t *testing.T) string {
			return env.token(t, func(c authtest.Claims) { c["aud"] = "https://other.example/pubsub/push" })
		}, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "wrong_issuer", header: func(t *testing.T) string {
			return env.token(t, func(c authtest.Claims) { c["iss"] = "https://token.actions.githubusercontent.com" })
		}, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "expired", header: func(t *testing.T) string {
			return env.token(t, func(c authtest.Claims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		}, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "bad_signature", header: func(t *testing.T) string {
			other := authtest.NewSigner(t)
			return "Bearer " + authtest.Sign(t, other.Key, env.signer.KeyID, authtest.PushClaims(testAudience, testPushSA))
		}, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "unknown_kid", header: func(t *testing.T) string {
			return "Bearer " + authtest.Sign(t, env.signer.Key, "rotated-away", authtest.PushClaims(testAudience, testPushSA))
		}, wantStatus: http.StatusUnauthorized, wantAuthn: true},
		{name: "unverified_email", header: func(t *testing.T) string {
			return env.token(t, func(c authtest.Claims) { c["email_verified"] = false })
		}, wantStatus: http.StatusForbidden},
		{name: "unlisted_email", header: func(t *testing.T) string {
			return env.token(t, func(c authtest.Claims) { c["email"] = "someone@proj.iam.gserviceaccount.com" })
		}, wantStatus: http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{"Content-Type": {"application/json"}}
			if v := tc.header(t); v != "" {
				h.Set("Authorization", v)
			}
			before := env.collector.Calls()
			rec := env.do(t, http.MethodPost, pathPush, wrapped("m-"+tc.name, "{}", 0), h)
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
			}
			if got := rec.Header().Get("WWW-Authenticate") != ""; got != tc.wantAuthn {
				t.Errorf("WWW-Authenticate present: got %v, want %v", got, tc.wantAuthn)
			}
			if tc.wantStatus != http.StatusOK {
				msg, _ := decodeBody(t, rec)["error"].(string)
				if strings.Contains(msg, "idtoken") || strings.Contains(msg, testPushSA) {
					t.Errorf("public message leaks the cause: %q", msg)
				}
			}
			if tc.wantStatus != http.StatusOK && env.collector.Calls() != before {
				// Other subtests run in parallel; a rejected request
				// must not have run the collector, which its own
				// message id in the log would show.
				if strings.Contains(env.logs.String(), `"message_id":"m-`+tc.name+`"`) {
					t.Errorf("collector ran for a rejected request")
				}
			}
		})
	}
}

func TestPush_authDisabled(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, func(o *serverOptions) {
		o.Verifier = nil
		o.AuthDisabled = true
	})
	rec := env.do(t, http.MethodPost, pathPush, wrapped("m1", "{}", 0), nil)
	if got, want := rec.Code, http.StatusOK; got != want {
		t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
	}

	if _, err := newServer(serverOptions{Collector: &fakeCollector{}}); err == nil {
		t.Error("newServer accepted no verifier without AuthDisabled")
	}
}

func TestPush_envelopeVariants(t *testing.T) {
	t.Parallel()

	data := base64.StdEncoding.EncodeToString([]byte(`{"type":"continue","stream":"events","hop":1}`))
	cases := []struct {
		name        string
		body        string
		header      http.Header
		wantID      string
		wantAttempt string
	}{
		{
			name:        "wrapped_camel_case",
			body:        `{"message":{"data":"` + data + `","messageId":"c1","publishTime":"2026-11-26T01:00:00Z"},"subscription":"` + testSub + `","deliveryAttempt":2}`,
			wantID:      "c1",
			wantAttempt: `"delivery_attempt":2`,
		},
		{
			name:        "wrapped_snake_case",
			body:        `{"message":{"data":"` + data + `","message_id":"s1","publish_time":"2026-11-26T01:00:00Z"},"subscription":"` + testSub + `"}`,
			wantID:      "s1",
			wantAttempt: `"delivery_attempt":0`,
		},
		{
			name:        "wrapped_both_cases_like_the_emulator",
			body:        `{"message":{"data":"` + data + `","messageId":"b1","message_id":"b1","publishTime":"2026-11-26T01:00:00Z","publish_time":"2026-11-26T01:00:00Z"},"subscription":"` + testSub + `"}`,
			wantID:      "b1",
			wantAttempt: `"delivery_attempt":0`,
		},
		{
			name: "unwrapped_with_metadata_headers",
			body: `{"type":"continue","stream":"events","hop":1}`,
			header: http.Header{
				pubsub.HeaderMessageID:    {"u1"},
				pubsub.HeaderPublishTime:  {"2026-11-26T01:00:00Z"},
				pubsub.HeaderSubscription: {testSub},
				"Sentry-Gcs-Type":         {"continue"},
			},
			wantID:      "u1",
			wantAttempt: `"wrapped":false`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, nil)
			h := http.Header{"Authorization": {env.token(t, nil)}}
			for k, v := range tc.header {
				h[k] = v
			}
			rec := env.do(t, http.MethodPost, pathPush, tc.body, h)
			if got, want := rec.Code, http.StatusOK; got != want {
				t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
			}
			if got, want := decodeBody(t, rec)["message_id"], tc.wantID; got != want {
				t.Errorf("message_id: got %v, want %v", got, want)
			}
			if got, want := env.collector.Calls(), 1; got != want {
				t.Errorf("runs: got %d, want %d", got, want)
			}
			logs := env.logs.String()
			if !strings.Contains(logs, `"message":"push received"`) || !strings.Contains(logs, tc.wantAttempt) {
				t.Errorf("push received log lacks %s:\n%s", tc.wantAttempt, logs)
			}
		})
	}
}

func TestPush_oversizeBody(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, func(o *serverOptions) { o.MaxBodyBytes = 1024 })
	big := wrapped("m1", strings.Repeat(" ", 4096)+"{}", 0)

	// With a Content-Length, rejected before reading.
	rec := env.push(t, big)
	if got, want := rec.Code, http.StatusRequestEntityTooLarge; got != want {
		t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
	}

	// Chunked (no Content-Length): rejected while reading.
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, pathPush, struct{ *strings.Reader }{strings.NewReader(big)})
	req.ContentLength = -1
	req.Header.Set("Authorization", env.token(t, nil))
	rec = httptest.NewRecorder()
	env.srv.Handler().ServeHTTP(rec, req)
	if got, want := rec.Code, http.StatusRequestEntityTooLarge; got != want {
		t.Fatalf("chunked status: got %d, want %d; body %s", got, want, rec.Body.String())
	}
	if got := env.collector.Calls(); got != 0 {
		t.Errorf("collector ran %d times for oversize bodies", got)
	}
}

func TestPush_runDeadline(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, func(o *serverOptions) { o.RunTimeout = 3 * time.Minute })
	if rec := env.push(t, wrapped("m1", "{}", 0)); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	env.collector.mu.Lock()
	defer env.collector.mu.Unlock()
	if len(env.collector.deadlines) != 1 {
		t.Fatalf("run saw no deadline")
	}
	if d := env.collector.deadlines[0]; d <= 2*time.Minute || d > 3*time.Minute {
		t.Errorf("run deadline in %s, want about 3m", d)
	}
}

func TestPush_runSurvivesClientCancel(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the caller is already gone
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, pathPush, strings.NewReader(wrapped("m1", "{}", 0)))
	req.Header.Set("Authorization", env.token(t, nil))
	rec := httptest.NewRecorder()
	env.srv.Handler().ServeHTTP(rec, req)
	if got, want := rec.Code, http.StatusOK; got != want {
		t.Fatalf("status: got %d, want %d (a run is not aborted by the caller going away)", got, want)
	}
}

func TestPush_drain(t *testing.T) {
	t.Parallel()

	t.Run("cancelled_after_stop_grace", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t, func(o *serverOptions) { o.StopGrace = time.Millisecond })
		env.collector.block = true
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- env.push(t, wrapped("m1", "{}", 0)) }()
		waitFor(t, func() bool { return env.collector.Calls() == 1 })
		env.srv.Drain()
		rec := <-done
		if got, want := rec.Code, http.StatusServiceUnavailable; got != want {
			t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
		}
	})

	t.Run("drainer_commits_and_continues", func(t *testing.T) {
		t.Parallel()
		fc := &fakeCollector{block: true, drained: make(chan struct{})}
		env := newTestEnv(t, func(o *serverOptions) {
			o.Collector = drainingCollector{fc}
			o.StopGrace = time.Hour
		})
		env.collector = fc
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- env.push(t, wrapped("m1", "{}", 0)) }()
		waitFor(t, func() bool { return fc.Calls() == 1 })
		env.srv.Drain()
		env.srv.Drain() // idempotent
		rec := <-done
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Fatalf("status: got %d, want %d; body %s", got, want, rec.Body.String())
		}
		if got, want := decodeBody(t, rec)["outcome"], outcomeContinued; got != want {
			t.Errorf("outcome: got %v, want %v", got, want)
		}
	})
}

// waitFor polls cond without sleeping on a timer: it yields until cond holds
// or the test's deadline nears.
// waitFor polls cond until it holds, failing the test after a deadline
// (the test's own context only ends after the test returns, so it cannot
// bound the wait).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition did not hold within 10 s")
		}
		runtime.Gosched()
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, nil)
	rec := env.do(t, http.MethodGet, pathHealth, "", nil)
	if got, want := rec.Code, http.StatusOK; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}
	want := map[string]any{"status": "ok", "version": buildinfo.Version, "commit": buildinfo.Commit}
	if diff := cmp.Diff(want, decodeBody(t, rec)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id in the response")
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, nil)
	cases := []struct {
		name       string
		method     string
		path       string
		wantStatus int
	}{
		{name: "healthz_is_not_served", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusNotFound},
		{name: "get_push", method: http.MethodGet, path: pathPush, wantStatus: http.StatusMethodNotAllowed},
		{name: "post_root", method: http.MethodPost, path: "/", wantStatus: http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := env.do(t, tc.method, tc.path, "", nil)
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status: got %d, want %d", got, want)
			}
			if _, ok := decodeBody(t, rec)["error"]; !ok {
				t.Errorf("no error message in %s", rec.Body.String())
			}
		})
	}
}

func TestLogging_correlationAndSingleCause(t *testing.T) {
	t.Parallel()

	const cause = "gcs: backend error 1234"
	env := newTestEnv(t, nil)
	env.collector.err = failure.Transient(errors.New(cause))
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	rec := env.do(t, http.MethodPost, pathPush, wrapped("m-log", "{}", 0), http.Header{
		"Authorization":         {env.token(t, nil)},
		"X-Cloud-Trace-Context": {trace + "/1;o=1"},
		"X-Request-Id":          {"req-123"},
	})
	if got, want := rec.Code, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}

	lines := env.logs.Lines(t)
	var causeLines, requestLines int
	for _, l := range lines {
		msg, _ := l["message"].(string)
		if msg == "fake run" || msg == "request failed" || msg == "push received" {
			if got, want := l[logging.KeyTrace], "projects/"+testProject+"/traces/"+trace; got != want {
				t.Errorf("%q: trace got %v, want %v", msg, got, want)
			}
			if got, want := l["request_id"], "req-123"; got != want {
				t.Errorf("%q: request_id got %v, want %v", msg, got, want)
			}
			if got, want := l["message_id"], "m-log"; got != want {
				t.Errorf("%q: message_id got %v, want %v", msg, got, want)
			}
			if got, want := l["caller"], testPushSA; got != want {
				t.Errorf("%q: caller got %v, want %v", msg, got, want)
			}
		}
		raw, _ := json.Marshal(l)
		if strings.Contains(string(raw), cause) {
			causeLines++
			if got, want := l["severity"], "ERROR"; got != want {
				t.Errorf("cause logged at %v, want %v", got, want)
			}
		}
		if _, ok := l["request"]; ok {
			requestLines++
			if got, want := l["message_id"], "m-log"; got != want {
				t.Errorf("request log: message_id got %v, want %v", got, want)
			}
			if got, want := l[logging.KeyTrace], "projects/"+testProject+"/traces/"+trace; got != want {
				t.Errorf("request log: trace got %v, want %v", got, want)
			}
		}
	}
	if causeLines != 1 {
		t.Errorf("internal cause logged %d times, want once:\n%s", causeLines, env.logs.String())
	}
	if requestLines != 1 {
		t.Errorf("request logged %d times, want once:\n%s", requestLines, env.logs.String())
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name   string
		budget time.Duration
		want   time.Duration
	}{
		{name: "default_budget", budget: 7 * time.Minute, want: 8 * time.Minute},
		{name: "capped_below_ack_deadline", budget: 9*time.Minute + 50*time.Second, want: 580 * time.Second},
		{name: "short_budget", budget: time.Minute, want: 2 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runTimeout(tc.budget)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if w := timeoutsFor(got + defaultPublishTimeout).Write; w <= got {
				t.Errorf("write timeout %s does not outlast the run %s", w, got)
			}
		})
	}
}
