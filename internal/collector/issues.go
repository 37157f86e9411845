package collector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// The issues stream (see DESIGN.md, "Issues and audit-log streams").
//
// One state document, <StatePrefix>issues/state.json: a watermark W over
// lastSeen, the window in progress with its cursor, the next object's name
// (NextSeq, NextEpoch) and, per issue, a fingerprint of the last version
// written. A pass reads GET /api/0/organizations/{org}/issues/?query=&sort=date
// &limit=100&start=W−Overlap&end=now−Lag (lastSeen descending, all statuses),
// following rel="next" while results="true", and writes each issue whose
// version (status, level, count, lastSeen, assignee) differs from the last
// one written.

// issuesStateVersion is the format version of the issues state document.
const issuesStateVersion = 1

// IssuesAPI is the part of the Sentry client the issues stream uses.
type IssuesAPI interface {
	ListIssues(ctx context.Context, q sentry.IssuesQuery) (sentry.Page[sentry.Issue], error)
}

// issuesState is the issues stream's state document.
type issuesState struct {
	Version int `json:"version"`
	// Watermark is the end of the last completed window (zero: none).
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress; persisted before its objects.
	Window *issuesWindow `json:"window,omitempty"`
	// NextSeq and NextEpoch name the next data object; they change only
	// in a commit that records the versions of the object written (or
	// found) under the previous name.
	NextSeq   int64 `json:"next_seq"`
	NextEpoch int64 `json:"next_epoch"`
	// Issues maps an issue id to the last version written. Entries whose
	// lastSeen is before the next window's start are pruned: any later row
	// of that issue has a newer lastSeen, so a different version anyway.
	Issues    map[string]issueMark `json:"issues"`
	UpdatedAt time.Time            `json:"updated_at,omitzero"`
	UpdatedBy string               `json:"updated_by,omitempty"`
}

// issuesWindow is a lastSeen window [Start, End) in progress.
type issuesWindow struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Cursor string    `json:"cursor,omitempty"`
	Pages  int64     `json:"pages,omitempty"`
}

// issueMark is the version of an issue last written: a fingerprint of
// (status, level, count, lastSeen, assignee) and lastSeen in unix seconds
// (for pruning).
type issueMark struct {
	V  string `json:"v"`
	LS int64  `json:"ls"`
}

// issueVersion extracts an issue's id and version from its raw JSON. The
// same function serves rows read from Sentry and lines read back from a data
// object, so a recovered object yields exactly the versions written.
func issueVersion(raw []byte) (string, issueMark, error) {
	var row struct {
		ID         string          `json:"id"`
		Status     string          `json:"status"`
		Level      string          `json:"level"`
		Count      json.RawMessage `json:"count"`
		LastSeen   time.Time       `json:"lastSeen"`
		AssignedTo json.RawMessage `json:"assignedTo"`
	}
	if err := json.Unmarshal(raw, &row); err != nil {
		return "", issueMark{}, fmt.Errorf("failed to decode issue: %w", err)
	}
	if !validEventID(row.ID) || row.LastSeen.IsZero() {
		return "", issueMark{}, errors.New("failed to decode issue: no valid id or lastSeen")
	}
	h := sha256.New()
	for _, part := range []string{
		row.Status, row.Level, strings.Trim(string(row.Count), `"`),
		row.LastSeen.UTC().Format(time.RFC3339Nano), assigneeKey(row.AssignedTo),
	} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return row.ID, issueMark{V: hex.EncodeToString(h.Sum(nil)[:8]), LS: row.LastSeen.Unix()}, nil
}

