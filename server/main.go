// Server is the sentry-gcs program: the Cloud Run service that collects a
// Sentry organisation's data into Cloud Storage, and its local sub-commands.
//
// Usage:
//
//	server [serve]          run the HTTP service (Pub/Sub push, backfill, health)
//	server collect [-json]  run one collection pass with the current configuration
//	server backfill -start T -end T [-projects a,b|all] [-job ID] [-json]
//	                        create a backfill job for [start, end) (RFC 3339) and run it to
//	                        completion locally, in bounded runs with a progress bar; -job
//	                        resumes a job. Exit codes as collect: 2 configuration or invalid
//	                        request, 3 transient failure (resume with -job).
//	server demo             run collection against the built-in Sentry simulator
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	if !isLocalCommand(os.Args[1:]) {
		// The service logs JSON in Cloud Logging's shape from the first
		// line, so that even a configuration error at start-up is an
		// ERROR entry; runServe then applies LOG_LEVEL.
		slog.SetDefault(logging.New(os.Stdout, logging.Options{}))
	}
	err := realMain(ctx, os.Args[1:])
	done()
	if err != nil {
		var ee *exitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.code
		}
		if isLocalCommand(os.Args[1:]) {
			// A person reads this: one problem per line, as written.
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
		} else {
			slog.Default().ErrorContext(ctx, "process exited with error", "error", err)
		}
		os.Exit(code)
	}
}

// isLocalCommand reports whether args run one of the sub-commands people run
// in a terminal (collect, backfill, demo), as opposed to the service.
func isLocalCommand(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "collect", "backfill", "demo":
		return true
	}
	return false
}

// exitError carries a specific process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// realMain dispatches to a sub-command.
func realMain(ctx context.Context, args []string) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args)
	case "collect":
		return runCollect(ctx, args)
	case "demo":
		return runDemo(ctx, args)
	case "backfill":
		return runBackfillCmd(ctx, args)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(os.Stdout, "usage: server [serve|collect|backfill|demo] [flags]")
		return nil
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown sub-command %q (want serve, collect, backfill or demo)", cmd)}
	}
}
