package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// runCollect runs one collection pass with the configuration from the
// environment. When soft closes (the first signal) the pass stops softly, as
// the service's runs do on SIGTERM: what was read is committed, and the
// command exits 3.
func runCollect(ctx context.Context, soft <-chan struct{}, args []string) error {
	fs := newFlags("collect", "[-json]", `Runs one collection pass of the selected streams (STREAMS) with the configuration from the
environment, into GCS_BUCKET, or LOCAL_OUTPUT_DIR when no bucket is set. A pass reads what
is new since the last one (the first reads INITIAL_LOOKBACK) within RUN_BUDGET.

exit codes: 0 done; 2 configuration error (fix it: retrying will not help); 3 Sentry or
Cloud Storage unavailable for any stream (progress is committed: run again); 4 another run holds the lease
(nothing was done: run again when it ends); 1 anything else.

The first SIGINT (Ctrl-C) or SIGTERM stops the pass softly: it stops reading, commits
what it read and exits 3 (run again to go on). A second one cuts it short.`)
	jsonOut := fs.Bool("json", false, "print each stream's run summary as one JSON object on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, env, err := openCLI(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = env.close() }()
	defer drainOn(ctx, soft, env.app.Drain)()
	progress := newProgressPrinter(os.Stderr)
	env.app.progress = progress.print
	if progress.enabled {
		fmt.Fprintf(os.Stderr, "collecting %s from %s into %s (streams: %s)\n",
			env.cfg.SentryOrg, env.cfg.SentryAPIBase, env.location, strings.Join(env.app.streams, ", "))
	}
	res, runErr := env.app.run(ctx, env.app.streams)
	for _, sum := range res.Summaries {
		if err := printSummary(os.Stdout, sum, *jsonOut); err != nil {
			return err
		}
	}
	err = collectOutcome(res, runErr, env.app.streams)
	if isClosed(soft) {
		return stoppedBySignal(err, "run collect again to go on")
	}
	return err
}

// collectOutcome is collect's error (and so its exit code) for a run's
// result. collector.Run succeeds when at least one stream did, which is right
// for the service (the continuation retries the others); a command line must
// still say that a stream failed, or a run in which Sentry failed every
// project's events (while the ledger or the issues were read) would exit 0.
func collectOutcome(res collector.Result, runErr error, streams []string) error {
	if runErr != nil {
		return withCode(fmt.Errorf("collection failed: %w", runErr))
	}
	if held := leaseHeld(res.Summaries); len(held) > 0 {
		return &exitError{code: exitLeaseHeld, err: errors.New(strings.Join(held, "; "))}
	}
	if len(res.Errors) == 0 {
		return nil
	}
	var errs []error
	code := exitTransient // Sentry failed the stream: run again
	for _, name := range streams {
		if e := res.Errors[name]; e != nil {
			errs = append(errs, fmt.Errorf("%s stream: %w", name, e))
			if failure.IsConfig(e) {
				code = exitConfig // retrying will not help the stream
			}
		}
	}
	return &exitError{code: code, err: fmt.Errorf("collection failed for some streams (the others were collected): %w", errors.Join(errs...))}
}

func leaseHeld(sums []engine.Summary) []string {
	var out []string
	for _, s := range sums {
		if s.LeaseHeld {
			out = append(out, fmt.Sprintf("the %s stream is being collected by another run (%s) until %s at the latest: nothing was done; run again after it",
				s.Stream, s.LeaseHolder, s.LeaseUntil.UTC().Format(time.RFC3339)))
		}
	}
	return out
}

// progressPrinter shows per-project progress on a terminal: one line per
// project and pass, when the project is finished for the pass.
type progressPrinter struct {
	w       io.Writer
	enabled bool
}

func newProgressPrinter(f *os.File) *progressPrinter {
	return &progressPrinter{w: f, enabled: isTerminal(f)}
}

func (p *progressPrinter) print(e events.ProgressEvent) {
	if !p.enabled || !e.Done && e.Err == nil {
		return
	}
	status := "more next run"
	switch {
	case e.Err != nil:
		status = "failed: " + e.Err.Error()
	case e.CaughtUp:
		status = "caught up"
	}
	fmt.Fprintf(p.w, "  %-24s %-10s %5d pages %8d events %6d duplicates  %s\n",
		e.ProjectSlug, e.ProjectID, e.Pages, e.Events, e.Duplicates, status)
}

// printSummary writes a stream's run summary: JSON when asked, else one line
// of text.
func printSummary(w io.Writer, sum engine.Summary, asJSON bool) error {
	var err error
	switch {
	case asJSON:
		var b []byte
		if b, err = json.Marshal(summaryMap(sum.LogValue())); err == nil {
			_, err = fmt.Fprintf(w, "%s\n", b)
		}
	case sum.LeaseHeld:
		_, err = fmt.Fprintf(w, "run %s: %s stream: another run (%s) holds the lease until %s: nothing done\n",
			sum.RunID, sum.Stream, sum.LeaseHolder, sum.LeaseUntil.UTC().Format(time.RFC3339))
	default:
		projects := ""
		if p := sum.Projects; p != nil {
			projects = fmt.Sprintf("%d projects (%d caught up, %d skipped as idle, %d failed), ", p.Considered, p.Completed, p.Skipped, p.Failed)
		}
		_, err = fmt.Fprintf(w, "run %s: %s stream: %s%d pages, %d records written, %d duplicates skipped, %d objects, %d requests (%d rate-limited), %s, lag %s, work remaining: %t\n",
			sum.RunID, sum.Stream, projects, sum.Pages, sum.Records, sum.Duplicates, sum.Objects, sum.Requests, sum.RateLimited,
			sum.Duration.Round(time.Millisecond), sum.Lag.Round(time.Second), sum.WorkRemaining)
	}
	if err != nil {
		return fmt.Errorf("failed to print the summary: %w", err)
	}
	return nil
}

// summaryMap turns a slog group value into a JSON-friendly map.
func summaryMap(v slog.Value) map[string]any {
	m := map[string]any{}
	for _, a := range v.Resolve().Group() {
		val := a.Value.Resolve()
		if val.Kind() == slog.KindGroup {
			m[a.Key] = summaryMap(val)
			continue
		}
		m[a.Key] = val.Any()
	}
	return m
}
