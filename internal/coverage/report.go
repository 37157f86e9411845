package coverage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// Report is the ledger as an operator reads it: rows since a time, and a
// verdict. It is read from the stored ledger only (no Sentry request).
type Report struct {
	Org   string    `json:"org"`
	Since time.Time `json:"since"`
	// SweptThrough: every event Sentry received before it was listed by
	// the late sweep (zero: the sweep is off or unavailable, see Sweep).
	SweptThrough time.Time   `json:"swept_through,omitzero"`
	Sweep        string      `json:"sweep"`
	Rows         []ReportRow `json:"rows"`
	Totals       Totals      `json:"totals"`
	// OK is set when every final hour in the report is complete (or only
	// sentry_inconsistent: the bucket holds what Sentry shows).
	OK      bool   `json:"ok"`
	Verdict string `json:"verdict"`
	// Problems are ledgers that could not be read.
	Problems []string `json:"problems,omitempty"`
}

// ReportRow is a row of one project.
type ReportRow struct {
	ProjectID string `json:"project_id"`
	Project   string `json:"project,omitempty"`
	Row
}

// Totals count the rows of a report.
type Totals struct {
	Hours         int `json:"hours"`
	Final         int `json:"final"`
	Complete      int `json:"complete"`
	Missing       int `json:"missing"`
	MissingEvents int `json:"missing_events"`
	Unverified    int `json:"unverified"`
	Provisional   int `json:"provisional"`
	Inconsistent  int `json:"sentry_inconsistent"`
}

// Source is where a report is read from: the state (ledgers, the sweep's
// position) and the bucket's listing.
type Source struct {
	State       state.Objects
	Bucket      events.Lister
	StatePrefix string
	Org         string
	// SweepOff is set when the late sweep is turned off.
	SweepOff bool
}

// Report reads the ledger's rows of the hours since since (every project,
// or those whose id or slug is in projects).
func (l *Ledger) Report(ctx context.Context, since time.Time, projects []string) (*Report, error) {
	return ReadReport(ctx, Source{State: l.env.State, Bucket: l.bucket, StatePrefix: l.opts.StatePrefix, Org: l.opts.Org,
		SweepOff: l.ev.Options().Discover == nil}, since, projects)
}

// ReadReport reads a report from src, contacting nobody but the store.
func ReadReport(ctx context.Context, src Source, since time.Time, projects []string) (*Report, error) {
	rep := &Report{Org: src.Org, Since: since.UTC().Truncate(time.Hour), Sweep: "ok"}
	through, reason, err := events.ReadSweep(ctx, src.State, src.StatePrefix)
	if err != nil {
		return nil, err
	}
	switch {
	case src.SweepOff:
		rep.Sweep = "off (LATE_SWEEP=false)"
	case reason != "":
		rep.Sweep = reason
	default:
		rep.SweptThrough = through
	}
	prefix := src.StatePrefix + "coverage/"
	names, err := src.Bucket.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", prefix, err)
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") || strings.HasSuffix(name, "/lease.json") {
			continue
		}
		doc, err := engine.LoadDoc(ctx, src.State, name, func() ledgerDoc { return ledgerDoc{} })
		switch {
		case errors.Is(err, state.ErrUndecodable):
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s cannot be decoded (the next run keeps it aside and rebuilds it)", name))
			continue
		case err != nil:
			return nil, err
		}
		d := doc.V
		if len(projects) > 0 && !slices.Contains(projects, d.ProjectID) && !slices.Contains(projects, d.Slug) {
			continue
		}
		for _, r := range d.Rows {
			if !r.Hour.Before(rep.Since) {
				rep.Rows = append(rep.Rows, ReportRow{ProjectID: d.ProjectID, Project: d.Slug, Row: r})
			}
		}
	}
	slices.SortFunc(rep.Rows, func(a, b ReportRow) int {
		if c := a.Hour.Compare(b.Hour); c != 0 {
			return c
		}
		return strings.Compare(a.ProjectID, b.ProjectID)
	})
	rep.total()
	return rep, nil
}

// total counts the rows and writes the verdict.
func (rep *Report) total() {
	t := &rep.Totals
	rep.OK = len(rep.Problems) == 0
	for _, r := range rep.Rows {
		t.Hours++
		if r.Final {
			t.Final++
		}
		switch r.Status {
		case Complete:
			t.Complete++
		case Missing:
			t.Missing++
			t.MissingEvents += r.MissingCount
		case Unverified:
			t.Unverified++
		case Provisional:
			t.Provisional++
		case SentryInconsistent:
			t.Inconsistent++
		}
		if r.Final && r.Status != Complete && r.Status != SentryInconsistent {
			rep.OK = false
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d project-hours since %s (%d final): %d complete", t.Hours, rep.Since.Format(time.RFC3339), t.Final, t.Complete)
	if t.Inconsistent > 0 {
		fmt.Fprintf(&b, ", %d complete but Sentry's own counts disagree", t.Inconsistent)
	}
	if t.Missing > 0 {
		fmt.Fprintf(&b, ", %d with missing events (%d events)", t.Missing, t.MissingEvents)
	}
	if t.Unverified > 0 {
		fmt.Fprintf(&b, ", %d unverified", t.Unverified)
	}
	if t.Provisional > 0 {
		fmt.Fprintf(&b, ", %d provisional", t.Provisional)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(&b, ", %d ledgers unreadable", len(rep.Problems))
	}
	switch {
	case rep.OK && t.Final > 0:
		b.WriteString(". OK: every final hour holds every event Sentry shows")
	case rep.OK:
		b.WriteString(". No final hour yet")
	default:
		b.WriteString(". NOT OK: some final hours are not complete")
	}
	if !rep.SweptThrough.IsZero() {
		fmt.Fprintf(&b, "; late-sent events swept through %s", rep.SweptThrough.Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, "; late sweep: %s", rep.Sweep)
	}
	rep.Verdict = b.String()
}

// WriteTable writes the report as a table and the verdict.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "hour (UTC)\tproject\taccepted\treceived\tvisible\tcollected\tmissing\tstatus\t")
	for _, r := range rep.Rows {
		status := r.Status
		if !r.Final {
			status += " (not final)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", r.Hour.Format("2006-01-02 15:04"), r.projectName(),
			optInt(r.Accepted), optInt(r.ReceivedVisible), optInt(r.Visible), r.Collected, r.MissingCount, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		if len(r.Missing) > 0 || r.Note != "" && r.Status != Complete {
			fmt.Fprintf(w, "%s %s: %s", r.Hour.Format("2006-01-02 15:04"), r.projectName(), r.Note)
			if len(r.Missing) > 0 {
				fmt.Fprintf(w, " (missing: %s)", strings.Join(r.Missing, ", "))
			}
			fmt.Fprintln(w)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	_, err := fmt.Fprintln(w, rep.Verdict)
	return err
}

func (r ReportRow) projectName() string {
	if r.Project != "" {
		return r.Project
	}
	return r.ProjectID
}

func optInt(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}
