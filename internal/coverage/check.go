package coverage

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// counts is one of Sentry's counts for an hour, by project id.
type counts struct {
	n   map[string]int64 // nil: unavailable
	err error
}

func (c counts) get(pid string) (*int64, bool) {
	if c.n == nil {
		return nil, false
	}
	v := c.n[pid]
	return &v, true
}

// hourCounts are Sentry's counts of one hour.
type hourCounts struct {
	accepted counts // stats_v2, received in the hour
	received counts // Discover, received in the hour
	visible  counts // Discover, timestamp in the hour, received before the sweep's position
}

// receivedFilter is the Discover query restricting to events received in
// [from, to) (zero: unbounded).
func receivedFilter(from, to time.Time) string {
	q := ""
	if !from.IsZero() {
		q = "error.received:>=" + from.UTC().Format("2006-01-02T15:04:05")
	}
	if !to.IsZero() {
		if q != "" {
			q += " "
		}
		q += "error.received:<" + to.UTC().Format("2006-01-02T15:04:05")
	}
	return q
}

// oracle asks Sentry for the hour's counts: organisation-wide, or per
// project (ps) without global-views.
func (x *run) oracle(ctx context.Context, h time.Time, ps []*project) hourCounts {
	var hc hourCounts
	end := h.Add(time.Hour)
	hc.accepted = x.accepted(ctx, h)
	hc.visible = x.count(ctx, ps, h, end, receivedFilter(time.Time{}, x.through))
	if x.through.IsZero() {
		// Without error.received there is no count by receipt time.
		hc.received = counts{err: fmt.Errorf("no count by receipt time: %s", x.sweepReason)}
		return hc
	}
	eo := x.l.ev.Options()
	// Timestamps are at most 60 s ahead of receipt (Relay), and as old as
	// the sweep's horizon; older ones are looked for only when the counts
	// disagree, up to the retention.
	narrow := h.Add(-eo.SweepHorizon)
	hc.received = x.count(ctx, ps, narrow, end.Add(61*time.Second), receivedFilter(h, end))
	if hc.received.n == nil || hc.accepted.n == nil || !short(hc.received.n, hc.accepted.n) {
		return hc
	}
	wide := end.Add(-retention(eo))
	if !wide.Before(narrow) {
		return hc
	}
	older := x.count(ctx, ps, wide, narrow, receivedFilter(h, end))
	if older.n == nil {
		return hc
	}
	for pid, n := range older.n {
		hc.received.n[pid] += n
		if n > 0 {
			x.requeueOld(ctx, pid, wide, narrow, h, end)
		}
	}
	return hc
}

// short reports whether some project has fewer events received than
// accepted.
func short(received, accepted map[string]int64) bool {
	for pid, a := range accepted {
		if received[pid] < a {
			return true
		}
	}
	return false
}

// retention is the events stream's retention (90 days when unlimited).
func retention(o events.Options) time.Duration {
	if o.Retention > 0 {
		return o.Retention
	}
	return events.DefaultRetention
}

// accepted asks stats_v2 for the errors accepted in hour h, by project.
func (x *run) accepted(ctx context.Context, h time.Time) counts {
	var st *sentry.Stats
	err := x.r.Fetch(ctx, func(ctx context.Context) error {
		var err error
		st, err = x.l.api.OrgStats(ctx, sentry.StatsQuery{Org: x.l.opts.Org, Start: h, End: h.Add(time.Hour),
			Interval: time.Hour, Outcomes: []string{"accepted"}, Projects: []string{sentry.AllProjects}, GroupByProject: true})
		return err
	})
	if err != nil {
		return counts{err: fmt.Errorf("stats_v2: %w", err)}
	}
	out := make(map[string]int64, len(st.Groups))
	for _, g := range st.Groups {
		out[g.ProjectID] += g.Total
	}
	return counts{n: out}
}

