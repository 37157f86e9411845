package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/audit"
	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/coverage"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/issues"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// app is the collector as the service and the local commands use it: the
// selected streams and the backfill jobs of one organisation, over one
// store, with one Sentry client per token for the whole process (its rate
// limiters are shared by every run).
type app struct {
	cfg     *config.Config
	store   objectStore
	main    *regionClient
	audit   *sentry.Client // SENTRY_AUDIT_TOKEN on SENTRY_API_BASE (control silo)
	streams []string       // selected, in run order
	clock   clock.Clock
	// progress, when set, receives the events stream's progress (CLI).
	progress func(events.ProgressEvent)

	stop     chan struct{}
	stopOnce sync.Once
}

var (
	_ Collector  = (*app)(nil)
	_ Drainer    = (*app)(nil)
	_ Backfiller = (*app)(nil)
	_ Coverager  = (*app)(nil)
)

// newApp builds the app from the configuration and the store. It contacts
// nobody; the main token's region is resolved by the first run that needs
// it.
func newApp(cfg *config.Config, store objectStore, logger *slog.Logger) (*app, error) {
	base, err := newSentryClient(cfg, cfg.SentryAuthToken, "SENTRY_AUTH_TOKEN", logger)
	if err != nil {
		return nil, err
	}
	a := &app{
		cfg:     cfg,
		store:   store,
		streams: selectedStreams(cfg),
		clock:   clock.Real{},
		stop:    make(chan struct{}),
	}
	a.main = &regionClient{base: base, org: cfg.SentryOrg, stop: a.stop}
	if slices.Contains(a.streams, audit.Name) {
		if cfg.SentryAuditToken == "" {
			return nil, fmt.Errorf("%w: SENTRY_AUDIT_TOKEN is required when STREAMS includes audit", failure.ErrConfig)
		}
		// The audit log is a control-silo endpoint: always on
		// SENTRY_API_BASE as configured, never the region host (which
		// answers it with a bare 404).
		if a.audit, err = newSentryClient(cfg, cfg.SentryAuditToken, "SENTRY_AUDIT_TOKEN", logger); err != nil {
			return nil, err
		}
	}
	// Validate every stream's options once, at start-up.
	for _, name := range a.streams {
		if _, err := a.stream(name, base); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Drain implements Drainer: in-flight runs (streams and backfills) stop
// softly and commit what they have, and so does a region resolution in
// flight. It takes no lock and never waits.
func (a *app) Drain() { a.stopOnce.Do(func() { close(a.stop) }) }

func (a *app) stopped() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

// env is the engine environment of a stream reading through cl.
func (a *app) env(cl *sentry.Client) engine.Env {
	return engine.Env{Data: a.store, State: a.store, Clock: a.clock, Stop: a.stop, Counters: cl.RequestCounts}
}

// eventsOptions maps the configuration onto the events stream's options.
func (a *app) eventsOptions(cl *sentry.Client) events.Options {
	c := a.cfg
	o := events.Options{
		Org:                c.SentryOrg,
		DataPrefix:         c.GCSPrefix,
		StatePrefix:        c.StateKey,
		MaxProjects:        c.MaxProjects,
		MaxPagesPerProject: c.MaxPagesPerProject,
		Lag:                c.CollectLag,
		Overlap:            c.CollectOverlap,
		InitialLookback:    c.InitialLookback,
		Retention:          c.EventRetention,
		FullSweepInterval:  -1,
		Progress:           a.progress,
	}
	if c.FullSweepInterval > 0 {
		o.FullSweepInterval = c.FullSweepInterval
		o.Stats = cl
	}
	// The bucket's listing serves the late lane's look in the bucket,
	// whoever queued the event (the sweep, or the coverage ledger).
	o.Bucket = a.store
	if c.LateSweep {
		o.Discover, o.Stats = cl, cl
	}
	return o
}

// stream builds one stream reading through cl (the region-resolved main
// client; the audit stream uses its own).
func (a *app) stream(name string, cl *sentry.Client) (collector.Stream, error) {
	c := a.cfg
	switch name {
	case events.Name:
		return events.New(a.eventsOptions(cl), cl, a.env(cl))
	case issues.Name:
		return issues.New(issues.Options{
			Org: c.SentryOrg, DataPrefix: c.IssuesPrefix, StatePrefix: c.StateKey,
			Lag: c.CollectLag, Overlap: c.CollectOverlap, InitialLookback: c.InitialLookback,
		}, cl, a.env(cl))
	case coverage.Name:
		ev, err := events.New(a.eventsOptions(cl), cl, a.env(cl))
		if err != nil {
			return nil, err
		}
		return coverage.New(coverage.Options{Org: c.SentryOrg, StatePrefix: c.StateKey, MaxProjects: c.MaxProjects},
			cl, ev, a.store, a.env(cl))
	case audit.Name:
		return audit.New(audit.Options{
			Org: c.SentryOrg, DataPrefix: c.AuditPrefix, StatePrefix: c.StateKey,
			Overlap: max(audit.DefaultOverlap, c.CollectOverlap), InitialLookback: c.InitialLookback,
		}, a.audit, a.env(a.audit))
	}
	return nil, fmt.Errorf("%w: unknown stream %q", failure.ErrConfig, name)
}

// selectedStreams are the streams a run runs, in run order: STREAMS, and
// the coverage ledger with the events stream (COVERAGE_LEDGER).
func selectedStreams(cfg *config.Config) []string {
	names := slices.Clone(cfg.Streams)
	if cfg.CoverageLedger && slices.Contains(names, events.Name) {
		names = append(names, coverage.Name)
	}
	return collector.Order(names)
}

// Coverage implements Coverager: the coverage ledger since since, read from
// the store alone.
func (a *app) Coverage(ctx context.Context, since time.Time, projects []string) (*coverage.Report, error) {
	c := a.cfg
	return coverage.ReadReport(ctx, coverage.Source{State: a.store, Bucket: a.store, StatePrefix: c.StateKey,
		Org: c.SentryOrg, SweepOff: !c.LateSweep}, since, projects)
}

// selected returns the streams a message asks for: every selected stream
// for "" or "all" (a tick, or a continuation of several streams), else the
// named one if it is selected (nil otherwise).
func (a *app) selected(stream string) []string {
	if stream == "" || stream == continueAll {
		return a.streams
	}
	if slices.Contains(a.streams, stream) {
		return []string{stream}
	}
	return nil
}

// continueAll is the continuation's stream name when several streams have
// work left: the continuation runs every selected stream, as a tick does.
const continueAll = "all"

// RunStreams implements Collector: one pass of the named stream ("" or
// "all": every selected stream) within one budget (a fair share each).
func (a *app) RunStreams(ctx context.Context, stream string) (RunResult, error) {
	names := a.selected(stream)
	if len(names) == 0 {
		logging.FromContext(ctx).WarnContext(ctx, "message names a stream that is not selected (STREAMS); nothing to do", "stream", stream)
		return RunResult{}, nil
	}
	res, err := a.run(ctx, names)
	if err != nil && a.stopped() && len(res.Summaries) == 0 {
		// Stopped before any stream ran (the region was being resolved):
		// nothing was done; the work goes on with the continuation.
		return streamsResult(collector.Result{Remaining: names}), nil
	}
	return streamsResult(res), err
}

// run builds the named streams and runs them within RUN_BUDGET.
func (a *app) run(ctx context.Context, names []string) (collector.Result, error) {
	var main *sentry.Client
	if slices.ContainsFunc(names, func(n string) bool { return n != audit.Name }) {
		var err error
		if main, err = a.main.get(ctx); err != nil {
			return collector.Result{}, err
		}
	}
	streams := make([]collector.Stream, 0, len(names))
	for _, name := range names {
		s, err := a.stream(name, main)
		if err != nil {
			return collector.Result{}, err
		}
		streams = append(streams, s)
	}
	return collector.Run(ctx, a.clock, a.cfg.RunBudget, streams, a.stopped)
}

// streamsResult maps a multi-stream outcome onto the HTTP layer's result.
func streamsResult(res collector.Result) RunResult {
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

// jobs returns the backfill jobs, reading Sentry through cl.
func (a *app) jobs(cl *sentry.Client) (*backfill.Jobs, error) {
	s, err := events.New(a.eventsOptions(cl), cl, a.env(cl))
	if err != nil {
		return nil, err
	}
	return backfill.New(s, a.store)
}

// CreateBackfill implements Backfiller. The request is checked before
// Sentry is contacted: a bad range is answered at once.
func (a *app) CreateBackfill(ctx context.Context, spec backfill.Spec) (backfill.Job, error) {
	if _, _, _, err := backfill.Validate(spec, a.clock.Now().UTC(), a.cfg.EventRetention); err != nil {
		return backfill.Job{}, err
	}
	cl, err := a.main.get(ctx)
	if err != nil {
		return backfill.Job{}, err
	}
	j, err := a.jobs(cl)
	if err != nil {
		return backfill.Job{}, err
	}
	return j.Create(ctx, spec)
}

// GetBackfill implements Backfiller. It needs no Sentry access.
func (a *app) GetBackfill(ctx context.Context, id string) (backfill.Job, error) {
	j, err := a.jobs(a.main.base)
	if err != nil {
		return backfill.Job{}, err
	}
	return j.Get(ctx, id)
}

// RunBackfill implements Backfiller: the job is looked up before Sentry is
// contacted, so an unknown job is answered at once.
func (a *app) RunBackfill(ctx context.Context, id string) (backfill.Result, error) {
	if _, err := a.GetBackfill(ctx, id); err != nil {
		return backfill.Result{}, err
	}
	cl, err := a.main.get(ctx)
	if err != nil {
		return backfill.Result{}, err
	}
	j, err := a.jobs(cl)
	if err != nil {
		return backfill.Result{}, err
	}
	return j.Run(ctx, id, a.cfg.RunBudget)
}
