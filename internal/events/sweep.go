package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// The late sweep (Options.Discover). A received-hour closes; a
// timestamp-hour never does: an event may arrive up to the retention after
// its timestamp (an offline SDK's cache). Each run, the sweep lists with
// Discover the events received in the slices of receipt time that are due
// (ended at least sweepSettle ago) whose timestamp is older than the
// windows still read (more than Overlap before the slice's end), and queues
// them in their projects' checkpoints, where the late lane places and writes
// them (late.go). Usually a slice is one request and no row.
//
// Why the cut at Overlap: an event received at R < b with a timestamp
// T ≥ b − Overlap is read by a window, since the last window containing T
// opens after T + Overlap + Lag ≥ b + Lag, when it is visible. Events with an
// older timestamp may or may not have been read: the late lane decides.
//
// Discover needs a timestamp range: [b − SweepHorizon, b − Overlap), 7 days
// by default (Sentry has no index on received; the coverage ledger compares
// stats_v2's accepted counts by received hour with what Discover lists and
// shows where a wider horizon is needed). Without the organisation's
// global-views feature the sweep asks per project, only for the projects
// stats_v2 shows received events in the slice's hours. Where Sentry refuses
// error.received (a 400, or a deployment that reads it as a tag), the sweep
// is unavailable: it says so once in the logs and in every run summary
// (late_sweep = "unavailable"), tries again after sweepRetryUnavailable,
// and the events stream runs on without it.

// Sweep tuning.
const (
	// DefaultSweepHorizon is how far before a slice the sweep looks for
	// timestamps.
	DefaultSweepHorizon = 7 * 24 * time.Hour
	// sweepSettle is how long after a slice's end it is swept, at least
	// (Options.Lag when longer): events received in it are visible by then.
	sweepSettle = time.Minute
	// maxSlice bounds one slice (one Discover query, paged); minSlice is
	// the least the sweep waits for: a run every minute sweeps every five
	// (a late-sent event waits up to five minutes more), which divides the
	// sweep's requests by five (per project without global-views).
	maxSlice = time.Hour
	minSlice = 5 * time.Minute
	// sweepRetryUnavailable is how often an unavailable sweep is tried
	// again.
	sweepRetryUnavailable = 24 * time.Hour
	// sweepVersion is the format version of the sweep document.
	sweepVersion = 1
	// sweepShare is the part of what is left of a run that the sweep may
	// spend: it is usually one request, and a Discover that hangs or pages
	// on and on must leave the windows most of the run.
	sweepShare = 4
)

// Sweep modes and states, as recorded and reported.
const (
	sweepGlobal      = "global"
	sweepPerProject  = "per_project"
	SweepUnavailable = "unavailable"
)