// count asks Discover for count_unique(id) by project over timestamps
// [start, end) with query: over every project at once, or one project at a
// time without global-views.
func (x *run) count(ctx context.Context, ps []*project, start, end time.Time, query string) counts {
	q := sentry.DiscoverQuery{Org: x.l.opts.Org, Fields: []string{"project.id", "count_unique(id)"},
		Query: query, Start: start, End: end, Projects: []string{sentry.AllProjects}}
	out := make(map[string]int64)
	err := x.countInto(ctx, q, out)
	if sentry.IsMultiProjectRefused(err) {
		err = nil
		for _, p := range ps {
			q.Projects, q.Cursor = []string{p.id}, ""
			if err = x.countInto(ctx, q, out); err != nil {
				break
			}
		}
	}
	if err != nil {
		return counts{err: fmt.Errorf("discover: %w", err)}
	}
	return counts{n: out}
}

func (x *run) countInto(ctx context.Context, q sentry.DiscoverQuery, out map[string]int64) error {
	return events.EachDiscoverRow(ctx, x.r, x.l.api, q, func(row sentry.DiscoverRow) {
		pid, ok1 := row.Int("project.id")
		n, ok2 := row.Int("count_unique(id)")
		if ok1 && ok2 { // the row of an empty range has no project
			out[strconv.FormatInt(pid, 10)] += n
		}
	})
}

// check sets p's row for hour h from the counts.
func (x *run) check(ctx context.Context, p *project, h time.Time, hc hourCounts) error {
	row := p.row(h)
	now := x.r.Now().UTC()
	final := !h.Add(time.Hour + x.l.opts.Final).After(now)
	row.CheckedAt, row.Note = now, ""
	row.Collected = p.cov.Collected[h] + row.Offset
	row.Accepted, _ = hc.accepted.get(p.id)
	row.ReceivedVisible, _ = hc.received.get(p.id)
	row.Visible, _ = hc.visible.get(p.id)
	defer func() {
		row.Final = row.Final || final
		x.counts[row.Status]++
		if row.Final && row.Status == Missing {
			logging.FromContext(ctx).ErrorContext(ctx, "events Sentry shows are missing from the bucket in a final hour; they are queued to be written",
				"project_id", p.id, "project", p.slug, "hour", h, "missing", row.MissingCount, "event_ids", row.Missing,
				"error_kind", ErrorKindMissing, "stream", Name)
		}
	}()
	switch {
	case p.cov.Floor.IsZero() || p.cov.Floor.Before(h.Add(time.Hour)):
		row.Status, row.Note = Provisional, "the stream's windows still read this hour"
		return nil
	case p.cov.Pending[h] > 0:
		row.Status, row.Note = Provisional, fmt.Sprintf("%d late events queued, not written yet", p.cov.Pending[h])
		return nil
	case row.Visible == nil:
		row.Status, row.Note = Unverified, hc.visible.err.Error()
		return nil
	}
	// Events a diff found in the bucket and no longer in Sentry (deleted
	// since) do not come back: they are not a reason to diff again.
	if *row.Visible != row.Collected-int64(row.Extra) {
		if x.diffs >= maxDiffsPerRun || !x.r.CanRead() {
			row.Status = Unverified
			row.Note = fmt.Sprintf("%d visible, %d collected: the ids are compared in a later run", *row.Visible, row.Collected)
			x.sum.WorkRemaining = true
			return nil
		}
		if err := x.diff(ctx, p, row); err != nil {
			return err
		}
		if row.Status == Missing || row.Status == Unverified {
			return nil
		}
	}
	row.Status, row.MissingCount, row.Missing = Complete, 0, nil
	switch {
	case row.Accepted == nil || row.ReceivedVisible == nil:
		reason := hc.received.err
		if reason == nil {
			reason = hc.accepted.err
		}
		row.Note = fmt.Sprintf("complete; receipt-time cross-check unavailable (%v)", reason)
	case *row.Accepted != *row.ReceivedVisible:
		row.Status = SentryInconsistent
		row.Note = fmt.Sprintf("the bucket holds every event Sentry shows; Sentry's own counts of the hour as a receipt hour differ (stats_v2 accepted %d, Discover %d)", *row.Accepted, *row.ReceivedVisible)
	}
	return nil
}

// row returns p's row for h, adding it.
func (p *project) row(h time.Time) *Row {
	rows := p.doc.V.Rows
	if i := slices.IndexFunc(rows, func(r Row) bool { return r.Hour.Equal(h) }); i >= 0 {
		return &rows[i]
	}
	p.doc.V.Rows = append(p.doc.V.Rows, Row{Hour: h})
	return &p.doc.V.Rows[len(p.doc.V.Rows)-1]
}
