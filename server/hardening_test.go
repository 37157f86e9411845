package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// TestHardening_es256TokenRefused sends an ES256 token with a short
// signature, which made idtoken's ES256 check panic (a 500 with a stack
// trace per request, before authentication): it must be a plain 401.
func TestHardening_es256TokenRefused(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, nil)
	claims := authtest.PushClaims(testAudience, testPushSA)
	for _, sig := range [][]byte{nil, {1, 2, 3}, []byte("garbage-signature")} {
		tok := authtest.Forge(t, map[string]string{"alg": "ES256", "typ": "JWT", "kid": authtest.ESKeyID}, claims, sig)
		rec := env.do(t, http.MethodPost, pathPush, wrapped("m-es256", "{}", 0), http.Header{
			"Authorization": {"Bearer " + tok},
			"Content-Type":  {"application/json"},
		})
		if got, want := rec.Code, http.StatusUnauthorized; got != want {
			t.Errorf("signature %q: status got %d, want %d; body %s", sig, got, want, rec.Body.String())
		}
	}
	if logs := env.logs.String(); strings.Contains(logs, "panic") || strings.Contains(logs, `"severity":"ERROR"`) {
		t.Errorf("an ES256 token was logged as an error or a panic:\n%s", logs)
	}
	if n := env.collector.Calls(); n != 0 {
		t.Errorf("collector ran %d times", n)
	}
}

// TestHardening_certsUnreachable503 points the token validator's certificate
// fetch at an endpoint on 127.0.0.1 that never answers: a push must end
// within the fetch timeout with 503 (Pub/Sub retries; operators look at
// connectivity), not 401 "invalid bearer token", and must not run the
// collector.
func TestHardening_certsUnreachable503(t *testing.T) {
	t.Parallel()

	done := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); hang.Close() })
	u, err := url.Parse(hang.URL)
	if err != nil {
		t.Fatal(err)
	}
	toHang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
		return http.DefaultTransport.RoundTrip(r)
	})
	v, err := auth.NewGoogleValidator(t.Context(), auth.ValidatorOptions{Transport: toHang, FetchTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(v, testAudience, []string{testPushSA})
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t, func(o *serverOptions) { o.Verifier = verifier })

	start := time.Now()
	rec := env.do(t, http.MethodPost, pathPush, wrapped("m-certs", "{}", 0), http.Header{
		"Authorization": {env.token(t, nil)},
		"Content-Type":  {"application/json"},
	})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("push took %v with a certificate fetch timeout of 100ms", elapsed)
	}
	if got, want := rec.Code, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status got %d, want %d; body %s", got, want, rec.Body.String())
	}
	if h := rec.Header().Get("WWW-Authenticate"); h != "" {
		t.Errorf("WWW-Authenticate %q on a 503: the token was not judged", h)
	}
	if msg, _ := decodeBody(t, rec)["error"].(string); strings.Contains(msg, "invalid") {
		t.Errorf("public message %q blames the token", msg)
	}
	if n := env.collector.Calls(); n != 0 {
		t.Errorf("collector ran %d times", n)
	}
}

