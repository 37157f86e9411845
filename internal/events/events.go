// Package events is the error-events source: it copies every project's error
// events into write-once NDJSON objects, exactly once, on the engine
// (internal/engine).
//
// Per project it reads windows [W − Overlap, now − Lag) of the project events
// endpoint on dateCreated, following only rel="next", de-duplicates by event
// id against what is already stored, and advances the watermark W only when a
// window is durably written. Progress lives in one checkpoint per project;
// projects are served fairly within the run's budget, and idle projects are
// skipped with one stats_v2 request (idle.go). No window reaches further back
// than the organisation's event retention (Options.Retention): Sentry has
// deleted what lies before it and refuses such a window, so it is skipped,
// and the log and the run summary say so. Events Sentry receives after the
// windows are done with their timestamp (offline SDKs) are found by the late
// sweep, by receipt time, and written once by the late lane (sweep.go,
// late.go). DESIGN.md next to this file explains each rule.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Name is the stream's name.
const Name = "events"

// Defaults for zero Options fields.
const (
	DefaultMaxProjects        = 100
	DefaultMaxPagesPerProject = 5
	DefaultInitialLookback    = 24 * time.Hour
	DefaultMaxWindow          = 24 * time.Hour
	DefaultFullSweepInterval  = time.Hour
	// DefaultRetention is the event retention of most Sentry plans (some
	// keep 30 days).
	DefaultRetention = 90 * 24 * time.Hour
)

// minPlanRetention is the shortest event retention of Sentry's plans: a
// window read that fails with a server error and ends before now −
// minPlanRetention may be a window older than the organisation's retention
// (see Options.Retention), and its error says so.
const minPlanRetention = 30 * 24 * time.Hour

// Tuning constants.
const (
	// maxConflictsPerRun bounds compare-and-swap conflicts on one project
	// in one run (only concurrent writers cause them).
	maxConflictsPerRun = 20
	// catchUpGap is how far behind now − Lag a project's watermark must be
	// for the run to report work remaining, or for a project that completed
	// a window to open another in the same run. Below it, the next scheduled
	// run is soon enough, and an idle organisation costs one request per
	// project per run.
	catchUpGap = 10 * time.Minute
	// loadConcurrency bounds parallel checkpoint reads at the start.
	loadConcurrency = 8
)

// API is the part of the Sentry client the events stream uses.
type API interface {
	ListProjects(ctx context.Context, org, cursor string) (sentry.Page[sentry.Project], error)
	ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error)
}

// StatsAPI is the part of the Sentry client idle detection uses.
type StatsAPI interface {
	OrgStats(ctx context.Context, q sentry.StatsQuery) (*sentry.Stats, error)
}

// Options configure the events stream. Durations are used as given (0 is a
// real zero) except where a default is stated.
type Options struct {
	// Org is the organisation slug (required); it is part of object names.
	Org string
	// DataPrefix is the prefix of data objects (e.g. "sentry/events/");
	// StatePrefix the prefix of state documents (e.g. "sentry/state/"),
	// which must not lie inside DataPrefix.
	DataPrefix  string
	StatePrefix string
	// MaxProjects bounds how many projects are collected; default 100.
	MaxProjects int
	// MaxPagesPerProject caps pages read per project per run; a capped
	// project resumes from its stored cursor next run. Default 5; negative
	// means no cap.
	MaxPagesPerProject int
	// Lag keeps the window's end this far behind now (indexing delay).
	Lag time.Duration
	// Overlap re-reads this much before the watermark, to catch events
	// that became visible late. At most MaxWindow/2.
	Overlap time.Duration
	// InitialLookback is the first window's reach into the past; default
	// 24h.
	InitialLookback time.Duration
	// MaxWindow caps a window's length (a window after a long look-back or
	// downtime is split, caught up one after the other); default 24h.
	// Backfill de-duplication relies on this bound.
	MaxWindow time.Duration
	// Retention is how long Sentry keeps the organisation's events: 90
	// days on most plans (the default, DefaultRetention), 30 on some.
	// Sentry does not tell the collector, so it is configured. Sentry has
	// deleted every event older than now − Retention, and it answers a
	// window that ends before that with a server error (500), which would
	// be retried every run for ever. So no window reaches further back: a
	// window in progress that lies entirely before now − Retention is
	// closed without being read, and a new window starts no earlier than
	// now − Retention. Each skip is logged (WARN, with the project and the
	// range skipped) and counted in the run summary
	// (retention_clipped_projects). Negative: unlimited, never clip. A
	// value set longer than the real retention brings the endless server
	// errors back after a downtime longer than the real retention; the
	// project's error then says so. At least 24h.
	Retention time.Duration
	// Stats, when set, turns on idle detection (idle.go).
	Stats StatsAPI
	// FullSweepInterval bounds how long idle detection may skip a project;
	// default 1h; negative turns idle detection off.
	FullSweepInterval time.Duration
	// Discover, when set, turns on the late sweep (sweep.go): events
	// Sentry received after the windows that could read their timestamp
	// are found by their receipt time and written by the late lane
	// (late.go). It needs Bucket.
	Discover DiscoverAPI
	// Bucket lists the data objects: the late lane reads back the objects
	// that may hold an event it cannot place otherwise (scan.go).
	Bucket Lister
	// SweepHorizon is how far before a slice of receipt time the sweep
	// looks for timestamps; default 7 days, at most the retention.
	SweepHorizon time.Duration
	// Progress, when set, is called after every turn of a project. It runs
	// on the run's goroutine and must be fast.
	Progress func(ProgressEvent)
}

