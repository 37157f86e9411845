package events

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// lateWorld is a world with late-sent events: runs every minute while events
// arrive, then quiet runs until no work remains.
func lateWorld(t *testing.T, sc scenario, minutes int) *world {
	t.Helper()
	w := newWorld(t, sc)
	for i := range minutes {
		if _, err := w.runOnce("r"+strconv.Itoa(i), 0, 0, 0, true); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		w.clk.Advance(time.Minute)
	}
	w.settle()
	return w
}

// lost counts the ground truth's events missing from the bucket.
func (w *world) lost() int {
	w.t.Helper()
	rep, err := sentrysim.Verify(context.Background(), w.store, testData, w.sim.GroundTruth())
	if err != nil {
		w.t.Fatal(err)
	}
	return len(rep.Lost)
}

// TestLateSentEventsAreCollected: a tenth of the events is sent 2.5 to 5
// minutes after its timestamp, against a 1-minute overlap and a 10-second
// lag (the geometry of events sent hours late against the default
// overlap). Windows alone lose those that arrive after their window; the
// sweep finds them by receipt time and writes each once.
func TestLateSentEventsAreCollected(t *testing.T) {
	t.Parallel()
	sc := scenario{
		Seed: 11, Projects: 3, Backlog: 300, Arrivals: 1200, ArrivalSpan: 30 * time.Minute,
		LateSentFrac: 0.1, LateSentMin: 150 * time.Second, LateSentMax: 5 * time.Minute,
		Lag: 10 * time.Second, Overlap: time.Minute, MaxPages: -1, Store: "dir",
	}
	t.Run("windows_alone_lose_them", func(t *testing.T) {
		t.Parallel()
		w := lateWorld(t, sc, 35)
		if n := w.lost(); n == 0 {
			t.Fatal("no late-sent event was lost without the sweep: the scenario does not exercise it")
		} else {
			t.Logf("without the sweep: %d late-sent events lost", n)
		}
	})
	t.Run("sweep_writes_each_once", func(t *testing.T) {
		t.Parallel()
		sc := sc
		sc.Sweep = true
		w := lateWorld(t, sc, 35)
		w.verify()
	})
}

// TestLateSentDaysLate: events sent up to 48 hours after their timestamp,
// with crashes, storage faults and Sentry faults, end in the bucket exactly
// once (randomised trials; -seed and -trials as for the property suite).
func TestLateSentDaysLate(t *testing.T) {
	t.Parallel()
	n := 8
	if testing.Short() || raceDetector {
		n = 3
	}
	if *flagTrials > 0 {
		n = *flagTrials
	}
	seed := baseSeed(t)
	t.Logf("base seed %d (rerun: go test ./internal/events -run TestLateSentDaysLate -seed=%d)", seed, seed)
	var mu sync.Mutex
	var runs, crashes, recovered int
	collecttest.Trials(t, n, func(t *testing.T, i int) {
		r := rand.New(rand.NewPCG(uint64(seed+int64(i)), 0x1a7e))
		sc := scenario{
			Seed: seed + int64(i), Projects: 1 + r.IntN(3), Backlog: r.IntN(800), Arrivals: 200 + r.IntN(900),
			ArrivalSpan:  time.Duration(20+r.IntN(40)) * time.Minute,
			LateSentFrac: []float64{0.05, 0.15, 0.4}[r.IntN(3)], LateSentMin: 5 * time.Minute, LateSentMax: 48 * time.Hour,
			Lag: 10 * time.Second, Overlap: []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute}[r.IntN(3)],
			MaxPages: []int{1, 5, -1}[r.IntN(3)], Store: "dir", Sweep: true,
			CrashProb: []float64{0, 0.3, 0.6}[r.IntN(3)], StoreFaults: []float64{0, 0.01}[r.IntN(2)],
			Faults: sentrysim.Faults{P5xx: 0.02, P502HTML: 0.01, PTruncated: 0.01},
		}
		w := newWorld(t, sc)
		for round := range 45 {
			crashAt := int64(0)
			if w.rng.Float64() < sc.CrashProb {
				crashAt = 1 + w.rng.Int64N(25)
			}
			_, _ = w.runOnce("r"+strconv.Itoa(round), crashAt, w.rng.IntN(3), sc.StoreFaults, true)
			w.clk.Advance(time.Duration(30+w.rng.IntN(90)) * time.Second)
		}
		w.settle()
		w.verify()
		if t.Failed() {
			t.Fatalf("trial %d failed: rerun with -seed=%d -trials=1", i, sc.Seed)
		}
		mu.Lock()
		defer mu.Unlock()
		runs, crashes, recovered = runs+w.runs, crashes+w.crashes, recovered+w.recovered
	})
	t.Logf("%d trials, %d runs, %d crashes, %d objects recovered", n, runs, crashes, recovered)
}