// unboundedLogger is a plain JSON logger at DEBUG, such as a caller of
// newServer might pass: the server must bound its lines itself.
func unboundedLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestHardening_requestID sends request ids of every kind, unauthenticated:
// a short plain one is kept, logged and echoed; anything else (too long,
// blanks, quotes, control or non-ASCII characters) is replaced by a
// generated id, so that a caller cannot make every log line of its request
// (and the answer) as long as it likes.
func TestHardening_requestID(t *testing.T) {
	t.Parallel()

	plain64 := strings.Repeat("a", 60) + "._:-"
	cases := []struct {
		name     string
		method   string
		path     string
		id       string
		wantKept bool
	}{
		{name: "short_plain_kept", method: http.MethodGet, path: pathHealth, id: "req-123", wantKept: true},
		{name: "uuid_kept", method: http.MethodGet, path: pathHealth, id: "0b0f5c3e-4f7a-4d2b-9a51-2f0c8b7e6d1a", wantKept: true},
		{name: "64_plain_characters_kept", method: http.MethodGet, path: pathHealth, id: plain64, wantKept: true},
		{name: "65_characters_replaced", method: http.MethodGet, path: pathHealth, id: plain64 + "a"},
		{name: "400_kb_replaced", method: http.MethodGet, path: pathHealth, id: strings.Repeat("A", 400<<10)},
		{name: "400_kb_on_unauthenticated_push_replaced", method: http.MethodPost, path: pathPush, id: strings.Repeat("A", 400<<10)},
		{name: "blank_replaced", method: http.MethodGet, path: pathHealth, id: "req 123"},
		{name: "quote_replaced", method: http.MethodGet, path: pathHealth, id: `req"123`},
		{name: "control_character_replaced", method: http.MethodGet, path: pathHealth, id: "req\x01123"},
		{name: "non_ascii_replaced", method: http.MethodGet, path: pathHealth, id: "réq-123"},
		{name: "absent_generated", method: http.MethodGet, path: pathHealth},
	}
	valid := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, nil)
			h := http.Header{}
			if tc.id != "" {
				h.Set("X-Request-Id", tc.id)
			}
			rec := env.do(t, tc.method, tc.path, "", h)
			got := rec.Header().Get("X-Request-Id")
			switch {
			case tc.wantKept && got != tc.id:
				t.Errorf("X-Request-Id got %.80q, want the caller's %q", got, tc.id)
			case !tc.wantKept && (got == tc.id || !valid.MatchString(got)):
				t.Errorf("X-Request-Id got %.80q, want a generated id", got)
			}
			longest := 0
			for _, line := range strings.Split(env.logs.String(), "\n") {
				longest = max(longest, len(line))
			}
			if longest > 4<<10 {
				t.Errorf("longest log line is %d bytes, want at most 4 KiB", longest)
			}
			lines := env.logs.Lines(t)
			if len(lines) == 0 {
				t.Fatal("no log line")
			}
			for _, l := range lines {
				if id, ok := l["request_id"]; ok && id != got {
					t.Errorf("log line %q: request_id %.80q, want the echoed %q", l["message"], id, got)
				}
			}
			t.Logf("longest log line %d bytes", longest)
		})
	}
}

