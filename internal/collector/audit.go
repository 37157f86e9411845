package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// The audit-log stream (see DESIGN.md, "Issues and audit-log streams").
//
// GET /api/0/organizations/{org}/audit-logs/ is newest first with a keyset
// cursor and has no time filter. A pass (a "sweep") reads from the newest
// entry down to Floor = A − AuditOverlap, where A is the newest dateCreated
// collected by the last completed sweep, writes the entries whose id it has
// not written yet, and sets A to the newest dateCreated it saw. An entry that
// becomes visible d after its dateCreated is collected if d ≤ AuditOverlap:
// it was not visible when the sweep passed its position, so t > V − d ≥ S − d
// ≥ A' − d, where S is the sweep's start and A' ≤ S the new watermark.

// auditStateVersion is the format version of the audit state document.
const auditStateVersion = 1

// DefaultAuditOverlap is the audit stream's default overlap. Audit entries
// reach the control silo through Sentry's hybrid-cloud outbox, normally
// within seconds, but outbox backlogs during incidents delay them by
// minutes; an hour covers that with a wide margin, and costs little: each
// sweep re-reads one hour of entries (one page for most organisations) and
// the state keeps their ids.
const DefaultAuditOverlap = time.Hour

// AuditAPI is the part of the Sentry client the audit stream uses. The
// client must point at the main (control-silo) host, never a region host.
type AuditAPI interface {
	ListAuditLogs(ctx context.Context, q sentry.AuditLogQuery) (sentry.Page[sentry.AuditLogEntry], error)
}

