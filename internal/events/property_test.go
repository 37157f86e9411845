package events

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// The property suite runs the real simulator, the real client over HTTP and
// a real sink (sink.Dir, or sink.GCS on fake-gcs-server), with faults and
// crashes injected, and checks the bucket against the simulator's ground
// truth: zero lost, zero duplicated, zero non-event records.
//
//	go test ./internal/events -run Property -v                # full suite
//	go test ./internal/events -run Property -short            # shrunk
//	go test ./internal/events -run Property -seed=123 -trials=1000
var (
	flagSeed   = flag.Int64("seed", 0, "base seed of the randomised property trials (0: from the clock)")
	flagTrials = flag.Int("trials", 0, "number of randomised property trials (0: default)")
)

// scenario is one randomised trial.
type scenario struct {
	Seed        int64
	Projects    int
	Backlog     int
	Arrivals    int
	ArrivalSpan time.Duration
	LateFrac    float64
	MaxLate     time.Duration
	Faults      sentrysim.Faults
	Storm       bool // tight rate limits: 429 storms
	IgnoreRange bool
	MaxPages    int
	Rounds      int           // runs while events arrive
	MaxGap      time.Duration // clock advance between runs, at most
	CrashProb   float64       // per run, chance of a crash at a random storage operation
	StoreFaults float64       // per storage operation, chance of a 503 (before or after) or a 412 after a landed write
	Concurrent  bool          // two collectors per round, without the lease (split brain)
	Contend     bool          // two collectors per round, with the lease
	Store       string        // "dir", "gcs"
	// Late-sent events (offline SDKs) and the late sweep that finds them.
	LateSentFrac             float64
	LateSentMin, LateSentMax time.Duration
	Sweep                    bool
	Lag, Overlap             time.Duration // 0: 2m and 30m
}

func (sc scenario) String() string {
	return fmt.Sprintf("%+v", struct {
		Seed                                int64
		Projects, Backlog, Arrivals, Rounds int
		MaxPages                            int
		Storm, IgnoreRange, Split, Contend  bool
		Crash, StoreFaults                  float64
		Store                               string
	}{sc.Seed, sc.Projects, sc.Backlog, sc.Arrivals, sc.Rounds, sc.MaxPages, sc.Storm, sc.IgnoreRange, sc.Concurrent, sc.Contend, sc.CrashProb, sc.StoreFaults, sc.Store})
}

// randomScenario draws a trial from seed.
func randomScenario(seed int64) scenario {
	r := rand.New(rand.NewPCG(uint64(seed), 0xc011ec7))
	sc := scenario{
		Seed:        seed,
		Projects:    1 + r.IntN(4),
		Backlog:     r.IntN(1500),
		Arrivals:    r.IntN(1200),
		ArrivalSpan: time.Duration(20+r.IntN(100)) * time.Minute,
		LateFrac:    []float64{0, 0.05, 0.3}[r.IntN(3)],
		MaxLate:     time.Duration(1+r.IntN(25)) * time.Minute, // ≤ overlap + lag − visibility delay
		Faults:      sentrysim.Faults{P5xx: 0.02, P502HTML: 0.01, PTruncated: 0.01},
		Storm:       r.IntN(4) == 0,
		IgnoreRange: r.IntN(6) == 0,
		MaxPages:    []int{1, 2, 5, 10, -1}[r.IntN(5)],
		Rounds:      2 + r.IntN(6),
		MaxGap:      time.Duration(1+r.IntN(20)) * time.Minute,
		CrashProb:   []float64{0, 0.3, 0.7}[r.IntN(3)],
		StoreFaults: []float64{0, 0, 0.02}[r.IntN(3)],
		Store:       "dir",
	}
	switch r.IntN(5) {
	case 0:
		sc.Concurrent = true
	case 1:
		sc.Contend = true
	}
	if r.IntN(8) == 0 {
		sc.Store = "gcs"
	}
	return sc
}

// world is the simulator, client and store of one trial.
type world struct {
	t     testing.TB
	sc    scenario
	clk   *clock.Fake
	sim   *sentrysim.Server
	url   string
	store sinktest.Store
	rng   *rand.Rand
	// stats, guarded by mu (two collectors may run at once)
	mu                             sync.Mutex
	runs, crashes, errs, leaseHeld int
	recovered, conflicts           int
	requests, limited              int64
	firedOn                        string // the object the last crash hit
}