// TestPlace covers where a late-sent event stands against the checkpoint.
func TestPlace(t *testing.T) {
	t.Parallel()
	const (
		h   = int64(1773136800) // an hour
		vis = int64(30)
	)
	between := func() *checkpoint {
		return &checkpoint{
			Watermark: time.Unix(h+3600, 0),
			Seen:      engine.Seen{"seen": h + 3500},
			Late:      engine.Seen{"late": h + 1},
			Reads: []Read{
				{S: h - 3600, E: h, O: h + 60, C: h + 70},            // read an hour early
				{S: h, E: h + 3600, O: h + 3700, C: h + 3710},        // the hour, read after it
				{S: h + 1800, E: h + 3600, O: h + 9000, C: h + 9100}, // a backfill slice, later
			},
		}
	}
	inWindow := func() *checkpoint {
		cp := between()
		cp.Window = &Window{Start: time.Unix(h+3480, 0), End: time.Unix(h+4000, 0), Opened: time.Unix(h+4010, 0),
			Frontier: &frontier{T: h + 3700, IDs: []string{"f"}}}
		return cp
	}
	running := func() *checkpoint {
		cp := between()
		cp.Reads = append(cp.Reads, Read{S: h - 7200, E: h - 3600, O: h + 5000})
		return cp
	}
	tests := []struct {
		name string
		cp   *checkpoint
		st   Straggler
		want placement
	}{
		{"id_seen", between(), Straggler{ID: "seen", T: h + 10, R: h + 99999}, placeStored},
		{"id_written_late", between(), Straggler{ID: "late", T: h + 10, R: h + 99999}, placeStored},
		{"next_window_reads_it", between(), Straggler{ID: "x", T: h + 3600 - 120 + 1, R: h + 99999}, placeWindow},
		{"read_after_receipt", between(), Straggler{ID: "x", T: h + 10, R: h + 3700 - vis - 1}, placeStored},
		{"received_while_read_ran", between(), Straggler{ID: "x", T: h + 10, R: h + 3705}, placeLook},
		{"received_after_every_read", between(), Straggler{ID: "x", T: h + 10, R: h + 3711}, placeWrite},
		{"later_backfill_read_it", between(), Straggler{ID: "x", T: h + 2000, R: h + 5000}, placeStored},
		{"received_after_backfill", between(), Straggler{ID: "x", T: h + 2000, R: h + 9101}, placeWrite},
		{"never_read", between(), Straggler{ID: "x", T: h - 99999, R: h + 5000}, placeWrite},
		{"forgotten_reads", func() *checkpoint { cp := between(); cp.ReadsPruned = h + 6000; return cp }(),
			Straggler{ID: "x", T: h - 99999, R: h + 5000}, placeLook},
		{"ledger_asks_to_look", between(), Straggler{ID: "x", T: h + 10, R: h + 99999, Look: true}, placeLook},
		{"running_backfill", running(), Straggler{ID: "x", T: h - 5000, R: h + 99999}, placeLook},
		{"below_frontier", inWindow(), Straggler{ID: "x", T: h + 3600, R: h + 99999}, placeWindow},
		{"at_frontier_unread", inWindow(), Straggler{ID: "x", T: h + 3700, R: h + 99999}, placeWindow},
		{"at_frontier_read", inWindow(), Straggler{ID: "f", T: h + 3700, R: h + 99999}, placeLook},
		{"above_frontier_read_before_receipt", inWindow(), Straggler{ID: "x", T: h + 3750, R: h + 4500}, placeLook},
		{"above_frontier_read_after_receipt", inWindow(), Straggler{ID: "x", T: h + 3750, R: h + 3900}, placeStored},
		{"window_start_next_window", inWindow(), Straggler{ID: "x", T: h + 3900, R: h + 99999}, placeWindow},
		{"fresh_project", &checkpoint{}, Straggler{ID: "x", T: h, R: h + 99999}, placeLook},
	}
	for _, tc := range tests {
		pl := placer{cp: tc.cp, overlap: 120, visibleWithin: vis}
		if got := pl.place(tc.st); got != tc.want {
			t.Errorf("%s: place = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLateRanges: one second per event, merged while a page can hold the
// range by the hour's density.
func TestLateRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ts    []int64
		count int64
		want  [][2]int64
	}{
		{"sparse_hour_one_range", []int64{10, 20, 3000}, 10, [][2]int64{{10, 3001}}},
		{"busy_hour_one_second_each", []int64{10, 20, 3000}, 360000, [][2]int64{{10, 11}, {20, 21}, {3000, 3001}}},
		{"same_second_once", []int64{10, 10, 11}, 360000, [][2]int64{{10, 11}, {11, 12}}},
		{"medium", []int64{0, 30, 100}, 3600, [][2]int64{{0, 31}, {100, 101}}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, lateRanges(tc.ts, tc.count)); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", tc.name, diff)
		}
	}
}

// hidingAPI is Sentry's project events without some events (deleted after
// the sweep listed them).
type hidingAPI struct {
	API
	hidden map[string]bool
}

func (h hidingAPI) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	page, err := h.API.ListEvents(ctx, q)
	page.Items = slices.DeleteFunc(page.Items, func(e sentry.Event) bool { return h.hidden[e.ID] })
	return page, err
}

