package collector

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

func TestCreateBackfillValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     BackfillSpec
		wantErr  string
		projects int
	}{
		{name: "start_after_end", spec: BackfillSpec{Start: t0.Add(-time.Hour), End: t0.Add(-2 * time.Hour)}, wantErr: "must be before end"},
		{name: "start_equals_end", spec: BackfillSpec{Start: t0.Add(-time.Hour), End: t0.Add(-time.Hour)}, wantErr: "must be before end"},
		{name: "missing_start", spec: BackfillSpec{End: t0}, wantErr: "start and end are required"},
		{name: "beyond_retention", spec: BackfillSpec{Start: t0.Add(-91 * 24 * time.Hour), End: t0}, wantErr: "90-day retention"},
		{name: "end_in_future", spec: BackfillSpec{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}, wantErr: "in the future"},
		{name: "unknown_projects", spec: BackfillSpec{Start: t0.Add(-time.Hour), End: t0, Projects: []string{"1", "nope", "42"}}, wantErr: "unknown projects nope, 42"},
		{name: "unknown_stream", spec: BackfillSpec{Start: t0.Add(-time.Hour), End: t0, Streams: []string{"audit"}}, wantErr: `stream "audit"`},
		{name: "all_projects", spec: BackfillSpec{Start: t0.Add(-48 * time.Hour), End: t0}, projects: 3},
		{name: "by_id_and_slug", spec: BackfillSpec{Start: t0.Add(-48 * time.Hour), End: t0, Projects: []string{"1", "p2", "p1"}}, projects: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1", "2", "3")
			c := e.collector(nil, nil)
			job, err := c.CreateBackfill(t.Context(), tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBackfillInvalid) {
					t.Fatalf("err = %v, want %q (ErrBackfillInvalid)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(job.Projects) != tc.projects || job.Status != BackfillPending {
				t.Fatalf("job = %+v", job)
			}
			// Stream never ran: everything after now − InitialLookback is
			// left to it.
			if p := job.Projects[0]; !p.End.Equal(t0.Add(-24*time.Hour)) || p.ClippedFrom.IsZero() || p.WindowsTotal != 4 {
				t.Fatalf("project = %+v", p)
			}
			got, err := c.GetBackfill(t.Context(), job.ID)
			if err != nil || got.ID != job.ID {
				t.Fatalf("GetBackfill = %+v, %v", got, err)
			}
		})
	}
}

func TestGetBackfillUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	for _, id := range []string{"abc123", "../x", ""} {
		if _, err := e.collector(nil, nil).GetBackfill(t.Context(), id); !errors.Is(err, ErrBackfillNotFound) {
			t.Errorf("GetBackfill(%q) = %v, want ErrBackfillNotFound", id, err)
		}
	}
}

// backfillWorld is a simulator world where the stream has collected its
// first windows and older events exist only in Sentry.
func backfillWorld(t testing.TB, seed int64) (*world, int) {
	t.Helper()
	w := newWorld(t, scenario{Seed: seed, Store: "dir", ArrivalSpan: time.Minute, MaxGap: time.Minute})
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	old := 0
	for i := range 2 {
		p := w.sim.AddProject("proj"+string(rune('a'+i)), "Project")
		add := func(n int, from, to time.Time) {
			for range n {
				ts := from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)))))
				w.sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: ts})
			}
		}
		add(150, t0.Add(-70*time.Hour), t0.Add(-25*time.Hour)) // only via backfill
		add(40, t0.Add(-26*time.Hour), t0.Add(-23*time.Hour))  // straddles the first window's start
		add(120, t0.Add(-20*time.Hour), t0.Add(-time.Hour))    // collected by the stream
		old += 150
	}
	return w, old
}

