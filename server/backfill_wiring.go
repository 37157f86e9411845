package main

import (
	"context"
	"fmt"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

var _ Backfiller = (*collectorAdapter)(nil)

// newCollector builds a collector.Collector for one request (a fresh run id,
// the request's logger).
func (a *collectorAdapter) newCollector(ctx context.Context) (*collector.Collector, error) {
	api, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	opts := a.opts
	opts.RunID = ""
	opts.Logger = logging.FromContext(ctx)
	opts.StopSignal = a.stopSignal()
	c, err := collector.New(opts, api, a.store, a.store)
	if err != nil {
		return nil, fmt.Errorf("failed to create collector: %w", err)
	}
	return c, nil
}

// CreateBackfill validates and records a backfill job.
func (a *collectorAdapter) CreateBackfill(ctx context.Context, spec collector.BackfillSpec) (collector.BackfillJob, error) {
	c, err := a.newCollector(ctx)
	if err != nil {
		return collector.BackfillJob{}, err
	}
	return c.CreateBackfill(ctx, spec)
}

// GetBackfill reads a backfill job. It needs no Sentry access.
func (a *collectorAdapter) GetBackfill(ctx context.Context, id string) (collector.BackfillJob, error) {
	opts := a.opts
	opts.Logger = logging.FromContext(ctx)
	c, err := collector.New(opts, a.base, a.store, a.store)
	if err != nil {
		return collector.BackfillJob{}, fmt.Errorf("failed to create collector: %w", err)
	}
	return c.GetBackfill(ctx, id)
}

// RunBackfill advances a backfill job within the budget.
func (a *collectorAdapter) RunBackfill(ctx context.Context, id string) (collector.BackfillSummary, error) {
	c, err := a.newCollector(ctx)
	if err != nil {
		return collector.BackfillSummary{}, err
	}
	return c.RunBackfill(ctx, id)
}