// auditState is the audit stream's state document,
// <StatePrefix>audit/state.json.
type auditState struct {
	Version int `json:"version"`
	// Watermark is the newest dateCreated collected by a completed sweep.
	Watermark time.Time `json:"watermark,omitzero"`
	// Sweep is the sweep in progress; persisted before its objects.
	Sweep *auditSweep `json:"sweep,omitempty"`
	// NextSeq and NextEpoch name the next data object (see issuesState).
	NextSeq   int64 `json:"next_seq"`
	NextEpoch int64 `json:"next_epoch"`
	// Seen maps the ids written to their dateCreated (unix seconds); ids
	// older than the next sweep's floor are pruned.
	Seen      seenSet   `json:"seen"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// auditSweep is a sweep in progress.
type auditSweep struct {
	// Started is when it began (the epoch of its objects' names).
	Started time.Time `json:"started"`
	// Floor: entries older than it end the sweep.
	Floor time.Time `json:"floor"`
	// Top is the newest dateCreated seen so far (the next watermark).
	Top    time.Time `json:"top,omitzero"`
	Cursor string    `json:"cursor,omitempty"`
	Pages  int64     `json:"pages,omitempty"`
}

// AuditCollector runs the audit-log stream.
type AuditCollector struct {
	c       *Collector
	api     AuditAPI
	overlap time.Duration
}

// NewAudit validates opts (DataPrefix is the audit prefix) and returns the
// audit stream reading through api, which must use the audit token
// (org:write) on the main host. Options.AuditOverlap defaults to
// max(DefaultAuditOverlap, Options.Overlap).
func NewAudit(opts Options, api AuditAPI, data, stateStore Objects) (*AuditCollector, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: the audit stream needs a Sentry client", ErrConfig)
	}
	c, err := newBase(opts, StreamAudit, data, stateStore)
	if err != nil {
		return nil, err
	}
	ov := opts.AuditOverlap
	if ov <= 0 {
		ov = max(DefaultAuditOverlap, c.opts.Overlap)
	}
	return &AuditCollector{c: c, api: api, overlap: ov}, nil
}

// Name implements Stream.
func (ac *AuditCollector) Name() string { return StreamAudit }

// Run runs one pass with Options.Budget.
func (ac *AuditCollector) Run(ctx context.Context) (Summary, error) {
	return ac.RunBudget(ctx, ac.c.opts.Budget)
}

// RunBudget runs one sweep (or the rest of one) bounded by budget. A token
// without org:write (403) or a rejected token (401) is a configuration
// error (ErrConfig).
func (ac *AuditCollector) RunBudget(ctx context.Context, budget time.Duration) (Summary, error) {
	d := newDocRun(ctx, ac.c, StreamAudit, budget)
	err := countRequests(ac.api, &d.sum, func() error { return ac.run(ctx, d) })
	d.finishLog(ctx, err)
	return d.sum, err
}

func (ac *AuditCollector) run(ctx context.Context, d *docRun) error {
	return d.leased(ctx, func() error { return ac.runLeased(ctx, d) })
}

func (ac *AuditCollector) runLeased(ctx context.Context, d *docRun) error {
	st, err := ac.load(ctx, d)
	if err != nil {
		return transient(err)
	}
	conflicts := 0
	opened := false
	for {
		if st.Sweep == nil {
			if opened {
				break // one sweep per run: later entries are the next run's
			}
			if d.remaining() < d.pageReserve() || d.c.stopRequested() {
				d.sum.WorkRemaining = true
				break
			}
			if err := ac.openSweep(ctx, d, st); err != nil {
				if errors.Is(err, errConflict) {
					if st, err = ac.reload(ctx, d, &conflicts); err != nil {
						return err
					}
					continue
				}
				return transient(err)
			}
			opened = true
		}
		err := ac.turn(ctx, d, st)
		switch {
		case err == nil:
		case errors.Is(err, errStop):
			d.sum.WorkRemaining = true
			return nil
		case errors.Is(err, errConflict):
			if st, err = ac.reload(ctx, d, &conflicts); err != nil {
				return err
			}
		default:
			if IsConfig(err) {
				return err
			}
			return transient(err)
		}
	}
	if st.Sweep != nil {
		d.sum.WorkRemaining = true
	}
	if !st.Watermark.IsZero() {
		d.sum.LagBehindNow = ac.c.clock.Now().Sub(st.Watermark)
	}
	return nil
}

func (ac *AuditCollector) load(ctx context.Context, d *docRun) (*auditState, error) {
	st := &auditState{Version: auditStateVersion}
	found, err := d.load(ctx, st)
	if err != nil {
		return nil, err
	}
	if found && st.Version != auditStateVersion {
		return nil, fmt.Errorf("failed to load %s: unsupported version %d", d.key, st.Version)
	}
	if st.Seen == nil {
		st.Seen = make(seenSet)
	}
	return st, nil
}

func (ac *AuditCollector) reload(ctx context.Context, d *docRun, conflicts *int) (*auditState, error) {
	*conflicts++
	if *conflicts > maxConflictsPerRun {
		return nil, transient(errors.New("audit stream: too many concurrent state changes"))
	}
	st, err := ac.load(ctx, d)
	if err != nil {
		return nil, transient(err)
	}
	return st, nil
}

// commit prunes the seen ids below the current (or next) floor and saves.
func (ac *AuditCollector) commit(ctx context.Context, d *docRun, st *auditState) error {
	st.UpdatedAt = ac.c.clock.Now().UTC()
	st.UpdatedBy = ac.c.opts.RunID
	var floor time.Time
	switch {
	case st.Sweep != nil:
		floor = st.Sweep.Floor
	case !st.Watermark.IsZero():
		floor = st.Watermark.Add(-ac.overlap)
	}
	if !floor.IsZero() {
		keepFrom := floor.Unix() - 1 // seen keeps whole seconds
		maps.DeleteFunc(st.Seen, func(_ string, t int64) bool { return t < keepFrom })
	}
	return d.save(ctx, st)
}

// openSweep persists a new sweep.
func (ac *AuditCollector) openSweep(ctx context.Context, d *docRun, st *auditState) error {
	now := ac.c.clock.Now().UTC()
	floor := st.Watermark.Add(-ac.overlap)
	if st.Watermark.IsZero() {
		floor = now.Add(-ac.c.opts.InitialLookback)
	}
	st.Sweep = &auditSweep{Started: now.Truncate(time.Second), Floor: floor, Top: st.Watermark}
	if st.NextEpoch == 0 {
		st.NextSeq, st.NextEpoch = 1, st.Sweep.Started.Unix()
	}
	return ac.commit(ctx, d, st)
}

// auditBatch holds the new entries of consecutive pages.
type auditBatch struct {
	cursor   string
	top      time.Time
	pages    int
	complete bool
	rows     []json.RawMessage
	ids      map[string]int64
	bytes    int
	dups     int
	invalid  int
}

func (b *auditBatch) addPage(page sentry.Page[sentry.AuditLogEntry], sw *auditSweep, seen seenSet) {
	b.pages++
	older := false
	for _, e := range page.Items {
		if !validEventID(e.ID) || e.DateCreated.IsZero() || len(e.Raw) == 0 {
			b.invalid++
			continue
		}
		if e.DateCreated.Before(sw.Floor) {
			older = true
			continue
		}
		if e.DateCreated.After(b.top) {
			b.top = e.DateCreated
		}
		if _, ok := seen[e.ID]; ok {
			b.dups++
			continue
		}
		if _, ok := b.ids[e.ID]; ok {
			b.dups++
			continue
		}
		b.ids[e.ID] = e.DateCreated.Unix()
		b.rows = append(b.rows, e.Raw)
		b.bytes += len(e.Raw) + 1
	}
	if !page.HasNext || older {
		b.complete = true
		return
	}
	b.cursor = page.NextCursor
}

func (b *auditBatch) refilter(seen seenSet) {
	kept := b.rows[:0]
	b.bytes = 0
	for _, raw := range b.rows {
		id, _, err := auditEntryID(raw)
		if err != nil {
			continue
		}
		if _, ok := seen[id]; ok {
			delete(b.ids, id)
			b.dups++
			continue
		}
		kept = append(kept, raw)
		b.bytes += len(raw) + 1
	}
	clear(b.rows[len(kept):])
	b.rows = kept
}

func (b *auditBatch) apply(st *auditState) {
	sw := st.Sweep
	sw.Pages += int64(b.pages)
	if b.top.After(sw.Top) {
		sw.Top = b.top
	}
	if b.complete {
		st.Watermark = sw.Top
		st.Sweep = nil
		return
	}
	sw.Cursor = b.cursor
}

// auditEntryID reads an entry's id and dateCreated back from its JSON.
func auditEntryID(raw []byte) (string, int64, error) {
	var e struct {
		ID          string    `json:"id"`
		DateCreated time.Time `json:"dateCreated"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || !validEventID(e.ID) {
		return "", 0, errors.New("not an audit-log entry")
	}
	return e.ID, e.DateCreated.Unix(), nil
}

