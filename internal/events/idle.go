package events

import (
	"context"
	"slices"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Idle detection (Options.Stats): one stats_v2 request per run tells which
// projects Sentry RECEIVED accepted errors for since their watermark, and the
// projects that received nothing are not read in this run.
//
// Stats are a hint, never an oracle, and a skip can never cost data:
//
//   - A skipped project keeps its watermark W (nothing is committed for it),
//     so its next direct read covers [W − Overlap, now − Lag): a superset of
//     every window the skipped runs would have read. Whatever those windows
//     would have collected, the later read collects too.
//   - W moves only when a window is read directly, so W + Lag is the time of
//     the project's last direct read. A project is skipped only while
//     now − Lag − W < FullSweepInterval: every project is read directly at
//     least once per FullSweepInterval (+ one run period), whatever the
//     stats say (they can lag, or be missing: getsentry/sentry#119619).
//   - Projects with a window in progress or late events queued (late.go),
//     projects never read (W zero) and projects whose stats answer is
//     missing are always read.
//   - A stats failure (error, or an answer that does not cover the range
//     asked) falls back to reading every project.
//
// Counts are by received time. An event received at R is counted in the
// bucket of R (after the outcome delay), whatever its own timestamp T. Sentry
// clamps timestamps to at most 60 s in the future, so T ≤ R + 60 s; any event
// the next window can return (T ≥ W − Overlap) was received at
// R ≥ W − Overlap − 60 s. The query asks for counts received since
// W − idleStatsMargin (5 min, floored to the stats interval): events received
// before that and still unread at the last direct read are events that took
// more than Lag + 5 min to become visible; they are read by the full sweep, as
// they would have been (or not) without idle detection. A late event with an
// old timestamp arriving now is counted now: the project is read, and its
// window [W − Overlap, …) returns it if T ≥ W − Overlap, as without skipping.
// An outcome that lands late only postpones the read (W has not moved, so the
// next run's query still covers R).
const (
	// idleStatsInterval is the stats_v2 interval: hourly, Sentry's
	// documented minimum, served from the hourly rollup (minute intervals
	// misbehave on SaaS, getsentry/sentry#83700). The query's start is
	// floored to it, which only widens what counts as activity.
	idleStatsInterval = time.Hour
	// idleStatsMargin is subtracted from each watermark for the received-time
	// query: timestamps up to 60 s in the future are accepted by Relay, plus
	// room for clock differences.
	idleStatsMargin = 5 * time.Minute
	// maxStatsQueries bounds the stats requests of one run (one per
	// distinct floored start; a larger spread falls back to the oldest).
	maxStatsQueries = 4
)

// selectActive returns the projects to serve in this run, in order. Without
// Options.Stats it is every project. With it, projects that stats_v2 shows
// idle since their watermark are marked skipped (and done) and left out.
func (x *run) selectActive(ctx context.Context, projects []*project) []*project {
	o := x.s.opts
	if o.Stats == nil || o.FullSweepInterval <= 0 {
		return slices.Clone(projects)
	}
	now := x.r.Now().UTC()
	ready := now.Add(-o.Lag)
	// Candidates: between windows, read before, and read directly within
	// the sweep interval.
	byStart := make(map[time.Time][]*project)
	for _, p := range projects {
		cp := p.cp()
		if cp == nil || cp.Window != nil || cp.Watermark.IsZero() || len(cp.Pending) > 0 {
			continue // always served: a window or late events to write
		}
		if ready.Sub(cp.Watermark) >= o.FullSweepInterval {
			continue // due for its sweep
		}
		s := cp.Watermark.Add(-idleStatsMargin).Truncate(idleStatsInterval)
		byStart[s] = append(byStart[s], p)
	}
	if len(byStart) == 0 {
		return slices.Clone(projects)
	}
	starts := make([]time.Time, 0, len(byStart))
	for s := range byStart {
		starts = append(starts, s)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	// Too many distinct starts (unusual): merge the oldest into one query
	// from the oldest start (wider, so still safe).
	for len(starts) > maxStatsQueries {
		byStart[starts[0]] = append(byStart[starts[0]], byStart[starts[1]]...)
		delete(byStart, starts[1])
		starts = slices.Delete(starts, 1, 2)
	}
	idle := make(map[*project]bool)
	end := now.Add(time.Second).Truncate(time.Second)
	for _, s := range starts {
		counts, err := x.receivedSince(ctx, s, end)
		x.sum.Projects.StatsRequests++
		if err != nil {
			x.sum.Projects.StatsFallback = true
			logging.FromContext(ctx).WarnContext(ctx, "stats_v2 failed; reading every project this run", "error", err, "stream", Name)
			return slices.Clone(projects)
		}
		for _, p := range byStart[s] {
			n := counts[p.id] // no group: nothing received since s
			cp := p.cp()
			if n == 0 || (cp.Stats != nil && cp.Stats.Start.Equal(s) && cp.Stats.Count == n) {
				// Nothing received since s, or nothing since the count
				// seen before the project's last read (hourly buckets
				// would otherwise re-read a project for the rest of the
				// hour of its last event).
				idle[p] = true
				continue
			}
			// Read in this run; the mark is committed with its window.
			cp.Stats = &statsMark{Start: s, Count: n}
		}
	}
	active := make([]*project, 0, len(projects)-len(idle))
	for _, p := range projects {
		if idle[p] {
			p.skipped, p.done = true, true
			x.sum.Projects.Skipped++
			x.progress(p, "", nil)
			continue
		}
		active = append(active, p)
	}
	return active
}

// receivedSince returns accepted errors received in [start, end) per project
// id, from one stats_v2 request grouped by project.
//
// It sends project=-1: grouped by project without a project parameter,
// stats_v2 covers only the projects whose teams the token's user is a member
// of, so a user token's other projects would have no group, look idle, and
// be read only by their full sweep.
func (x *run) receivedSince(ctx context.Context, start, end time.Time) (map[string]int64, error) {
	st, err := x.s.opts.Stats.OrgStats(ctx, sentry.StatsQuery{
		Org:            x.s.opts.Org,
		Start:          start,
		End:            end,
		Interval:       idleStatsInterval,
		Category:       "error",
		Outcomes:       []string{"accepted"},
		Projects:       []string{sentry.AllProjects},
		GroupByProject: true,
	})
	if err != nil {
		return nil, err
	}
	if st == nil || st.Start.After(start) || st.End.Before(end.Add(-time.Second)) {
		return nil, &statsRangeError{}
	}
	out := make(map[string]int64, len(st.Groups))
	for _, g := range st.Groups {
		if g.ProjectID != "" {
			out[g.ProjectID] += g.Total
		}
	}
	return out, nil
}

// statsMark is a stats_v2 count of accepted errors received since Start, as
// seen before a project's last read.
type statsMark struct {
	Start time.Time `json:"start"`
	Count int64     `json:"count"`
}

// statsRangeError reports a stats answer that does not cover the range asked.
type statsRangeError struct{}

func (*statsRangeError) Error() string {
	return "stats_v2 answer does not cover the requested range"
}
