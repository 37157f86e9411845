package main

import (
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// TestCollectorAdapter_drainStopsRunsSoftly: after Drain (SIGTERM) a run
// starts no page request, commits and reports work remaining (the server
// then publishes a continuation instead of being cancelled mid-upload).
func TestCollectorAdapter_drainStopsRunsSoftly(t *testing.T) {
	t.Parallel()
	sim, err := sentrysim.Start(sentrysim.Config{Org: "acme", Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	p := sim.AddProject("web", "Web")
	now := time.Now().UTC()
	for i := range 3 {
		sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: now.Add(-time.Duration(10+i) * time.Minute), Message: "boom"})
	}
	store, err := sink.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	newAdapter := func() *app { return newTestApp(t, sim.URL(), store, nil) }
	a := newAdapter()
	a.Drain()
	a.Drain() // idempotent
	res, err := a.RunStreams(t.Context(), "")
	if err != nil || !res.WorkRemaining {
		t.Fatalf("run after Drain: %+v, %v; want work remaining and no error", res, err)
	}
	if names, _ := store.List(t.Context(), "sentry/events/"); len(names) != 0 {
		t.Fatalf("run after Drain wrote %v", names)
	}
	res, err = newAdapter().RunStreams(t.Context(), "")
	if err != nil || res.WorkRemaining {
		t.Fatalf("run without Drain: %+v, %v", res, err)
	}
	if names, _ := store.List(t.Context(), "sentry/events/"); len(names) != 1 {
		t.Fatalf("run without Drain wrote %v, want one object", names)
	}
}

// TestApp_zeroMeansZero: COLLECT_LAG=0 and COLLECT_OVERLAP=0 reach the
// streams as a real zero, not as "use the default".
func TestApp_zeroMeansZero(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		lag, overlap     string
		wantLag, wantOvl time.Duration
	}{
		{name: "zero", lag: "0s", overlap: "0s", wantLag: 0, wantOvl: 0},
		{name: "set", lag: "1m", overlap: "1h", wantLag: time.Minute, wantOvl: time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestApp(t, "http://127.0.0.1:1", sink.NewMemory(), map[string]string{"COLLECT_LAG": tc.lag, "COLLECT_OVERLAP": tc.overlap})
			o := a.eventsOptions(a.main.base)
			if o.Lag != tc.wantLag || o.Overlap != tc.wantOvl {
				t.Errorf("lag %v overlap %v, want %v and %v", o.Lag, o.Overlap, tc.wantLag, tc.wantOvl)
			}
		})
	}
}
