package events

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// extraInt returns the run summary's source-specific integer key (0: absent).
func extraInt(s engine.Summary, key string) int64 {
	for _, a := range s.Extra {
		if a.Key == key {
			return a.Value.Int64()
		}
	}
	return 0
}

// TestWindowsNeverReachBeyondRetention: after a downtime longer than the
// organisation's retention, the next window would lie entirely before what
// Sentry keeps, and Sentry answers it with a 500 on every run. The stream
// clips its windows to the configured retention (and says so in the run
// summary), closes a window in progress that has expired, and collects
// everything Sentry still has, exactly once. A retention assumed longer than
// the real one fails the project with an error that names the fix.
func TestWindowsNeverReachBeyondRetention(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	cases := []struct {
		name         string
		simRetention time.Duration // Sentry's
		optRetention time.Duration // the collector's (0: default 90 days)
		firstBacklog int           // events in the first window
		maxPages     int
		wantClipped  bool
		wantErr      string
	}{
		{name: "clipped_to_a_30_day_retention", simRetention: 30 * day, optRetention: 30 * day, firstBacklog: 10, maxPages: -1, wantClipped: true},
		{name: "window_in_progress_expired", simRetention: 30 * day, optRetention: 30 * day, firstBacklog: 150, maxPages: 1, wantClipped: true},
		{name: "retention_assumed_too_long", simRetention: 30 * day, firstBacklog: 10, maxPages: -1, wantErr: "configure the shorter retention"},
		{name: "unlimited_retention_reads_every_window", simRetention: -1, optRetention: -1, firstBacklog: 10, maxPages: -1},
		{name: "default_retention_not_reached", simRetention: 0, firstBacklog: 10, maxPages: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := collecttest.New(t, 3, sentrysim.Config{Retention: tc.simRetention, RateLimits: sentrysim.RateLimitConfig{Disabled: true}}, "memory")
			p := w.Sim.AddProject("web", "Web")
			for i := range tc.firstBacklog {
				w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-time.Hour + time.Duration(i)*time.Second)})
			}
			opts := Options{
				Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
				MaxPagesPerProject: tc.maxPages, Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: day,
				Retention: tc.optRetention,
			}
			run := func() (engine.Summary, error) {
				cl := w.Client("tok")
				s, err := New(opts, cl, w.Env("r", nil, cl))
				if err != nil {
					t.Fatal(err)
				}
				return s.Run(collecttest.Quiet(t.Context()), 7*time.Minute)
			}
			if _, err := run(); err != nil {
				t.Fatalf("first run: %v", err)
			}
			before := w.Lines(collecttest.DataPrefix)
			// Downtime: events keep coming, some of which expire before
			// the collector is back.
			downtime := 40 * day
			for _, at := range []time.Duration{day, 15 * day, 35 * day, downtime - time.Hour} {
				for k := range 5 {
					w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(at + time.Duration(k)*time.Second)})
				}
			}
			w.Clock.Advance(downtime)
			clipped := false
			var err error
			for range 100 {
				var s engine.Summary
				s, err = run()
				clipped = clipped || extraInt(s, "retention_clipped_projects") == 1
				if err != nil || !s.WorkRemaining {
					break
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("run after the downtime: err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run after the downtime: %v", err)
			}
			if clipped != tc.wantClipped {
				t.Errorf("summary reports clipping: %v, want %v", clipped, tc.wantClipped)
			}
			rep, err := sentrysim.Verify(t.Context(), w.Store, collecttest.DataPrefix, w.Sim.GroundTruth())
			if err != nil {
				t.Fatal(err)
			}
			// Expired since written: the events of the first run, when
			// Sentry no longer has them.
			var wantUnknown []string
			if tc.simRetention > 0 && tc.simRetention < downtime {
				for _, l := range before {
					rec, err := ParseEvent(l)
					if err != nil {
						t.Fatal(err)
					}
					wantUnknown = append(wantUnknown, rec.ID)
				}
			}
			slices.Sort(wantUnknown)
			if len(rep.Lost) != 0 || len(rep.Duplicated) != 0 || len(rep.Problems) != 0 {
				t.Errorf("bucket: %s", rep)
			}
			if diff := cmp.Diff(wantUnknown, rep.Unknown, cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("events in the bucket that Sentry no longer has (-want +got):\n%s", diff)
			}
		})
	}
}
