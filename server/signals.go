package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// The process stops in two steps on SIGINT or SIGTERM. The first signal asks
// for the soft stop: the service shuts down and drains its runs (Cloud Run
// sends SIGTERM when it scales down), and a local command drains its own run
// the same way (app.Drain, the engine's soft stop): no new page request is
// started, the one in flight is cut, and what was read is written and
// committed. A second signal cancels the context: whatever is still in flight,
// an upload included, is cut (exactly-once does not rest on a clean stop; the
// next run recovers what this one left).

// notifyStop listens for sigs until release is called: soft is closed by the
// first signal, ctx (derived from parent) is cancelled by the second, and by
// release.
func notifyStop(parent context.Context, sigs ...os.Signal) (ctx context.Context, soft <-chan struct{}, release func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	softc := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ch:
			close(softc)
		case <-done:
			return
		}
		select {
		case <-ch:
			cancel()
		case <-done:
		}
	})
	release = sync.OnceFunc(func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
		cancel()
	})
	return ctx, softc, release
}

// untilSoft returns a context that is also cancelled when soft closes: the
// service's shutdown starts at the first signal.
func untilSoft(ctx context.Context, soft <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-soft:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// drainOn calls drain, once, when soft closes (at once if it is closed
// already), until release is called. It logs the stop, so that whoever
// pressed Ctrl-C knows the command is finishing and how to cut it short.
func drainOn(ctx context.Context, soft <-chan struct{}, drain func()) (release func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-soft:
			logging.FromContext(ctx).WarnContext(ctx, "stop requested: the run stops reading and commits what it read; a second signal cuts it short")
			drain()
		case <-done:
		}
	})
	return sync.OnceFunc(func() {
		close(done)
		wg.Wait()
	})
}

// isClosed reports whether soft was closed: the command was asked to stop.
func isClosed(soft <-chan struct{}) bool {
	select {
	case <-soft:
		return true
	default:
		return false
	}
}

// errStoppedBySignal is the cause of a command's exit after the soft stop.
var errStoppedBySignal = errors.New("stopped by signal")

// stoppedBySignal is a command's error after the soft stop, given the error
// (nil when none) the command had otherwise ended with. A run that stopped
// softly committed what it read and left the rest for the next run, so it
// exits 3, "run again", with next saying how; if it also failed, that failure
// keeps its own exit code (a configuration error is not fixed by running
// again) and is named after the stop.
func stoppedBySignal(err error, next string) error {
	if err == nil {
		return &exitError{code: exitTransient, err: fmt.Errorf("%w: what was read is committed; %s", errStoppedBySignal, next)}
	}
	return &exitError{code: exitCode(err), err: fmt.Errorf("%w: %w", errStoppedBySignal, err)}
}
