package coverage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// run is one run of the ledger.
type run struct {
	l   *Ledger
	r   *engine.Run
	sum *engine.Summary

	through     time.Time // the late sweep's position (zero: unavailable)
	sweepReason string    // why it is unavailable
	scanner     *events.Scanner
	diffs       int
	counts      map[string]int // statuses of the rows checked this run
	queued      int            // missing events queued to the late lane
}

// project is a project's ledger within a run.
type project struct {
	id, slug string
	doc      *engine.Doc[ledgerDoc]
	cov      events.ProjectCoverage
	due      []time.Time // hours to check
}

func (x *run) do(ctx context.Context) error {
	x.counts = make(map[string]int)
	defer x.summary()
	through, reason, err := x.l.ev.SweepThrough(ctx)
	if err != nil {
		return err
	}
	x.through, x.sweepReason = through, reason
	if reason != "" {
		x.through = time.Time{}
	}
	list, _, err := events.ListProjects(ctx, x.l.api, x.l.opts.Org, x.l.opts.MaxProjects)
	if err != nil {
		return err
	}
	var ps []*project
	for _, sp := range list {
		p, err := x.load(ctx, sp.ID, sp.Slug)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	// One set of organisation-wide counts per hour, for every project due.
	hours := make(map[time.Time][]*project)
	for _, p := range ps {
		for _, h := range p.due {
			hours[h] = append(hours[h], p)
		}
	}
	order := make([]time.Time, 0, len(hours))
	for h := range hours {
		order = append(order, h)
	}
	slices.SortFunc(order, func(a, b time.Time) int { return a.Compare(b) })
	for _, h := range order {
		if !x.r.CanRead() {
			x.sum.WorkRemaining = true
			break
		}
		o := x.oracle(ctx, h, hours[h])
		for _, p := range hours[h] {
			if err := x.check(ctx, p, h, o); err != nil {
				return err
			}
		}
	}
	for _, p := range ps {
		if err := x.save(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// load reads a project's ledger and its coverage, and works out the hours
// due. A ledger that cannot be decoded is kept aside and rebuilt (every
// hour checked again), never taken for complete.
func (x *run) load(ctx context.Context, id, slug string) (*project, error) {
	l := x.l
	key := l.Key(id)
	init := func() ledgerDoc { return ledgerDoc{Version: ledgerVersion, ProjectID: id, Slug: slug} }
	doc, err := engine.LoadDoc(ctx, l.env.State, key, init)
	if errors.Is(err, state.ErrUndecodable) {
		doc, err = x.rebuild(ctx, key, init, err)
	}
	if err != nil {
		return nil, err
	}
	doc.V.Slug = slug
	cov, err := l.ev.Coverage(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("failed to read the collection of project %s: %w", id, err)
	}
	p := &project{id: id, slug: slug, doc: doc, cov: cov}
	p.due = x.dueHours(p)
	return p, nil
}

// rebuild keeps an undecodable ledger aside (<key>.undecodable-<gen>) for the
// operator and starts the project's ledger again.
func (x *run) rebuild(ctx context.Context, key string, init func() ledgerDoc, cause error) (*engine.Doc[ledgerDoc], error) {
	raw, gen, err := x.l.env.State.Read(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", key, err)
	}
	aside := fmt.Sprintf("%s.undecodable-%d", key, gen)
	if _, err := x.l.env.State.Write(ctx, aside, raw, state.ContentType, 0); err != nil && !errors.Is(err, sink.ErrPrecondition) {
		return nil, fmt.Errorf("failed to keep the undecodable ledger %s aside: %w", key, err)
	}
	logging.FromContext(ctx).ErrorContext(ctx, "the coverage ledger of a project cannot be decoded: kept aside and rebuilt; its hours are checked again",
		"ledger", key, "kept_as", aside, "error", cause, "stream", Name)
	return engine.DocAt(x.l.env.State, key, init(), gen), nil
}

// dueHours lists the hours of p to check now: settled hours since the
// stream counts p's events (and within Keep) that have no row, a row that
// is not complete, or a row due for its final check.
func (x *run) dueHours(p *project) []time.Time {
	o := x.l.opts
	now := x.r.Now().UTC()
	if !p.cov.Exists || p.cov.Since.IsZero() {
		return nil
	}
	first := p.cov.Since
	if cut := now.Add(-o.Keep).Truncate(time.Hour); first.Before(cut) {
		first = cut
	}
	rows := make(map[time.Time]*Row, len(p.doc.V.Rows))
	for i := range p.doc.V.Rows {
		rows[p.doc.V.Rows[i].Hour] = &p.doc.V.Rows[i]
	}
	var due []time.Time
	for h := first; !h.Add(time.Hour + o.Settle).After(now); h = h.Add(time.Hour) {
		row := rows[h]
		finalDue := !h.Add(time.Hour + o.Final).After(now)
		switch {
		case row == nil, row.Status != Complete, finalDue && !row.Final:
			due = append(due, h)
		}
	}
	return due
}

// save prunes rows older than Keep and saves p's ledger.
func (x *run) save(ctx context.Context, p *project) error {
	cut := x.r.Now().Add(-x.l.opts.Keep)
	p.doc.V.Rows = slices.DeleteFunc(p.doc.V.Rows, func(r Row) bool { return r.Hour.Before(cut) })
	slices.SortFunc(p.doc.V.Rows, func(a, b Row) int { return a.Hour.Compare(b.Hour) })
	p.doc.V.UpdatedAt = x.r.Now().UTC()
	err := p.doc.Save(ctx, x.r)
	if errors.Is(err, engine.ErrConflict) {
		return nil // another run checked it meanwhile; this run's rows are dropped
	}
	return err
}

// summary adds the ledger's figures to the run summary.
func (x *run) summary() {
	attrs := []slog.Attr{
		slog.Int("hours_verified", x.counts[Complete]),
		slog.Int("hours_missing", x.counts[Missing]),
		slog.Int("hours_unverified", x.counts[Unverified]),
		slog.Int("hours_provisional", x.counts[Provisional]),
		slog.Int("hours_sentry_inconsistent", x.counts[SentryInconsistent]),
		slog.Int("coverage_diffs", x.diffs),
		slog.Int("missing_events_queued", x.queued),
	}
	if x.scanner != nil {
		attrs = append(attrs, slog.Int("objects_scanned", x.scanner.Objects))
	}
	if !x.through.IsZero() {
		attrs = append(attrs, slog.Time("late_swept_through", x.through))
	}
	x.sum.Extra = append(x.sum.Extra, attrs...)
}
