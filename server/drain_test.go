package main

import (
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
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
	api, err := sentry.New(sentry.Options{BaseURL: sim.URL(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	newAdapter := func() *collectorAdapter {
		return &collectorAdapter{
			opts:  collector.Options{Org: "acme", DataPrefix: "sentry/events/", StatePrefix: "sentry/state/", Budget: time.Minute},
			base:  api,
			store: store,
		}
	}
	var _ Drainer = newAdapter()
	a := newAdapter()
	a.Drain()
	a.Drain() // idempotent
	res, err := a.Run(t.Context())
	if err != nil || !res.WorkRemaining {
		t.Fatalf("run after Drain: %+v, %v; want work remaining and no error", res, err)
	}
	if names, _ := store.List(t.Context(), "sentry/events/"); len(names) != 0 {
		t.Fatalf("run after Drain wrote %v", names)
	}
	res, err = newAdapter().Run(t.Context())
	if err != nil || res.WorkRemaining {
		t.Fatalf("run without Drain: %+v, %v", res, err)
	}
	if names, _ := store.List(t.Context(), "sentry/events/"); len(names) != 1 {
		t.Fatalf("run without Drain wrote %v, want one object", names)
	}
}

// TestCollectorOptions_zeroMeansZero: COLLECT_LAG=0 and COLLECT_OVERLAP=0
// reach the collector as a real zero, not as "use the default".
func TestCollectorOptions_zeroMeansZero(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                 string
		lag, overlap         time.Duration
		wantLag, wantOverlap time.Duration
	}{
		{name: "zero", wantLag: collector.ZeroDuration, wantOverlap: collector.ZeroDuration},
		{name: "set", lag: time.Minute, overlap: time.Hour, wantLag: time.Minute, wantOverlap: time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &config.Config{SentryOrg: "acme", GCSPrefix: "d/", StateKey: "s/", CollectLag: tc.lag, CollectOverlap: tc.overlap}
			o := collectorOptions(cfg, nil, nil)
			if o.Lag != tc.wantLag || o.Overlap != tc.wantOverlap {
				t.Errorf("lag %v overlap %v, want %v and %v", o.Lag, o.Overlap, tc.wantLag, tc.wantOverlap)
			}
		})
	}
}