func newWorld(t testing.TB, sc scenario) *world {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg := sentrysim.Config{Clock: clk, Seed: sc.Seed, IgnoreDateRange: sc.IgnoreRange}
	if sc.Storm {
		cfg.RateLimits = sentrysim.RateLimitConfig{
			Events:  sentrysim.Limit{Limit: 3, Window: 10 * time.Second, Concurrent: 1},
			Default: sentrysim.Limit{Limit: 2, Window: time.Second, Concurrent: 2},
		}
	}
	sim := sentrysim.New(cfg)
	sim.Populate(sentrysim.Scenario{
		Projects: sc.Projects, Backlog: sc.Backlog, BacklogSpan: 6 * time.Hour,
		Arrivals: sc.Arrivals, ArrivalSpan: sc.ArrivalSpan,
		LateFraction: sc.LateFrac, MaxLate: sc.MaxLate,
		LateSentFraction: sc.LateSentFrac, LateSentMin: sc.LateSentMin, LateSentMax: sc.LateSentMax,
	})
	sim.SetFaults(sc.Faults)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	w := &world{t: t, sc: sc, clk: clk, sim: sim, url: srv.URL, rng: rand.New(rand.NewPCG(uint64(sc.Seed), 7))}
	w.store = sinktest.New(t, sc.Store)
	return w
}

// client returns a new Sentry client (a new process: its own limiters).
func (w *world) client() *sentry.Client {
	c, err := sentry.New(sentry.Options{BaseURL: w.url, Token: "tok", Clock: w.clk, MaxAttempts: 8})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) options() Options {
	lag, overlap := w.sc.Lag, w.sc.Overlap
	if lag == 0 {
		lag = 2 * time.Minute
	}
	if overlap == 0 {
		overlap = 30 * time.Minute
	}
	return Options{
		Org: "acme", DataPrefix: testData, StatePrefix: testState,
		MaxPagesPerProject: w.sc.MaxPages,
		Lag:                lag, Overlap: overlap, InitialLookback: 24 * time.Hour,
	}
}

