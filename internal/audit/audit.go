// Package audit is the organisation audit-log source: it writes every
// audit-log entry into write-once NDJSON objects exactly once, on the engine
// (internal/engine).
//
// GET /api/0/organizations/{org}/audit-logs/ is newest first with a keyset
// cursor and has no time filter. A pass (a "sweep") reads from the newest
// entry down to Floor = A − Overlap, where A is the newest dateCreated
// collected by the last completed sweep, writes the entries whose id it has
// not written yet, and sets A to the newest dateCreated it saw. An entry that
// becomes visible d after its dateCreated is collected if d ≤ Overlap: it was
// not visible when the sweep passed its position, so t > V − d ≥ S − d ≥
// A' − d, where S is the sweep's start and A' ≤ S the new watermark.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Name is the stream's name.
const Name = "audit"

// stateVersion is the format version of the state document.
const stateVersion = 1

// DefaultOverlap is the audit stream's default overlap. Audit entries reach
// the control silo through Sentry's hybrid-cloud outbox, normally within
// seconds, but outbox backlogs during incidents delay them by minutes; an
// hour covers that with a wide margin, and costs little: each sweep re-reads
// one hour of entries (one page for most organisations) and the state keeps
// their ids.
const DefaultOverlap = time.Hour

// API is the part of the Sentry client the audit stream uses. The client
// must point at the main (control-silo) host, never a region host.
type API interface {
	ListAuditLogs(ctx context.Context, q sentry.AuditLogQuery) (sentry.Page[sentry.AuditLogEntry], error)
}

// Options configure the audit stream.
type Options struct {
	// Org is the organisation slug (required).
	Org string
	// DataPrefix is the prefix of the audit objects; StatePrefix that of
	// the state (outside DataPrefix).
	DataPrefix  string
	StatePrefix string
	// Overlap is how far below its watermark a sweep reads (entries can
	// become visible late with their original time); default
	// DefaultOverlap.
	Overlap time.Duration
	// InitialLookback is the first sweep's reach; default 24h.
	InitialLookback time.Duration
}

// state is the stream's state document, <StatePrefix>audit/state.json.
type state struct {
	Version int `json:"version"`
	// Watermark is the newest dateCreated collected by a completed sweep.
	Watermark time.Time `json:"watermark,omitzero"`
	// Sweep is the sweep in progress; persisted before its objects.
	Sweep *sweep `json:"sweep,omitempty"`
	// NextSeq and NextEpoch name the next data object.
	engine.Sequence
	// Seen maps the ids written to their dateCreated (unix seconds); ids
	// older than the next sweep's floor are pruned.
	Seen      engine.Seen `json:"seen"`
	UpdatedAt time.Time   `json:"updated_at,omitzero"`
	UpdatedBy string      `json:"updated_by,omitempty"`
}

// sweep is a sweep in progress.
type sweep struct {
	// Started is when it began (the epoch of its objects' names).
	Started time.Time `json:"started"`
	// Floor: entries older than it end the sweep.
	Floor time.Time `json:"floor"`
	// Top is the newest dateCreated seen so far (the next watermark).
	Top    time.Time `json:"top,omitzero"`
	Cursor string    `json:"cursor,omitempty"`
	Pages  int64     `json:"pages,omitempty"`
}