// ProgressEvent reports a project's progress within a run.
type ProgressEvent struct {
	ProjectID   string
	ProjectSlug string
	// Pages, Events and Duplicates count this project's pages read, events
	// written and rows skipped as already stored, so far in this run.
	Pages      int
	Events     int
	Duplicates int
	// Object is the data object just written, if any.
	Object string
	// Done is set when the project is finished for this run; CaughtUp when
	// it has no window in progress.
	Done     bool
	CaughtUp bool
	// Err is set when the project failed in this run.
	Err error
}

// Stream is the events stream of one organisation.
type Stream struct {
	opts Options
	api  API
	env  engine.Env
}

// New validates opts and returns the stream reading through api.
func New(opts Options, api API, env engine.Env) (*Stream, error) {
	if err := env.CheckSource(Name, api, opts.Org, opts.DataPrefix, opts.StatePrefix); err != nil {
		return nil, err
	}
	if opts.MaxProjects == 0 {
		opts.MaxProjects = DefaultMaxProjects
	}
	if opts.MaxPagesPerProject == 0 {
		opts.MaxPagesPerProject = DefaultMaxPagesPerProject
	}
	if opts.InitialLookback == 0 {
		opts.InitialLookback = DefaultInitialLookback
	}
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = DefaultMaxWindow
	}
	if opts.FullSweepInterval == 0 {
		opts.FullSweepInterval = DefaultFullSweepInterval
	}
	if opts.SweepHorizon <= 0 {
		opts.SweepHorizon = DefaultSweepHorizon
	}
	if opts.Discover != nil && opts.Bucket == nil {
		return nil, fmt.Errorf("%w: the late sweep needs the bucket's listing", failure.ErrConfig)
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	switch {
	case opts.MaxProjects < 0:
		return nil, fmt.Errorf("%w: max projects must be positive, got %d", failure.ErrConfig, opts.MaxProjects)
	case opts.Lag < 0, opts.Overlap < 0, opts.InitialLookback < 0:
		return nil, fmt.Errorf("%w: lag, overlap and initial look-back must not be negative", failure.ErrConfig)
	case opts.Retention > 0 && opts.Retention < 24*time.Hour:
		return nil, fmt.Errorf("%w: the event retention is %s but Sentry keeps events for whole days, at least one", failure.ErrConfig, opts.Retention)
	case opts.Overlap > opts.MaxWindow/2:
		return nil, fmt.Errorf("%w: the overlap (COLLECT_OVERLAP) is %s but must be at most half the maximum window (%s): each window re-reads the overlap before the watermark, so a larger one would stop the watermark from moving forward", failure.ErrConfig, opts.Overlap, opts.MaxWindow/2)
	}
	return &Stream{opts: opts, api: api, env: env}, nil
}

// Name implements the collector's Stream: "events".
func (s *Stream) Name() string { return Name }

// Options returns the stream's options with defaults applied.
func (s *Stream) Options() Options { return s.opts }

// CheckpointKey is the state document of a project.
func (s *Stream) CheckpointKey(projectID string) string {
	return s.opts.StatePrefix + "events/projects/" + projectID + ".json"
}

// LeaseKey is the stream's lease.
func (s *Stream) LeaseKey() string { return s.opts.StatePrefix + "events/lease.json" }

// retentionEdge is the oldest time Sentry still keeps events for at now
// (ok false: retention unlimited).
func (s *Stream) retentionEdge(now time.Time) (edge time.Time, ok bool) {
	if s.opts.Retention < 0 {
		return time.Time{}, false
	}
	return now.Add(-s.opts.Retention).Truncate(time.Second), true
}

// overlap is the overlap a window applies: Overlap, bounded by MaxWindow/2
// so that every window ends after the watermark.
func (s *Stream) overlap() time.Duration { return min(s.opts.Overlap, s.opts.MaxWindow/2) }

// Run collects until every project is caught up, its page cap is reached or
// the budget runs out. It returns a nil error when it did what it could
// (Summary.WorkRemaining tells whether to run again soon), a configuration
// error (failure.KindConfig) when the projects cannot be listed, and a
// transient error when storage or the lease failed or every project tried
// failed in Sentry; progress up to a failure is always committed. When
// another run holds the lease it returns at once with Summary.LeaseHeld.
func (s *Stream) Run(ctx context.Context, budget time.Duration) (engine.Summary, error) {
	cfg := s.env.Config(Name, s.LeaseKey(), budget)
	cfg.RecordsKey = "events_written"
	return engine.Do(ctx, cfg, func(r *engine.Run) error {
		x := &run{s: s, r: r, sum: r.Summary()}
		x.sum.Projects = &engine.ProjectCounts{}
		return x.do(ctx)
	})
}
