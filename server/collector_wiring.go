package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// collectorAdapter adapts *collector.Collector to the server's Collector.
// Each Run builds a fresh collector.Collector (cheap: options only) so that
// every run has its own run id, which is the lease owner (two pushes served
// concurrently by one instance must not share a lease), and logs through the
// request's logger (trace, request id, message id). The organisation's region
// is resolved on the first run, not at start-up, so that start-up stays fast
// and does not depend on Sentry being reachable; a failed resolution is
// retried by the next run.
type collectorAdapter struct {
	opts  collector.Options // the events stream's options
	base  *sentry.Client
	store collector.Objects

	// streams are the selected streams in run order (collector.StreamNames);
	// empty means events only. issuesPrefix and auditPrefix are the data
	// prefixes of the issues and audit streams; audit is the audit-log
	// client (SENTRY_AUDIT_TOKEN on SENTRY_API_BASE, never the region host:
	// the audit log is a control-silo endpoint).
	streams      []string
	issuesPrefix string
	auditPrefix  string
	audit        collector.AuditAPI

	mu  sync.Mutex
	api *sentry.Client // region-resolved client, once known

	// stop is closed by Drain (SIGTERM): every run this adapter built, in
	// flight or later, gets it as its StopSignal, stops starting pages,
	// commits what it read and returns with work remaining.
	stop     chan struct{}
	stopOnce sync.Once
}

var (
	_ Collector       = (*collectorAdapter)(nil)
	_ StreamCollector = (*collectorAdapter)(nil)
	_ Drainer         = (*collectorAdapter)(nil)
)

// stopSignal returns the channel Drain closes.
func (a *collectorAdapter) stopSignal() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop == nil {
		a.stop = make(chan struct{})
	}
	return a.stop
}

// Drain implements Drainer: in-flight runs (streams and backfills) stop
// softly and commit what they have, well within the server's StopGrace.
func (a *collectorAdapter) Drain() {
	a.stopOnce.Do(func() {
		a.stopSignal()
		a.mu.Lock()
		close(a.stop)
		a.mu.Unlock()
	})
}

func (a *collectorAdapter) client(ctx context.Context) (*sentry.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.api != nil {
		return a.api, nil
	}
	c, err := resolveRegion(ctx, a.base, a.opts.Org)
	if err != nil {
		return nil, err
	}
	a.api = c
	return c, nil
}

// Run runs one pass of every selected stream (a tick).
func (a *collectorAdapter) Run(ctx context.Context) (RunResult, error) {
	return a.RunStreams(ctx, "")
}

// selected returns the streams a message asks for: every selected stream
// for "" or "all" (a tick, or a continuation of several streams), else the
// named one if it is selected (nil otherwise).
func (a *collectorAdapter) selected(stream string) []string {
	all := a.streams
	if len(all) == 0 {
		all = []string{collector.StreamEvents}
	}
	if stream == "" || stream == continueAll {
		return all
	}
	if slices.Contains(all, stream) {
		return []string{stream}
	}
	return nil
}

// RunStreams runs one pass of the named stream ("" or "all": every selected
// stream) within one budget (a fair share each). A configuration error of
// one stream (a missing scope, a rejected token) is logged with
// error_kind=sentry_auth and does not stop the others.
func (a *collectorAdapter) RunStreams(ctx context.Context, stream string) (RunResult, error) {
	logger := logging.FromContext(ctx)
	names := a.selected(stream)
	if len(names) == 0 {
		logger.WarnContext(ctx, "message names a stream that is not selected (STREAMS); nothing to do", "stream", stream)
		return RunResult{}, nil
	}
	var api *sentry.Client
	if slices.Contains(names, collector.StreamEvents) || slices.Contains(names, collector.StreamIssues) {
		var err error
		if api, err = a.client(ctx); err != nil {
			return RunResult{}, err
		}
	}
	opts := a.opts
	opts.RunID = "" // a fresh random id per run
	opts.Logger = logger
	opts.StopSignal = a.stopSignal()
	var streams []collector.Stream
	for _, name := range names {
		st, err := a.stream(name, opts, api)
		if err != nil {
			return RunResult{}, fmt.Errorf("failed to create the %s stream: %w", name, err)
		}
		streams = append(streams, st)
	}
	budget := opts.Budget
	if budget == 0 {
		budget = collector.DefaultBudget
	}
	res, err := collector.RunStreams(ctx, opts.Clock, budget, streams, logger)
	return streamsResult(res), err
}