func (ac *AuditCollector) turn(ctx context.Context, d *docRun, st *auditState) error {
	sw := st.Sweep
	b := &auditBatch{cursor: sw.Cursor, top: sw.Top, ids: make(map[string]int64)}
	var stop error
	for b.pages < maxPagesPerObject && !b.complete && b.bytes < maxObjectBytes {
		if d.remaining() < d.pageReserve() || d.c.stopRequested() {
			stop = errStop
			break
		}
		page, err := ac.fetch(ctx, d, b.cursor)
		if err != nil {
			if ctx.Err() == nil {
				if ferr := ac.flush(ctx, d, st, b); ferr != nil && !errors.Is(ferr, errStop) && !errors.Is(ferr, errConflict) {
					// A storage failure: the run's problem, not Sentry's.
					return transient(fmt.Errorf("audit stream: failed to commit after a Sentry error (%v): %w", err, ferr))
				}
			}
			return err
		}
		if page.HasNext && (page.NextCursor == "" || page.NextCursor == b.cursor) {
			return transient(fmt.Errorf("audit stream: sentry announced a next page without a new cursor (%q)", page.NextCursor))
		}
		d.sum.Pages++
		b.addPage(page, sw, st.Seen)
	}
	d.sum.InvalidRows += b.invalid
	if err := ac.flush(ctx, d, st, b); err != nil {
		return err
	}
	return stop
}