// stream returns the events stream of one run with the given id, over st,
// with or without the lease.
func (w *world) stream(runID string, cl *sentry.Client, st store, lease bool) *Stream {
	w.t.Helper()
	o := w.options()
	if w.sc.Sweep {
		o.Discover, o.Bucket, o.Stats = cl, st.(Lister), cl
	}
	s, err := New(o, cl, engine.Env{Data: st, State: st, Clock: w.clk, RunID: runID, NoLease: !lease, Counters: cl.RequestCounts})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// runOnce runs one collector; crashAt > 0 injects a crash there.
func (w *world) runOnce(runID string, crashAt int64, mode int, faultP float64, lease bool) (engine.Summary, error) {
	ctx, cancel := context.WithCancel(logging.WithLogger(context.Background(), slog.New(slog.DiscardHandler)))
	defer cancel()
	in := &sinktest.Faulty{Store: w.store, K: crashAt, Mode: mode, Cancel: cancel, FaultP: faultP,
		Seed: uint64(w.sc.Seed) ^ uint64(len(runID))*31}
	cl := w.client()
	s, err := w.stream(runID, cl, in, lease).Run(ctx, 7*time.Minute)
	m := cl.Metrics()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runs++
	if in.Fired() {
		w.crashes++
		w.firedOn = in.FiredOn()
	}
	if err != nil {
		w.errs++
	}
	if s.LeaseHeld {
		w.leaseHeld++
	}
	w.recovered += s.ObjectsRecovered
	w.conflicts += s.Conflicts
	w.requests += m.Requests
	w.limited += m.RateLimited
	return s, err
}

// play runs the scenario: rounds while events arrive (with crashes, faults,
// concurrent collectors), then quiet runs until no work remains.
func (w *world) play() {
	sc := w.sc
	for i := range sc.Rounds {
		crashAt := int64(0)
		if w.rng.Float64() < sc.CrashProb {
			crashAt = 1 + w.rng.Int64N(25)
		}
		mode := w.rng.IntN(3)
		id := "r" + strconv.Itoa(i)
		switch {
		case sc.Concurrent || sc.Contend:
			var wg sync.WaitGroup
			for j := range 2 {
				wg.Go(func() {
					ca := crashAt
					if j == 1 {
						ca = 0
					}
					_, _ = w.runOnce(id+"-"+strconv.Itoa(j), ca, mode, sc.StoreFaults, sc.Contend)
				})
			}
			wg.Wait()
		default:
			_, _ = w.runOnce(id, crashAt, mode, sc.StoreFaults, true)
		}
		w.clk.Advance(time.Duration(w.rng.Int64N(int64(sc.MaxGap))))
	}
	w.settle()
}

// settle stops arrivals (moves past every timestamp, visibility delay and the
// lag) and runs until no work remains.
func (w *world) settle() {
	sc := w.sc
	quiet := t0.Add(sc.ArrivalSpan + sc.MaxLate + 10*time.Second + 3*time.Minute)
	if w.clk.Now().Before(quiet) {
		w.clk.Set(quiet)
	}
	for i := 0; ; i++ {
		if i == 200 {
			w.t.Fatalf("%v: still work remaining after 200 quiet runs", sc)
		}
		// A lease left by a crashed run expires.
		w.clk.Advance(10 * time.Minute)
		s, err := w.runOnce("final-"+strconv.Itoa(i), 0, 0, 0, true)
		if err != nil {
			continue // transient faults of the simulator are still on
		}
		if !s.WorkRemaining && !s.LeaseHeld {
			return
		}
	}
}

// verify compares the bucket with the ground truth.
func (w *world) verify() *sentrysim.Report {
	w.t.Helper()
	truth := w.sim.GroundTruth()
	rep, err := sentrysim.Verify(context.Background(), w.store, testData, truth)
	if err != nil {
		w.t.Fatalf("%v: %v", w.sc, err)
	}
	if !rep.OK() {
		w.t.Errorf("seed %d: %v\n  bucket: %s", w.sc.Seed, w.sc, rep)
	}
	n := 0
	for _, ids := range truth {
		n += len(ids)
	}
	if n != w.sc.Backlog+w.sc.Arrivals && w.sc.Projects > 0 {
		w.t.Errorf("seed %d: ground truth has %d events, want %d", w.sc.Seed, n, w.sc.Backlog+w.sc.Arrivals)
	}
	return rep
}

func baseSeed(t *testing.T) int64 {
	t.Helper()
	if *flagSeed != 0 {
		return *flagSeed
	}
	return collecttest.BaseSeed(t)
}

// TestPropertyRandomised runs randomised scenarios (see scenario) and checks
// exactly-once delivery after each.
func TestPropertyRandomised(t *testing.T) {
	t.Parallel()
	n := 120
	if testing.Short() || raceDetector {
		n = 25
	}
	if *flagTrials > 0 {
		n = *flagTrials
	}
	seed := baseSeed(t)
	t.Logf("base seed %d (rerun: go test ./internal/events -run TestPropertyRandomised -seed=%d)", seed, seed)
	start := time.Now()
	var (
		mu                                  sync.Mutex
		runs, crashes, recovered, conflicts int
		held, events                        int
		requests, limited                   int64
	)
	collecttest.Trials(t, n, func(t *testing.T, i int) {
		sc := randomScenario(seed + int64(i))
		w := newWorld(t, sc)
		w.play()
		rep := w.verify()
		if t.Failed() {
			t.Fatalf("trial %d failed: rerun with -seed=%d -trials=1", i, sc.Seed)
		}
		mu.Lock()
		defer mu.Unlock()
		runs += w.runs
		crashes += w.crashes
		recovered += w.recovered
		conflicts += w.conflicts
		held += w.leaseHeld
		events += rep.Distinct()
		requests += w.requests
		limited += w.limited
	})
	t.Logf("%d trials, %d runs, %d crashes injected, %d objects recovered, %d checkpoint conflicts, %d lease-held runs, %d events checked, %d requests (%d answered 429), in %v",
		n, runs, crashes, recovered, conflicts, held, events, requests, limited, time.Since(start).Round(time.Millisecond))
}

// TestPropertyCrashAtEveryBoundary crashes a run at its k-th storage
// operation, for every k and every way of crashing (error before the
// operation, error after it landed, context cancelled), then reruns to
// completion and checks exactly-once delivery.
func TestPropertyCrashAtEveryBoundary(t *testing.T) {
	t.Parallel()
	sc := scenario{
		Projects: 3, Backlog: 700, Arrivals: 300, ArrivalSpan: 20 * time.Minute,
		LateFrac: 0.2, MaxLate: 10 * time.Minute, MaxPages: 3, Rounds: 2, MaxGap: 5 * time.Minute,
		Store: "dir",
	}
	seed := baseSeed(t)
	t.Logf("base seed %d", seed)
	start := time.Now()
	trials := 0
	var recovered atomic.Int64
	for crashRun := range 2 {
		// Count the operations of the crashing run on a clean world.
		sc.Seed = seed + int64(crashRun)
		probe := newWorld(t, sc)
		var ops int64
		for r := 0; r <= crashRun; r++ {
			in := &sinktest.Faulty{Store: probe.store}
			cl := probe.client()
			if _, err := probe.stream("probe", cl, in, true).Run(logging.WithLogger(t.Context(), slog.New(slog.DiscardHandler)), 7*time.Minute); err != nil {
				t.Fatal(err)
			}
			ops = in.Ops()
			probe.clk.Advance(5 * time.Minute)
		}
		cases := crashCases(ops+1, 4)
		trials += len(cases)
		collecttest.Trials(t, len(cases), func(t *testing.T, i int) {
			k, mode := cases[i].k, cases[i].mode
			w := newWorld(t, sc)
			for r := 0; r < crashRun; r++ {
				if _, err := w.runOnce("pre", 0, 0, 0, true); err != nil {
					t.Fatal(err)
				}
				w.clk.Advance(5 * time.Minute)
			}
			_, err := w.runOnce("crash", k, mode, 0, true)
			// The last operation releases the lease: a failure there is
			// logged, not returned (the lease expires).
			if err == nil && w.crashes > 0 && k < ops {
				t.Errorf("run %d crashed at operation %d/%d (mode %d): no error reported", crashRun, k, ops, mode)
			}
			// The lease of the crashed run is left to expire.
			w.settle()
			if rep := w.verify(); !rep.OK() {
				t.Fatalf("crash in run %d at operation %d (mode %d)", crashRun, k, mode)
			}
			recovered.Add(int64(w.recovered))
		})
	}
	t.Logf("%d crash trials (%d objects written but not committed were recovered) in %v", trials, recovered.Load(), time.Since(start).Round(time.Millisecond))
}

// TestPropertyObjectNames checks that data object names follow the layout and
// that every line of an object belongs to the object's project.
func TestPropertyObjectNames(t *testing.T) {
	t.Parallel()
	sc := randomScenario(42)
	sc.Store, sc.CrashProb, sc.Concurrent, sc.Contend = "dir", 0.5, false, false
	w := newWorld(t, sc)
	w.play()
	w.verify()
	names, err := w.store.List(t.Context(), testData)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		rest := strings.TrimPrefix(name, testData)
		parts := strings.Split(rest, "/")
		if len(parts) != 5 || !strings.HasSuffix(parts[4], ".ndjson") || !strings.HasPrefix(parts[4], "acme-") {
			t.Errorf("object name %q does not follow <prefix>YYYY/MM/DD/HH/<org>-<project>-<epoch>-<seq>.ndjson", name)
			continue
		}
		fields := strings.Split(strings.TrimSuffix(parts[4], ".ndjson"), "-")
		data, _, err := w.store.Read(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"projectID":"` + fields[1] + `"`; !strings.Contains(string(data), want) || strings.Count(string(data), want) != strings.Count(string(data), "\n") {
			t.Errorf("object %s holds events of another project", name)
		}
	}
}

// crashCase is a crash at the k-th storage operation, in one of the three
// ways sinktest.Faulty crashes (mode).
type crashCase struct {
	k    int64
	mode int
}

// crashCases crashes at every operation up to last in every way, or, in
// short and race runs, at every step-th.
func crashCases(last, step int64) []crashCase {
	if !testing.Short() && !raceDetector {
		step = 1
	}
	var cases []crashCase
	for k := int64(1); k <= last; k += step {
		for mode := range 3 {
			cases = append(cases, crashCase{k, mode})
		}
	}
	return cases
}
