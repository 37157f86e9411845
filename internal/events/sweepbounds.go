package events

import (
	"context"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// What bounds the late sweep (sweep.go): its share of the run, and the
// overlap its slices were listed with.

// relist moves the sweep back when the overlap became smaller than the one
// its slices were listed with. The sweep leaves an event received less than
// Overlap after its timestamp to the windows; with a smaller overlap the
// windows that have not yet read it start too late to, so the slices that
// may hold such events are listed again under the new overlap (what they
// queue is placed against the checkpoints: nothing is written twice).
func (sw *sweeper) relist(ctx context.Context, d *sweepDoc) {
	was := time.Duration(d.Overlap) * time.Second
	if d.Overlap == 0 {
		was = legacyOverlap
	}
	now := sw.x.s.overlap()
	if was <= now {
		return
	}
	d.Through = d.Through.Add(-(was + sw.x.s.sweepSettle())).Truncate(time.Minute)
	logging.FromContext(ctx).InfoContext(ctx, "the overlap is smaller than the late sweep's slices were listed with: listing them again",
		"overlap_was", was.String(), "overlap", now.String(), "late_swept_through", d.Through, "stream", Name)
}

// legacyOverlap is the overlap assumed for a sweep document that does not
// record one: the COLLECT_OVERLAP default of the versions that wrote such
// documents.
const legacyOverlap = 30 * time.Minute

// sharedDiscover is Discover within the sweep's share of the run: a
// request starts only before its end and is cut at it.
type sharedDiscover struct{ sw *sweeper }

func (d sharedDiscover) Discover(ctx context.Context, q sentry.DiscoverQuery) (sentry.Page[sentry.DiscoverRow], error) {
	left, cancel, err := d.sw.share(ctx)
	if err != nil {
		return sentry.Page[sentry.DiscoverRow]{}, err
	}
	defer cancel()
	return d.sw.x.s.opts.Discover.Discover(left, q)
}

// share bounds ctx by what is left of the sweep's share of the run, or
// returns errSweepShare when nothing is.
func (sw *sweeper) share(ctx context.Context) (context.Context, context.CancelFunc, error) {
	left := sw.until.Sub(sw.x.r.Now())
	if left <= 0 {
		return nil, nil, errSweepShare
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	return ctx, cancel, nil
}