// sweepDoc is the sweep's state, <state>events/sweep.json.
type sweepDoc struct {
	Version int `json:"version"`
	// Through: every event received before it was listed and queued (or
	// found stored, or left to a window).
	Through time.Time `json:"through"`
	// Mode is sweepGlobal or sweepPerProject (no global-views).
	Mode string `json:"mode,omitempty"`
	// Overlap is the overlap (seconds) the slices before Through were
	// listed with (0: not recorded, by a version that did not keep it).
	Overlap int64 `json:"overlap_seconds,omitempty"`
	// Unavailable says why the sweep cannot run ("" when it can), since
	// UnavailableSince; TriedAt is the last attempt.
	Unavailable      string    `json:"unavailable,omitempty"`
	UnavailableSince time.Time `json:"unavailable_since,omitzero"`
	TriedAt          time.Time `json:"tried_at,omitzero"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
}

// SweepKey is the sweep's state document.
func (s *Stream) SweepKey() string { return s.opts.StatePrefix + "events/sweep.json" }

func (s *Stream) sweepSettle() time.Duration { return max(s.opts.Lag, sweepSettle) }

// SweepThrough reads how far the sweep has come: every event received
// before the time returned is placed. reason says why there is none (the
// sweep is off, has not run, or is unavailable).
func (s *Stream) SweepThrough(ctx context.Context) (through time.Time, reason string, err error) {
	if s.opts.Discover == nil {
		return time.Time{}, "the late sweep is off", nil
	}
	return ReadSweep(ctx, s.env.State, s.opts.StatePrefix)
}

// ReadSweep reads the sweep's position from the state under statePrefix
// (see SweepThrough), without a stream.
func ReadSweep(ctx context.Context, st state.Objects, statePrefix string) (through time.Time, reason string, err error) {
	doc, err := engine.LoadDoc(ctx, st, statePrefix+"events/sweep.json", func() sweepDoc { return sweepDoc{Version: sweepVersion} })
	switch {
	case err != nil:
		return time.Time{}, "", err
	case doc.V.Unavailable != "":
		return time.Time{}, doc.V.Unavailable, nil
	case doc.V.Through.IsZero():
		return time.Time{}, "the late sweep has not run yet", nil
	}
	return doc.V.Through, "", nil
}

// sweeper is one run's sweep.
type sweeper struct {
	x       *run
	until   time.Time // the end of the sweep's share of the run
	doc     *engine.Doc[sweepDoc]
	byID    map[string]*project
	listed  int // rows listed
	queued  int // queued in checkpoints
	unknown int // rows of projects this run does not serve
}

// sweep lists the due slices and queues what they hold. Sentry trouble, a
// lost swap or a full queue never fails the run: the sweep tries again next
// run. A storage failure does, as it does for the windows.
func (x *run) sweep(ctx context.Context, projects []*project) error {
	if x.s.opts.Discover == nil {
		return nil
	}
	sw := &sweeper{x: x, byID: make(map[string]*project, len(projects)),
		until: x.r.Now().Add(x.r.Remaining() / sweepShare)}
	for _, p := range projects {
		if p.cp() != nil {
			sw.byID[p.id] = p
		}
	}
	err := sw.run(ctx)
	x.sweepSummary(sw, err)
	switch {
	case err == nil, errors.Is(err, engine.ErrStop), errors.Is(err, errSweepShare):
		return nil
	case engine.IsReadError(err), errors.Is(err, engine.ErrConflict), errors.Is(err, errQueueFull):
		// Sentry trouble, a concurrent change or a full queue: the
		// windows run on, and the sweep resumes next run.
		logging.FromContext(ctx).WarnContext(ctx, "late sweep stopped for this run; it resumes next run",
			"error", err, "stream", Name)
		return nil
	}
	// Storage failed: the run's problem, as for the windows.
	return failure.Transient(fmt.Errorf("late sweep: %w", err))
}

// errSweepShare stops a sweep that has spent its share of the run.
var errSweepShare = errors.New("the late sweep spent its share of the run; it resumes next run")

// errQueueFull stops a sweep whose slice does not fit a project's queue.
var errQueueFull = errors.New("a project's late queue is full; the slice is listed again next run")

func (sw *sweeper) run(ctx context.Context) error {
	x := sw.x
	doc, err := engine.LoadDoc(ctx, x.s.env.State, x.s.SweepKey(), func() sweepDoc { return sweepDoc{Version: sweepVersion} })
	if err != nil {
		return err
	}
	sw.doc = doc
	d := &doc.V
	now := x.r.Now().UTC()
	if d.Through.IsZero() {
		// First sweep: from where the first windows start, so that an
		// event received since then is collected whatever its timestamp.
		d.Through = now.Add(-x.s.opts.InitialLookback).Truncate(time.Minute)
	} else {
		sw.relist(ctx, d)
	}
	d.Overlap = int64(x.s.overlap() / time.Second)
	if d.Unavailable != "" && now.Sub(d.TriedAt) < sweepRetryUnavailable {
		return nil
	}
	due := now.Add(-x.s.sweepSettle()).Truncate(time.Minute)
	if due.Sub(d.Through) < minSlice {
		return nil
	}
	for d.Through.Before(due) {
		if !x.r.CanRead() {
			return engine.ErrStop
		}
		if !x.r.Now().Before(sw.until) {
			return errSweepShare
		}
		a := d.Through
		b := a.Add(maxSlice)
		if b.After(due) {
			b = due
		}
		full, err := sw.slice(ctx, a, b)
		if err != nil {
			return sw.refused(ctx, err)
		}
		if full {
			return errQueueFull
		}
		d.Through, d.Unavailable, d.UnavailableSince = b, "", time.Time{}
		d.TriedAt, d.UpdatedAt = now, now
		if err := doc.Save(ctx, x.r); err != nil {
			return err
		}
	}
	return nil
}

// refused records an unavailable sweep when err says Sentry refuses
// error.received (logged once, when it starts), and passes other errors on.
func (sw *sweeper) refused(ctx context.Context, err error) error {
	if !sentry.IsUnknownField(err, "error.received") {
		return err
	}
	d := &sw.doc.V
	now := sw.x.r.Now().UTC()
	if d.Unavailable == "" {
		d.UnavailableSince = now
		logging.FromContext(ctx).WarnContext(ctx, "this Sentry refuses Discover's error.received: late-sent events are not swept; the coverage ledger's counts still find them a day later at most",
			"error", err, "stream", Name)
	}
	d.Unavailable, d.TriedAt, d.UpdatedAt = err.Error(), now, now
	if serr := sw.doc.Save(ctx, sw.x.r); serr != nil {
		return serr
	}
	return nil
}

// slice lists the events received in [a, b) and queues them; full reports
// a project's queue full (the slice must be listed again).
func (sw *sweeper) slice(ctx context.Context, a, b time.Time) (full bool, err error) {
	x := sw.x
	end := b.Add(-x.s.overlap())
	start := b.Add(-x.s.sweepHorizon())
	if !end.After(start) {
		return false, nil
	}
	q := sentry.DiscoverQuery{
		Org:    x.s.opts.Org,
		Fields: []string{"id", "project.id", "timestamp", "error.received"},
		Query:  "error.received:>=" + a.UTC().Format("2006-01-02T15:04:05") + " error.received:<" + b.UTC().Format("2006-01-02T15:04:05"),
		Sort:   []string{"error.received", "id"},
		Start:  start, End: end,
	}
	byProject := make(map[string][]Straggler)
	if sw.doc.V.Mode != sweepPerProject {
		q.Projects = []string{sentry.AllProjects}
		err := sw.list(ctx, q, byProject)
		if !sentry.IsMultiProjectRefused(err) {
			if err != nil {
				return false, err
			}
			return sw.queue(ctx, byProject)
		}
		sw.doc.V.Mode = sweepPerProject
		logging.FromContext(ctx).InfoContext(ctx, "the organisation lacks global-views: the late sweep asks project by project",
			"stream", Name)
	}
	for _, pid := range sw.activeProjects(ctx, a, b) {
		q.Projects = []string{pid}
		if err := sw.list(ctx, q, byProject); err != nil {
			return false, err
		}
	}
	return sw.queue(ctx, byProject)
}

// list reads every page of q into byProject.
func (sw *sweeper) list(ctx context.Context, q sentry.DiscoverQuery, byProject map[string][]Straggler) error {
	overlap := int64(sw.x.s.overlap() / time.Second)
	err := EachDiscoverRow(ctx, sw.x.r, sharedDiscover{sw}, q, func(row sentry.DiscoverRow) {
		st, pid, ok := parseSweepRow(row)
		switch {
		case !ok:
			sw.x.sum.InvalidRows++
		case st.R-st.T < overlap:
			// Received within Overlap of its timestamp: a window reads
			// it (see above). The query's cut is at the slice's end;
			// this is the same cut at the event's receipt.
		default:
			sw.listed++
			byProject[pid] = append(byProject[pid], st)
		}
	})
	if err != nil {
		return fmt.Errorf("failed to list late events: %w", err)
	}
	return nil
}

// parseSweepRow reads a sweep row: id, project.id, timestamp, error.received.
func parseSweepRow(row sentry.DiscoverRow) (Straggler, string, bool) {
	id, ok1 := row.String("id")
	pid, ok2 := row.Int("project.id")
	t, ok3 := row.Time("timestamp")
	r, ok4 := row.Time("error.received")
	if !ok1 || !ok2 || !ok3 || !ok4 || !engine.ValidID(id) {
		return Straggler{}, "", false
	}
	return Straggler{ID: id, T: t.Unix(), R: r.Unix()}, strconv.FormatInt(pid, 10), true
}

// queue adds the listed events to their projects' queues and commits each
// checkpoint that changed.
func (sw *sweeper) queue(ctx context.Context, byProject map[string][]Straggler) (full bool, err error) {
	for pid, sts := range byProject {
		p := sw.byID[pid]
		if p == nil {
			sw.unknown += len(sts)
			continue
		}
		added, ok := sw.x.s.placer(p.cp()).enqueue(sts)
		if added > 0 {
			sw.queued += added
			if err := sw.x.lane(p).Commit(ctx); err != nil {
				return false, err
			}
		}
		if !ok {
			full = true
		}
	}
	return full, nil
}

// activeProjects returns the projects to ask in per-project mode: those
// stats_v2 shows received errors in the slice's hours, or every served
// project without stats (or when they fail).
func (sw *sweeper) activeProjects(ctx context.Context, a, b time.Time) []string {
	all := make([]string, 0, len(sw.byID))
	for pid := range sw.byID {
		all = append(all, pid)
	}
	st := sw.x.s.opts.Stats
	if st == nil {
		return all
	}
	start := a.Truncate(time.Hour)
	end := b.Add(time.Hour - 1).Truncate(time.Hour)
	var stats *sentry.Stats
	err := sw.x.r.Fetch(ctx, func(ctx context.Context) error {
		ctx, cancel, err := sw.share(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		stats, err = st.OrgStats(ctx, sentry.StatsQuery{Org: sw.x.s.opts.Org, Start: start, End: end,
			Interval: time.Hour, Outcomes: []string{"accepted"}, Projects: []string{sentry.AllProjects}, GroupByProject: true})
		return err
	})
	if err != nil {
		return all
	}
	var active []string
	for _, g := range stats.Groups {
		if g.Total > 0 && sw.byID[g.ProjectID] != nil {
			active = append(active, g.ProjectID)
		}
	}
	return active
}

// sweepSummary adds the sweep's figures to the run summary.
func (x *run) sweepSummary(sw *sweeper, err error) {
	state := ""
	switch {
	case sw.doc == nil:
		state = "error"
	case sw.doc.V.Unavailable != "":
		state = SweepUnavailable
	case err != nil:
		state = "behind"
	default:
		state = "ok"
	}
	x.sweepAttrs = []slog.Attr{slog.String("late_sweep", state)}
	if sw.doc != nil {
		x.sweepAttrs = append(x.sweepAttrs, slog.Time("late_swept_through", sw.doc.V.Through))
	}
	x.sweepAttrs = append(x.sweepAttrs, slog.Int("late_listed", sw.listed), slog.Int("late_queued", sw.queued))
	if sw.unknown > 0 {
		x.sweepAttrs = append(x.sweepAttrs, slog.Int("late_unserved_projects_rows", sw.unknown))
	}
}

// sweepHorizon is SweepHorizon, bounded by the retention.
func (s *Stream) sweepHorizon() time.Duration {
	h := s.opts.SweepHorizon
	if r := s.opts.Retention; r > 0 {
		h = min(h, r)
	}
	return h
}