// TestHardening_requestLineBounded sends huge values in every part of an
// unauthenticated request that the request log line records: no log line
// may exceed a few KB, whatever logger the server is given.
func TestHardening_requestLineBounded(t *testing.T) {
	t.Parallel()

	big := strings.Repeat("A", 400<<10)
	cases := []struct {
		name   string
		method string
		path   string
		header http.Header
	}{
		{name: "user_agent", method: http.MethodGet, path: pathHealth, header: http.Header{"User-Agent": {big}}},
		{name: "referer", method: http.MethodGet, path: pathHealth, header: http.Header{"Referer": {big}}},
		{name: "query", method: http.MethodGet, path: pathHealth + "?q=" + big},
		{name: "path", method: http.MethodGet, path: "/" + big},
		{name: "push_without_token", method: http.MethodPost, path: pathPush + "?q=" + big, header: http.Header{"User-Agent": {big}, "Referer": {big}}},
		{name: "cloud_trace", method: http.MethodGet, path: pathHealth, header: http.Header{"X-Cloud-Trace-Context": {big + "/1;o=1"}}},
		{name: "traceparent", method: http.MethodGet, path: pathHealth, header: http.Header{"Traceparent": {"00-" + big + "-00f067aa0ba902b7-01"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			env := newTestEnv(t, func(o *serverOptions) { o.Logger = unboundedLogger(logs) })
			env.do(t, tc.method, tc.path, "", tc.header)
			lines := logs.Lines(t) // every line still parses
			longest := 0
			for _, line := range strings.Split(logs.String(), "\n") {
				longest = max(longest, len(line))
			}
			if longest > 8<<10 {
				t.Errorf("longest log line is %d bytes, want at most 8 KiB", longest)
			}
			t.Logf("%d lines, longest %d bytes", len(lines), longest)
		})
	}
}

// TestHardening_errorLinesBounded makes a handler fail with a 2 MiB error
// text, under a plain logger: handleError's line ("request rejected",
// "request failed") and the request line, whose message is the public
// error, are bounded as every other line of the server.
func TestHardening_errorLinesBounded(t *testing.T) {
	t.Parallel()

	huge := strings.Repeat("E", 2<<20)
	cases := []struct {
		name       string
		createErr  error
		wantStatus int
		wantLine   string // handleError's message
	}{
		{name: "rejected_400", createErr: fmt.Errorf("%w: %s", backfill.ErrInvalid, huge), wantStatus: http.StatusBadRequest, wantLine: "request rejected"},
		{name: "failed_500", createErr: errors.New(huge), wantStatus: http.StatusInternalServerError, wantLine: "request failed"},
		{name: "unavailable_503", createErr: failure.Transient(errors.New(huge)), wantStatus: http.StatusServiceUnavailable, wantLine: "request failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			env, fb := newBackfillEnv(t, func(o *serverOptions) { o.Logger = unboundedLogger(logs) })
			fb.createErr = tc.createErr
			rec := env.do(t, http.MethodPost, pathBackfill, `{"start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00Z"}`, env.invokerHeader(t, testInvoker))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			longest := 0
			for _, line := range strings.Split(logs.String(), "\n") {
				longest = max(longest, len(line))
			}
			if bound := logging.MaxRecordLen + 2<<10; longest > bound {
				t.Errorf("longest log line is %d bytes, want at most %d", longest, bound)
			}
			var found bool
			for _, l := range logs.Lines(t) {
				if l["msg"] == tc.wantLine {
					found = true
					if e, _ := l["error"].(string); !strings.Contains(e, "…(cut from ") {
						t.Errorf("%s: error %.100q… does not say it was cut", tc.wantLine, e)
					}
				}
			}
			if !found {
				t.Errorf("no %q line in\n%.2000s", tc.wantLine, logs.String())
			}
		})
	}
}

// TestHardening_sigtermWithSentryHanging: a push is waiting for Sentry (the
// organisation's region, which hangs); SIGTERM must not wait for it. The
// process answers the push (nothing done, work remaining) and exits within a
// second, long before Cloud Run's 10 s SIGKILL.
func TestHardening_sigtermWithSentryHanging(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 16)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	env := map[string]string{
		"SENTRY_ORG": "acme", "SENTRY_AUTH_TOKEN": "tok", "SENTRY_API_BASE": hang.URL,
		"PORT": "0", "PUSH_AUTH_DISABLED": "true", "LOCAL_OUTPUT_DIR": t.TempDir(),
	}
	base, stop := startServe(t, env, serveDeps{})
	type answer struct {
		code int
		body string
	}
	answered := make(chan answer, 1)
	go func() {
		code, body := post(t, base+pathPush, wrapped("m1", "{}", 0), http.Header{"Content-Type": {"application/json"}})
		answered <- answer{code, body}
	}()
	<-asked // the push waits for Sentry
	sigterm := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	exit := time.Since(sigterm)
	a := <-answered
	t.Logf("SIGTERM to exit with Sentry hanging: %v; push answered %d %s", exit, a.code, a.body)
	if exit > time.Second {
		t.Errorf("exit took %v after SIGTERM, want < 1 s", exit)
	}
	if a.code != http.StatusOK || !strings.Contains(a.body, outcomeNextTick) {
		t.Errorf("push answered %d %s; want 200 with the work left for later", a.code, a.body)
	}
}
