// Package coverage keeps the coverage ledger: per project and hour, what
// Sentry holds against what the bucket holds, so that an operator can see,
// hour by hour, that the bucket holds everything Sentry holds.
//
// A row is a project's timestamp-hour, the hour events are filed under in
// Sentry, in the bucket's objects and in SecOps. Its counts:
//
//   - collected: the events written with a timestamp in the hour, counted by
//     the events stream in the same commit as the objects that hold them
//     (events.ProjectCoverage): measured, never inferred, and no object is
//     read back to count it;
//   - visible: Discover's count_unique(id) of the hour's events (a one-hour
//     timestamp range: the cheapest Discover query there is), received
//     before the late sweep's position, since later arrivals are still in
//     flight;
//   - accepted and received_visible: for the same hour as a RECEIVED hour,
//     stats_v2's accepted outcomes and Discover's count of the events
//     received in it. A received-hour closes; the two should agree, and
//     when they do not the row says sentry_inconsistent (recorded, not
//     "fixed": deletions and pipeline losses make them differ).
//
// When visible and collected differ, the ids are diffed (Discover's list of
// the hour against the bucket's objects read back) and the missing ones are
// queued to the events stream's late lane, which writes each once. An hour
// is first checked Settle after its end, once the stream's windows are done
// with it and its queued late events are written, and checked again Final
// (a day) after its end; rows that are not complete are checked every run.
// DESIGN.md next to this file explains the choices and the costs.
package coverage

import (
	"context"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Name is the stream's name.
const Name = "coverage"

// Row statuses.
const (
	Complete           = "complete"
	Provisional        = "provisional"
	Missing            = "missing"
	Unverified         = "unverified"
	SentryInconsistent = "sentry_inconsistent"
)

// ErrorKindMissing is logged as error_kind when a final hour has events
// Sentry shows and the bucket does not: the "coverage missing" alert counts
// these.
const ErrorKindMissing = "coverage_missing"

// Defaults.
const (
	// DefaultSettle is how long after an hour's end it is first checked:
	// the stream's windows are done with an hour about Lag + Overlap + a
	// run period after it ends, and the late sweep lists an event about a
	// minute after it is received.
	DefaultSettle = 15 * time.Minute
	// DefaultFinal is when an hour is checked for the last time: a day
	// after its end, when the late events of the day have been swept.
	DefaultFinal = 24 * time.Hour
	// DefaultKeep is how long rows are kept.
	DefaultKeep = 7 * 24 * time.Hour
	// maxDiffsPerRun bounds the id diffs of one run (each reads an hour of
	// a project from Discover and from the bucket).
	maxDiffsPerRun = 4
	// maxListed bounds the missing ids a row lists.
	maxListed = 100
	// ledgerVersion is the format version of a ledger document.
	ledgerVersion = 1
)

// API is the part of the Sentry client the ledger uses.
type API interface {
	events.ProjectLister
	events.DiscoverAPI
	events.StatsAPI
}

// Options configure the ledger.
type Options struct {
	// Org is the organisation slug; StatePrefix the prefix of state
	// documents (the ledger's are <StatePrefix>coverage/<project id>.json).
	Org         string
	StatePrefix string
	// MaxProjects bounds the projects checked (the events stream's).
	MaxProjects int
	// Settle, Final and Keep: see the defaults.
	Settle, Final, Keep time.Duration
}

// Ledger is the coverage ledger of one organisation's events.
type Ledger struct {
	opts   Options
	api    API
	ev     *events.Stream
	bucket events.Lister
	env    engine.Env
}

// New returns the ledger of the events stream ev, reading Sentry through
// api and listing the bucket through bucket.
func New(opts Options, api API, ev *events.Stream, bucket events.Lister, env engine.Env) (*Ledger, error) {
	switch {
	case api == nil || ev == nil || bucket == nil:
		return nil, fmt.Errorf("%w: the coverage ledger needs a Sentry client, the events stream and the bucket", failure.ErrConfig)
	case opts.Org == "":
		return nil, fmt.Errorf("%w: the organisation slug is required", failure.ErrConfig)
	}
	if err := env.Check(); err != nil {
		return nil, err
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Final <= 0 {
		opts.Final = DefaultFinal
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.MaxProjects <= 0 {
		opts.MaxProjects = events.DefaultMaxProjects
	}
	if opts.Final < opts.Settle || opts.Keep < opts.Final {
		return nil, fmt.Errorf("%w: the coverage ledger needs settle (%s) ≤ final (%s) ≤ keep (%s)", failure.ErrConfig, opts.Settle, opts.Final, opts.Keep)
	}
	return &Ledger{opts: opts, api: api, ev: ev, bucket: bucket, env: env}, nil
}

// Name implements the collector's Stream: "coverage".
func (l *Ledger) Name() string { return Name }

// Key is a project's ledger document.
func (l *Ledger) Key(projectID string) string {
	return l.opts.StatePrefix + "coverage/" + projectID + ".json"
}

// LeaseKey is the ledger's lease.
func (l *Ledger) LeaseKey() string { return l.opts.StatePrefix + "coverage/lease.json" }

// Row is one project-hour of the ledger.
type Row struct {
	// Hour is the hour's start (UTC).
	Hour   time.Time `json:"hour"`
	Status string    `json:"status"`
	// Accepted and ReceivedVisible count the events received in the hour
	// (stats_v2, Discover); nil: not known.
	Accepted        *int64 `json:"accepted,omitempty"`
	ReceivedVisible *int64 `json:"received_visible,omitempty"`
	// Visible counts the events with a timestamp in the hour that Sentry
	// shows (received before the sweep's position); nil: not known.
	Visible *int64 `json:"visible,omitempty"`
	// Collected counts the events with a timestamp in the hour in the
	// bucket: the stream's count, plus Offset, the events a diff found in
	// the bucket that the stream did not count (written by a backfill, or
	// before counting began).
	Collected int64 `json:"collected"`
	Offset    int64 `json:"offset,omitempty"`
	// MissingCount events Sentry shows are not in the bucket (Missing
	// lists up to 100 of their ids); Extra events in the bucket are no
	// longer shown by Sentry (deleted since they were collected).
	MissingCount int      `json:"missing_count,omitempty"`
	Missing      []string `json:"missing,omitempty"`
	Extra        int      `json:"extra,omitempty"`
	// Note says why a row is provisional or unverified.
	Note      string    `json:"note,omitempty"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// Final is set once the hour had its final check.
	Final bool `json:"final,omitempty"`
}

// ledgerDoc is a project's ledger, <state>coverage/<project id>.json.
type ledgerDoc struct {
	Version   int       `json:"version"`
	ProjectID string    `json:"project_id"`
	Slug      string    `json:"slug,omitempty"`
	Rows      []Row     `json:"rows"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Run checks the hours that are due, within budget.
func (l *Ledger) Run(ctx context.Context, budget time.Duration) (engine.Summary, error) {
	cfg := l.env.Config(Name, l.LeaseKey(), budget)
	return engine.Do(ctx, cfg, func(r *engine.Run) error {
		x := &run{l: l, r: r, sum: r.Summary()}
		return x.do(ctx)
	})
}

var _ API = (*sentry.Client)(nil)
