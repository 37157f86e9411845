// Package collector copies a Sentry organisation's error events into object
// storage exactly once, as NDJSON (one compact Sentry event per line).
//
// Per project it reads windows [W − Overlap, now − Lag) of the project events
// endpoint through start/end, following only rel="next", de-duplicates by
// event id against what is already stored, writes write-once objects, and
// advances the watermark W only when a window is durably written. Progress
// lives in a per-project checkpoint updated by compare-and-swap, a lease
// keeps concurrent runs apart, and every run is bounded by a budget.
//
// The algorithm, and why each step is there, is described in DESIGN.md next
// to this file.
package collector

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// Defaults for zero Options fields.
const (
	DefaultMaxProjects        = 100
	DefaultMaxPagesPerProject = 5
	DefaultLag                = 2 * time.Minute
	DefaultOverlap            = 30 * time.Minute
	DefaultInitialLookback    = 24 * time.Hour
	DefaultMaxWindow          = 24 * time.Hour
	DefaultBudget             = 7 * time.Minute
)

// ZeroDuration set as Options.Lag or Options.Overlap means a real zero (a
// zero value there means the default): configuration maps an explicit 0 to
// it.
const ZeroDuration time.Duration = -1

// Tuning constants.
const (
	// maxPagesPerObject bounds how many pages go into one data object.
	maxPagesPerObject = 10
	// maxObjectBytes flushes a batch once it reaches this size.
	maxObjectBytes = 8 << 20
	// minSafetyMargin is the least time kept in reserve before the
	// deadline: no page request or write starts with less left.
	minSafetyMargin = 3 * time.Second
	// leaseMargin is added to the budget to make the lease's TTL, which is
	// capped at maxLeaseTTL: the run renews it every half TTL, so a crashed
	// run blocks its stream for at most maxLeaseTTL rather than a whole
	// budget. A run that cannot renew in time (one request stalled longer
	// than half the TTL) loses the lease and stops; the checkpoints'
	// compare-and-swap keeps that safe.
	leaseMargin = 2 * time.Minute
	maxLeaseTTL = 3 * time.Minute
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

// ContentTypeNDJSON is the content type of data objects.
const ContentTypeNDJSON = "application/x-ndjson"

// contentTypeJSON is the content type of state documents.
const contentTypeJSON = "application/json"

// Options configure a Collector.
type Options struct {
	// Org is the organisation slug (required). It is also part of object
	// names.
	Org string
	// DataPrefix is the prefix of data objects (e.g. "sentry/events/").
	DataPrefix string
	// StatePrefix is the prefix of state documents (e.g. "sentry/state/");
	// it must not lie inside DataPrefix.
	StatePrefix string
	// MaxProjects bounds how many projects are collected; default 100.
	MaxProjects int
	// MaxPagesPerProject caps pages read per project per run; a capped
	// project resumes from its stored cursor next run. Default 5; negative
	// means no cap.
	MaxPagesPerProject int
	// Lag keeps the window's end this far behind now (ingestion lag);
	// 0 means the default 2m, ZeroDuration a real zero.
	Lag time.Duration
	// Overlap re-reads this much before the watermark, to catch events
	// that became visible late; 0 means the default 30m, ZeroDuration a
	// real zero. It must be at most MaxWindow/2 (a window must move the
	// watermark forward).
	Overlap time.Duration
	// InitialLookback is the first window's reach into the past; default
	// 24h.
	InitialLookback time.Duration
	// MaxWindow caps a window's length (a first window after a long
	// look-back, or a window after downtime, is split into windows of at
	// most MaxWindow, caught up one after the other); default 24h.
	// Backfill de-duplication bounds the objects it reads with it.
	MaxWindow time.Duration
	// Budget bounds a run; default 7m.
	Budget time.Duration
	// Clock defaults to clock.Real{}.
	Clock clock.Clock
	// RunID identifies the run in logs, checkpoints and the lease; default
	// random.
	RunID string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Progress, when set, is called after every page batch of a project.
	// It runs on the collector's goroutine and must be fast.
	Progress func(ProgressEvent)
	// Stats, when set, turns on idle detection (idle.go): one stats_v2
	// request per run, and projects that received nothing since their
	// watermark are not read. nil: every project is read every run.
	Stats StatsAPI
	// AuditOverlap is how far below its watermark the audit-log stream
	// reads (entries can become visible late with their original time);
	// default max(DefaultAuditOverlap, Overlap). Only the audit stream uses
	// it.
	AuditOverlap time.Duration
	// FullSweepInterval bounds how long idle detection may skip a project:
	// each is read directly at least this often. Default 1h; negative
	// turns idle detection off.
	FullSweepInterval time.Duration
	// StopSignal, when closed, asks runs to stop softly (SIGTERM): no new
	// page request, window or stream is started, what was read is written
	// and committed, and the run returns with WorkRemaining set. nil: never.
	StopSignal <-chan struct{}
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
	// it has no window in progress (nothing left to read up to now − Lag).
	Done     bool
	CaughtUp bool
	// Err is set when the project failed in this run.
	Err error
}

// ErrConfig marks errors a retry cannot fix: a bad token, a missing scope, an
// unknown organisation, invalid options.
var ErrConfig = errors.New("configuration error")

// ErrLeaseHeld is returned by a Leaser when another run holds the lease.
var ErrLeaseHeld = errors.New("lease held by another run")

// ErrLeaseLost is returned when the run lost its lease; it stops writing at
// once.
var ErrLeaseLost = errors.New("lease lost")

// ErrBudgetExhausted is wrapped when the run's budget ran out while a
// request was in flight.
var ErrBudgetExhausted = errors.New("run budget exhausted")

// transientError marks failures that a later run is expected to get past.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// transient wraps err (nil stays nil) so that IsTransient reports true.
func transient(err error) error {
	if err == nil || IsTransient(err) {
		return err
	}
	return &transientError{err: err}
}

// IsTransient reports whether a run failed for a reason expected to pass
// (Sentry or storage unavailable, rate limits, budget or lease lost mid-run).
// Progress up to the failure is committed; the caller should retry later.
func IsTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

// IsConfig reports whether err is a configuration error (ErrConfig).
func IsConfig(err error) bool { return errors.Is(err, ErrConfig) }

// Collector runs the events stream of one organisation.
type Collector struct {
	opts  Options
	api   SentryAPI
	data  Objects
	state Objects
	lease Leaser
	clock clock.Clock
	log   *slog.Logger
}

// New validates opts and returns a Collector reading through api, writing
// data objects to data and state documents (checkpoints, lease) to state.
// data and state may be the same store.
func New(opts Options, api SentryAPI, data, stateStore Objects) (*Collector, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: collector needs a Sentry client, a data store and a state store", ErrConfig)
	}
	c, err := newBase(opts, StreamEvents, data, stateStore)
	if err != nil {
		return nil, err
	}
	c.api = api
	return c, nil
}

