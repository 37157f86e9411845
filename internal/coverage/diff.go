package coverage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// diff compares the ids of p's hour in Sentry (Discover) and in the bucket
// (read back), records what it finds in row, and queues the missing events
// to the events stream's late lane. A Sentry failure leaves the row
// unverified; a storage failure fails the run.
func (x *run) diff(ctx context.Context, p *project, row *Row) error {
	x.diffs++
	h := row.Hour
	q := x.idQuery(p.id, h, h.Add(time.Hour), receivedFilter(time.Time{}, x.through))
	listed, err := x.listIDs(ctx, q)
	if err != nil {
		row.Status, row.Note = Unverified, fmt.Sprintf("listing the hour's events failed: %v", err)
		return nil
	}
	if x.scanner == nil {
		x.scanner = x.l.ev.NewScanner(x.l.bucket, x.r)
	}
	var pred events.Pred
	stored, err := x.scanner.Scan(ctx, p.id, h, h.Add(time.Hour), &pred)
	switch {
	case errors.Is(err, engine.ErrStop):
		row.Status, row.Note = Unverified, "the run's budget ended before the bucket was read back"
		return nil
	case err != nil:
		return err
	}
	var missing []events.Straggler
	for id, st := range listed {
		if _, ok := stored[id]; !ok {
			missing = append(missing, st)
		}
	}
	row.Extra = 0
	for id := range stored {
		if _, ok := listed[id]; !ok {
			row.Extra++
		}
	}
	row.Offset = int64(len(stored)) - p.cov.Collected[h]
	row.Collected = int64(len(stored))
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b events.Straggler) int { return compareIDs(a.ID, b.ID) })
	row.Status, row.MissingCount = Missing, len(missing)
	row.Missing = nil
	for _, st := range missing[:min(len(missing), maxListed)] {
		row.Missing = append(row.Missing, st.ID)
	}
	n, err := x.l.ev.Queue(ctx, p.id, missing, true)
	if err != nil {
		return err
	}
	x.queued += n
	row.Note = "queued to be written by the events stream"
	return nil
}

func compareIDs(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// idQuery lists a project's events with a timestamp in [start, end).
func (x *run) idQuery(pid string, start, end time.Time, query string) sentry.DiscoverQuery {
	fields := []string{"id", "project.id", "timestamp"}
	if !x.through.IsZero() {
		fields = append(fields, "error.received")
	}
	return sentry.DiscoverQuery{Org: x.l.opts.Org, Projects: []string{pid}, Fields: fields,
		Query: query, Sort: []string{"id"}, Start: start, End: end}
}

// listIDs reads every page of q: the events by id, with their timestamp
// and receipt (the run's time when Sentry does not give it).
func (x *run) listIDs(ctx context.Context, q sentry.DiscoverQuery) (map[string]events.Straggler, error) {
	out := make(map[string]events.Straggler)
	now := x.r.Now().Unix()
	err := events.EachDiscoverRow(ctx, x.r, x.l.api, q, func(row sentry.DiscoverRow) {
		id, ok1 := row.String("id")
		t, ok2 := row.Time("timestamp")
		if !ok1 || !ok2 || !engine.ValidID(id) {
			return
		}
		st := events.Straggler{ID: id, T: t.Unix(), R: now}
		if r, ok := row.Time("error.received"); ok {
			st.R = r.Unix()
		}
		out[id] = st
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// requeueOld queues the events of project pid received in [from, to) whose
// timestamp lies in [wide, narrow): older than the sweep's horizon, so the
// sweep never listed them.
func (x *run) requeueOld(ctx context.Context, pid string, wide, narrow, from, to time.Time) {
	q := x.idQuery(pid, wide, narrow, receivedFilter(from, to))
	listed, err := x.listIDs(ctx, q)
	if err == nil {
		sts := make([]events.Straggler, 0, len(listed))
		for _, st := range listed {
			sts = append(sts, st)
		}
		var n int
		n, err = x.l.ev.Queue(ctx, pid, sts, false)
		x.queued += n
	}
	if err != nil {
		logging.FromContext(ctx).WarnContext(ctx, "failed to queue events received with a timestamp beyond the late sweep's horizon; tried again next run",
			"project_id", pid, "received_from", from, "error", err, "stream", Name)
	}
}
