// Server is the sentry-gcs program: the Cloud Run service that collects a
// Sentry organisation's data into Cloud Storage, and its local sub-commands.
//
// Usage:
//
//	server [serve]          run the HTTP service (Pub/Sub push, backfill, coverage, health)
//	server collect [-json]  run one collection pass with the configuration from the environment
//	server backfill -start T -end T [-projects a,b|all] [-json]
//	                        create a backfill job for [start, end) (RFC 3339) and run it to
//	                        completion locally, in bounded runs; -job ID resumes a job
//	server coverage [-since 24h] [-projects a,b] [-json]
//	                        print the coverage ledger and a verdict (exit 1: an hour is
//	                        not complete)
//	server demo             run collection against the built-in Sentry simulator
//	server help             this text; every sub-command takes -h
//
// Exit codes of the local commands: 0 done, 1 unexpected failure, 2
// configuration error or invalid request, 3 transient failure or stopped by a
// signal (run again), 4 another run holds the lease.
//
// SIGINT or SIGTERM stops softly: the service drains its runs and a local
// command its own, committing what was read; a second signal cuts what is
// still in flight.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

func main() {
	ctx, soft, release := notifyStop(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	args := os.Args[1:]
	if !isLocalCommand(args) {
		// The service logs JSON in Cloud Logging's shape from the first
		// line, so that even a configuration error at start-up is an
		// ERROR entry; runServe then applies LOG_LEVEL.
		slog.SetDefault(logging.New(os.Stdout, logging.Options{}))
	}
	err := realMain(ctx, soft, args)
	release()
	if errors.Is(err, errHelp) {
		return
	}
	if err != nil {
		if isLocalCommand(args) {
			// A person reads this: one problem per line, as written.
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
		} else {
			slog.Default().ErrorContext(ctx, "process exited with error", "error", err)
		}
		os.Exit(exitCode(err))
	}
}

// isLocalCommand reports whether args run something people run in a
// terminal (collect, backfill, demo, help, an unknown command), as opposed to
// the service, whose output Cloud Logging reads.
func isLocalCommand(args []string) bool {
	return len(args) > 0 && args[0] != "serve"
}

// usage is the program's help.
const usage = `usage: server [command] [flags]

commands:
  serve      run the HTTP service: Pub/Sub push (/pubsub/push), backfill (/backfill),
             coverage (/coverage), health (/health); the default when no command is given
  collect    run one collection pass with the configuration from the environment
  backfill   read a past range again, writing only what the output does not hold yet
  coverage   print the coverage ledger (per hour and project: Sentry's counts against what
             was collected) and a verdict; exit 1 when a final hour is not complete
  demo       run collection against the built-in Sentry simulator and check the result
  help       show this text

Every command takes -h for its flags. Configuration comes from environment variables
(see the README's Configuration table).

exit codes: 0 done; 1 unexpected failure; 2 configuration error or invalid request;
3 transient failure (Sentry or Cloud Storage unavailable; run again) or stopped by a
signal (what was read is committed; run again); 4 another run holds the lease (run
again after it ends). 'go run' prints "exit status N" and exits 1.

The first SIGINT (Ctrl-C) or SIGTERM stops softly: the run in flight stops reading and
commits what it read. A second one cuts it short.
`

// realMain dispatches to a sub-command. soft is closed by the first signal,
// ctx is cancelled by the second (notifyStop). The commands that run
// collection drain their run when soft closes; for the others, which have
// nothing to commit, and for the service, whose shutdown drains its runs,
// the first signal cancels the context.
func realMain(ctx context.Context, soft <-chan struct{}, args []string) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	firstCtx, cancel := untilSoft(ctx, soft)
	defer cancel()
	switch cmd {
	case "serve":
		return runServe(firstCtx, args)
	case "collect":
		return runCollect(ctx, soft, args)
	case "demo":
		return runDemo(ctx, soft, args)
	case "backfill":
		return runBackfillCmd(ctx, soft, args)
	case "coverage":
		return runCoverageCmd(firstCtx, args)
	case "help", "-h", "-help", "--help":
		return printUsage(os.Stdout)
	default:
		_ = printUsage(os.Stderr)
		return &exitError{code: exitConfig, err: fmt.Errorf("unknown command %q (want serve, collect, backfill, coverage, demo or help)", cmd)}
	}
}

func printUsage(w io.Writer) error {
	if _, err := io.WriteString(w, usage); err != nil {
		return fmt.Errorf("failed to print the help: %w", err)
	}
	return errHelp
}
