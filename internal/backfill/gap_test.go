package backfill

import (
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// A backfill created for a project the stream has never read, the stream
// starting later. Every event of the requested range and after it must be
// collected exactly once, including those around the clip (now −
// InitialLookback at job creation), which the stream's own first window
// (now' − InitialLookback, later) would miss without the hand-off.
func TestBackfillBeforeFirstStreamRunLeavesNoGap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	lookback := e.opts.InitialLookback
	for _, pid := range []string{"1", "2"} {
		// Every minute around the clip, and a sparser spread over the
		// whole range and up to now.
		for ts := collecttest.T0.Add(-lookback - 20*time.Minute); ts.Before(collecttest.T0.Add(-lookback + 40*time.Minute)); ts = ts.Add(time.Minute) {
			e.api.Add(pid, 1, ts)
		}
		for ts := collecttest.T0.Add(-40 * time.Hour); ts.Before(collecttest.T0); ts = ts.Add(37 * time.Minute) {
			e.api.Add(pid, 1, ts)
		}
	}
	c := e.jobs(nil)
	job, err := c.Create(e.ctx(), Spec{Start: collecttest.T0.Add(-40 * time.Hour), End: collecttest.T0})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range job.Projects {
		if !p.ClippedFrom.Equal(collecttest.T0.Add(-lookback)) {
			t.Fatalf("project %s clipped from %v, want %v", p.ID, p.ClippedFrom, collecttest.T0.Add(-lookback))
		}
	}
	// The stream starts 25 minutes after the job was created.
	e.clk.Advance(25 * time.Minute)
	for e.runStream().WorkRemaining {
	}
	for {
		s, err := e.runJob(e.jobs(nil), job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Summary.WorkRemaining {
			if s.Job.Status != Done {
				t.Fatalf("backfill status %s", s.Job.Status)
			}
			break
		}
	}
	// Events after the range, then the stream catches up past them.
	e.api.Add("1", 3, collecttest.T0.Add(10*time.Minute))
	e.api.Add("2", 2, collecttest.T0.Add(20*time.Minute))
	e.clk.Advance(time.Hour)
	for e.runStream().WorkRemaining {
	}
	if rep := e.check(); rep.Lines != countAll(e.api.Truth()) {
		t.Errorf("bucket holds %d lines, want the %d events once", rep.Lines, countAll(e.api.Truth()))
	}
	// The stream's first window began exactly at the clip.
	for _, q := range e.api.Queries() {
		if q.Project == "1" && q.Start.Equal(collecttest.T0.Add(-lookback)) && q.End.After(q.Start) {
			return
		}
	}
	t.Errorf("no stream window of project 1 starts at the clip %v", collecttest.T0.Add(-lookback))
}

// A checkpoint the stream committed first wins: the job clips at it and
// leaves the stream's state alone.
func TestBackfillClipKeepsAnExistingCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 2, collecttest.T0.Add(-time.Hour))
	e.runStream()
	before := e.checkpoint("1")
	job, err := e.jobs(nil).Create(e.ctx(), Spec{Start: collecttest.T0.Add(-40 * time.Hour), End: collecttest.T0})
	if err != nil {
		t.Fatal(err)
	}
	after := e.checkpoint("1")
	if !after.Watermark.Equal(before.Watermark) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("checkpoint changed by CreateBackfill: %+v → %+v", before, after)
	}
	if want := before.Watermark.Add(-e.opts.Overlap); !job.Projects[0].ClippedFrom.Equal(want) {
		t.Errorf("clipped from %v, want the stream's watermark − overlap %v", job.Projects[0].ClippedFrom, want)
	}
}

