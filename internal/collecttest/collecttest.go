// Package collecttest is the world the collector's tests run in: a
// simulated Sentry (internal/sentrysim) on a fake clock, served over HTTP on
// 127.0.0.1 and read through the real client, and a real object store that
// faults and crashes can be put in front of.
package collecttest

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// T0 is the fake clock's start in every world.
var T0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Prefixes of the streams' data and of the state in tests.
const (
	Org          = "acme"
	DataPrefix   = "sentry/events/"
	IssuesPrefix = "sentry/issues/"
	AuditPrefix  = "sentry/audit/"
	StatePrefix  = "sentry/state/"
)

// World is one simulated organisation and one bucket.
type World struct {
	T     testing.TB
	Clock *clock.Fake
	Sim   *sentrysim.Server
	URL   string
	Store sinktest.Store
	Rng   *rand.Rand
}

// New starts a world: the simulator configured by cfg (its clock and seed
// are set here) served over HTTP, and the named store ("dir", "gcs",
// "memory").
func New(tb testing.TB, seed int64, cfg sentrysim.Config, store string) *World {
	tb.Helper()
	clk := clock.NewFake(T0)
	cfg.Clock, cfg.Seed = clk, seed
	sim := sentrysim.New(cfg)
	srv := httptest.NewServer(sim)
	tb.Cleanup(srv.Close)
	return &World{
		T: tb, Clock: clk, Sim: sim, URL: srv.URL,
		Store: sinktest.New(tb, store),
		Rng:   rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
	}
}

// Client returns a new Sentry client with token (a new process: its own
// limiters).
func (w *World) Client(token string) *sentry.Client {
	w.T.Helper()
	c, err := sentry.New(sentry.Options{BaseURL: w.URL, Token: token, Clock: w.Clock, MaxAttempts: 8})
	if err != nil {
		w.T.Fatal(err)
	}
	return c
}

// Env is the engine environment of one run over st (nil: the world's
// store) with the given run id, counting cl's requests.
func (w *World) Env(runID string, st sinktest.Store, cl *sentry.Client) engine.Env {
	if st == nil {
		st = w.Store
	}
	e := engine.Env{Data: st, State: st, Clock: w.Clock, RunID: runID}
	if cl != nil {
		e.Counters = cl.RequestCounts
	}
	return e
}

// Faulty wraps the world's store for one run: a crash at storage operation
// crashAt (0: none) in the given mode (sinktest.CrashBefore, …) and random
// Cloud Storage-like faults with probability faultP per operation. The
// returned context is cancelled by a CrashCancel.
func (w *World) Faulty(ctx context.Context, crashAt int64, mode int, faultP float64) (*sinktest.Faulty, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	return &sinktest.Faulty{Store: w.Store, K: crashAt, Mode: mode, Cancel: cancel, FaultP: faultP, Seed: w.Rng.Uint64()}, ctx, cancel
}

// Lines returns every line of every object under prefix, failing the test
// for any object that is not .ndjson.
func (w *World) Lines(prefix string) [][]byte {
	w.T.Helper()
	names, err := w.Store.List(context.Background(), prefix)
	if err != nil {
		w.T.Fatal(err)
	}
	var out [][]byte
	for _, n := range names {
		if !strings.HasSuffix(n, ".ndjson") {
			w.T.Errorf("unexpected object %s under the data prefix", n)
			continue
		}
		data, _, err := w.Store.Read(context.Background(), n)
		if err != nil {
			w.T.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				out = append(out, line)
			}
		}
	}
	return out
}

// Verify compares the events under DataPrefix with the simulator's ground
// truth, failing the test when they differ.
func (w *World) Verify() *sentrysim.Report {
	w.T.Helper()
	rep, err := sentrysim.Verify(context.Background(), w.Store, DataPrefix, w.Sim.GroundTruth())
	if err != nil {
		w.T.Fatal(err)
	}
	if !rep.OK() {
		w.T.Errorf("bucket: %s", rep)
	}
	return rep
}

// Quiet returns ctx with a logger that discards everything.
func Quiet(ctx context.Context) context.Context {
	return logging.WithLogger(ctx, slog.New(slog.DiscardHandler))
}

// OnePage serves body as the only page of path (Link header: no next page)
// and returns a client for it: a Sentry answering with exactly these rows.
func OnePage(tb testing.TB, path, body string) *sentry.Client {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		u := "http://" + r.Host + r.URL.Path
		w.Header().Set("Link", `<`+u+`>; rel="previous"; results="false"; cursor="0:0:1", <`+u+`>; rel="next"; results="false"; cursor="0:100:0"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	tb.Cleanup(srv.Close)
	c, err := sentry.New(sentry.Options{BaseURL: srv.URL, Token: "tok", Clock: clock.NewFake(T0), MaxAttempts: 2})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Trials runs n trials as subtests, a few at a time: trials mostly wait for
// fsync and the fake clock's sleeps, so they overlap well even on 2 cores.
func Trials(t *testing.T, n int, trial func(t *testing.T, i int)) {
	t.Helper()
	const workers = 6
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				t.Run("trial_"+strconv.Itoa(i), func(t *testing.T) { trial(t, i) })
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// SeededTrials runs randomised trials as parallel subtests named by their
// seed: n of them (nShort with -short), from BaseSeed on.
func SeededTrials(t *testing.T, n, nShort int, trial func(t *testing.T, seed int64)) {
	t.Helper()
	base := BaseSeed(t)
	if testing.Short() {
		n = nShort
	}
	for i := range n {
		seed := base + int64(i)
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			t.Parallel()
			trial(t, seed)
		})
	}
}

// BaseSeed is the seed of randomised trials: COLLECTOR_SEED when it is set,
// else one from the clock, logged so that a failure can be run again.
func BaseSeed(tb testing.TB) int64 {
	tb.Helper()
	if s := os.Getenv("COLLECTOR_SEED"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	seed := time.Now().UnixNano() % 1_000_000_000
	tb.Logf("base seed %d (rerun with COLLECTOR_SEED=%d)", seed, seed)
	return seed
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("failed to find a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		tb.Fatalf("failed to release port %d: %v", port, err)
	}
	return port
}
