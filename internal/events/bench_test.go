package events

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// pipeline is the whole in-process pipeline: simulator (rate limits off)
// over httptest, the real client, the collector and a sink.Dir.
type pipeline struct {
	clk   *clock.Fake
	sim   *sentrysim.Server
	store *sink.Dir
	c     *Stream
}

func newPipeline(tb testing.TB, projects, backlog int) *pipeline {
	tb.Helper()
	clk := clock.NewFake(t0)
	sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 1, RateLimits: sentrysim.RateLimitConfig{Disabled: true}})
	sim.Populate(sentrysim.Scenario{Projects: projects, Backlog: backlog, BacklogSpan: 20 * time.Hour})
	clk.Advance(5 * time.Minute) // every backlog event visible and older than now − Lag
	srv := httptest.NewServer(sim)
	tb.Cleanup(srv.Close)
	cl, err := sentry.New(sentry.Options{BaseURL: srv.URL, Token: "tok", Clock: clk})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := sink.NewDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := New(benchOptions(), cl, engine.Env{Data: store, State: store, Clock: clk, Counters: cl.RequestCounts})
	if err != nil {
		tb.Fatal(err)
	}
	return &pipeline{clk: clk, sim: sim, store: store, c: c}
}

// benchOptions are the stream's options in the benchmarks: the defaults of
// the service, no page cap.
func benchOptions() Options {
	return Options{
		Org: "acme", DataPrefix: testData, StatePrefix: testState,
		MaxPagesPerProject: -1, Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
	}
}

// quiet is a context whose logs are discarded.
func quiet() context.Context {
	return logging.WithLogger(context.Background(), slog.New(slog.DiscardHandler))
}

// collectAll runs until no work remains and returns the events written.
func (p *pipeline) collectAll(tb testing.TB) int {
	tb.Helper()
	n := 0
	for {
		s, err := p.c.Run(quiet(), 24*time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		n += s.Records
		if !s.WorkRemaining {
			return n
		}
	}
}

// BenchmarkPipeline measures events per second through the whole in-process
// pipeline. One op is one event.
//
//	go test ./internal/events -run '^$' -bench Pipeline -benchtime 200000x -cpu 1,2
func BenchmarkPipeline(b *testing.B) {
	n := max(b.N, 1000)
	p := newPipeline(b, 4, n)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	got := p.collectAll(b)
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if got != n {
		b.Fatalf("collected %d events, want %d", got, n)
	}
	b.ReportMetric(float64(got)/el.Seconds(), "events/s")
	// Per core: events per second of CPU time used by the whole process
	// (simulator, HTTP, client, collector, sink).
	b.ReportMetric(float64(got)/cpu.Seconds(), "events/cpu-s")
}

// heapSampler records the peak of runtime.MemStats.HeapAlloc.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleHeap(every time.Duration) *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > h.peak.Load() {
				h.peak.Store(ms.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

func (h *heapSampler) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkBacklogMemory collects a large backlog and reports the peak heap
// of the collecting process. The simulator runs in a child process (this test
// binary re-executed as TestHelperSimServer), so the figure is the client +
// collector + sink alone: peak runtime.MemStats.HeapAlloc sampled every 5 ms
// (garbage included, GOGC default), and the peak heap in use right after a
// forced GC at the end of each run (live_MiB).
//
//	go test ./internal/events -run '^$' -bench BacklogMemory -benchtime 1x
func BenchmarkBacklogMemory(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if testing.Short() {
		sizes = []int{20_000}
	}
	for _, n := range sizes {
		b.Run("events_"+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				url := startSimProcess(b, 8, n)
				clk := clock.NewFake(t0.Add(5 * time.Minute))
				cl, err := sentry.New(sentry.Options{BaseURL: url, Token: "tok", Clock: clk})
				if err != nil {
					b.Fatal(err)
				}
				store, err := sink.NewDir(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				c, err := New(benchOptions(), cl, engine.Env{Data: store, State: store, Clock: clk, Counters: cl.RequestCounts})
				if err != nil {
					b.Fatal(err)
				}
				base := heapNow()
				h := sampleHeap(5 * time.Millisecond)
				start := time.Now()
				got, live := 0, uint64(0)
				for {
					s, err := c.Run(quiet(), 24*time.Hour)
					if err != nil {
						b.Fatal(err)
					}
					got += s.Records
					live = max(live, heapNow())
					if !s.WorkRemaining {
						break
					}
				}
				el := time.Since(start)
				peak := h.done()
				if got != n {
					b.Fatalf("collected %d events, want %d", got, n)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
				b.ReportMetric(float64(base)/(1<<20), "start_heap_MiB")
				b.ReportMetric(float64(live)/(1<<20), "live_MiB")
				b.ReportMetric(float64(got)/el.Seconds(), "events/s")
				if hwm, ok := peakRSS(); ok {
					b.ReportMetric(float64(hwm)/(1<<20), "peak_rss_MiB")
				}
			}
		})
	}
}

// peakRSS returns this process's peak resident set size (VmHWM) in bytes,
// on Linux. It covers the whole benchmark process since it started, so it is
// an upper bound for the collection alone.
func peakRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// startSimProcess starts a simulator with a backlog in a child process and
// returns its URL.
func startSimProcess(tb testing.TB, projects, backlog int) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSimServer$", "-test.v")
	cmd.Env = append(os.Environ(), "COLLECTOR_SIM_SERVER="+strconv.Itoa(projects)+","+strconv.Itoa(backlog))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "SIM_URL="); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return u
		}
	}
	tb.Fatal("simulator process exited without a URL")
	return ""
}

// TestHelperSimServer is the simulator process of BenchmarkBacklogMemory; it
// does nothing in a normal test run.
func TestHelperSimServer(t *testing.T) {
	spec := os.Getenv("COLLECTOR_SIM_SERVER")
	if spec == "" {
		t.Skip("helper process for BenchmarkBacklogMemory")
	}
	projects, backlog, _ := strings.Cut(spec, ",")
	np, _ := strconv.Atoi(projects)
	nb, _ := strconv.Atoi(backlog)
	clk := clock.NewFake(t0)
	run, err := sentrysim.Start(sentrysim.Config{Clock: clk, Seed: 1, RateLimits: sentrysim.RateLimitConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	run.Populate(sentrysim.Scenario{Projects: np, Backlog: nb, BacklogSpan: 20 * time.Hour})
	clk.Advance(5 * time.Minute)
	run.VisibleCount()
	fmt.Printf("SIM_URL=%s\n", run.URL())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
}