func (ac *AuditCollector) fetch(ctx context.Context, d *docRun, cursor string) (sentry.Page[sentry.AuditLogEntry], error) {
	pctx, cancel := context.WithTimeout(ctx, max(d.remaining()-d.writeReserve(), time.Second))
	defer cancel()
	t0 := ac.c.clock.Now()
	page, err := ac.api.ListAuditLogs(pctx, sentry.AuditLogQuery{Org: ac.c.opts.Org, Cursor: cursor, PerPage: 100})
	d.maxPage = max(d.maxPage, ac.c.clock.Now().Sub(t0))
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			return page, transient(markSentry(fmt.Errorf("audit stream: %w: %w", ErrBudgetExhausted, err)))
		}
		return page, streamAPIError(StreamAudit, "the organization's audit log",
			"SENTRY_AUDIT_TOKEN needs the org:write scope (or org:admin), and SENTRY_API_BASE must be the main host "+
				"(https://sentry.io, not a region host: the audit log is a control-silo endpoint)", err)
	}
	return page, nil
}

func (ac *AuditCollector) flush(ctx context.Context, d *docRun, st *auditState, b *auditBatch) error {
	o := ac.c.opts
	for {
		if len(b.rows) == 0 {
			if b.pages == 0 {
				return nil
			}
			if d.remaining() < minSafetyMargin {
				return errStop
			}
			b.apply(st)
			d.sum.DuplicatesSkipped += b.dups
			return ac.commit(ctx, d, st)
		}
		if d.remaining() < d.writeReserve()-d.maxWrite {
			return errStop
		}
		name := objectName(o.DataPrefix, o.Org, StreamAudit, st.NextEpoch, st.NextSeq)
		d.buf.Reset()
		for _, raw := range b.rows {
			compactLine(&d.buf, raw)
		}
		exists, err := d.writeObject(ctx, name, d.buf.Bytes())
		if err != nil {
			return err
		}
		if exists {
			ids, rerr := ac.readBack(ctx, name)
			if rerr != nil {
				return rerr
			}
			maps.Copy(st.Seen, ids)
			st.NextSeq, st.NextEpoch = st.NextSeq+1, st.Sweep.Started.Unix()
			if err := ac.commit(ctx, d, st); err != nil {
				return err
			}
			d.sum.ObjectsRecovered++
			ac.c.log.InfoContext(ctx, "recovered an object written by an interrupted run",
				"stream", StreamAudit, "object", name, "records", len(ids))
			b.refilter(st.Seen)
			continue
		}
		maps.Copy(st.Seen, b.ids)
		st.NextSeq, st.NextEpoch = st.NextSeq+1, st.Sweep.Started.Unix()
		b.apply(st)
		if err := ac.commit(ctx, d, st); err != nil {
			return err
		}
		d.sum.Records += len(b.rows)
		d.sum.DuplicatesSkipped += b.dups
		d.sum.Objects++
		return nil
	}
}

// readBack returns the ids and dates of the entries of a data object.
func (ac *AuditCollector) readBack(ctx context.Context, name string) (map[string]int64, error) {
	data, _, err := ac.c.data.Read(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("failed to read back existing object %s: %w", name, err)
	}
	out := make(map[string]int64)
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		id, t, err := auditEntryID(line)
		if err != nil {
			return nil, fmt.Errorf("failed to read back existing object %s: a line is not an audit-log entry", name)
		}
		out[id] = t
	}
	return out, nil
}
