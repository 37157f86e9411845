package sentry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// TestRetryLogUsesContextLogger checks that a retry is logged through the
// logger of the request's context (which carries the push request's trace
// and message id) when there is one, else through Options.Logger, and that
// the backoff is logged in seconds under a key that says so.
func TestRetryLogUsesContextLogger(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		ctxLogger  bool
		wantInCtx  bool
		wantInBase bool
	}{
		{name: "context_logger", ctxLogger: true, wantInCtx: true},
		{name: "client_logger_without_one", ctxLogger: false, wantInBase: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var base, req bytes.Buffer
			baseLogger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &base, mu: &mu}, nil))
			ctx := t.Context()
			if tc.ctxLogger {
				reqLogger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &req, mu: &mu}, nil)).With("message_id", "m-1")
				ctx = logging.WithLogger(ctx, reqLogger)
			}
			sc := newScript(detail(500, "Internal Error"), newFakeEvents(1, "1").ServeHTTP)
			c, _ := newTestClient(t, sc, clock.NewFake(t0), func(o *Options) { o.Logger = baseLogger })
			if _, err := c.ListEvents(ctx, EventsQuery{Org: "acme", Project: "1"}); err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Contains(req.String(), "retrying"); got != tc.wantInCtx {
				t.Errorf("retry in the context's logger: got %v, want %v (%q)", got, tc.wantInCtx, req.String())
			}
			if got := strings.Contains(base.String(), "retrying"); got != tc.wantInBase {
				t.Errorf("retry in the client's logger: got %v, want %v (%q)", got, tc.wantInBase, base.String())
			}
			line := retryLine(t, req.String()+base.String())
			if tc.ctxLogger {
				if got, want := line["message_id"], "m-1"; got != want {
					t.Errorf("message_id got %v, want %v", got, want)
				}
			}
			if _, ok := line["backoff"]; ok {
				t.Errorf("backoff logged without a unit: %v", line)
			}
			secs, ok := line["backoff_seconds"].(float64)
			if !ok || secs <= 0 || secs > backoffBase.Seconds()+0.01 {
				t.Errorf("backoff_seconds got %v, want a number of seconds in (0, %v]", line["backoff_seconds"], backoffBase.Seconds())
			}
		})
	}
}

// retryLine returns the first retry line of JSON logs.
func retryLine(t *testing.T, logs string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, "retrying") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("failed to parse log line %q: %v", l, err)
		}
		return m
	}
	t.Fatalf("no retry line in %q", logs)
	return nil
}