// stream builds one stream for a run.
func (a *collectorAdapter) stream(name string, opts collector.Options, api *sentry.Client) (collector.Stream, error) {
	switch name {
	case collector.StreamEvents:
		return collector.New(withStats(opts, api), api, a.store, a.store)
	case collector.StreamIssues:
		opts.DataPrefix = a.issuesPrefix
		return collector.NewIssues(opts, api, a.store, a.store)
	case collector.StreamAudit:
		if a.audit == nil {
			return nil, fmt.Errorf("%w: the audit stream needs SENTRY_AUDIT_TOKEN", collector.ErrConfig)
		}
		opts.DataPrefix = a.auditPrefix
		return collector.NewAudit(opts, a.audit, a.store, a.store)
	}
	return nil, fmt.Errorf("%w: unknown stream %q", collector.ErrConfig, name)
}

// continueAll is the continuation's stream name when several streams have
// work left: the continuation runs every selected stream, as a tick does.
const continueAll = "all"

// streamsResult maps a multi-stream outcome onto the HTTP layer's result.
func streamsResult(res collector.StreamsResult) RunResult {
	out := RunResult{LeaseHeld: res.AllLeaseHeld, WorkRemaining: len(res.Remaining) > 0}
	switch len(res.Remaining) {
	case 0:
	case 1:
		out.Continue = res.Remaining[0]
	default:
		out.Continue = continueAll
	}
	return out
}

// classifyCollectorError maps collector errors to HTTP answers, as the CLI's
// exit codes do (wiring.go classify): ErrConfig and permanent Sentry errors
// are configuration errors; everything else is transient.
func classifyCollectorError(err error) ErrorClass {
	if collector.IsConfig(err) || (sentry.IsPermanent(err) && !collector.IsTransient(err)) {
		return ErrorConfig
	}
	return ErrorTransient
}

// buildCollector wires the real collector from the configuration with the
// helpers the CLI uses (wiring.go): one Sentry client for the process (its
// rate limiters are shared by every run) and the bucket or LOCAL_OUTPUT_DIR
// for data and state. The returned function releases the store.
func buildCollector(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*collectorAdapter, func() error, error) {
	base, err := newSentryClient(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	store, location, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	a := &collectorAdapter{
		opts:         collectorOptions(cfg, nil, nil),
		base:         base,
		store:        store,
		streams:      selectedStreams(cfg),
		issuesPrefix: cfg.IssuesPrefix,
		auditPrefix:  cfg.AuditPrefix,
	}
	if cfg.HasStream(collector.StreamAudit) {
		if a.audit, err = newAuditClient(cfg, logger); err != nil {
			_ = closeStore()
			return nil, nil, err
		}
	}
	// Validate the options once at start-up rather than on the first push.
	for _, name := range a.selected("") {
		if _, err := a.stream(name, a.opts, base); err != nil {
			_ = closeStore()
			return nil, nil, fmt.Errorf("failed to create the %s stream: %w", name, err)
		}
	}
	logger.InfoContext(ctx, "collector ready", "output", location, "streams", a.selected(""))
	return a, closeStore, nil
}

// fullSweepInterval maps FULL_SWEEP_INTERVAL onto the collector's option
// (0 there means the default; off is negative).
func fullSweepInterval(cfg *config.Config) time.Duration {
	if cfg.FullSweepInterval <= 0 {
		return -1
	}
	return cfg.FullSweepInterval
}

// withStats turns on idle detection (one stats_v2 request per run, see
// internal/collector/idle.go) when FULL_SWEEP_INTERVAL is not 0 and the
// client can read stats.
func withStats(opts collector.Options, api collector.SentryAPI) collector.Options {
	if s, ok := api.(collector.StatsAPI); ok && opts.FullSweepInterval > 0 {
		opts.Stats = s
	}
	return opts
}

// selectedStreams returns STREAMS in run order (collector.StreamNames).
func selectedStreams(cfg *config.Config) []string {
	out, err := collector.ParseStreams(cfg.Streams)
	if err != nil || len(out) == 0 {
		return []string{collector.StreamEvents} // config validation rejects unknown names
	}
	return out
}

// newAuditClient builds the audit-log client: SENTRY_AUDIT_TOKEN on
// SENTRY_API_BASE as configured, never a region host (the audit log is a
// control-silo endpoint; a region host answers it with a bare 404).
func newAuditClient(cfg *config.Config, logger *slog.Logger) (*sentry.Client, error) {
	if cfg.SentryAuditToken == "" {
		return nil, fmt.Errorf("%w: SENTRY_AUDIT_TOKEN is required when STREAMS includes audit", collector.ErrConfig)
	}
	c, err := sentry.New(sentry.Options{
		BaseURL: cfg.SentryAPIBase,
		Token:   cfg.SentryAuditToken,
		Logger:  logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: failed to create the audit-log client: %w", collector.ErrConfig, err)
	}
	return c, nil
}
