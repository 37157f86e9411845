package logging

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// TestLogger returns a DEBUG-level logger whose lines go through tb.Log, so
// they appear with the test that wrote them (and only on failure or -v).
// Lines logged after the test has finished are dropped instead of panicking.
func TestLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	w := &testWriter{tb: tb}
	tb.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
