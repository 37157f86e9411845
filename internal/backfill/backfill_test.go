package backfill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"

	"github.com/secops-collectors/sentry-gcs/internal/events"

	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

func TestCreateBackfillValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     Spec
		wantErr  string
		projects int
	}{
		{name: "start_after_end", spec: Spec{Start: collecttest.T0.Add(-time.Hour), End: collecttest.T0.Add(-2 * time.Hour)}, wantErr: "must be before end"},
		{name: "start_equals_end", spec: Spec{Start: collecttest.T0.Add(-time.Hour), End: collecttest.T0.Add(-time.Hour)}, wantErr: "must be before end"},
		{name: "missing_start", spec: Spec{End: collecttest.T0}, wantErr: "start and end are required"},
		{name: "beyond_retention", spec: Spec{Start: collecttest.T0.Add(-91 * 24 * time.Hour), End: collecttest.T0}, wantErr: "90-day event retention"},
		{name: "end_in_future", spec: Spec{Start: collecttest.T0.Add(-time.Hour), End: collecttest.T0.Add(time.Hour)}, wantErr: "in the future"},
		{name: "unknown_projects", spec: Spec{Start: collecttest.T0.Add(-time.Hour), End: collecttest.T0, Projects: []string{"1", "nope", "42"}}, wantErr: `unknown projects "nope", "42"`},
		{name: "unknown_stream", spec: Spec{Start: collecttest.T0.Add(-time.Hour), End: collecttest.T0, Streams: []string{"audit"}}, wantErr: `stream "audit"`},
		{name: "all_projects", spec: Spec{Start: collecttest.T0.Add(-48 * time.Hour), End: collecttest.T0}, projects: 3},
		{name: "by_id_and_slug", spec: Spec{Start: collecttest.T0.Add(-48 * time.Hour), End: collecttest.T0, Projects: []string{"1", "p2", "p1"}}, projects: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1", "2", "3")
			c := e.jobs(nil)
			job, err := c.Create(e.ctx(), tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want %q (ErrInvalid)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(job.Projects) != tc.projects || job.Status != Pending {
				t.Fatalf("job = %+v", job)
			}
			// Stream never ran: everything after now − InitialLookback is
			// left to it.
			if p := job.Projects[0]; !p.End.Equal(collecttest.T0.Add(-24*time.Hour)) || p.ClippedFrom.IsZero() || p.WindowsTotal != 4 {
				t.Fatalf("project = %+v", p)
			}
			got, err := c.Get(e.ctx(), job.ID)
			if err != nil || got.ID != job.ID {
				t.Fatalf("GetBackfill = %+v, %v", got, err)
			}
		})
	}
}

// TestBackfillErrorsAreBounded names projects, a stream and a job id of any
// length, as a caller may: the error still names the first of them, quoted
// and cut, and stays short, since it is answered and logged.
func TestBackfillErrorsAreBounded(t *testing.T) {
	t.Parallel()

	long := func(prefix string, n int) string { return prefix + strings.Repeat("x", n) }
	many := make([]string, 1000)
	for i := range many {
		many[i] = long(fmt.Sprintf("p%04d", i), 10<<10)
	}
	start, end := collecttest.T0.Add(-time.Hour), collecttest.T0
	cases := []struct {
		name    string
		spec    Spec   // Create
		id      string // else Get
		wantErr string
		want    error
	}{
		{name: "1000_unknown_projects_of_10_kb", spec: Spec{Start: start, End: end, Projects: many},
			wantErr: `unknown projects "p0000xxx`, want: ErrInvalid},
		{name: "one_unknown_project_of_900_kib", spec: Spec{Start: start, End: end, Projects: []string{"1", long("big", 900<<10)}},
			wantErr: `unknown projects "bigxxx`, want: ErrInvalid},
		{name: "stream_of_900_kib", spec: Spec{Start: start, End: end, Streams: []string{long("s", 900<<10)}},
			wantErr: `stream "sxxx`, want: ErrInvalid},
		{name: "job_id_of_60_kib", id: long("j", 60<<10), wantErr: `"jxxx`, want: ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1", "2")
			var err error
			if tc.id != "" {
				_, err = e.jobs(nil).Get(e.ctx(), tc.id)
			} else {
				_, err = e.jobs(nil).Create(e.ctx(), tc.spec)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %.300v…, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) || !strings.Contains(msg, "…(cut from ") {
				t.Errorf("error %.300q… does not contain %q and say what was cut", msg, tc.wantErr)
			}
			if n := len(msg); n > 4<<10 {
				t.Errorf("error is %d bytes, want at most 4 KiB", n)
			}
		})
	}
}

func TestGetBackfillUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	for _, id := range []string{"abc123", "../x", ""} {
		if _, err := e.jobs(nil).Get(e.ctx(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetBackfill(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// world is a simulated organisation whose stream has collected its first
// windows, while older events exist only in Sentry.
type world struct {
	*collecttest.World
}

func backfillWorld(t testing.TB, seed int64) (*world, int) {
	t.Helper()
	return backfillWorldOn(t, seed, "dir")
}

// backfillWorldOn is backfillWorld over the named store ("dir", "memory").
func backfillWorldOn(t testing.TB, seed int64, store string) (*world, int) {
	t.Helper()
	w := &world{collecttest.New(t, seed, sentrysim.Config{}, store)}
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	old := 0
	for i := range 2 {
		p := w.Sim.AddProject("proj"+string(rune('a'+i)), "Project")
		add := func(n int, from, to time.Time) {
			for range n {
				ts := from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)))))
				w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: ts})
			}
		}
		add(150, collecttest.T0.Add(-70*time.Hour), collecttest.T0.Add(-25*time.Hour)) // only via backfill
		add(40, collecttest.T0.Add(-26*time.Hour), collecttest.T0.Add(-23*time.Hour))  // straddles the first window's start
		add(120, collecttest.T0.Add(-20*time.Hour), collecttest.T0.Add(-time.Hour))    // collected by the stream
		old += 150
	}
	return w, old
}

// jobs returns the backfill jobs of one run over st (nil: the world's store).
func (w *world) jobs(runID string, st sinktest.Store) *Jobs {
	w.T.Helper()
	if st == nil {
		st = w.Store
	}
	cl := w.Client("tok")
	s, err := events.New(events.Options{
		Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
		MaxPagesPerProject: -1, Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
	}, cl, w.Env(runID, st, cl))
	if err != nil {
		w.T.Fatal(err)
	}
	j, err := New(s, st)
	if err != nil {
		w.T.Fatal(err)
	}
	return j
}

// settle runs the events stream until it has no work left.
func (w *world) settle() {
	w.T.Helper()
	for i := 0; ; i++ {
		if i == 100 {
			w.T.Fatal("stream still has work after 100 runs")
		}
		w.Clock.Advance(10 * time.Minute) // a crashed run's lease expires
		s, err := w.jobs("stream", nil).stream.Run(collecttest.Quiet(context.Background()), 7*time.Minute)
		if err == nil && !s.WorkRemaining && !s.LeaseHeld {
			return
		}
	}
}

// totals adds up the runs of a job.
type totals struct {
	written, skipped int
	job              Job
}

// runBackfill runs the job to completion.
func (w *world) runBackfill(id string) totals {
	w.T.Helper()
	var total totals
	for i := 0; ; i++ {
		if i == 100 {
			w.T.Fatal("backfill still not done after 100 runs")
		}
		s, err := w.jobs("bf", nil).Run(collecttest.Quiet(context.Background()), id, 7*time.Minute)
		if err != nil {
			w.T.Fatalf("Run: %v", err)
		}
		total.written += s.Summary.Records
		total.skipped += s.Summary.Duplicates
		total.job = s.Job
		if !s.Summary.WorkRemaining {
			return total
		}
		if s.Summary.LeaseHeld {
			w.Clock.Advance(10 * time.Minute)
		}
	}
}