// TestLateEventsNotReturnedAreDropped: late events of one busy hour that
// need more reads than one turn allows are all written, except those the
// project events endpoint no longer returns, which are dropped after three
// tries (and reported), instead of being read again for ever.
func TestLateEventsNotReturnedAreDropped(t *testing.T) {
	t.Parallel()
	w := collecttest.New(t, 5, sentrysim.Config{}, "memory")
	p := w.Sim.AddProject("busy", "Busy")
	hour := collecttest.T0.Add(-3 * time.Hour)
	for i := range 2000 {
		w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: hour.Add(time.Duration(i) * 1800 * time.Millisecond)})
	}
	hidden := map[string]bool{}
	for i := range 20 {
		// Received now, with a timestamp every three minutes of the busy
		// hour: twenty reads.
		ts := hour.Add(time.Duration(i)*3*time.Minute + time.Second)
		id := w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: ts, ReceivedAt: collecttest.T0.Add(time.Minute)})
		if i%4 == 0 {
			hidden[id] = true
		}
	}
	ctx := collecttest.Quiet(t.Context())
	unreadable := 0
	for run := range 30 {
		cl := w.Client("tok")
		o := Options{Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
			MaxPagesPerProject: -1, Lag: 10 * time.Second, Overlap: 2 * time.Minute, InitialLookback: 24 * time.Hour,
			Discover: cl, Bucket: w.Store}
		s, err := New(o, hidingAPI{API: cl, hidden: hidden}, w.Env("r"+strconv.Itoa(run), nil, cl))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := s.Run(ctx, 7*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range sum.Extra {
			if a.Key == "late_events_unreadable" {
				unreadable += int(a.Value.Int64())
			}
		}
		w.Clock.Advance(2 * time.Minute)
	}
	if unreadable != len(hidden) {
		t.Errorf("%d late events reported unreadable, want the %d hidden ones", unreadable, len(hidden))
	}
	rep, err := sentrysim.Verify(ctx, w.Store, collecttest.DataPrefix, w.Sim.GroundTruth())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Lost)
	var want []string
	for id := range hidden {
		want = append(want, id)
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, rep.Lost); diff != "" || len(rep.Duplicated)+len(rep.Unknown) != 0 {
		t.Errorf("bucket: %s; lost (-want hidden +got):\n%s", rep, diff)
	}
}

