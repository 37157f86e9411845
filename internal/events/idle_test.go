package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// idleWorld is an organisation in the simulator (real client over HTTP,
// stats_v2 with received-time buckets and outcome delay) collected with idle
// detection on.
type idleWorld struct {
	t        *testing.T
	clk      *clock.Fake
	sim      *sentrysim.Server
	cl       *sentry.Client
	store    *sink.Memory
	projects []sentrysim.Project
	stats    StatsAPI // nil: the client
}

func newIdleWorld(t *testing.T, projects int) *idleWorld {
	t.Helper()
	clk := clock.NewFake(t0)
	sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 7, RateLimits: sentrysim.RateLimitConfig{Disabled: true}})
	w := &idleWorld{t: t, clk: clk, sim: sim, store: sink.NewMemory()}
	for i := range projects {
		w.projects = append(w.projects, sim.AddProject(fmt.Sprintf("p%04d", i), fmt.Sprintf("P%d", i)))
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cl, err := sentry.New(sentry.Options{BaseURL: srv.URL, Token: "tok", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	w.cl = cl
	return w
}

// tick runs the collector once and returns its summary and the requests it
// sent per endpoint group.
func (w *idleWorld) tick() (engine.Summary, map[string]int64) {
	w.t.Helper()
	var stats StatsAPI = w.cl
	if w.stats != nil {
		stats = w.stats
	}
	c, err := New(Options{
		Org: "acme", DataPrefix: testData, StatePrefix: testState,
		MaxProjects: 5000, MaxPagesPerProject: -1,
		Lag: 2 * time.Minute, Overlap: 30 * time.Minute, Stats: stats,
	}, w.cl, engine.Env{Data: w.store, State: w.store, Clock: w.clk, Counters: w.cl.RequestCounts})
	if err != nil {
		w.t.Fatal(err)
	}
	before := w.sim.RequestStats().ByGroup
	s, err := c.Run(logging.WithLogger(w.t.Context(), slog.New(slog.DiscardHandler)), 7*time.Minute)
	if err != nil {
		w.t.Fatalf("Run: %v", err)
	}
	after := w.sim.RequestStats().ByGroup
	d := map[string]int64{}
	for g, n := range after {
		d[g] = n - before[g]
	}
	return s, d
}

// check compares the bucket with the simulator's ground truth.
func (w *idleWorld) check() {
	w.t.Helper()
	rep, err := sentrysim.Verify(w.t.Context(), w.store, testData, w.sim.GroundTruth())
	if err != nil {
		w.t.Fatal(err)
	}
	if !rep.OK() {
		w.t.Errorf("bucket: %s", rep)
	}
}

// TestIdleTickCostsConstantRequests: an idle organisation of 1,000 projects
// costs the project listing (10 pages of 100, in the default rate-limit
// group) plus one stats_v2 request (in stats_v2's own group) per tick, and no
// project events request; late events with old timestamps are
// counted by received time, so exactly their projects are read, and nothing
// is lost or duplicated.
func TestIdleTickCostsConstantRequests(t *testing.T) {
	t.Parallel()
	n := 1000
	if testing.Short() {
		n = 200
	}
	w := newIdleWorld(t, n)
	for i := 0; i < n; i += 97 {
		w.sim.AddEvent(w.projects[i].ID, sentrysim.EventSpec{Timestamp: t0.Add(-time.Hour)})
	}

	// First run: no watermark yet, every project is read.
	s, req := w.tick()
	if s.Projects.Skipped != 0 || req[sentrysim.GroupEvents] != int64(n) {
		t.Fatalf("first run: skipped %d, events requests %d, want 0 and %d", s.Projects.Skipped, req[sentrysim.GroupEvents], n)
	}

	// Second run: the projects with events in the hour of their watermark
	// are read once more (no stats count was recorded for them yet).
	w.clk.Advance(5 * time.Minute)
	s, req = w.tick()
	t.Logf("settling tick: requests %v, skipped %d", req, s.Projects.Skipped)

	listPages := int64((n + 99) / 100)
	for i := range 3 {
		w.clk.Advance(5 * time.Minute)
		s, req = w.tick()
		t.Logf("idle tick %d: requests %v, skipped %d", i, req, s.Projects.Skipped)
		want := map[string]int64{sentrysim.GroupEvents: 0, sentrysim.GroupDefault: listPages, sentrysim.GroupStats: 1}
		if diff := cmp.Diff(want, req); diff != "" || s.Projects.Skipped != n {
			t.Fatalf("idle tick %d: skipped %d, want %d; requests by group (-want +got):\n%s", i, s.Projects.Skipped, n, diff)
		}
		if s.WorkRemaining || s.Projects.StatsFallback {
			t.Fatalf("idle tick %d: work remaining %v, stats fallback %v", i, s.WorkRemaining, s.Projects.StatsFallback)
		}
	}

	// Late arrivals: events stamped 20 minutes ago (before the projects'
	// watermarks, within the overlap) are received now in three projects.
	late := []int{3, n / 2, n - 1}
	now := w.clk.Now()
	for _, i := range late {
		for k := range 3 {
			w.sim.AddEvent(w.projects[i].ID, sentrysim.EventSpec{Timestamp: now.Add(-20*time.Minute - time.Duration(k)*time.Second), VisibleAt: now})
		}
	}
	w.clk.Advance(5 * time.Minute)
	s, req = w.tick()
	if req[sentrysim.GroupEvents] != int64(len(late)) || s.Projects.Skipped != n-len(late) || s.Records != 3*len(late) {
		t.Fatalf("late arrivals: events requests %d, skipped %d, events written %d; want %d, %d, %d",
			req[sentrysim.GroupEvents], s.Projects.Skipped, s.Records, len(late), n-len(late), 3*len(late))
	}
	w.check()
}

// failingStats is a StatsAPI that always fails.
type failingStats struct{}

func (failingStats) OrgStats(context.Context, sentry.StatsQuery) (*sentry.Stats, error) {
	return nil, errors.New("stats_v2: 500 Internal Error")
}

// blindStats answers every query with no groups (stats missing, as in
// getsentry/sentry#119619).
type blindStats struct{}

func (blindStats) OrgStats(_ context.Context, q sentry.StatsQuery) (*sentry.Stats, error) {
	return &sentry.Stats{Start: q.Start, End: q.End}, nil
}

// TestIdleStatsFailureFallsBackToFullReads: when stats_v2 fails every project
// is read, and the run says so.
func TestIdleStatsFailureFallsBackToFullReads(t *testing.T) {
	t.Parallel()
	const n = 30
	w := newIdleWorld(t, n)
	w.tick()
	w.clk.Advance(5 * time.Minute)
	w.sim.AddEvent(w.projects[5].ID, sentrysim.EventSpec{Timestamp: w.clk.Now().Add(-3 * time.Minute)})
	w.clk.Advance(5 * time.Minute)
	w.stats = failingStats{}
	s, req := w.tick()
	if !s.Projects.StatsFallback || s.Projects.Skipped != 0 || req[sentrysim.GroupEvents] != n || s.Records != 1 {
		t.Fatalf("stats failing: fallback %v, skipped %d, events requests %d, written %d; want true, 0, %d, 1",
			s.Projects.StatsFallback, s.Projects.Skipped, req[sentrysim.GroupEvents], n, s.Records)
	}
	w.check()
}

// TestIdleFullSweepBoundsSkipping: stats that never show anything (missing
// data) delay a project's read by at most the sweep interval (+ one tick),
// and lose nothing: the skipped project kept its watermark.
func TestIdleFullSweepBoundsSkipping(t *testing.T) {
	t.Parallel()
	const n = 20
	w := newIdleWorld(t, n)
	w.tick()
	w.stats = blindStats{}
	start := w.clk.Now()
	w.sim.AddEvent(w.projects[7].ID, sentrysim.EventSpec{Timestamp: start.Add(time.Minute)})
	w.sim.AddEvent(w.projects[8].ID, sentrysim.EventSpec{Timestamp: start.Add(10 * time.Minute)})
	var sweptAt time.Duration
	written := 0
	for range 20 {
		w.clk.Advance(5 * time.Minute)
		s, req := w.tick()
		written += s.Records
		if req[sentrysim.GroupEvents] == 0 {
			continue
		}
		if req[sentrysim.GroupEvents] != n {
			t.Fatalf("sweep read %d projects, want all %d at once", req[sentrysim.GroupEvents], n)
		}
		sweptAt = w.clk.Now().Sub(start)
		break
	}
	if sweptAt == 0 || sweptAt > DefaultFullSweepInterval+5*time.Minute {
		t.Fatalf("full sweep after %s, want within %s", sweptAt, DefaultFullSweepInterval+5*time.Minute)
	}
	if written != 2 {
		t.Fatalf("sweep wrote %d events, want 2", written)
	}
	w.check()
}

// TestIdleDetectionSeesEveryProjectOfAUserToken: a user token is a member of
// only some projects' teams, and stats_v2 grouped by project covers only
// those unless asked for project=-1. The stats request asks for every
// accessible project, so an event received in a project the user is not a
// member of is read in the next tick, not an hour later by the full sweep.
func TestIdleDetectionSeesEveryProjectOfAUserToken(t *testing.T) {
	t.Parallel()
	const n = 10
	w := newIdleWorld(t, n)
	var member []string
	for _, p := range w.projects[:n/2] {
		member = append(member, p.ID)
	}
	w.sim.SetToken("tok", sentrysim.TokenInfo{Kind: sentrysim.TokenUser, Projects: member})
	w.tick()
	w.clk.Advance(5 * time.Minute)
	w.tick() // settled: every project idle from here on
	outsider := w.projects[n-1]
	w.sim.AddEvent(outsider.ID, sentrysim.EventSpec{Timestamp: w.clk.Now().Add(-time.Minute)})
	w.clk.Advance(5 * time.Minute)
	s, req := w.tick()
	if s.Records != 1 || req[sentrysim.GroupEvents] != 1 || s.Projects.Skipped != n-1 || s.Projects.StatsFallback {
		t.Fatalf("event in a project outside the user's teams: written %d, events requests %d, skipped %d, fallback %v; want 1, 1, %d, false",
			s.Records, req[sentrysim.GroupEvents], s.Projects.Skipped, s.Projects.StatsFallback, n-1)
	}
	w.check()
}
