// Package issues is the issues source: it writes a version of each of the
// organisation's issues into write-once NDJSON objects each time the issue is
// new or has changed, each version exactly once, on the engine
// (internal/engine). DESIGN.md next to this file explains each rule and its
// cost.
//
// A version is a fingerprint of the issue's status, substatus, level,
// priority, assignee and lifetime count, firstSeen and lastSeen (Parse). The
// record written is the row exactly as Sentry sent it. In it, the top-level
// count, userCount, firstSeen and lastSeen describe only the events of the
// window of the request that returned it; the issue's own numbers are under
// "lifetime".
//
// Two kinds of pass read GET /api/0/organizations/{org}/issues/?project=-1
// &query=&sort=new&limit=100&start=…&end=… (every accessible project, all
// statuses, stable first-seen order), following rel="next" while
// results="true", and write each issue whose version differs from the last
// one written:
//
//   - windows [W − Overlap, now − Lag) on events, every run: the issues with
//     a new event, within a run of it;
//   - a sweep [now − SweepPeriod, now − Lag) every SweepInterval (default 14
//     days, hourly): the issues resolved, assigned or re-prioritised without
//     a new event, which no window on events returns.
//
// One state document, <StatePrefix>issues/state.json, holds both passes'
// progress, the next object's name, and per issue the fingerprint of the
// version last written (about 32 bytes an issue, for the issues with an event
// in the sweep period).
package issues

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Name is the stream's name.
const Name = "issues"

// Defaults and bounds of Options.
const (
	// DefaultSweepPeriod: the sweep reads the issues with an event in the
	// last 14 days, Sentry's own default period of the issue list.
	DefaultSweepPeriod = 14 * 24 * time.Hour
	// DefaultSweepInterval: a sweep starts hourly.
	DefaultSweepInterval = time.Hour
	// MaxSweepPeriod: Sentry's issue search never looks back further than
	// 90 days, whatever the window asked for.
	MaxSweepPeriod = 90 * 24 * time.Hour
)

// Tuning constants.
const (
	// catchUpGap: see the events stream; a window completed in a run opens
	// another only when the watermark is this far behind.
	catchUpGap = 10 * time.Minute
	// pageLimit is the rows per page (Sentry's maximum).
	pageLimit = 100
)

// API is the part of the Sentry client the issues stream uses.
type API interface {
	ListIssues(ctx context.Context, q sentry.IssuesQuery) (sentry.Page[sentry.Issue], error)
}

// Options configure the issues stream.
type Options struct {
	// Org is the organisation slug (required).
	Org string
	// DataPrefix is the prefix of the issue objects; StatePrefix that of
	// the state (outside DataPrefix).
	DataPrefix  string
	StatePrefix string
	// Lag, Overlap, InitialLookback and MaxWindow shape the windows on
	// events as for the events stream (InitialLookback and MaxWindow
	// default to 24h).
	Lag             time.Duration
	Overlap         time.Duration
	InitialLookback time.Duration
	MaxWindow       time.Duration
	// SweepPeriod is how far back the quiet-change sweep reaches: it reads
	// every issue with an event in the last SweepPeriod. Default 14 days;
	// at most MaxSweepPeriod; negative turns the sweep off (quiet changes
	// are then written only with the issue's next event).
	SweepPeriod time.Duration
	// SweepInterval is how often a sweep starts (after the end of the
	// previous one); default 1h. A quiet change is written within
	// SweepInterval plus one run period (and the sweep's own duration).
	SweepInterval time.Duration
}

// Stream is the issues stream of one organisation.
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
	if opts.InitialLookback == 0 {
		opts.InitialLookback = events.DefaultInitialLookback
	}
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = events.DefaultMaxWindow
	}
	if opts.SweepPeriod == 0 {
		opts.SweepPeriod = DefaultSweepPeriod
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	switch {
	case opts.Lag < 0 || opts.Overlap < 0 || opts.InitialLookback < 0:
		return nil, fmt.Errorf("%w: lag, overlap and initial look-back must not be negative", failure.ErrConfig)
	case opts.SweepPeriod > MaxSweepPeriod:
		return nil, fmt.Errorf("%w: the issues sweep period is %s but Sentry's issue search never looks back further than %s", failure.ErrConfig, opts.SweepPeriod, MaxSweepPeriod)
	case opts.SweepInterval < 0:
		return nil, fmt.Errorf("%w: the issues sweep interval must not be negative", failure.ErrConfig)
	}
	return &Stream{opts: opts, api: api, env: env}, nil
}

// Name implements the collector's Stream: "issues".
func (s *Stream) Name() string { return Name }

func (s *Stream) stateKey() string { return s.opts.StatePrefix + "issues/state.json" }
func (s *Stream) leaseKey() string { return s.opts.StatePrefix + "issues/lease.json" }

