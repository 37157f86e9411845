package bench

import (
	"context"
	"maps"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/coverage"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// Sustained arrivals above the budget: what one caller collects per minute
// when Sentry receives more than it may read, for a given COLLECT_OVERLAP.
const (
	sustainProjects = 4
	sustainRate     = 9000 // events per minute, all projects (skewed as Populate skews them)
	sustainFor      = 60 * time.Minute
	// sustainWarmUp is not measured: it is the largest overlap measured,
	// so that in the measured interval every overlap re-reads arrivals.
	sustainWarmUp = 30 * time.Minute
	sustainSeed   = 23
	// budgetPerMinute is Sentry's ceiling for one caller: 60 project
	// events requests per 60 s, 100 rows each.
	budgetPerMinute = 6000
)

// The late events among the arrivals, so that a small overlap leaves work
// to the late sweep and the verification shows whether anything was lost:
// sustainLate of the events are received up to sustainMaxLate after their
// timestamp (a device on a slow network, a queue in front of Relay), and
// sustainLateSent are sent by an offline SDK between sustainLateSentMin and
// sustainLateSentMax after their timestamp (log-uniform: as many minutes
// late as hours late). The late lane reads the late events whose windows
// are done over short ranges of their own, from the same budget as the
// windows, so their share is part of what the figures measure.
const (
	sustainLate        = 0.02
	sustainMaxLate     = 10 * time.Minute
	sustainLateSent    = 0.002
	sustainLateSentMin = 2 * time.Minute
	sustainLateSentMax = 24 * time.Hour
)

// sustainResult are the figures of one sustained run. Those of the
// measured interval come from the meter, per 60 s window.
type sustainResult struct {
	minutes              float64 // of the measured interval
	requests, rows, news int64   // project events requests answered 200, rows, rows returned for the first time
	discover             int64   // Discover requests (late sweep, coverage ledger)
	lagAtEnd             time.Duration
	checkpointBytes      int // the largest project checkpoint, at the end of the arrivals
	// The whole run, catch-up included.
	lateWritten   int // events the late lane wrote
	ledgerQueued  int // missing events the coverage ledger found and queued
	rateLimited   int64
	stats         int64 // stats_v2 requests
	runs          int
	fakeMinutes   float64
	written, lost int
	duplicated    int
}

// service runs the events stream as the service does on Cloud Run
// (server/handle_push.go): a Cloud Scheduler tick every minute runs every
// selected stream within RUN_BUDGET through collector.Run, and while a run
// reports work remaining, a continuation runs at once (it is published
// before the push is answered, and Pub/Sub delivers it within moments). A
// tick that comes while a run holds the lease does nothing, so it is not
// modelled. One Sentry client serves every run, as in one instance: its rate
// limiters carry over from run to run.
type service struct {
	w      *collecttest.World
	cfg    *config.Config
	cl     *sentry.Client
	runs   int
	late   int // events written by the late lane
	queued int // missing events the coverage ledger queued
}

// newService configures the service with env over the configuration's
// defaults, reading the world's Sentry through cl.
func newService(tb testing.TB, w *collecttest.World, cl *sentry.Client, env map[string]string) *service {
	tb.Helper()
	cfg := loadConfig(tb, env)
	if cfg.GCSPrefix != collecttest.DataPrefix {
		tb.Fatalf("data prefix %q, but the world verifies %q", cfg.GCSPrefix, collecttest.DataPrefix)
	}
	return &service{w: w, cfg: cfg, cl: cl}
}

// loadConfig is the service's configuration: env over the defaults.
func loadConfig(tb testing.TB, env map[string]string) *config.Config {
	tb.Helper()
	vars := map[string]string{"SENTRY_ORG": collecttest.Org, "SENTRY_AUTH_TOKEN": "tok"}
	maps.Copy(vars, env)
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(vars))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// streams are the streams of one run, as the service builds them from its
// configuration (server/wiring.go, selectedStreams and stream): the events
// stream, and the coverage ledger with it when COVERAGE_LEDGER is on.
func (s *service) streams(tb testing.TB) []collector.Stream {
	tb.Helper()
	ev := s.events(tb)
	out := []collector.Stream{ev}
	if s.cfg.CoverageLedger {
		l, err := coverage.New(coverage.Options{Org: s.cfg.SentryOrg, StatePrefix: s.cfg.StateKey, MaxProjects: s.cfg.MaxProjects},
			s.cl, s.events(tb), s.w.Store, s.w.Env("", nil, s.cl))
		if err != nil {
			tb.Fatal(err)
		}
		out = append([]collector.Stream{l}, out...) // collector.Order: the ledger before the events
	}
	return out
}

// events is the events stream with the options the service derives from its
// configuration (server/wiring.go, eventsOptions).
func (s *service) events(tb testing.TB) *events.Stream {
	tb.Helper()
	c := s.cfg
	o := events.Options{
		Org: c.SentryOrg, DataPrefix: c.GCSPrefix, StatePrefix: c.StateKey,
		MaxProjects: c.MaxProjects, MaxPagesPerProject: c.MaxPagesPerProject,
		Lag: c.CollectLag, Overlap: c.CollectOverlap, InitialLookback: c.InitialLookback,
		FullSweepInterval: -1,
	}
	if c.FullSweepInterval > 0 {
		o.FullSweepInterval, o.Stats = c.FullSweepInterval, s.cl
	}
	if c.LateSweep {
		o.Discover, o.Bucket, o.Stats = s.cl, s.w.Store, s.cl
	}
	st, err := events.New(o, s.cl, s.w.Env("", nil, s.cl))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// push is one push delivery: one pass of the selected streams. A stream
// that fails fails the benchmark: the service would answer 503 and run
// again, but nothing in this world should fail.
func (s *service) push(tb testing.TB) collector.Result {
	tb.Helper()
	res, err := collector.Run(collecttest.Quiet(context.Background()), s.w.Clock, s.cfg.RunBudget, s.streams(tb), nil)
	if err != nil {
		tb.Fatal(err)
	}
	for name, err := range res.Errors {
		tb.Fatalf("stream %s failed: %v", name, err)
	}
	s.runs++
	for _, sum := range res.Summaries {
		for _, a := range sum.Extra {
			switch a.Key {
			case "late_events_written":
				s.late += int(a.Value.Int64())
			case "missing_events_queued":
				s.queued += int(a.Value.Int64())
			}
		}
	}
	return res
}

// until runs pushes, ticks and continuations, until done is true after one.
func (s *service) until(tb testing.TB, done func(res collector.Result) bool) {
	tb.Helper()
	for {
		res := s.push(tb)
		if done(res) {
			return
		}
		if len(res.Remaining) == 0 {
			now := s.w.Clock.Now()
			s.w.Clock.Advance(now.Truncate(time.Minute).Add(time.Minute).Sub(now)) // the next tick
		}
	}
}

// maxCheckpoint is the size of the largest project checkpoint.
func maxCheckpoint(tb testing.TB, w *collecttest.World, statePrefix string) int {
	tb.Helper()
	names, err := w.Store.List(context.Background(), statePrefix+"events/projects/")
	if err != nil {
		tb.Fatal(err)
	}
	largest := 0
	for _, n := range names {
		data, _, err := w.Store.Read(context.Background(), n)
		if err != nil {
			tb.Fatal(err)
		}
		largest = max(largest, len(data))
	}
	return largest
}

// sustain runs the service against sustainRate events per minute for
// sustainFor with the given COLLECT_OVERLAP, then lets it catch up and
// checks the bucket against the simulator's ground truth.
func sustain(b *testing.B, overlap string) sustainResult {
	b.Helper()
	ctx := context.Background()
	w := collecttest.New(b, sustainSeed, sentrysim.Config{}, "dir") // real limits: events 60/60 s, 1 in flight
	m := newMeter(w.Sim, w.Clock, true)
	srv := httptest.NewServer(m)
	b.Cleanup(srv.Close)
	w.URL = srv.URL // every request through the meter
	w.Sim.Populate(sentrysim.Scenario{Projects: sustainProjects,
		Arrivals: int(sustainRate * sustainFor.Minutes()), ArrivalSpan: sustainFor,
		LateFraction: sustainLate, MaxLate: sustainMaxLate,
		LateSentFraction: sustainLateSent, LateSentMin: sustainLateSentMin, LateSentMax: sustainLateSentMax})
	svc := newService(b, w, w.Client("tok"), map[string]string{"COLLECT_OVERLAP": overlap})

	start := w.Clock.Now()
	end := start.Add(sustainFor)
	var r sustainResult
	svc.until(b, func(res collector.Result) bool {
		for _, sum := range res.Summaries {
			if sum.Stream == events.Name {
				r.lagAtEnd = sum.Lag
			}
		}
		return !w.Clock.Now().Before(end)
	})
	r.checkpointBytes = maxCheckpoint(b, w, svc.cfg.StateKey)
	// The arrivals have stopped: catch up until a run leaves no work and
	// the sweep has listed every receipt (the last arrival is received at
	// most sustainMaxLate after the span). Nothing is measured any more,
	// so runs are no longer cut at MAX_PAGES_PER_PROJECT: the same reads in
	// far fewer runs, each of which loads every checkpoint (at a 30m
	// overlap, megabytes of ids), which is most of the benchmark's CPU.
	svc.cfg.MaxPagesPerProject = config.MaxPagesPerProjectLimit
	lastReceipt := end.Add(sustainMaxLate + time.Second)
	giveUp := end.Add(24 * time.Hour)
	svc.until(b, func(res collector.Result) bool {
		if w.Clock.Now().After(giveUp) {
			b.Fatalf("no end to the catch-up a day after the arrivals stopped (%s remaining)", res.Remaining)
		}
		if len(res.Remaining) > 0 {
			return false
		}
		through, why, err := events.ReadSweep(ctx, w.Store, svc.cfg.StateKey)
		if err != nil {
			b.Fatal(err)
		}
		if why != "" {
			b.Fatalf("the late sweep does not run: %s", why)
		}
		return !through.Before(lastReceipt)
	})

	rep := w.Verify() // fails the benchmark when an event is lost or duplicated
	r.written, r.lost, r.duplicated = rep.Distinct(), len(rep.Lost), len(rep.Duplicated)
	st := w.Sim.RequestStats()
	r.rateLimited = st.RateLimited
	r.stats = st.ByGroup[sentrysim.GroupStats]
	r.runs, r.lateWritten, r.ledgerQueued = svc.runs, svc.late, svc.queued
	r.fakeMinutes = w.Clock.Now().Sub(start).Minutes()

	m.mu.Lock()
	defer m.mu.Unlock()
	from, to := start.Add(sustainWarmUp).Unix()/60, end.Unix()/60
	r.minutes = float64(to - from)
	for i := from; i < to; i++ {
		r.requests += m.perWindow[i]
		r.rows += m.rowsPerWindow[i]
		r.news += m.newPerWindow[i]
		r.discover += m.discoverPerWindow[i]
	}
	if testing.Verbose() {
		for i := start.Unix() / 60; i <= m.lastAt.Unix()/60; i++ {
			b.Logf("minute %3d: %2d requests, %5d rows, %5d new, %3d Discover requests", i-start.Unix()/60,
				m.perWindow[i], m.rowsPerWindow[i], m.newPerWindow[i], m.discoverPerWindow[i])
		}
	}
	return r
}

func (r sustainResult) report(b *testing.B) {
	b.ReportMetric(float64(r.news)/r.minutes/budgetPerMinute, "collected/budget")
	b.ReportMetric(float64(r.news)/r.minutes, "new_events/min")
	b.ReportMetric(float64(r.requests)/r.minutes, "requests/min")
	if r.news > 0 {
		b.ReportMetric(float64(r.rows-r.news)/float64(r.news), "reread_rows/new_event")
	}
	b.ReportMetric(float64(r.discover)/r.minutes*60, "discover_requests/hour")
	b.ReportMetric(r.lagAtEnd.Minutes(), "lag_min")
	b.ReportMetric(float64(r.checkpointBytes)/1024, "checkpoint_KiB")
	b.ReportMetric(float64(r.lateWritten), "late_written")
	b.ReportMetric(float64(r.ledgerQueued), "ledger_found_missing")
	b.ReportMetric(float64(r.rateLimited), "429s")
	b.ReportMetric(float64(r.stats), "stats_requests")
	b.ReportMetric(float64(r.runs), "runs")
	b.ReportMetric(r.fakeMinutes, "fake_minutes")
	b.ReportMetric(float64(r.written), "events")
	b.ReportMetric(float64(r.lost), "lost")
	b.ReportMetric(float64(r.duplicated), "duplicated")
	if r.rateLimited != 0 {
		b.Errorf("%d requests answered 429", r.rateLimited)
	}
}

// BenchmarkSustainedThroughput runs the service (a tick a minute,
// continuations while work remains, the configuration's defaults but
// COLLECT_OVERLAP) against 9,000 events per minute in 4 projects for an
// hour, 2.2 % of them late, at Sentry's real limits on a fake clock (250 ms
// per project events and Discover request). The headline,
// collected/budget, is the events read for the first time per minute over
// the second half hour of arrivals, over the 6,000 rows a minute a caller
// may read; reread_rows/new_event is what the rest of the rows cost. After
// the arrivals stop, the service catches up and the bucket must hold every
// event exactly once: a small overlap leaves more of the late events to the
// late sweep, and nothing may be lost for it. The set takes about 25
// minutes on 2 vCPU (above go test's default 10-minute timeout): Discover
// in the simulator at the smallest overlaps, checkpoint decoding at the
// largest.
//
//	go test ./internal/bench -run '^$' -bench SustainedThroughput -benchtime 1x -timeout 60m
func BenchmarkSustainedThroughput(b *testing.B) {
	for _, overlap := range []string{"30m", "10m", "5m", "2m", "1m"} {
		b.Run("overlap="+overlap, func(b *testing.B) {
			for range b.N {
				sustain(b, overlap).report(b)
			}
		})
	}
}
