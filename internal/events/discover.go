package events

import (
	"context"
	"fmt"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Discover, the organisation's events endpoint, lists events across
// projects by their received time: the late sweep (sweep.go) and the
// coverage ledger (package coverage) read it through the one pager below.

// DiscoverAPI is the part of the Sentry client the sweep and the coverage ledger use.
type DiscoverAPI interface {
	Discover(ctx context.Context, q sentry.DiscoverQuery) (sentry.Page[sentry.DiscoverRow], error)
}

// EachDiscoverRow reads every page of q through api, each request within
// the run's budget and soft stop (engine.Run.Fetch), and calls fn for each
// row.
func EachDiscoverRow(ctx context.Context, r *engine.Run, api DiscoverAPI, q sentry.DiscoverQuery, fn func(sentry.DiscoverRow)) error {
	for {
		var page sentry.Page[sentry.DiscoverRow]
		err := r.Fetch(ctx, func(ctx context.Context) error {
			var err error
			page, err = api.Discover(ctx, q)
			return err
		})
		if err != nil {
			return err
		}
		for _, row := range page.Items {
			fn(row)
		}
		if !page.HasNext {
			return nil
		}
		if page.NextCursor == "" || page.NextCursor == q.Cursor {
			return failure.Transient(fmt.Errorf("discover announced a next page without a new cursor (%q)", page.NextCursor))
		}
		q.Cursor = page.NextCursor
	}
}
