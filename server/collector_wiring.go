package main

import (
	"context"
	"fmt"
	"log/slog"
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
	opts  collector.Options
	base  *sentry.Client
	store collector.Objects

	mu  sync.Mutex
	api collector.SentryAPI // region-resolved client, once known
}

var _ Collector = (*collectorAdapter)(nil)

func (a *collectorAdapter) client(ctx context.Context) (collector.SentryAPI, error) {
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

// Run runs one pass of the events stream.
func (a *collectorAdapter) Run(ctx context.Context) (RunResult, error) {
	api, err := a.client(ctx)
	if err != nil {
		return RunResult{}, err
	}
	opts := a.opts
	opts.RunID = "" // a fresh random id per run
	opts.Logger = logging.FromContext(ctx)
	c, err := collector.New(withStats(opts, api), api, a.store, a.store)
	if err != nil {
		return RunResult{}, fmt.Errorf("failed to create collector: %w", err)
	}
	sum, err := c.Run(ctx)
	return RunResult{WorkRemaining: sum.WorkRemaining, LeaseHeld: sum.LeaseHeld}, err
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
		opts:  collectorOptions(cfg, nil, nil),
		base:  base,
		store: store,
	}
	// Validate the options once at start-up rather than on the first push.
	if _, err := collector.New(a.opts, base, store, store); err != nil {
		_ = closeStore()
		return nil, nil, fmt.Errorf("failed to create collector: %w", err)
	}
	logger.InfoContext(ctx, "collector ready", "output", location)
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
