package coverage

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
)

// TestCheckStatuses covers a row's status for each situation a check meets,
// without a diff (the counts agree, or no diff is left in the run).
func TestCheckStatuses(t *testing.T) {
	t.Parallel()
	h := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	now := h.Add(time.Hour + 20*time.Minute)
	done := events.ProjectCoverage{Exists: true, Since: h.Add(-time.Hour), Floor: h.Add(2 * time.Hour),
		Collected: map[time.Time]int64{h: 10}, Pending: map[time.Time]int{}}
	ok := func(n int64) counts { return counts{n: map[string]int64{"1": n}} }
	down := counts{err: errors.New("discover: 503")}
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		name      string
		cov       events.ProjectCoverage
		hc        hourCounts
		diffsLeft bool
		want      Row
	}{
		{"complete", done, hourCounts{accepted: ok(10), received: ok(10), visible: ok(10)}, true,
			Row{Status: Complete, Accepted: n(10), ReceivedVisible: n(10), Visible: n(10), Collected: 10}},
		{"sentry_inconsistent", done, hourCounts{accepted: ok(12), received: ok(10), visible: ok(10)}, true,
			Row{Status: SentryInconsistent, Accepted: n(12), ReceivedVisible: n(10), Visible: n(10), Collected: 10,
				Note: "the bucket holds every event Sentry shows; Sentry's own counts of the hour as a receipt hour differ (stats_v2 accepted 12, Discover 10)"}},
		{"complete_without_cross_check", done, hourCounts{accepted: down, received: down, visible: ok(10)}, true,
			Row{Status: Complete, Visible: n(10), Collected: 10, Note: "complete; receipt-time cross-check unavailable (discover: 503)"}},
		{"discover_down", done, hourCounts{accepted: ok(10), received: down, visible: down}, true,
			Row{Status: Unverified, Accepted: n(10), Collected: 10, Note: "discover: 503"}},
		{"windows_still_read_it", func() events.ProjectCoverage { c := done; c.Floor = h.Add(30 * time.Minute); return c }(),
			hourCounts{accepted: ok(10), received: ok(10), visible: ok(11)}, true,
			Row{Status: Provisional, Accepted: n(10), ReceivedVisible: n(10), Visible: n(11), Collected: 10, Note: "the stream's windows still read this hour"}},
		{"late_events_queued", func() events.ProjectCoverage {
			c := done
			c.Pending = map[time.Time]int{h: 2}
			return c
		}(), hourCounts{accepted: ok(12), received: ok(12), visible: ok(12)}, true,
			Row{Status: Provisional, Accepted: n(12), ReceivedVisible: n(12), Visible: n(12), Collected: 10, Note: "2 late events queued, not written yet"}},
		{"counts_differ_no_diff_left", done, hourCounts{accepted: ok(11), received: ok(11), visible: ok(11)}, false,
			Row{Status: Unverified, Accepted: n(11), ReceivedVisible: n(11), Visible: n(11), Collected: 10,
				Note: "11 visible, 10 collected: the ids are compared in a later run"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(now)
			r := engine.Start(t.Context(), engine.Config{Clock: clk, Budget: time.Minute})
			x := &run{l: &Ledger{opts: Options{Final: DefaultFinal}}, r: r, sum: r.Summary(), counts: map[string]int{}}
			if !tc.diffsLeft {
				x.diffs = maxDiffsPerRun
			}
			p := &project{id: "1", doc: &engine.Doc[ledgerDoc]{}, cov: tc.cov}
			if err := x.check(t.Context(), p, h, tc.hc); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Hour, want.CheckedAt = h, now
			if diff := cmp.Diff([]Row{want}, p.doc.V.Rows); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
