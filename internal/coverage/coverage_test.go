package coverage

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// world is an organisation, the events stream and the ledger.
type world struct {
	*collecttest.World
	sweep bool
}

func newWorld(t *testing.T, seed int64, cfg sentrysim.Config, sc sentrysim.Scenario, sweep bool) *world {
	t.Helper()
	w := &world{World: collecttest.New(t, seed, cfg, "memory"), sweep: sweep}
	w.Sim.Populate(sc)
	return w
}

// streams returns a new process's events stream and ledger.
func (w *world) streams(run int) (*events.Stream, *Ledger) {
	w.T.Helper()
	return w.streamsOn(run, nil)
}

// streamsOn is streams over st (nil: the world's store).
func (w *world) streamsOn(run int, st sinktest.Store) (*events.Stream, *Ledger) {
	w.T.Helper()
	if st == nil {
		st = w.Store
	}
	cl := w.Client("tok")
	env := w.Env("r"+strconv.Itoa(run), st, cl)
	o := events.Options{
		Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
		MaxPagesPerProject: -1, Lag: 10 * time.Second, Overlap: 2 * time.Minute, InitialLookback: 24 * time.Hour,
		Stats: cl, FullSweepInterval: -1,
	}
	if w.sweep {
		o.Discover, o.Bucket = cl, st
	}
	ev, err := events.New(o, cl, env)
	if err != nil {
		w.T.Fatal(err)
	}
	l, err := New(Options{Org: collecttest.Org, StatePrefix: collecttest.StatePrefix}, cl, ev, st, env)
	if err != nil {
		w.T.Fatal(err)
	}
	return ev, l
}

// play runs the events stream and the ledger every step until until.
func (w *world) play(step time.Duration, until time.Time, run *int) engine.Summary {
	w.T.Helper()
	ctx := collecttest.Quiet(w.T.Context())
	var last engine.Summary
	for ; w.Clock.Now().Before(until); w.Clock.Advance(step) {
		*run++
		ev, l := w.streams(*run)
		if _, err := ev.Run(ctx, 7*time.Minute); err != nil {
			w.T.Fatalf("events run %d: %v", *run, err)
		}
		s, err := l.Run(ctx, 2*time.Minute)
		if err != nil {
			w.T.Fatalf("ledger run %d: %v", *run, err)
		}
		last = s
	}
	return last
}

// report reads the ledger since since.
func (w *world) report(since time.Time) *Report {
	w.T.Helper()
	_, l := w.streams(-1)
	rep, err := l.Report(w.T.Context(), since, nil)
	if err != nil {
		w.T.Fatal(err)
	}
	return rep
}

// TestEveryFinalHourComplete: events sent up to 48 hours late arrive over an
// hour; a day later every final hour is complete and the bucket holds the
// simulator's ground truth exactly once.
func TestEveryFinalHourComplete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   sentrysim.Config
		max   time.Duration
		sweep bool
	}{
		{"sweep_global_views", sentrysim.Config{}, 48 * time.Hour, true},
		{"sweep_per_project", sentrysim.Config{NoGlobalViews: true}, 48 * time.Hour, true},
		// Without error.received the ledger's diffs find what the windows
		// missed (within the day before an hour's final check).
		{"no_received_field", sentrysim.Config{DiscoverNoReceived: true}, 12 * time.Hour, true},
		{"received_read_as_a_tag", sentrysim.Config{DiscoverReceivedAsTag: true}, 12 * time.Hour, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, int64(40+i), tc.cfg, sentrysim.Scenario{
				Projects: 3, Backlog: 400, BacklogSpan: 6 * time.Hour, Arrivals: 600, ArrivalSpan: time.Hour,
				LateSentFraction: 0.15, LateSentMin: 5 * time.Minute, LateSentMax: tc.max,
			}, tc.sweep)
			run := 0
			w.play(time.Minute, collecttest.T0.Add(70*time.Minute), &run)
			w.play(15*time.Minute, collecttest.T0.Add(27*time.Hour), &run)
			w.Verify()
			rep := w.report(collecttest.T0.Add(-24 * time.Hour))
			if !rep.OK || rep.Totals.Final == 0 {
				var b bytes.Buffer
				_ = rep.WriteTable(&b)
				t.Fatalf("ledger not OK:\n%s", b.String())
			}
			t.Logf("%s", rep.Verdict)
		})
	}
}

// TestSlowIngestionIsFoundAndWritten: events Sentry took 20 minutes to make
// visible (far beyond the lag) are missed by the windows, and by the sweep
// (not visible yet when their receipt slice was listed). The ledger's first
// check of their hour finds them by its diff, lists them missing, queues
// them, and the next runs write them: the hour ends complete, the bucket
// exactly the ground truth.
func TestSlowIngestionIsFoundAndWritten(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 7, sentrysim.Config{}, sentrysim.Scenario{Projects: 2, Backlog: 300, BacklogSpan: 3 * time.Hour}, true)
	pid := w.Sim.Projects()[0].ID
	for i := range 5 {
		at := collecttest.T0.Add(10*time.Minute + time.Duration(i)*time.Minute)
		w.Sim.AddEvent(pid, sentrysim.EventSpec{Timestamp: at, ReceivedAt: at, VisibleAt: at.Add(20 * time.Minute)})
	}
	run := 0
	w.play(time.Minute, collecttest.T0.Add(76*time.Minute), &run)
	// The hour T0 is checked 15 minutes after its end: the slow events
	// are visible, and missing.
	rep := w.report(collecttest.T0)
	missing := 0
	for _, r := range rep.Rows {
		if r.ProjectID == pid && r.Hour.Equal(collecttest.T0) {
			missing = r.MissingCount
		}
	}
	if missing == 0 {
		var b bytes.Buffer
		_ = rep.WriteTable(&b)
		t.Fatalf("the ledger did not list the slow events missing in hour %s:\n%s", collecttest.T0, b.String())
	}
	w.play(15*time.Minute, collecttest.T0.Add(26*time.Hour), &run)
	w.Verify()
	rep = w.report(collecttest.T0.Add(-4 * time.Hour))
	if !rep.OK || rep.Totals.Missing != 0 {
		var b bytes.Buffer
		_ = rep.WriteTable(&b)
		t.Fatalf("after the repair the ledger should be complete:\n%s", b.String())
	}
	t.Logf("%d slow events listed missing, then written; %s", missing, rep.Verdict)
}

