package events

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// TestBusyProjectCannotStarveOthers: at Sentry's real limits (60 requests per
// 60 s, one in flight), one project with a backlog far larger than a run
// budget and twenty small projects. Turns are round-robin (≤ 10 pages each),
// so every small project is caught up within the first round, after at most
// one turn of the busy project, and the busy project uses the rest of the
// budget.
func TestBusyProjectCannotStarveOthers(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 3})
	busy := sim.AddProject("busy", "Busy")
	for i := range 30_000 {
		sim.AddEvent(busy.ID, sentrysim.EventSpec{Timestamp: t0.Add(-10*time.Hour + time.Duration(i)*time.Second)})
	}
	var small []sentrysim.Project
	for i := range 20 {
		p := sim.AddProject(fmt.Sprintf("small-%02d", i), "Small")
		small = append(small, p)
		for k := range 5 {
			sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: t0.Add(-time.Duration(30+k) * time.Minute)})
		}
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cl, err := sentry.New(sentry.Options{BaseURL: srv.URL, Token: "tok", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	store := sink.NewMemory()
	busyPagesWhenSmallDone := -1
	caughtUp := map[string]bool{}
	busyPages := 0
	c, err := New(Options{
		Org: "acme", DataPrefix: testData, StatePrefix: testState,
		MaxPagesPerProject: -1, Lag: 2 * time.Minute, Overlap: 30 * time.Minute,
		Progress: func(e ProgressEvent) {
			if e.ProjectID == busy.ID {
				busyPages = e.Pages
				return
			}
			if e.CaughtUp {
				caughtUp[e.ProjectID] = true
				if len(caughtUp) == len(small) && busyPagesWhenSmallDone < 0 {
					busyPagesWhenSmallDone = busyPages
				}
			}
		},
	}, cl, engine.Env{Data: store, State: store, Clock: clk, Counters: cl.RequestCounts})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Run(logging.WithLogger(t.Context(), slog.New(slog.DiscardHandler)), 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run: %d pages, %d events, %d requests, %d answered 429, %s; busy project: %d pages, %d before every small project was caught up",
		s.Pages, s.Records, s.Requests, s.RateLimited, s.Duration, busyPages, busyPagesWhenSmallDone)
	if len(caughtUp) != len(small) {
		t.Fatalf("%d of %d small projects caught up", len(caughtUp), len(small))
	}
	if busyPagesWhenSmallDone < 0 || busyPagesWhenSmallDone > engine.MaxPagesPerObject {
		t.Errorf("the busy project read %d pages before the small ones were served, want ≤ %d (one turn)", busyPagesWhenSmallDone, engine.MaxPagesPerObject)
	}
	if !s.WorkRemaining || busyPages < 100 {
		t.Errorf("busy project read %d pages (work remaining %v): want it to use the rest of the budget", busyPages, s.WorkRemaining)
	}
	if s.RateLimited != 0 {
		t.Errorf("%d requests answered 429", s.RateLimited)
	}
}
