package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// runCollect runs one collection pass with the configuration from the
// environment. Exit codes: 0 done, 2 configuration error, 3 transient
// failure (progress committed; run again later), 1 anything else.
func runCollect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	jsonOut := fs.Bool("json", false, "print the run summary as one JSON object on stdout")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	ctx, env, err := openCLI(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = env.close() }()
	cfg, logger, api, store, location := env.cfg, env.logger, env.api, env.store, env.location

	progress := newProgressPrinter(os.Stderr)
	a := &collectorAdapter{
		opts:         collectorOptions(cfg, logger, progress.print),
		base:         api,
		api:          api, // resolved by openCLI
		store:        store,
		streams:      selectedStreams(cfg),
		issuesPrefix: cfg.IssuesPrefix,
		auditPrefix:  cfg.AuditPrefix,
	}
	if cfg.HasStream(collector.StreamAudit) {
		if a.audit, err = newAuditClient(cfg, logger); err != nil {
			return &exitError{code: exitConfig, err: err}
		}
	}
	var streams []collector.Stream
	for _, name := range a.selected("") {
		st, err := a.stream(name, a.opts, api)
		if err != nil {
			return &exitError{code: exitConfig, err: err}
		}
		streams = append(streams, st)
	}
	if progress.enabled {
		fmt.Fprintf(os.Stderr, "collecting %s from %s into %s (streams: %s)\n", cfg.SentryOrg, api.BaseURL(), location, strings.Join(a.selected(""), ", "))
	}
	res, runErr := collector.RunStreams(ctx, nil, cfg.RunBudget, streams, logger)
	for _, sum := range res.Summaries {
		if err := printSummary(os.Stdout, sum, *jsonOut); err != nil {
			return err
		}
	}
	if runErr != nil {
		return &exitError{code: classify(runErr), err: fmt.Errorf("collection failed: %w", runErr)}
	}
	if cerrs := res.ConfigErrors(); len(cerrs) > 0 {
		var errs []error
		for _, name := range a.selected("") {
			if e := cerrs[name]; e != nil {
				errs = append(errs, fmt.Errorf("%s stream: %w", name, e))
			}
		}
		return &exitError{code: exitConfig, err: fmt.Errorf("collection failed for some streams (the others were collected): %w", errors.Join(errs...))}
	}
	return nil
}

// collectorOptions maps the configuration onto the collector's options.
func collectorOptions(cfg *config.Config, logger *slog.Logger, progress func(collector.ProgressEvent)) collector.Options {
	return collector.Options{
		Org:                cfg.SentryOrg,
		DataPrefix:         cfg.GCSPrefix,
		StatePrefix:        cfg.StateKey,
		MaxProjects:        cfg.MaxProjects,
		MaxPagesPerProject: cfg.MaxPagesPerProject,
		Lag:                explicitDuration(cfg.CollectLag),
		Overlap:            explicitDuration(cfg.CollectOverlap),
		InitialLookback:    cfg.InitialLookback,
		Budget:             cfg.RunBudget,
		FullSweepInterval:  fullSweepInterval(cfg),
		Logger:             logger,
		Progress:           progress,
	}
}

// explicitDuration maps a configured duration onto a collector option in
// which 0 means "the default": the configuration has applied its defaults
// already, so a configured 0 is a real zero (collector.ZeroDuration).
func explicitDuration(d time.Duration) time.Duration {
	if d == 0 {
		return collector.ZeroDuration
	}
	return d
}

// cliLogger logs to stderr: readable text on a terminal, Cloud Logging JSON
// otherwise.
func cliLogger(level string) *slog.Logger {
	lvl, err := logging.ParseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	if isTerminal(os.Stderr) {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	}
	return logging.New(os.Stderr, logging.Options{Level: lvl})
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressPrinter shows per-project progress on a terminal.
type progressPrinter struct {
	w       io.Writer
	enabled bool
}

func newProgressPrinter(f *os.File) *progressPrinter {
	return &progressPrinter{w: f, enabled: isTerminal(f)}
}

func (p *progressPrinter) print(e collector.ProgressEvent) {
	if !p.enabled {
		return
	}
	status := "reading"
	switch {
	case e.Err != nil:
		status = "failed: " + e.Err.Error()
	case e.Done && e.CaughtUp:
		status = "caught up"
	case e.Done:
		status = "more next run"
	}
	fmt.Fprintf(p.w, "  %-24s %-10s %5d pages %8d events %6d duplicates  %s\n",
		e.ProjectSlug, e.ProjectID, e.Pages, e.Events, e.Duplicates, status)
}

// printSummary writes the run summary: JSON when asked, else a short text.
func printSummary(w io.Writer, sum collector.Summary, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(summaryMap(sum.LogValue()))
		if err != nil {
			return fmt.Errorf("failed to encode the summary: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		if err != nil {
			return fmt.Errorf("failed to print the summary: %w", err)
		}
		return nil
	}
	if sum.Stream == collector.StreamIssues || sum.Stream == collector.StreamAudit {
		_, err := fmt.Fprintf(w, "run %s: %s stream: %d pages, %d records written, %d duplicates skipped, %d objects, %d requests (%d rate-limited), %s, work remaining: %t\n",
			sum.RunID, sum.Stream, sum.Pages, sum.Records, sum.DuplicatesSkipped, sum.Objects, sum.Requests, sum.RateLimited,
			sum.Duration.Round(time.Millisecond), sum.WorkRemaining)
		if err != nil {
			return fmt.Errorf("failed to print the summary: %w", err)
		}
		return nil
	}
	_, err := fmt.Fprintf(w, "run %s: %d projects (%d caught up, %d failed), %d pages, %d events written, %d duplicates skipped, %d objects, %d requests (%d rate-limited), %s, lag %s, work remaining: %t\n",
		sum.RunID, sum.Projects, sum.ProjectsCompleted, sum.ProjectsFailed, sum.Pages, sum.EventsWritten,
		sum.DuplicatesSkipped, sum.Objects, sum.Requests, sum.RateLimited, sum.Duration.Round(time.Millisecond),
		sum.LagBehindNow.Round(time.Second), sum.WorkRemaining)
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