func (w *world) backfillCollector(runID string, store Objects) *Collector {
	w.t.Helper()
	c, err := New(w.options(runID), w.client(), store, store)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// runBackfill runs the job to completion.
func (w *world) runBackfill(id string) BackfillSummary {
	w.t.Helper()
	var total BackfillSummary
	for i := 0; ; i++ {
		if i == 100 {
			w.t.Fatal("backfill still not done after 100 runs")
		}
		s, err := w.backfillCollector("bf", w.store).RunBackfill(context.Background(), id)
		if err != nil {
			w.t.Fatalf("RunBackfill: %v", err)
		}
		total.EventsWritten += s.EventsWritten
		total.DuplicatesSkipped += s.DuplicatesSkipped
		total.Job = s.Job
		if !s.WorkRemaining {
			return total
		}
		if s.LeaseHeld {
			w.clk.Advance(10 * time.Minute)
		}
	}
}

func TestBackfillAgainstSimulator(t *testing.T) {
	t.Parallel()
	w, old := backfillWorld(t, 11)
	w.settle() // the stream collects [now − 24h, now − lag)
	before, err := checkBucket(t.Context(), w.store, testData, map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	collected := len(before.counts)
	now := w.clk.Now()
	c := w.backfillCollector("create", w.store)
	job, err := c.CreateBackfill(t.Context(), BackfillSpec{Start: now.Add(-80 * time.Hour), End: now, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range job.Projects {
		if p.ClippedFrom.IsZero() {
			t.Errorf("project %s not clipped at the stream's watermark: %+v", p.ID, p)
		}
	}
	sum := w.runBackfill(job.ID)
	rep := w.verify() // every visible event exactly once
	if got := sum.EventsWritten; got != len(rep.counts)-collected {
		t.Errorf("backfill wrote %d events, want the %d missing ones", got, len(rep.counts)-collected)
	}
	if sum.EventsWritten < old {
		t.Errorf("backfill wrote %d events, want at least the %d older than the stream", sum.EventsWritten, old)
	}
	if sum.Job.Status != BackfillDone {
		t.Errorf("status = %s", sum.Job.Status)
	}
	if wd, wt, ev, _ := sum.Job.Totals(); wd != wt || ev != sum.EventsWritten {
		t.Errorf("totals: windows %d/%d events %d", wd, wt, ev)
	}

	// The same backfill again writes nothing.
	job2, err := c.CreateBackfill(t.Context(), BackfillSpec{Start: now.Add(-80 * time.Hour), End: now})
	if err != nil {
		t.Fatal(err)
	}
	sum2 := w.runBackfill(job2.ID)
	if sum2.EventsWritten != 0 || sum2.DuplicatesSkipped == 0 {
		t.Errorf("second backfill: wrote %d, skipped %d; want 0 written", sum2.EventsWritten, sum2.DuplicatesSkipped)
	}
	w.verify()
	// The stream goes on without duplicates.
	w.clk.Advance(time.Hour)
	w.settle()
	w.verify()
}

// listingStore adds List to a crashing or counting store.
type listingStore struct {
	Objects
	l lister
}

func (s listingStore) List(ctx context.Context, prefix string) ([]string, error) {
	return s.l.List(ctx, prefix)
}

// TestBackfillCrashAtEveryBoundary crashes RunBackfill at its k-th storage
// operation, in each way, then finishes the job and checks exactly-once.
func TestBackfillCrashAtEveryBoundary(t *testing.T) {
	t.Parallel()
	prepare := func(t *testing.T) (*world, string) {
		w, _ := backfillWorld(t, 5)
		w.settle()
		now := w.clk.Now()
		job, err := w.backfillCollector("create", w.store).CreateBackfill(t.Context(), BackfillSpec{Start: now.Add(-80 * time.Hour), End: now})
		if err != nil {
			t.Fatal(err)
		}
		return w, job.ID
	}
	probe, id := prepare(t)
	cs := &countingStore{Objects: probe.store}
	if _, err := probe.backfillCollector("probe", listingStore{cs, probe.store}).RunBackfill(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	ops := cs.n.Load()
	// Every second boundary keeps the package's test time small; -short
	// samples fewer.
	step := int64(2)
	if testing.Short() {
		step = 7
	}
	var cases [][2]int64
	for k := int64(1); k <= ops+1; k += step {
		for mode := range int64(3) {
			cases = append(cases, [2]int64{k, mode})
		}
	}
	var crashed atomic.Int64
	parallelTrials(t, len(cases), func(t *testing.T, i int) {
		k, mode := cases[i][0], int(cases[i][1])
		w, id := prepare(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		in := &injector{inner: w.store, k: k, mode: mode, cancel: cancel, rng: rand.New(rand.NewPCG(1, uint64(k)))}
		_, _ = w.backfillCollector("crash", listingStore{in, w.store}).RunBackfill(ctx, id)
		if in.fired.Load() {
			crashed.Add(1)
		}
		w.clk.Advance(10 * time.Minute) // the crashed run's lease expires
		w.runBackfill(id)
		if rep := w.verify(); !rep.ok() {
			t.Fatalf("crash at operation %d/%d (mode %d)", k, ops, mode)
		}
	})
	t.Logf("%d crash trials over %d operations (%d crashed)", len(cases), ops, crashed.Load())
}

// TestBackfillFindsStaleEpochObject: after an idle spell, the stream's first
// object of a new window is named with the epoch of the last window that
// wrote one (days earlier). The backfill must still find its events (through
// the project's last stream object before the range) and write nothing.
func TestBackfillFindsStaleEpochObject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.add("1", 5, t0.Add(-time.Hour))
	for e.run().WorkRemaining {
	}
	e.clk.Advance(72 * time.Hour) // idle for three days
	for e.run().WorkRemaining {
		e.clk.Advance(time.Minute)
	}
	e.api.add("1", 7, e.clk.Now().Add(-10*time.Minute))
	e.clk.Advance(15 * time.Minute)
	for e.run().WorkRemaining {
	}
	e.clk.Advance(5 * time.Hour) // the stream moves on (empty windows)
	for e.run().WorkRemaining {
	}
	now := e.clk.Now()
	names, err := e.store.List(t.Context(), testData)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || !strings.HasPrefix(names[0], testData+t0.Add(-2*time.Minute).Format("2006/01/02/15/")) || names[0][:len(testData)+14] != names[1][:len(testData)+14] {
		t.Fatalf("want two stream objects in the first window's folder, got %v", names)
	}
	c := e.collector(nil, nil)
	job, err := c.CreateBackfill(t.Context(), BackfillSpec{Start: now.Add(-10 * time.Hour), End: now})
	if err != nil {
		t.Fatal(err)
	}
	var sum BackfillSummary
	for {
		s, err := c.RunBackfill(t.Context(), job.ID)
		if err != nil {
			t.Fatal(err)
		}
		sum.EventsWritten += s.EventsWritten
		sum.DuplicatesSkipped += s.DuplicatesSkipped
		if !s.WorkRemaining {
			sum.Job = s.Job
			break
		}
	}
	if sum.EventsWritten != 0 || sum.DuplicatesSkipped != 7 || sum.Job.Status != BackfillDone {
		t.Fatalf("backfill wrote %d, skipped %d, status %s; want 0 written, 7 skipped, done", sum.EventsWritten, sum.DuplicatesSkipped, sum.Job.Status)
	}
	if rep, err := checkBucket(t.Context(), e.store, testData, e.api.truth()); err != nil || !rep.ok() {
		t.Fatalf("bucket: %v %v", rep, err)
	}
}