// sweeps reports whether the quiet-change sweep is on.
func (s *Stream) sweeps() bool { return s.opts.SweepPeriod > 0 }

// Run runs one pass bounded by budget: windows until caught up, then the
// sweep when one is in progress or due. A missing scope or a rejected token
// (the issues endpoint needs event:read) is a configuration error, a Sentry
// failure a transient *engine.ReadError; progress is committed.
func (s *Stream) Run(ctx context.Context, budget time.Duration) (engine.Summary, error) {
	return engine.Do(ctx, s.env.Config(Name, s.leaseKey(), budget), func(r *engine.Run) error {
		x := &run{s: s, r: r}
		return x.do(ctx)
	})
}

// kind is the kind of a pass.
type kind int

const (
	windowPass kind = iota
	sweepPass
)

// run is one run of the stream.
type run struct {
	s   *Stream
	r   *engine.Run
	doc *engine.Doc[state]
	// What the sweep did in this run (summary).
	swept                    bool
	sweepPages, sweepRecords int
	sweepsCompleted          int
}

func (x *run) st() *state { return &x.doc.V }

// pass is the pass of kind k in progress (nil: none).
func (x *run) pass(k kind) *pass {
	if k == sweepPass {
		return x.st().Sweep
	}
	return x.st().Window
}

func (x *run) load(ctx context.Context) error {
	doc, err := engine.LoadDoc(ctx, x.s.env.State, x.s.stateKey(), func() state {
		return state{Version: stateVersion, Marks: make(marks)}
	})
	if err != nil {
		return fmt.Errorf("failed to load the issues state: %w", err)
	}
	if err := doc.V.migrate(); err != nil {
		return fmt.Errorf("failed to load %s: %w", doc.Key, err)
	}
	x.doc = doc
	return nil
}

func (x *run) do(ctx context.Context) error {
	if err := x.load(ctx); err != nil {
		return err
	}
	defer x.finish()
	kinds := []kind{windowPass}
	if x.s.sweeps() {
		kinds = append(kinds, sweepPass)
	} else {
		// Turned off since it started: forget it (saved with the next
		// commit). An object it wrote without committing is found under
		// the next name all the same.
		x.st().Sweep = nil
	}
	// Conflicts are counted over the whole run; a reloaded document is
	// migrated again.
	ps := &engine.Passes{Run: x.r, Reloaded: func() error {
		if err := x.st().migrate(); err != nil {
			return fmt.Errorf("failed to load %s: %w", x.doc.Key, err)
		}
		return nil
	}}
	for _, k := range kinds {
		stop, err := ps.Read(ctx, &passes{x: x, k: k})
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// passes is the reading of the passes of kind k in one run (engine.Pass).
type passes struct {
	x *run
	k kind
	// completed: a pass of kind k completed in this run (a window then
	// opens another only when the watermark is catchUpGap behind).
	completed bool
}

var _ engine.Pass = (*passes)(nil)

// Active implements engine.Pass.
func (p *passes) Active() bool { return p.x.pass(p.k) != nil }

// Open implements engine.Pass.
func (p *passes) Open(ctx context.Context) (bool, error) { return p.x.open(ctx, p.k, p.completed) }

// Turn implements engine.Pass, and counts what the sweep did for the
// summary.
func (p *passes) Turn(ctx context.Context) error {
	x := p.x
	records := x.r.Summary().Records
	pages := x.r.Summary().Pages
	err := x.turn(ctx, p.k)
	if p.k == sweepPass {
		x.swept = true
		x.sweepPages += x.r.Summary().Pages - pages
		x.sweepRecords += x.r.Summary().Records - records
	}
	if err == nil && x.pass(p.k) == nil {
		p.completed = true
		if p.k == sweepPass {
			x.sweepsCompleted++
		}
	}
	return err
}

// finish fills the end-of-run summary fields.
func (x *run) finish() {
	st := x.st()
	sum := x.r.Summary()
	now := x.r.Now()
	if st.Window != nil || st.Sweep != nil || now.Add(-x.s.opts.Lag).Sub(st.Watermark) >= catchUpGap || x.sweepDue(now) {
		sum.WorkRemaining = true
	}
	w := st.Watermark
	if w.IsZero() && st.Window != nil {
		w = st.Window.Start
	}
	if !w.IsZero() {
		sum.Lag = now.Sub(w)
	}
	sum.Extra = append(sum.Extra, slog.Int("issues_tracked", len(st.Marks)))
	if x.swept {
		sum.Extra = append(sum.Extra,
			slog.Int("sweep_pages", x.sweepPages),
			slog.Int("sweep_records", x.sweepRecords),
			slog.Int("sweeps_completed", x.sweepsCompleted))
	}
}