// TestLateLaneCrashAtEveryBoundary crashes a run that sweeps and writes late
// events at each of its storage operations, in each way (an error before
// the operation, an error after it landed, the context cancelled), then
// runs to completion: every event ends in the bucket exactly once, whether
// the crash fell before, between or after a late object's write and the
// commit that records it.
func TestLateLaneCrashAtEveryBoundary(t *testing.T) {
	t.Parallel()
	sc := scenario{
		Seed: 31, Projects: 2, Arrivals: 300, ArrivalSpan: 10 * time.Minute,
		LateSentFrac: 0.3, LateSentMin: 5 * time.Minute, LateSentMax: 6 * time.Hour,
		Lag: 10 * time.Second, Overlap: 2 * time.Minute, MaxPages: -1, Store: "memory", Sweep: true,
	}
	// prepare replays the runs before the crashing one (deterministic).
	prepare := func(t *testing.T) *world {
		w := newWorld(t, sc)
		for i := range 6 {
			if _, err := w.runOnce("pre"+strconv.Itoa(i), 0, 0, 0, true); err != nil {
				t.Fatal(err)
			}
			w.clk.Advance(2 * time.Minute)
		}
		w.clk.Advance(5 * time.Minute) // a slice of receipts with late events is due
		return w
	}
	probe := prepare(t)
	var lateCreates atomic.Int64
	in := &sinktest.Faulty{Store: &sinktest.Hooked{Store: probe.store, Before: func(_ int, op, name string) error {
		if op == "create" && strings.Contains(name, "-late-") {
			lateCreates.Add(1)
		}
		return nil
	}}}
	cl := probe.client()
	sum, err := probe.stream("probe", cl, in, true).Run(collecttest.Quiet(t.Context()), 7*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, a := range sum.Extra {
		if a.Key == "late_events_written" {
			written = int(a.Value.Int64())
		}
	}
	if written == 0 || lateCreates.Load() == 0 {
		t.Fatalf("the probed run wrote no late object: the test does not exercise the late lane (%v)", sum.Extra)
	}
	ops := in.Ops()
	cases := crashCases(ops, 5)
	var recovered atomic.Int64
	collecttest.Trials(t, len(cases), func(t *testing.T, i int) {
		w := prepare(t)
		_, err := w.runOnce("crash", cases[i].k, cases[i].mode, 0, true)
		// A lease that fails to be released is logged, not returned: it
		// expires.
		if err == nil && w.crashes > 0 && !strings.HasSuffix(w.firedOn, "lease.json") {
			t.Errorf("crash at operation %d/%d (mode %d, %s): no error reported", cases[i].k, ops, cases[i].mode, w.firedOn)
		}
		w.settle()
		if rep := w.verify(); !rep.OK() {
			t.Fatalf("crash at operation %d/%d (mode %d)", cases[i].k, ops, cases[i].mode)
		}
		recovered.Add(int64(w.recovered))
	})
	// A late object left by a crash is read the same way again: its
	// identical re-creation succeeds (sink semantics), or a different batch
	// finds it and absorbs it (counted as recovered).
	t.Logf("%d crash trials over %d operations (%d late objects created, %d late events written by the probed run); %d objects recovered by absorption",
		len(cases), ops, lateCreates.Load(), written, recovered.Load())
}

// endlessDiscover answers every Discover request with a next page, each
// taking step of the clock: a Discover that pages on and on (or hangs, as
// far as the run's budget is concerned).
type endlessDiscover struct {
	clk      *clock.Fake
	step     time.Duration
	requests atomic.Int64
}

func (d *endlessDiscover) Discover(ctx context.Context, q sentry.DiscoverQuery) (sentry.Page[sentry.DiscoverRow], error) {
	n := d.requests.Add(1)
	d.clk.Advance(d.step)
	return sentry.Page[sentry.DiscoverRow]{HasNext: true, NextCursor: "0:" + strconv.FormatInt(n*100, 10) + ":0"}, nil
}

// TestSweepKeepsToItsShareOfTheRun: a Discover that never ends its listing
// stops the sweep at its share of the run (a quarter of it); the windows
// then collect every event in the rest of the budget, and the summary says
// the sweep is behind.
func TestSweepKeepsToItsShareOfTheRun(t *testing.T) {
	t.Parallel()
	w := collecttest.New(t, 7, sentrysim.Config{}, "memory")
	p := w.Sim.AddProject("web", "Web")
	for i := range 300 {
		w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-time.Duration(i+1) * 10 * time.Second)})
	}
	w.Clock.Advance(10 * time.Minute) // a slice of receipts is due
	disc := &endlessDiscover{clk: w.Clock, step: 20 * time.Second}
	cl := w.Client("tok")
	o := Options{Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
		MaxPagesPerProject: -1, Lag: 10 * time.Second, Overlap: 2 * time.Minute, InitialLookback: 24 * time.Hour,
		Discover: disc, Bucket: w.Store}
	s, err := New(o, cl, w.Env("r", nil, cl))
	if err != nil {
		t.Fatal(err)
	}
	start := w.Clock.Now()
	sum, err := s.Run(collecttest.Quiet(t.Context()), 8*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The share is 2 minutes of the 8: six 20-second pages, and the one
	// in flight when it ended.
	if n := disc.requests.Load(); n < 2 || n > 7 {
		t.Errorf("%d Discover requests, want those of the sweep's 2-minute share (6, or 7)", n)
	}
	if got := extra(sum, "late_sweep"); got != "behind" {
		t.Errorf("late_sweep = %q, want behind", got)
	}
	if sum.Records != 300 {
		t.Errorf("the windows wrote %d events in the %v left, want all 300", sum.Records, 8*time.Minute-w.Clock.Now().Sub(start))
	}
}