// A transient Sentry error on one project skips it for the run; the others
// progress,
// the error is recorded in the job as transient, and a later run finishes
// the job (done, not failed). When every project tried fails, the run
// reports a transient error.
func TestBackfillTransientProjectErrorSkipsOnlyThatProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2", "3")
	for _, pid := range []string{"1", "2", "3"} {
		e.api.Add(pid, 4, collecttest.T0.Add(-40*time.Hour))
	}
	c := e.jobs(nil)
	job, err := c.Create(e.ctx(), Spec{Start: collecttest.T0.Add(-48 * time.Hour), End: collecttest.T0.Add(-30 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.api.SetEventErr("1", &sentry.APIError{StatusCode: 500, Detail: "Internal Error"})
	s, err := e.runJob(c, job.ID)
	if err != nil {
		t.Fatalf("RunBackfill with one failing project: %v", err)
	}
	if !s.Summary.WorkRemaining || s.Summary.Records != 8 || s.Summary.Projects.Failed != 1 || s.Job.Status != Running {
		t.Fatalf("summary %+v; want work remaining, 8 events, 1 project failed, running", s)
	}
	if len(s.Job.Errors) != 1 || !strings.HasPrefix(s.Job.Errors[0], transientErrorPrefix) || !strings.Contains(s.Job.Errors[0], "project 1 ") {
		t.Errorf("job errors %q; want one transient error for project 1", s.Job.Errors)
	}
	if p := s.Job.Projects[0]; p.Done || p.Error != "" || !p.Failing {
		t.Errorf("project 1: %+v; want not done, no permanent error, failing", p)
	}
	// Only the failing project is left and it still fails: the run failed.
	s, err = e.runJob(c, job.ID)
	if err == nil || !failure.IsTransient(err) || !s.Summary.WorkRemaining {
		t.Fatalf("every project failing: %v, work remaining %v; want a transient error", err, s.Summary.WorkRemaining)
	}
	// Sentry recovers: the job finishes, done.
	e.api.SetEventErr("1", nil)
	s, err = e.runJob(c, job.ID)
	if err != nil || s.Summary.WorkRemaining || s.Job.Status != Done || s.Summary.Records != 4 {
		t.Fatalf("after recovery: %+v, %v; want done with project 1's 4 events", s, err)
	}
	e.check()
}

func TestAppendTransientErrorIsBounded(t *testing.T) {
	t.Parallel()
	errs := []string{"project 9: permanent"}
	for i := range 3 * maxTransientErrors {
		errs = appendTransientError(errs, transientErrorPrefix+strings.Repeat("x", i))
	}
	if len(errs) != maxTransientErrors+1 || errs[0] != "project 9: permanent" {
		t.Fatalf("%d errors, first %q; want %d, the permanent one kept", len(errs), errs[0], maxTransientErrors+1)
	}
	if !strings.HasSuffix(errs[len(errs)-1], strings.Repeat("x", 3*maxTransientErrors-1)) {
		t.Errorf("newest error not kept")
	}
}

// TestBackfillThenOneCollectMissesNothing: a backfill over the past 7 hours
// with a 30-minute initial look-back, created before the stream ever ran,
// then one stream run: every event is in the bucket once. The stream's
// first window is handed over open at the job's clip, so the 30 minutes
// between the clip and the job's creation are read by that one run, and idle
// detection cannot skip the project.
func TestBackfillThenOneCollectMissesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.opts.InitialLookback = 30 * time.Minute
	for _, pid := range []string{"1", "2"} {
		for ts := collecttest.T0.Add(-7 * time.Hour); ts.Before(collecttest.T0.Add(-5 * time.Minute)); ts = ts.Add(time.Minute) {
			e.api.Add(pid, 1, ts)
		}
	}
	c := e.jobs(nil)
	job, err := c.Create(e.ctx(), Spec{Start: collecttest.T0.Add(-7 * time.Hour), End: collecttest.T0})
	if err != nil {
		t.Fatal(err)
	}
	for {
		s, err := e.runJob(c, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Summary.WorkRemaining {
			break
		}
	}
	e.clk.Advance(time.Minute)
	e.runStream() // one collect
	rep := e.check()
	if rep.Lines != countAll(e.api.Truth()) {
		t.Errorf("bucket holds %d lines, want the %d events once", rep.Lines, countAll(e.api.Truth()))
	}
}