// newBase applies defaults to opts, validates them for the named stream
// (whose state lives under <StatePrefix><stream>/) and returns a Collector
// without a Sentry client: the events stream adds its own, the issues and
// audit streams (issues.go, audit.go) keep theirs beside it.
func newBase(opts Options, stream string, data, stateStore Objects) (*Collector, error) {
	if data == nil || stateStore == nil {
		return nil, fmt.Errorf("%w: collector needs a Sentry client, a data store and a state store", ErrConfig)
	}
	if opts.Org == "" {
		return nil, fmt.Errorf("%w: the organisation slug is required", ErrConfig)
	}
	if opts.MaxProjects == 0 {
		opts.MaxProjects = DefaultMaxProjects
	}
	if opts.MaxPagesPerProject == 0 {
		opts.MaxPagesPerProject = DefaultMaxPagesPerProject
	}
	switch opts.Lag {
	case 0:
		opts.Lag = DefaultLag
	case ZeroDuration:
		opts.Lag = 0
	}
	switch opts.Overlap {
	case 0:
		opts.Overlap = DefaultOverlap
	case ZeroDuration:
		opts.Overlap = 0
	}
	if opts.InitialLookback == 0 {
		opts.InitialLookback = DefaultInitialLookback
	}
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = DefaultMaxWindow
	}
	if opts.Budget == 0 {
		opts.Budget = DefaultBudget
	}
	if opts.FullSweepInterval == 0 {
		opts.FullSweepInterval = DefaultFullSweepInterval
	}
	switch {
	case opts.MaxProjects < 0:
		return nil, fmt.Errorf("%w: max projects must be positive, got %d", ErrConfig, opts.MaxProjects)
	case opts.Lag < 0, opts.Overlap < 0, opts.InitialLookback < 0, opts.Budget < 0:
		return nil, fmt.Errorf("%w: lag, overlap, initial look-back and budget must not be negative", ErrConfig)
	case opts.Overlap > opts.MaxWindow/2:
		return nil, fmt.Errorf("%w: the overlap (COLLECT_OVERLAP) is %s but must be at most half the maximum window (%s): each window re-reads the overlap before the watermark, so a larger one would stop the watermark from moving forward", ErrConfig, opts.Overlap, opts.MaxWindow/2)
	case opts.DataPrefix == "":
		return nil, fmt.Errorf("%w: the data prefix must not be empty (the state would lie inside it)", ErrConfig)
	case strings.HasPrefix(opts.StatePrefix+stream+"/", opts.DataPrefix):
		return nil, fmt.Errorf("%w: the state prefix %q must not lie inside the data prefix %q (the feed would ingest or delete the state)", ErrConfig, opts.StatePrefix, opts.DataPrefix)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.RunID == "" {
		opts.RunID = newRunID()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var lease Leaser = &objectLeaser{store: stateStore, clock: opts.Clock}
	if so, ok := stateStore.(state.Objects); ok {
		lease = newStateLeaser(so, opts.Clock)
	}
	return &Collector{
		opts:  opts,
		data:  data,
		state: stateStore,
		lease: lease,
		clock: opts.Clock,
		log:   opts.Logger,
	}, nil
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkpointKey is the state document of a project.
func (c *Collector) checkpointKey(projectID string) string {
	return c.opts.StatePrefix + "events/projects/" + projectID + ".json"
}

// stopRequested reports whether the StopSignal was given.
func (c *Collector) stopRequested() bool {
	if c.opts.StopSignal == nil {
		return false
	}
	select {
	case <-c.opts.StopSignal:
		return true
	default:
		return false
	}
}

// leaseKey is the events stream's lease.
func (c *Collector) leaseKey() string { return c.opts.StatePrefix + "events/lease.json" }

// leaseTTL is the lease's time to live for a run with the given budget.
func leaseTTL(budget time.Duration) time.Duration {
	return min(budget+leaseMargin, maxLeaseTTL)
}
