package issues

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// TestSweepCostFor10000Issues measures, against the simulator, what the
// quiet-change sweep costs an organisation with 10,000 open issues that each
// had an event in the last 14 days (the default sweep period), with a run
// every 10 minutes (the default schedule):
//
//   - requests: one page of 100 issues per request, so 100 requests a sweep,
//     one sweep an hour, on top of one request per run for the window;
//   - the latency of a quiet change (an issue resolved without an event):
//     at most the sweep interval plus one run period;
//   - the state: bytes per issue tracked.
//
// Run it alone with -v to see the figures:
//
//	go test -count=1 -run TestSweepCostFor10000Issues -v ./internal/issues/
//
// With -short or -race it measures 1,000 issues (the race detector makes the
// simulator ten times slower; the figures scale linearly).
func TestSweepCostFor10000Issues(t *testing.T) {
	t.Parallel()
	n := 10_000
	if testing.Short() || raceDetector {
		n = 1_000
	}
	const runEvery = 10 * time.Minute
	w := newWorld(t, 11, sentrysim.Config{RateLimits: sentrysim.RateLimitConfig{Disabled: true}})
	var projects []string
	for i := range 10 {
		projects = append(projects, w.Sim.AddProject(fmt.Sprintf("p%d", i), fmt.Sprintf("P%d", i)).ID)
	}
	// One event per issue, spread over the last 13.9 days: every issue is
	// in the sweep, and a few are in each window.
	span := 14*24*time.Hour - 2*time.Hour
	for i := range n {
		at := collecttest.T0.Add(-span / time.Duration(n) * time.Duration(i+1))
		w.Sim.AddEvent(projects[i%len(projects)], sentrysim.EventSpec{Timestamp: at, Message: fmt.Sprintf("E%d: boom", i)})
	}
	opts := options()
	requests := func() int64 { return w.Sim.RequestStats().ByGroup[sentrysim.GroupDefault] }
	type tick struct {
		requests     int64
		records      int
		sweepPages   int64
		sweepRecords int64
	}
	runOnce := func() tick {
		t.Helper()
		before := requests()
		s, err := w.runWith(opts, nil, "tok")
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if s.WorkRemaining {
			t.Fatalf("run left work remaining: %+v", s)
		}
		return tick{requests: requests() - before, records: s.Records, sweepPages: extra(s, "sweep_pages"), sweepRecords: extra(s, "sweep_records")}
	}

	first := runOnce()
	if first.records != n {
		t.Fatalf("first run wrote %d issues, want all %d (the first sweep writes every issue active in its period)", first.records, n)
	}
	// A steady hour: six runs, one of which sweeps.
	var hour tick
	var sweep tick
	for range 6 {
		w.Clock.Advance(runEvery)
		tk := runOnce()
		hour.requests += tk.requests
		hour.records += tk.records
		if tk.sweepPages > 0 {
			sweep = tk
		}
	}
	wantPages := int64((n + pageLimit - 1) / pageLimit)
	if sweep.sweepPages != wantPages || sweep.sweepRecords != 0 || hour.records != 0 {
		t.Errorf("steady hour: sweep pages %d, sweep records %d, records %d; want %d, 0, 0", sweep.sweepPages, sweep.sweepRecords, hour.records, wantPages)
	}
	if max := wantPages + 6; hour.requests > max {
		t.Errorf("steady hour: %d requests, want at most %d (one sweep, one window request per run)", hour.requests, max)
	}

	// A quiet change: an issue of ten days ago is resolved.
	var quiet string
	for _, is := range w.Sim.Issues() {
		if is.LastSeen.Before(collecttest.T0.Add(-10 * 24 * time.Hour)) {
			quiet = is.ID
			break
		}
	}
	w.Clock.Advance(time.Minute)
	w.Sim.SetIssueStatus(quiet, "resolved")
	changed := w.Clock.Now()
	var latency time.Duration
	for latency == 0 {
		if w.Clock.Now().Sub(changed) > 3*time.Hour {
			t.Fatal("the quiet change was not written within 3 hours")
		}
		w.Clock.Advance(runEvery)
		if tk := runOnce(); tk.records == 1 {
			latency = w.Clock.Now().Sub(changed)
		}
	}
	if latency > DefaultSweepInterval+runEvery {
		t.Errorf("quiet change written after %s, want within %s", latency, DefaultSweepInterval+runEvery)
	}

	data, _, err := w.Store.Read(context.Background(), collecttest.StatePrefix+"issues/state.json")
	if err != nil {
		t.Fatal(err)
	}
	tracked := len(w.readState().Marks)
	perIssue := float64(len(data)) / float64(tracked)
	if tracked != n || perIssue > 40 {
		t.Errorf("state: %d issues tracked in %d bytes (%.1f per issue); want %d, at most 40 per issue", tracked, len(data), perIssue, n)
	}
	rowBytes := 0
	for _, l := range w.Lines(collecttest.IssuesPrefix) {
		rowBytes += len(l) + 1
	}
	t.Logf("%d open issues: first run %d requests; steady hour %d requests (a sweep of %d pages, %d records); "+
		"quiet change written after %s; state %d bytes, %.1f bytes per issue; %.0f bytes per record",
		n, first.requests, hour.requests, sweep.sweepPages, hour.records, latency, len(data), perIssue, float64(rowBytes)/float64(n+1))
}

// extra returns the run summary's source-specific integer key (0: absent).
func extra(s engine.Summary, key string) int64 {
	for _, a := range s.Extra {
		if a.Key == key {
			return a.Value.Int64()
		}
	}
	return 0
}