// assigneeKey identifies an assignee ({"type":"user","id":"1",…} or a team)
// by type and id, so that a renamed user is not a new version.
func assigneeKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var a struct {
		Type string `json:"type"`
		ID   any    `json:"id"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.ID == nil {
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
		return string(raw)
	}
	return fmt.Sprintf("%s:%v", a.Type, a.ID)
}

// IssuesCollector runs the issues stream.
type IssuesCollector struct {
	c   *Collector
	api IssuesAPI
}

// NewIssues validates opts (DataPrefix is the issues prefix) and returns the
// issues stream reading through api.
func NewIssues(opts Options, api IssuesAPI, data, stateStore Objects) (*IssuesCollector, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: the issues stream needs a Sentry client", ErrConfig)
	}
	c, err := newBase(opts, StreamIssues, data, stateStore)
	if err != nil {
		return nil, err
	}
	return &IssuesCollector{c: c, api: api}, nil
}

// Name implements Stream.
func (ic *IssuesCollector) Name() string { return StreamIssues }

// Run runs one pass with Options.Budget.
func (ic *IssuesCollector) Run(ctx context.Context) (Summary, error) {
	return ic.RunBudget(ctx, ic.c.opts.Budget)
}

// RunBudget runs one pass bounded by budget. Errors are as for
// Collector.Run: ErrConfig for a missing scope or rejected token (the issues
// endpoint needs event:read), transient otherwise; progress is committed.
func (ic *IssuesCollector) RunBudget(ctx context.Context, budget time.Duration) (Summary, error) {
	d := newDocRun(ctx, ic.c, StreamIssues, budget)
	err := countRequests(ic.api, &d.sum, func() error { return ic.run(ctx, d) })
	d.finishLog(ctx, err)
	return d.sum, err
}

func (ic *IssuesCollector) run(ctx context.Context, d *docRun) error {
	return d.leased(ctx, func() error { return ic.runLeased(ctx, d) })
}

func (ic *IssuesCollector) runLeased(ctx context.Context, d *docRun) error {
	st, err := ic.load(ctx, d)
	if err != nil {
		return transient(err)
	}
	completed := false
	conflicts := 0
	for {
		if st.Window == nil {
			minGap := time.Second
			if completed {
				minGap = catchUpGap
			}
			if d.remaining() < d.pageReserve() || d.c.stopRequested() {
				d.sum.WorkRemaining = true
				break
			}
			opened, err := ic.openWindow(ctx, d, st, minGap)
			if errors.Is(err, errConflict) {
				if st, err = ic.reload(ctx, d, &conflicts); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return transient(err)
			}
			if !opened {
				break
			}
		}
		err := ic.turn(ctx, d, st)
		switch {
		case err == nil:
		case errors.Is(err, errStop):
			d.sum.WorkRemaining = true
			ic.finish(d, st)
			return nil
		case errors.Is(err, errConflict):
			if st, err = ic.reload(ctx, d, &conflicts); err != nil {
				return err
			}
			continue
		default:
			ic.finish(d, st)
			if IsConfig(err) {
				return err
			}
			return transient(err)
		}
		if st.Window == nil {
			completed = true
		}
	}
	ic.finish(d, st)
	return nil
}

// finish fills the end-of-run summary fields.
func (ic *IssuesCollector) finish(d *docRun, st *issuesState) {
	if st == nil {
		return
	}
	now := ic.c.clock.Now()
	ready := now.Add(-ic.c.opts.Lag)
	if st.Window != nil || ready.Sub(st.Watermark) >= catchUpGap {
		d.sum.WorkRemaining = true
	}
	w := st.Watermark
	if w.IsZero() && st.Window != nil {
		w = st.Window.Start
	}
	if !w.IsZero() {
		d.sum.LagBehindNow = now.Sub(w)
	}
}

func (ic *IssuesCollector) load(ctx context.Context, d *docRun) (*issuesState, error) {
	st := &issuesState{Version: issuesStateVersion}
	found, err := d.load(ctx, st)
	if err != nil {
		return nil, err
	}
	if found && st.Version != issuesStateVersion {
		return nil, fmt.Errorf("failed to load %s: unsupported version %d", d.key, st.Version)
	}
	if st.Issues == nil {
		st.Issues = make(map[string]issueMark)
	}
	return st, nil
}

// reload re-reads the state after a lost compare-and-swap.
func (ic *IssuesCollector) reload(ctx context.Context, d *docRun, conflicts *int) (*issuesState, error) {
	*conflicts++
	if *conflicts > maxConflictsPerRun {
		return nil, transient(errors.New("issues stream: too many concurrent state changes"))
	}
	st, err := ic.load(ctx, d)
	if err != nil {
		return nil, transient(err)
	}
	return st, nil
}

// commit prunes and saves st.
func (ic *IssuesCollector) commit(ctx context.Context, d *docRun, st *issuesState) error {
	o := ic.c.opts
	st.UpdatedAt = ic.c.clock.Now().UTC()
	st.UpdatedBy = o.RunID
	var keepFrom int64
	switch {
	case st.Window != nil:
		keepFrom = st.Window.Start.Unix()
	case !st.Watermark.IsZero():
		keepFrom = st.Watermark.Add(-o.Overlap).Unix()
	}
	maps.DeleteFunc(st.Issues, func(_ string, m issueMark) bool { return m.LS < keepFrom })
	return d.save(ctx, st)
}

// openWindow persists a new window, or reports that there is nothing new.
func (ic *IssuesCollector) openWindow(ctx context.Context, d *docRun, st *issuesState, minGap time.Duration) (bool, error) {
	o := ic.c.opts
	now := ic.c.clock.Now().UTC()
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
	st.Window = &issuesWindow{Start: start, End: end}
	if st.NextEpoch == 0 {
		st.NextSeq, st.NextEpoch = 1, end.Unix()
	}
	if err := ic.commit(ctx, d, st); err != nil {
		return false, err
	}
	return true, nil
}

// issuesBatch holds the new versions of consecutive pages.
type issuesBatch struct {
	cursor   string
	pages    int
	complete bool
	rows     []json.RawMessage
	marks    map[string]issueMark // id → newest version in rows
	bytes    int
	dups     int
	invalid  int
}

// addPage filters a page into the batch. Rows are lastSeen descending; a row
// older than the window's start ends the window (servers ignoring start).
func (b *issuesBatch) addPage(page sentry.Page[sentry.Issue], w *issuesWindow, written map[string]issueMark) {
	b.pages++
	older := false
	for _, is := range page.Items {
		id, m, err := issueVersion(is.Raw)
		if err != nil {
			b.invalid++
			continue
		}
		if m.LS < w.Start.Unix() {
			older = true
			continue
		}
		if prev, ok := b.marks[id]; ok && prev.V == m.V {
			b.dups++
			continue
		}
		if prev, ok := written[id]; ok && prev.V == m.V {
			if _, inBatch := b.marks[id]; !inBatch {
				b.dups++
				continue
			}
		}
		b.marks[id] = m
		b.rows = append(b.rows, is.Raw)
		b.bytes += len(is.Raw) + 1
	}
	if !page.HasNext || older {
		b.complete = true
		return
	}
	b.cursor = page.NextCursor
}

// refilter drops rows whose version was found in a recovered object (or is
// now the last one written).
func (b *issuesBatch) refilter(recovered []idMark, written map[string]issueMark) {
	found := make(map[idMark]bool, len(recovered))
	for _, im := range recovered {
		found[im] = true
	}
	kept := b.rows[:0]
	b.bytes = 0
	b.marks = make(map[string]issueMark)
	for _, raw := range b.rows {
		id, m, err := issueVersion(raw)
		if err != nil {
			continue
		}
		if prev, ok := written[id]; found[idMark{id, m}] || (ok && prev == m) {
			if _, inBatch := b.marks[id]; !inBatch || found[idMark{id, m}] {
				b.dups++
				continue
			}
		}
		b.marks[id] = m
		kept = append(kept, raw)
		b.bytes += len(raw) + 1
	}
	clear(b.rows[len(kept):])
	b.rows = kept
}

// apply records the batch's reading progress in st.
func (b *issuesBatch) apply(st *issuesState) {
	w := st.Window
	w.Pages += int64(b.pages)
	if b.complete {
		st.Watermark = w.End
		st.Window = nil
		return
	}
	w.Cursor = b.cursor
}

// turn reads up to maxPagesPerObject pages of the window and writes them as
// one object (write, then commit).
func (ic *IssuesCollector) turn(ctx context.Context, d *docRun, st *issuesState) error {
	w := st.Window
	b := &issuesBatch{cursor: w.Cursor, marks: make(map[string]issueMark)}
	var stop error
	for b.pages < maxPagesPerObject && !b.complete && b.bytes < maxObjectBytes {
		if d.remaining() < d.pageReserve() || d.c.stopRequested() {
			stop = errStop
			break
		}
		page, err := ic.fetch(ctx, d, w, b.cursor)
		if err != nil {
			if ctx.Err() == nil {
				if ferr := ic.flush(ctx, d, st, b); ferr != nil && !errors.Is(ferr, errStop) && !errors.Is(ferr, errConflict) {
					// A storage failure: the run's problem, not Sentry's.
					return transient(fmt.Errorf("issues stream: failed to commit after a Sentry error (%v): %w", err, ferr))
				}
			}
			return err
		}
		if page.HasNext && (page.NextCursor == "" || page.NextCursor == b.cursor) {
			return transient(fmt.Errorf("issues stream: sentry announced a next page without a new cursor (%q)", page.NextCursor))
		}
		d.sum.Pages++
		b.addPage(page, w, st.Issues)
	}
	d.sum.InvalidRows += b.invalid
	if err := ic.flush(ctx, d, st, b); err != nil {
		return err
	}
	return stop
}

// fetch reads one page of the window.
func (ic *IssuesCollector) fetch(ctx context.Context, d *docRun, w *issuesWindow, cursor string) (sentry.Page[sentry.Issue], error) {
	pctx, cancel := context.WithTimeout(ctx, max(d.remaining()-d.writeReserve(), time.Second))
	defer cancel()
	t0 := ic.c.clock.Now()
	page, err := ic.api.ListIssues(pctx, sentry.IssuesQuery{
		Org:    ic.c.opts.Org,
		Query:  "", // explicit: all statuses
		Start:  w.Start,
		End:    w.End,
		Sort:   "date",
		Cursor: cursor,
		Limit:  100,
	})
	d.maxPage = max(d.maxPage, ic.c.clock.Now().Sub(t0))
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			return page, transient(markSentry(fmt.Errorf("issues stream: %w: %w", ErrBudgetExhausted, err)))
		}
		return page, streamAPIError(StreamIssues, "the organization's issues",
			"check SENTRY_ORG and that SENTRY_AUTH_TOKEN has the event:read scope", err)
	}
	return page, nil
}

// flush writes the batch as one object and commits, absorbing an object
// found under the name (written by a run that did not get to commit).
func (ic *IssuesCollector) flush(ctx context.Context, d *docRun, st *issuesState, b *issuesBatch) error {
	o := ic.c.opts
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
			return ic.commit(ctx, d, st)
		}
		if d.remaining() < d.writeReserve()-d.maxWrite {
			return errStop
		}
		name := objectName(o.DataPrefix, o.Org, StreamIssues, st.NextEpoch, st.NextSeq)
		d.buf.Reset()
		for _, raw := range b.rows {
			compactLine(&d.buf, raw)
		}
		exists, err := d.writeObject(ctx, name, d.buf.Bytes())
		if err != nil {
			return err
		}
		if exists {
			marks, rerr := ic.readBack(ctx, name)
			if rerr != nil {
				return rerr
			}
			for _, im := range marks {
				st.Issues[im.id] = im.m
			}
			st.NextSeq, st.NextEpoch = st.NextSeq+1, st.Window.End.Unix()
			if err := ic.commit(ctx, d, st); err != nil {
				return err
			}
			d.sum.ObjectsRecovered++
			ic.c.log.InfoContext(ctx, "recovered an object written by an interrupted run",
				"stream", StreamIssues, "object", name, "records", len(marks))
			b.refilter(marks, st.Issues)
			continue
		}
		for _, raw := range b.rows {
			id, m, _ := issueVersion(raw) // validated in addPage
			st.Issues[id] = m
		}
		st.NextSeq, st.NextEpoch = st.NextSeq+1, st.Window.End.Unix()
		b.apply(st)
		if err := ic.commit(ctx, d, st); err != nil {
			return err
		}
		d.sum.Records += len(b.rows)
		d.sum.DuplicatesSkipped += b.dups
		d.sum.Objects++
		return nil
	}
}

type idMark struct {
	id string
	m  issueMark
}

// readBack returns the issue versions of a data object, in line order.
func (ic *IssuesCollector) readBack(ctx context.Context, name string) ([]idMark, error) {
	data, _, err := ic.c.data.Read(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("failed to read back existing object %s: %w", name, err)
	}
	var out []idMark
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		id, m, err := issueVersion(line)
		if err != nil {
			return nil, fmt.Errorf("failed to read back existing object %s: a line is not an issue: %w", name, err)
		}
		out = append(out, idMark{id: id, m: m})
	}
	return out, nil
}
