package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// signalWait bounds every wait for something a signal must cause; it is a
// failsafe, not a synchronisation.
const signalWait = 30 * time.Second

// kill sends sig to this process (the test binary), where notifyStop
// catches it.
func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatalf("failed to send %v: %v", sig, err)
	}
}

// TestNotifyStop: the first signal closes soft and leaves the context alone;
// the second, of either kind, cancels it.
func TestNotifyStop(t *testing.T) {
	ctx, soft, release := notifyStop(t.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer release()
	kill(t, syscall.SIGINT)
	select {
	case <-soft:
	case <-time.After(signalWait):
		t.Fatal("the first SIGINT did not close soft")
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("the first signal cancelled the context: %v", err)
	}
	kill(t, syscall.SIGTERM)
	select {
	case <-ctx.Done():
	case <-time.After(signalWait):
		t.Fatal("the second signal did not cancel the context")
	}
}

// TestCollect_signalStopsSoftly: SIGINT while collect waits for a page is
// the service's soft stop: the request in flight is cut, the page read before
// it is written and committed, and collect exits 3 saying it was stopped (not
// "context canceled" with nothing written).
func TestCollect_signalStopsSoftly(t *testing.T) {
	sim := sentrysim.New(sentrysim.Config{Org: "acme", Seed: 9, RateLimits: sentrysim.RateLimitConfig{Disabled: true}})
	p := sim.AddProject("web", "Web")
	now := time.Now().UTC()
	for i := range 150 { // a page and a half
		sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: now.Add(-10*time.Minute - time.Duration(i)*time.Second), Message: "boom"})
	}
	// Sentry, except that the project's second events page never comes: the
	// request waits until the client gives up on it.
	eventsPath := "/api/0/projects/acme/" + p.ID + "/events/"
	var pages atomic.Int64
	hanging, unblock := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == eventsPath && pages.Add(1) == 2 {
			close(hanging)
			select {
			case <-r.Context().Done():
			case <-unblock: // the test is over
			}
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(unblock) }) // before srv.Close, which waits for the handler
	dir := t.TempDir()
	setEnv(t, map[string]string{"SENTRY_ORG": "acme", "SENTRY_AUTH_TOKEN": "tok", "SENTRY_API_BASE": srv.URL,
		"LOCAL_OUTPUT_DIR": dir, "INITIAL_LOOKBACK": "1h"})

	ctx, soft, release := notifyStop(t.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer release()
	errc := make(chan error, 1)
	go func() { errc <- realMain(ctx, soft, []string{"collect"}) }()
	select {
	case <-hanging:
	case err := <-errc:
		t.Fatalf("collect ended before it asked for the second page: %v", err)
	case <-time.After(signalWait):
		t.Fatal("collect did not ask for the second page")
	}
	kill(t, syscall.SIGINT)
	var err error
	select {
	case err = <-errc:
	case <-time.After(signalWait):
		t.Fatal("collect did not stop after SIGINT")
	}

	if got := exitCode(err); got != exitTransient {
		t.Errorf("exit %d (%v), want %d", got, err, exitTransient)
	}
	if msg := err.Error(); !strings.Contains(msg, "stopped by signal: what was read is committed") || strings.Contains(msg, "context canceled") {
		t.Errorf("message %q, want it to say the run was stopped by a signal after committing what it read", msg)
	}
	if ctx.Err() != nil {
		t.Error("one signal cancelled the context")
	}
	// The first page is in the output, each event once; the rest is left
	// for the next run.
	store, err := sink.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sentrysim.Verify(t.Context(), store, "sentry/events/", sim.GroundTruth())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 100 || rep.Distinct() != 100 || len(rep.Lost) != 50 || len(rep.Duplicated)+len(rep.Unknown)+len(rep.Problems) != 0 {
		t.Errorf("output after the stop: %v; want the first page's 100 events, each once, and the other 50 left", rep)
	}
}

// TestBackfillLoop_signal: once the signal drained a run, the loop starts no
// other and exits 3 saying how to resume.
func TestBackfillLoop_signal(t *testing.T) {
	t.Parallel()
	soft := make(chan struct{})
	runs := 0
	var out bytes.Buffer
	err := backfillLoop(t.Context(), soft, os.Stderr, &out, false, "j1", func(context.Context) (backfill.Result, error) {
		runs++
		close(soft) // the signal arrives during the run, which stops softly
		return backfill.Result{Summary: engine.Summary{WorkRemaining: true},
			Job: backfill.Job{ID: "j1", Status: "running", Projects: []backfill.Project{{ID: "1", WindowsDone: 1, WindowsTotal: 3}}}}, nil
	})
	if runs != 1 {
		t.Errorf("%d runs after the signal, want 1", runs)
	}
	if got := exitCode(err); got != exitTransient || !errors.Is(err, errStoppedBySignal) || !strings.Contains(err.Error(), "resume with -job j1") {
		t.Errorf("exit %d (%v), want %d, stopped by signal, resume with -job j1", got, err, exitTransient)
	}
}
