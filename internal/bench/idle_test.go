package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"

	"github.com/secops-collectors/sentry-gcs/internal/events"

	"github.com/secops-collectors/sentry-gcs/internal/engine"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

// BenchmarkIdleTick measures one scheduled tick of an idle organisation of
// 1,000 projects (no new events) at Sentry's real limits, on a fake clock
// (250 ms per project events request): the collector with idle detection
// (stats_v2) after its first full read, and the naive sequential pattern
// (one request per project, no pacing).
//
//	go test ./internal/bench -run '^$' -bench IdleTick -benchtime 1x
func BenchmarkIdleTick(b *testing.B) {
	const projects = 1000
	world := func(b *testing.B) (*clock.Fake, *sentrysim.Server, string) {
		clk := clock.NewFake(t0)
		sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 5})
		for i := range projects {
			sim.AddProject(fmt.Sprintf("p%04d", i), "P")
		}
		srv := httptest.NewServer(newMeter(sim, clk, false))
		b.Cleanup(srv.Close)
		return clk, sim, srv.URL
	}
	report := func(b *testing.B, sim *sentrysim.Server, before sentrysim.RequestStats, d time.Duration) {
		after := sim.RequestStats()
		b.ReportMetric(float64(after.Total-before.Total), "requests/tick")
		b.ReportMetric(float64(after.ByGroup[sentrysim.GroupEvents]-before.ByGroup[sentrysim.GroupEvents]), "events_requests/tick")
		b.ReportMetric(float64(after.RateLimited-before.RateLimited), "429s/tick")
		b.ReportMetric(d.Seconds(), "fake_s/tick")
	}
	b.Run("collector", func(b *testing.B) {
		for range b.N {
			clk, sim, url := world(b)
			cl, err := sentry.New(sentry.Options{BaseURL: url, Token: "tok", Clock: clk})
			if err != nil {
				b.Fatal(err)
			}
			store, err := sink.NewDir(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			run := func() engine.Summary {
				c, err := events.New(events.Options{
					Org: "acme", DataPrefix: "sentry/events/", StatePrefix: "sentry/state/", MaxProjects: projects,
					Lag: 2 * time.Minute, Overlap: 30 * time.Minute, Stats: cl,
				}, cl, engine.Env{Data: store, State: store, Clock: clk, Counters: cl.RequestCounts})
				if err != nil {
					b.Fatal(err)
				}
				s, err := c.Run(collecttest.Quiet(context.Background()), 7*time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				return s
			}
			for run().WorkRemaining { // first read of every project: ~17 fake minutes
			}
			clk.Advance(5 * time.Minute)
			before, start := sim.RequestStats(), clk.Now()
			s := run()
			report(b, sim, before, clk.Now().Sub(start))
			b.ReportMetric(float64(s.Projects.Skipped), "projects_skipped")
		}
	})
	b.Run("naive", func(b *testing.B) {
		for range b.N {
			clk, sim, url := world(b)
			before, start := sim.RequestStats(), clk.Now()
			if err := naiveRun(context.Background(), url); err != nil {
				b.Fatal(err)
			}
			report(b, sim, before, clk.Now().Sub(start))
		}
	})
}
