package coverage

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// BenchmarkSweepAndLedgerCost measures what the late sweep and the ledger
// cost in Sentry requests per hour, on each rate-limit budget, and what the
// ledger costs in storage: 10 projects receiving 1,000 events an hour for 29 hours (5 %
// sent up to two days late), the service's run every minute (the events
// stream, then the ledger), over 30 hours of fake time; figures are taken
// over hours 26–30 (steady state, final checks included).
//
//	go test ./internal/coverage -run '^$' -bench SweepAndLedgerCost -benchtime 1x
func BenchmarkSweepAndLedgerCost(b *testing.B) {
	for _, mode := range []struct {
		name string
		cfg  sentrysim.Config
	}{{"global_views", sentrysim.Config{}}, {"per_project", sentrysim.Config{NoGlobalViews: true}}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				measureCost(b, mode.cfg)
			}
		})
	}
}

func measureCost(b *testing.B, cfg sentrysim.Config) {
	w := &world{World: collecttest.New(b, 3, cfg, "memory"), sweep: true}
	w.Sim.Populate(sentrysim.Scenario{Projects: 10, Arrivals: 29_000, ArrivalSpan: 29 * time.Hour,
		LateSentFraction: 0.05, LateSentMin: 5 * time.Minute, LateSentMax: 48 * time.Hour})
	ctx := collecttest.Quiet(context.Background())
	var before sentrysim.RequestStats
	var start time.Time
	const from, to = 26, 30
	for run := 0; w.Clock.Now().Before(collecttest.T0.Add(to * time.Hour)); run++ {
		if start.IsZero() && !w.Clock.Now().Before(collecttest.T0.Add(from*time.Hour)) {
			// (The client's pacing moves the fake clock too: not exactly
			// on the minute.)
			before, start = w.Sim.RequestStats(), w.Clock.Now()
		}
		ev, l := w.streams(run)
		if _, err := ev.Run(ctx, 7*time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Run(ctx, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		w.Clock.Advance(time.Minute)
	}
	after := w.Sim.RequestStats()
	hours := w.Clock.Now().Sub(start).Hours()
	for _, g := range []string{sentrysim.GroupDiscover, sentrysim.GroupStats, sentrysim.GroupEvents, sentrysim.GroupDefault} {
		b.ReportMetric(float64(after.ByGroup[g]-before.ByGroup[g])/hours, g+"_req/h")
	}
	// Storage: the ledgers' bytes per row (project-hour).
	names, err := w.Store.List(ctx, collecttest.StatePrefix+"coverage/")
	if err != nil {
		b.Fatal(err)
	}
	var bytes, rows int
	for _, n := range names {
		data, _, err := w.Store.Read(ctx, n)
		if err != nil {
			b.Fatal(err)
		}
		if n == collecttest.StatePrefix+"coverage/lease.json" {
			continue
		}
		bytes += len(data)
		rows += countRows(data)
	}
	if rows > 0 {
		b.ReportMetric(float64(bytes)/float64(rows), "ledger_bytes/project-hour")
	}
	_, l := w.streams(-1)
	rep, err := l.Report(ctx, collecttest.T0, nil)
	if err != nil {
		b.Fatal(err)
	}
	if !rep.OK {
		b.Errorf("ledger not OK: %s", rep.Verdict)
	}
	b.Logf("%s; bucket %s", rep.Verdict, strconv.Itoa(w.Verify().Distinct())+" events")
}

// countRows counts a ledger document's rows.
func countRows(data []byte) int {
	n := 0
	for i := 0; i+7 <= len(data); i++ {
		if string(data[i:i+7]) == `"hour":` {
			n++
		}
	}
	return n
}
