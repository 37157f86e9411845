// Package issues is the issues source: it writes a version of each of the
// organisation's issues into write-once NDJSON objects each time the issue is
// new or has changed, each version exactly once, on the engine
// (internal/engine).
//
// A version is a fingerprint of the issue's status, substatus, level,
// priority, assignee and lifetime count, firstSeen and lastSeen (Parse). The
// record written is the row exactly as Sentry sent it. In it, the top-level
// count, userCount, firstSeen and lastSeen describe only the events of the
// window of the request that returned it; the issue's own numbers are under
// "lifetime".
//
// One state document, <StatePrefix>issues/state.json: a watermark W, the
// window in progress with its cursor, the next object's name, and per issue
// a fingerprint of the last version written. A pass reads
// GET /api/0/organizations/{org}/issues/?project=-1&query=&sort=new&limit=100
// &start=W−Overlap&end=now−Lag (every accessible project, all statuses,
// stable first-seen order), following rel="next" while results="true", and
// writes each issue whose version differs from the last one written.
package issues

import (
	"context"
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
const Name = "issues"

// stateVersion is the format version of the state document.
const stateVersion = 1

// maxConflictsPerRun bounds compare-and-swap conflicts in one run.
const maxConflictsPerRun = 20

// catchUpGap: see the events stream; a window completed in a run opens
// another only when the watermark is this far behind.
const catchUpGap = 10 * time.Minute

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
	// Lag, Overlap, InitialLookback and MaxWindow shape the lastSeen
	// windows as for the events stream (InitialLookback and MaxWindow
	// default to 24h).
	Lag             time.Duration
	Overlap         time.Duration
	InitialLookback time.Duration
	MaxWindow       time.Duration
}