// extra returns the summary field key as text ("" when absent).
func extra(sum engine.Summary, key string) string {
	for _, a := range sum.Extra {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestSweepRelistsWhenTheOverlapShrinks: an event received ten minutes after
// its timestamp is the windows' under a 30-minute overlap, so a sweep under
// it leaves it to them; if the overlap then drops to five minutes before a
// window read it, no window reads it. Here the sweep of an earlier version
// (which did not record its overlap; the default was 30 minutes) listed its
// receipt, and the deployment then got the 5-minute default. The sweep lists
// its slices again under the smaller overlap and the event is written once.
func TestSweepRelistsWhenTheOverlapShrinks(t *testing.T) {
	t.Parallel()
	w := collecttest.New(t, 3, sentrysim.Config{}, "memory")
	p := w.Sim.AddProject("web", "Web")
	ts := collecttest.T0.Add(30 * time.Second)
	for i := range 20 {
		w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: ts.Add(time.Duration(i) * time.Minute)})
	}
	late := w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: ts, ReceivedAt: ts.Add(10 * time.Minute)})
	ctx := collecttest.Quiet(t.Context())
	n := 0
	run := func(overlap time.Duration) {
		n++
		cl := w.Client("tok")
		o := Options{Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
			MaxPagesPerProject: -1, Lag: 10 * time.Second, Overlap: overlap, InitialLookback: time.Hour,
			Discover: cl, Bucket: w.Store}
		s, err := New(o, cl, w.Env("r"+strconv.Itoa(n), nil, cl))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(ctx, 7*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// Runs every minute with a 30-minute overlap, until just before the
	// late event is received.
	for w.Clock.Now().Before(ts.Add(9 * time.Minute)) {
		run(30 * time.Minute)
		w.Clock.Advance(time.Minute)
	}
	// The earlier version's sweep then listed the receipts up to
	// ts + 15 min (and left the late event to the windows).
	key := collecttest.StatePrefix + "events/sweep.json"
	data, gen, err := w.Store.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["through"] = ts.Add(15 * time.Minute).Truncate(time.Minute)
	delete(doc, "overlap_seconds")
	if data, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Store.Write(ctx, key, data, "application/json", gen); err != nil {
		t.Fatal(err)
	}
	// From ts + 16 min on, a 5-minute overlap.
	w.Clock.Set(ts.Add(16 * time.Minute))
	for range 10 {
		run(5 * time.Minute)
		w.Clock.Advance(time.Minute)
	}
	rep, err := sentrysim.Verify(ctx, w.Store, collecttest.DataPrefix, w.Sim.GroundTruth())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("bucket: %s (the late event is %s)", rep, late)
	}
}