// TestPropertyLedger: random organisations with events sent up to two days
// late, Sentry faults, crashes at random storage operations of both the
// stream and the ledger, and storage faults; after a quiet day every final
// hour is complete and the bucket is exactly the ground truth.
func TestPropertyLedger(t *testing.T) {
	t.Parallel()
	n := 8
	if testing.Short() || raceDetector {
		n = 3
	}
	base := collecttest.BaseSeed(t)
	collecttest.Trials(t, n, func(t *testing.T, i int) {
		seed := base + int64(i)
		rng := rand.New(rand.NewPCG(uint64(seed), 0x1ed9e7))
		cfg := sentrysim.Config{NoGlobalViews: rng.IntN(3) == 0}
		w := newWorld(t, seed, cfg, sentrysim.Scenario{
			Projects: 1 + rng.IntN(3), Backlog: rng.IntN(500), BacklogSpan: 6 * time.Hour,
			Arrivals: 200 + rng.IntN(600), ArrivalSpan: time.Duration(30+rng.IntN(60)) * time.Minute,
			LateSentFraction: []float64{0.05, 0.2}[rng.IntN(2)], LateSentMin: 5 * time.Minute, LateSentMax: 48 * time.Hour,
		}, true)
		w.Sim.SetFaults(sentrysim.Faults{P5xx: 0.02, P502HTML: 0.01, PTruncated: 0.01})
		crashP := []float64{0, 0.3}[rng.IntN(2)]
		ctx := collecttest.Quiet(t.Context())
		run := 0
		step := func(d time.Duration) {
			run++
			crashAt := int64(0)
			if rng.Float64() < crashP {
				crashAt = 1 + rng.Int64N(30)
			}
			in, cctx, cancel := w.Faulty(ctx, crashAt, rng.IntN(3), 0.005)
			ev, l := w.streamsOn(run, in)
			_, _ = ev.Run(cctx, 7*time.Minute)
			_, _ = l.Run(cctx, 2*time.Minute)
			cancel()
			w.Clock.Advance(d)
		}
		for w.Clock.Now().Before(collecttest.T0.Add(2 * time.Hour)) {
			step(time.Duration(30+rng.IntN(120)) * time.Second)
		}
		w.Sim.SetFaults(sentrysim.Faults{})
		w.play(20*time.Minute, collecttest.T0.Add(28*time.Hour), &run)
		w.Verify()
		rep := w.report(collecttest.T0.Add(-24 * time.Hour))
		if !rep.OK || rep.Totals.Final == 0 {
			var b bytes.Buffer
			_ = rep.WriteTable(&b)
			t.Fatalf("seed %d: ledger not OK:\n%s", seed, b.String())
		}
	})
}

// TestUndecodableLedgerIsRebuilt: a ledger that cannot be decoded is kept
// aside, reported, and rebuilt by checking its hours again, never taken
// for complete in the meantime.
func TestUndecodableLedgerIsRebuilt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 9, sentrysim.Config{}, sentrysim.Scenario{Projects: 1, Backlog: 200, BacklogSpan: 3 * time.Hour}, true)
	run := 0
	w.play(10*time.Minute, collecttest.T0.Add(2*time.Hour), &run)
	pid := w.Sim.Projects()[0].ID
	_, l := w.streams(-1)
	key := l.Key(pid)
	ctx := w.T.Context()
	_, gen, err := w.Store.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := w.Store.Write(ctx, key, []byte(`{"version":1,"rows":[{"hour":`), "application/json", gen)
	if err != nil {
		t.Fatal(err)
	}
	rep := w.report(collecttest.T0.Add(-4 * time.Hour))
	if rep.OK || len(rep.Problems) != 1 || rep.Totals.Hours != 0 {
		t.Fatalf("an undecodable ledger must be reported, not OK: %+v", rep)
	}
	w.play(10*time.Minute, collecttest.T0.Add(3*time.Hour), &run)
	if _, _, err := w.Store.Read(ctx, key+".undecodable-"+strconv.FormatInt(bad, 10)); err != nil {
		names, _ := w.Store.List(ctx, collecttest.StatePrefix+"coverage/")
		t.Fatalf("the undecodable ledger was not kept aside: %v (have %v)", err, names)
	}
	rep = w.report(collecttest.T0.Add(-4 * time.Hour))
	if len(rep.Problems) != 0 || rep.Totals.Complete == 0 || rep.Totals.Complete != rep.Totals.Hours {
		var b bytes.Buffer
		_ = rep.WriteTable(&b)
		t.Fatalf("rebuilt ledger:\n%s", b.String())
	}
}