func TestBackfillAgainstSimulator(t *testing.T) {
	t.Parallel()
	w, old := backfillWorld(t, 11)
	w.settle() // the stream collects [now − 24h, now − lag)
	before, err := sentrysim.Verify(t.Context(), w.Store, collecttest.DataPrefix, w.Sim.GroundTruth())
	if err != nil {
		t.Fatal(err)
	}
	collected := before.Distinct()
	now := w.Clock.Now()
	c := w.jobs("create", nil)
	job, err := c.Create(collecttest.Quiet(t.Context()), Spec{Start: now.Add(-80 * time.Hour), End: now, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range job.Projects {
		if p.ClippedFrom.IsZero() {
			t.Errorf("project %s not clipped at the stream's watermark: %+v", p.ID, p)
		}
	}
	sum := w.runBackfill(job.ID)
	rep := w.Verify() // every visible event exactly once
	if got := sum.written; got != rep.Distinct()-collected {
		t.Errorf("backfill wrote %d events, want the %d missing ones", got, rep.Distinct()-collected)
	}
	if sum.written < old {
		t.Errorf("backfill wrote %d events, want at least the %d older than the stream", sum.written, old)
	}
	if sum.job.Status != Done {
		t.Errorf("status = %s", sum.job.Status)
	}
	if wd, wt, ev, _ := sum.job.Totals(); wd != wt || ev != sum.written {
		t.Errorf("totals: windows %d/%d events %d", wd, wt, ev)
	}

	// The same backfill again writes nothing.
	job2, err := c.Create(collecttest.Quiet(t.Context()), Spec{Start: now.Add(-80 * time.Hour), End: now})
	if err != nil {
		t.Fatal(err)
	}
	sum2 := w.runBackfill(job2.ID)
	if sum2.written != 0 || sum2.skipped == 0 {
		t.Errorf("second backfill: wrote %d, skipped %d; want 0 written", sum2.written, sum2.skipped)
	}
	w.Verify()
	// The stream goes on without duplicates.
	w.Clock.Advance(time.Hour)
	w.settle()
	w.Verify()
}

// TestBackfillCrashAtEveryBoundary crashes RunBackfill at its k-th storage
// operation, in each way, then finishes the job and checks exactly-once.
func TestBackfillCrashAtEveryBoundary(t *testing.T) {
	t.Parallel()
	prepare := func(t *testing.T) (*world, string) {
		// In memory: the crash semantics are the engine's; the stores'
		// own have their conformance suite (internal/sink).
		w, _ := backfillWorldOn(t, 5, "memory")
		w.settle()
		now := w.Clock.Now()
		job, err := w.jobs("create", nil).Create(collecttest.Quiet(t.Context()), Spec{Start: now.Add(-80 * time.Hour), End: now})
		if err != nil {
			t.Fatal(err)
		}
		return w, job.ID
	}
	probe, id := prepare(t)
	cs := &sinktest.Faulty{Store: probe.Store}
	if _, err := probe.jobs("probe", cs).Run(collecttest.Quiet(t.Context()), id, 7*time.Minute); err != nil {
		t.Fatal(err)
	}
	ops := cs.Ops()
	// Every second boundary; -short and -race sample fewer: a slice
	// repeats the same operations (note the read, scan, read pages, write,
	// commit, end the read), so a step that does not divide their cycle
	// still reaches every kind of boundary over the job's slices.
	step := int64(2)
	if testing.Short() || raceDetector {
		step = 11
	}
	var cases [][2]int64
	for k := int64(1); k <= ops+1; k += step {
		for mode := range int64(3) {
			cases = append(cases, [2]int64{k, mode})
		}
	}
	var crashed atomic.Int64
	collecttest.Trials(t, len(cases), func(t *testing.T, i int) {
		k, mode := cases[i][0], int(cases[i][1])
		w, id := prepare(t)
		in, ctx, cancel := w.Faulty(collecttest.Quiet(context.Background()), k, mode, 0)
		defer cancel()
		_, _ = w.jobs("crash", in).Run(ctx, id, 7*time.Minute)
		if in.Fired() {
			crashed.Add(1)
		}
		w.Clock.Advance(10 * time.Minute) // the crashed run's lease expires
		w.runBackfill(id)
		if rep := w.Verify(); !rep.OK() {
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
	e.api.Add("1", 5, collecttest.T0.Add(-time.Hour))
	for e.runStream().WorkRemaining {
	}
	e.clk.Advance(72 * time.Hour) // idle for three days
	for e.runStream().WorkRemaining {
		e.clk.Advance(time.Minute)
	}
	e.api.Add("1", 7, e.now().Add(-10*time.Minute))
	e.clk.Advance(15 * time.Minute)
	for e.runStream().WorkRemaining {
	}
	e.clk.Advance(5 * time.Hour) // the stream moves on (empty windows)
	for e.runStream().WorkRemaining {
	}
	now := e.now()
	names, err := e.store.List(t.Context(), collecttest.DataPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || !strings.HasPrefix(names[0], collecttest.DataPrefix+collecttest.T0.Add(-2*time.Minute).Format("2006/01/02/15/")) || names[0][:len(collecttest.DataPrefix)+14] != names[1][:len(collecttest.DataPrefix)+14] {
		t.Fatalf("want two stream objects in the first window's folder, got %v", names)
	}
	c := e.jobs(nil)
	job, err := c.Create(e.ctx(), Spec{Start: now.Add(-10 * time.Hour), End: now})
	if err != nil {
		t.Fatal(err)
	}
	var sum totals
	for {
		s, err := e.runJob(c, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		sum.written += s.Summary.Records
		sum.skipped += s.Summary.Duplicates
		if !s.Summary.WorkRemaining {
			sum.job = s.Job
			break
		}
	}
	if sum.written != 0 || sum.skipped != 7 || sum.job.Status != Done {
		t.Fatalf("backfill wrote %d, skipped %d, status %s; want 0 written, 7 skipped, done", sum.written, sum.skipped, sum.job.Status)
	}
	e.check()
}