// state is the stream's state document.
type state struct {
	Version int `json:"version"`
	// Watermark is the end of the last completed window (zero: none).
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress; persisted before its objects.
	Window *window `json:"window,omitempty"`
	// NextSeq and NextEpoch name the next data object; they change only
	// in a commit that records the versions of the object written (or
	// found) under the previous name.
	engine.Sequence
	// Issues maps an issue id to the last version written. Entries whose
	// lifetime lastSeen is before the next window's start are pruned: a
	// window returns only issues with an event in it, so any later row of
	// that issue has a newer lastSeen (or a higher count), so a different
	// version anyway.
	Issues    map[string]mark `json:"issues"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
	UpdatedBy string          `json:"updated_by,omitempty"`
}

// window is a lastSeen window [Start, End) in progress.
type window struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Cursor string    `json:"cursor,omitempty"`
	Pages  int64     `json:"pages,omitempty"`
}

// mark is the version of an issue last written (see Parse) and its
// lifetime lastSeen in unix seconds (for pruning).
type mark struct {
	V  string `json:"v"`
	LS int64  `json:"ls"`
}

// Stream is the issues stream of one organisation.
type Stream struct {
	opts Options
	api  API
	env  engine.Env
}

// New validates opts and returns the stream reading through api.
func New(opts Options, api API, env engine.Env) (*Stream, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: the issues stream needs a Sentry client", failure.ErrConfig)
	}
	if err := env.Check(); err != nil {
		return nil, err
	}
	if err := events.CheckPrefixes(opts.Org, opts.DataPrefix, opts.StatePrefix, Name); err != nil {
		return nil, err
	}
	if opts.InitialLookback == 0 {
		opts.InitialLookback = events.DefaultInitialLookback
	}
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = events.DefaultMaxWindow
	}
	if opts.Lag < 0 || opts.Overlap < 0 || opts.InitialLookback < 0 {
		return nil, fmt.Errorf("%w: lag, overlap and initial look-back must not be negative", failure.ErrConfig)
	}
	return &Stream{opts: opts, api: api, env: env}, nil
}

// Name implements the collector's Stream: "issues".
func (s *Stream) Name() string { return Name }

func (s *Stream) stateKey() string { return s.opts.StatePrefix + "issues/state.json" }
func (s *Stream) leaseKey() string { return s.opts.StatePrefix + "issues/lease.json" }

// Run runs one pass bounded by budget. A missing scope or a rejected token
// (the issues endpoint needs event:read) is a configuration error, a Sentry
// failure a transient *engine.ReadError; progress is committed.
func (s *Stream) Run(ctx context.Context, budget time.Duration) (engine.Summary, error) {
	return engine.Do(ctx, s.env.Config(Name, s.leaseKey(), budget), func(r *engine.Run) error {
		x := &run{s: s, r: r}
		return x.do(ctx)
	})
}

// run is one run of the stream.
type run struct {
	s         *Stream
	r         *engine.Run
	doc       *engine.Doc[state]
	conflicts int
}

func (x *run) st() *state { return &x.doc.V }

func (x *run) load(ctx context.Context) error {
	doc, err := engine.LoadDoc(ctx, x.s.env.State, x.s.stateKey(), func() state {
		return state{Version: stateVersion, Issues: make(map[string]mark)}
	})
	if err != nil {
		return fmt.Errorf("failed to load the issues state: %w", err)
	}
	if doc.V.Version != stateVersion {
		return fmt.Errorf("failed to load %s: unsupported version %d", doc.Key, doc.V.Version)
	}
	if doc.V.Issues == nil {
		doc.V.Issues = make(map[string]mark)
	}
	x.doc = doc
	return nil
}

// conflict counts a lost compare-and-swap (the state was reloaded).
func (x *run) conflict() error {
	if x.conflicts++; x.conflicts > maxConflictsPerRun {
		return failure.Transient(errors.New("issues stream: too many concurrent state changes"))
	}
	return nil
}

func (x *run) do(ctx context.Context) error {
	if err := x.load(ctx); err != nil {
		return err
	}
	defer x.finish()
	completed := false
	for {
		if x.st().Window == nil {
			minGap := time.Second
			if completed {
				minGap = catchUpGap
			}
			if !x.r.CanRead() {
				break
			}
			opened, err := x.openWindow(ctx, minGap)
			if errors.Is(err, engine.ErrConflict) {
				if err := x.conflict(); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return failure.Transient(err)
			}
			if !opened {
				break
			}
		}
		err := x.turn(ctx)
		switch {
		case err == nil:
		case errors.Is(err, engine.ErrStop):
			return nil
		case errors.Is(err, engine.ErrConflict):
			if err := x.conflict(); err != nil {
				return err
			}
			continue
		default:
			return err
		}
		if x.st().Window == nil {
			completed = true
		}
	}
	return nil
}

// finish fills the end-of-run summary fields.
func (x *run) finish() {
	st := x.st()
	sum := x.r.Summary()
	now := x.r.Now()
	if st.Window != nil || now.Add(-x.s.opts.Lag).Sub(st.Watermark) >= catchUpGap {
		sum.WorkRemaining = true
	}
	w := st.Watermark
	if w.IsZero() && st.Window != nil {
		w = st.Window.Start
	}
	if !w.IsZero() {
		sum.Lag = now.Sub(w)
	}
}

// lane implements engine.Lane over the state document.
type lane struct{ x *run }

var _ engine.Lane = lane{}

// Next implements engine.Lane.
func (l lane) Next() string { return l.x.st().Name(l.x.s.opts.DataPrefix, l.x.s.opts.Org, Name) }

// Parse implements engine.Lane.
func (l lane) Parse(line []byte) (engine.Record, error) { return Parse(line) }

// Absorb implements engine.Lane: the versions are written. A version whose
// lastSeen is unknown (null in the row) is filed under now: the row was read
// before now, so its real lastSeen is not later, and pruning keeps its mark
// at least as long as needed.
func (l lane) Absorb(recs []engine.Record) {
	st := l.x.st()
	now := l.x.r.Now().Unix()
	for _, r := range recs {
		t := r.Time
		if t == 0 {
			t = now
		}
		st.Issues[r.ID] = mark{V: r.Version, LS: t}
	}
	st.Advance(st.Window.End.Unix())
}

// Commit implements engine.Lane: it prunes and saves the state.
func (l lane) Commit(ctx context.Context) error {
	x := l.x
	st := x.st()
	st.UpdatedAt = x.r.Now().UTC()
	st.UpdatedBy = x.r.ID()
	var keepFrom int64
	switch {
	case st.Window != nil:
		keepFrom = st.Window.Start.Unix()
	case !st.Watermark.IsZero():
		keepFrom = st.Watermark.Add(-x.s.opts.Overlap).Unix()
	}
	maps.DeleteFunc(st.Issues, func(_ string, m mark) bool { return m.LS < keepFrom })
	return x.doc.Save(ctx, x.r)
}

// openWindow persists a new window, or reports that there is nothing new.
func (x *run) openWindow(ctx context.Context, minGap time.Duration) (bool, error) {
	o := x.s.opts
	st := x.st()
	now := x.r.Now().UTC()
	end := now.Add(-o.Lag).Truncate(time.Second)
	var start time.Time
	if st.Watermark.IsZero() {
		start = now.Add(-o.InitialLookback).Truncate(time.Second)
	} else {
		if end.Sub(st.Watermark) < minGap {
			return false, nil
		}
		start = st.Watermark.Add(-o.Overlap)
	}
	if end.Sub(start) > o.MaxWindow {
		end = start.Add(o.MaxWindow)
	}
	if !end.After(start) {
		return false, nil
	}
	st.Window = &window{Start: start, End: end}
	st.Begin(end.Unix())
	if err := (lane{x}).Commit(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// turn reads up to engine.MaxPagesPerObject pages of the window and writes
// them as one object.
//
// It asks for every accessible project (project=-1: without it Sentry covers
// only the projects of the token user's teams), all statuses (query=
// explicitly: Sentry's default is unresolved issues only), and sort=new. The
// order is the issue's first event, which does not move while a pass pages
// through it; sort=date pages on the last event of the window, so an issue
// that gets a late event (stamped inside the window, visible only now) while
// the pass is paging jumps above the cursor and is not returned by that pass.
func (x *run) turn(ctx context.Context) error {
	st := x.st()
	w := st.Window
	inBatch := make(map[string]bool) // issue ids with a version in the batch
	_, err := x.r.Turn(ctx, lane{x}, w.Cursor, engine.MaxPagesPerObject, func(ctx context.Context, b *engine.Batch) error {
		page, err := x.s.api.ListIssues(ctx, sentry.IssuesQuery{
			Org:      x.s.opts.Org,
			Projects: []string{sentry.AllProjects},
			Query:    "", // explicit: all statuses
			Start:    w.Start,
			End:      w.End,
			Sort:     "new",
			Cursor:   b.Cursor,
			Limit:    100,
		})
		if err != nil {
			return fmt.Errorf("issues stream: failed to read the organization's issues: %w",
				failure.Hint(err, "check SENTRY_ORG and that SENTRY_AUTH_TOKEN has the event:read scope"))
		}
		addPage(page, w, st.Issues, inBatch, b)
		return nil
	}, func(b *engine.Batch) {
		w := st.Window
		w.Pages += int64(b.Pages)
		if b.Done {
			st.Watermark = w.End
			st.Window = nil
			return
		}
		w.Cursor = b.Cursor
	})
	return err
}

// addPage filters a page into the batch. A row is new when its version
// differs from the last one written, or when another version of the issue is
// already in the batch (it changed back). A row whose lifetime lastSeen is
// before the window's start has no event in the window (only a server that
// ignores start returns it) and is left out.
func addPage(page sentry.Page[sentry.Issue], w *window, written map[string]mark, inBatch map[string]bool, b *engine.Batch) {
	for _, is := range page.Items {
		rec, err := Parse(is.Raw)
		if err != nil {
			b.Invalid++
			continue
		}
		if rec.Time != 0 && rec.Time < w.Start.Unix() {
			continue
		}
		if prev, ok := written[rec.ID]; ok && prev.V == rec.Version && !inBatch[rec.ID] {
			b.Dups++
			continue
		}
		if b.Add(rec) {
			inBatch[rec.ID] = true
		}
	}
	if !page.HasNext {
		b.Done = true
		return
	}
	b.Cursor = page.NextCursor
}