// Parse reads an audit-log entry (from Sentry, or a line read back from a
// data object) into a record: its id and dateCreated.
func Parse(raw []byte) (engine.Record, error) {
	var e struct {
		ID          string    `json:"id"`
		DateCreated time.Time `json:"dateCreated"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || !engine.ValidID(e.ID) {
		return engine.Record{}, errors.New("not an audit-log entry")
	}
	return engine.Record{ID: e.ID, Time: e.DateCreated.Unix(), Raw: raw}, nil
}

// Stream is the audit-log stream of one organisation.
type Stream struct {
	opts Options
	api  API
	env  engine.Env
}

// New validates opts and returns the stream reading through api, which must
// use the audit token (org:write) on the main host.
func New(opts Options, api API, env engine.Env) (*Stream, error) {
	if err := env.CheckSource(Name, api, opts.Org, opts.DataPrefix, opts.StatePrefix); err != nil {
		return nil, err
	}
	if opts.Overlap <= 0 {
		opts.Overlap = DefaultOverlap
	}
	if opts.InitialLookback <= 0 {
		opts.InitialLookback = events.DefaultInitialLookback
	}
	return &Stream{opts: opts, api: api, env: env}, nil
}

// Name implements the collector's Stream: "audit".
func (s *Stream) Name() string { return Name }

func (s *Stream) stateKey() string { return s.opts.StatePrefix + "audit/state.json" }
func (s *Stream) leaseKey() string { return s.opts.StatePrefix + "audit/lease.json" }

// Run runs one sweep (or the rest of one) bounded by budget. A token without
// org:write (403) or a rejected token (401) is a configuration error.
func (s *Stream) Run(ctx context.Context, budget time.Duration) (engine.Summary, error) {
	return engine.Do(ctx, s.env.Config(Name, s.leaseKey(), budget), func(r *engine.Run) error {
		x := &run{s: s, r: r}
		return x.do(ctx)
	})
}

// run is one run of the stream.
type run struct {
	s   *Stream
	r   *engine.Run
	doc *engine.Doc[state]
}

func (x *run) st() *state { return &x.doc.V }

func (x *run) load(ctx context.Context) error {
	doc, err := engine.LoadDoc(ctx, x.s.env.State, x.s.stateKey(), func() state {
		return state{Version: stateVersion, Seen: make(engine.Seen)}
	})
	if err != nil {
		return fmt.Errorf("failed to load the audit state: %w", err)
	}
	if doc.V.Version != stateVersion {
		return fmt.Errorf("failed to load %s: unsupported version %d", doc.Key, doc.V.Version)
	}
	if doc.V.Seen == nil {
		doc.V.Seen = make(engine.Seen)
	}
	x.doc = doc
	return nil
}

func (x *run) do(ctx context.Context) error {
	if err := x.load(ctx); err != nil {
		return err
	}
	sw := &sweeps{x: x}
	if _, err := (&engine.Passes{Run: x.r}).Read(ctx, sw); err != nil {
		return err
	}
	sum := x.r.Summary()
	// Work remains while a sweep is in progress, or when this run could
	// not open one (every run sweeps).
	sum.WorkRemaining = x.st().Sweep != nil || !sw.opened
	if w := x.st().Watermark; !w.IsZero() {
		sum.Lag = x.r.Now().Sub(w)
	}
	return nil
}

// sweeps is the reading of one run (engine.Pass): one sweep at most is
// opened, and entries that arrive after it are the next run's.
type sweeps struct {
	x      *run
	opened bool
}

var _ engine.Pass = (*sweeps)(nil)

// Active implements engine.Pass.
func (s *sweeps) Active() bool { return s.x.st().Sweep != nil }

// Open implements engine.Pass.
func (s *sweeps) Open(ctx context.Context) (bool, error) {
	if s.opened {
		return false, nil
	}
	if err := s.x.openSweep(ctx); err != nil {
		return false, err
	}
	s.opened = true
	return true, nil
}

// Turn implements engine.Pass.
func (s *sweeps) Turn(ctx context.Context) error { return s.x.turn(ctx) }

// lane implements engine.Lane over the state document.
type lane struct{ x *run }

var _ engine.Lane = lane{}

// Next implements engine.Lane.
func (l lane) Next() string { return l.x.st().Name(l.x.s.opts.DataPrefix, l.x.s.opts.Org, Name) }

// Parse implements engine.Lane.
func (l lane) Parse(line []byte) (engine.Record, error) { return Parse(line) }

// Absorb implements engine.Lane: the entries are written; objects of a
// sweep are named from its start.
func (l lane) Absorb(recs []engine.Record) {
	st := l.x.st()
	for _, r := range recs {
		st.Seen[r.ID] = r.Time
	}
	st.Advance(st.Sweep.Started.Unix())
}

// Commit implements engine.Lane: it prunes the seen ids below the current
// (or next) floor and saves the state.
func (l lane) Commit(ctx context.Context) error {
	x := l.x
	st := x.st()
	st.UpdatedAt = x.r.Now().UTC()
	st.UpdatedBy = x.r.ID()
	var floor time.Time
	switch {
	case st.Sweep != nil:
		floor = st.Sweep.Floor
	case !st.Watermark.IsZero():
		floor = st.Watermark.Add(-x.s.opts.Overlap)
	}
	if !floor.IsZero() {
		keepFrom := floor.Unix() - 1 // seen keeps whole seconds
		maps.DeleteFunc(st.Seen, func(_ string, t int64) bool { return t < keepFrom })
	}
	return x.doc.Save(ctx, x.r)
}

// openSweep persists a new sweep.
func (x *run) openSweep(ctx context.Context) error {
	st := x.st()
	now := x.r.Now().UTC()
	floor := st.Watermark.Add(-x.s.opts.Overlap)
	if st.Watermark.IsZero() {
		floor = now.Add(-x.s.opts.InitialLookback)
	}
	st.Sweep = &sweep{Started: now.Truncate(time.Second), Floor: floor, Top: st.Watermark}
	st.Begin(st.Sweep.Started.Unix())
	return lane{x}.Commit(ctx)
}

// turn reads up to engine.MaxPagesPerObject pages of the sweep and writes
// them as one object.
func (x *run) turn(ctx context.Context) error {
	st := x.st()
	sw := st.Sweep
	top := sw.Top
	_, err := x.r.Turn(ctx, lane{x}, sw.Cursor, engine.MaxPagesPerObject, func(ctx context.Context, b *engine.Batch) error {
		page, err := x.s.api.ListAuditLogs(ctx, sentry.AuditLogQuery{Org: x.s.opts.Org, Cursor: b.Cursor, PerPage: 100})
		if err != nil {
			return fmt.Errorf("audit stream: failed to read the organization's audit log: %w", failure.Hint(err,
				"SENTRY_AUDIT_TOKEN needs the org:write scope (or org:admin), and SENTRY_API_BASE must be the main host "+
					"(https://sentry.io, not a region host: the audit log is a control-silo endpoint)"))
		}
		top = addPage(page, sw, st.Seen, top, b)
		return nil
	}, func(b *engine.Batch) {
		sw := st.Sweep
		sw.Pages += int64(b.Pages)
		if top.After(sw.Top) {
			sw.Top = top
		}
		if b.Done {
			st.Watermark = sw.Top
			st.Sweep = nil
			return
		}
		sw.Cursor = b.Cursor
	})
	return err
}

// addPage filters a page into the batch and returns the newest dateCreated
// seen so far. An entry older than the floor ends the sweep.
func addPage(page sentry.Page[sentry.AuditLogEntry], sw *sweep, seen engine.Seen, top time.Time, b *engine.Batch) time.Time {
	older := false
	for _, e := range page.Items {
		if !engine.ValidID(e.ID) || e.DateCreated.IsZero() || len(e.Raw) == 0 {
			b.Invalid++
			continue
		}
		if e.DateCreated.Before(sw.Floor) {
			older = true
			continue
		}
		if e.DateCreated.After(top) {
			top = e.DateCreated
		}
		if _, ok := seen[e.ID]; ok {
			b.Dups++
			continue
		}
		b.Add(engine.Record{ID: e.ID, Time: e.DateCreated.Unix(), Raw: e.Raw})
	}
	if !page.HasNext || older {
		b.Done = true
		return top
	}
	b.Cursor = page.NextCursor
	return top
}
