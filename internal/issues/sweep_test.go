package issues

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// TestQuietChangeIsWrittenBySweep: an issue resolved, assigned or
// re-prioritised without a new event is not returned by any window on
// events. The sweep writes it within the sweep interval plus one run period
// (runs every 10 minutes, the default schedule); without the sweep it is
// not written at all.
func TestQuietChangeIsWrittenBySweep(t *testing.T) {
	t.Parallel()
	const runEvery = 10 * time.Minute
	cases := []struct {
		name   string
		sweep  bool
		change func(sim *sentrysim.Server, id string)
	}{
		{name: "resolved", sweep: true, change: func(sim *sentrysim.Server, id string) { sim.SetIssueStatus(id, "resolved") }},
		{name: "assigned", sweep: true, change: func(sim *sentrysim.Server, id string) { sim.SetIssueAssignee(id, "42") }},
		{name: "reprioritised", sweep: true, change: func(sim *sentrysim.Server, id string) { sim.SetIssuePriority(id, "low") }},
		{name: "archived_until_escalating", sweep: true, change: func(sim *sentrysim.Server, id string) {
			sim.SetIssueStatus(id, "ignored")
			sim.SetIssueSubstatus(id, "archived_until_escalating")
		}},
		{name: "resolved_without_sweep", change: func(sim *sentrysim.Server, id string) { sim.SetIssueStatus(id, "resolved") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 9, sentrysim.Config{})
			p := w.Sim.AddProject("web", "Web")
			w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-3 * 24 * time.Hour), Message: "KeyError: quiet"})
			w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-5 * time.Minute), Message: "KeyError: busy"})
			opts := options()
			if !tc.sweep {
				opts.SweepPeriod = -1
			}
			if _, err := w.runWith(opts, nil, "tok"); err != nil {
				t.Fatal(err)
			}
			var quiet string
			for _, is := range w.Sim.Issues() {
				if is.LastSeen.Before(collecttest.T0.Add(-time.Hour)) {
					quiet = is.ID
				}
			}
			w.Clock.Advance(runEvery)
			tc.change(w.Sim, quiet)
			changedAt := w.Clock.Now()
			want := simIssueKey(w.Sim.Issues()[slices.IndexFunc(w.Sim.Issues(), func(is sentrysim.IssueInfo) bool { return is.ID == quiet })])
			var latency time.Duration
			for w.Clock.Now().Sub(changedAt) <= 3*time.Hour {
				if _, err := w.runWith(opts, nil, "tok"); err != nil {
					t.Fatal(err)
				}
				if w.hasVersion(want) {
					latency = w.Clock.Now().Sub(changedAt)
					break
				}
				w.Clock.Advance(runEvery)
			}
			switch {
			case !tc.sweep && latency != 0:
				t.Errorf("without the sweep the quiet change was written after %s; the windows should not see it", latency)
			case tc.sweep && (latency == 0 || latency > DefaultSweepInterval+runEvery):
				t.Errorf("quiet change written after %s (0: never in 3h), want within %s", latency, DefaultSweepInterval+runEvery)
			}
			t.Logf("quiet change written after %s (0: never)", latency)
		})
	}
}

// TestSweepCrashBetweenWriteAndCommit: a sweep's object is written, then the
// run dies before the state records it; another quiet change follows. The
// next run reads the sweep's page again (now with both changes), finds the
// object under the name the state still gives, absorbs it, and writes only
// the second change: nothing twice.
func TestSweepCrashBetweenWriteAndCommit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, sentrysim.Config{})
	p := w.Sim.AddProject("web", "Web")
	for _, m := range []string{"KeyError: quiet1", "KeyError: quiet2"} {
		w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-3 * 24 * time.Hour), Message: m})
	}
	w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-5 * time.Minute), Message: "KeyError: busy"})
	if _, err := w.runWith(options(), nil, "tok"); err != nil {
		t.Fatal(err)
	}
	var quiet []string
	for _, is := range w.Sim.Issues() {
		if is.LastSeen.Before(collecttest.T0.Add(-time.Hour)) {
			quiet = append(quiet, is.ID)
		}
	}
	w.Sim.SetIssueStatus(quiet[0], "resolved")
	w.Clock.Advance(DefaultSweepInterval + time.Minute)

	crashy := &sinktest.Hooked{Store: w.Store}
	created := false
	crashy.Before = func(_ int, op, name string) error {
		if op == "create" {
			created = true
		}
		if created && op == "write" && name == collecttest.StatePrefix+"issues/state.json" {
			return sinktest.ErrInjected
		}
		return nil
	}
	if _, err := w.runWith(options(), crashy, "tok"); !errors.Is(err, sinktest.ErrInjected) {
		t.Fatalf("crashing run: err %v, want the injected crash", err)
	}
	if st := w.readState(); st.Sweep == nil {
		t.Fatalf("the crash was not in a sweep (no sweep in progress)")
	}
	w.Sim.SetIssueAssignee(quiet[1], "7")
	s, err := w.runWith(options(), nil, "tok")
	if err != nil || s.ObjectsRecovered != 1 || s.Records != 1 {
		t.Fatalf("recovery run: recovered %d, records %d, err %v; want 1, 1, nil", s.ObjectsRecovered, s.Records, err)
	}
	lines := w.Lines(collecttest.IssuesPrefix)
	counts := map[string]int{}
	for _, line := range lines {
		k, _ := issueKey(t, line)
		counts[k]++
	}
	for _, is := range w.Sim.Issues() {
		if n := counts[simIssueKey(is)]; n != 1 {
			t.Errorf("current version %s written %d times, want once", simIssueKey(is), n)
		}
	}
	if len(lines) != 5 {
		t.Errorf("%d lines in the bucket, want 5 (three issues, and two quiet changes)", len(lines))
	}
}

// TestSweepTurnedOffMidway: a sweep in progress when the sweep is turned off
// is dropped (with the next commit), and leaves no work remaining behind.
func TestSweepTurnedOffMidway(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 6, sentrysim.Config{})
	p := w.Sim.AddProject("web", "Web")
	for i := range 150 {
		w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-2 * 24 * time.Hour), Message: fmt.Sprintf("E%d: x", i)})
	}
	w.Clock.Advance(time.Minute)
	// 150 issues are two pages: a soft stop after the sweep's first page
	// leaves the sweep in progress.
	stop := make(chan struct{})
	cl := w.Client("tok")
	env := w.Env("r", nil, cl)
	env.Stop = stop
	s, err := New(options(), stopAfterSweepPage{api: cl, stop: stop}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(collecttest.Quiet(t.Context()), 7*time.Minute); err != nil {
		t.Fatal(err)
	}
	if st := w.readState(); st.Sweep == nil {
		t.Fatal("no sweep in progress after the stopped run")
	}
	opts := options()
	opts.SweepPeriod = -1
	w.Clock.Advance(5 * time.Minute)
	sum, err := w.runWith(opts, nil, "tok")
	if err != nil || sum.WorkRemaining {
		t.Fatalf("run with the sweep off: work remaining %v, err %v; want false, nil", sum.WorkRemaining, err)
	}
	if st := w.readState(); st.Sweep != nil {
		t.Errorf("sweep still in progress with the sweep off: %+v", st.Sweep)
	}
}

// stopAfterSweepPage gives the soft stop after the first page of a sweep
// (a request whose window is longer than a day).
type stopAfterSweepPage struct {
	api  API
	stop chan struct{}
}

func (s stopAfterSweepPage) ListIssues(ctx context.Context, q sentry.IssuesQuery) (sentry.Page[sentry.Issue], error) {
	p, err := s.api.ListIssues(ctx, q)
	if q.End.Sub(q.Start) > 24*time.Hour {
		select {
		case <-s.stop:
		default:
			close(s.stop)
		}
	}
	return p, err
}

// TestNewValidatesTheSweep: a sweep period beyond what Sentry's issue search
// covers, or a negative interval, is a configuration error.
func TestNewValidatesTheSweep(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		period time.Duration
		every  time.Duration
		want   string // "" valid
	}{
		{name: "defaults"},
		{name: "off", period: -1},
		{name: "ninety_days", period: MaxSweepPeriod},
		{name: "beyond_the_search", period: MaxSweepPeriod + time.Hour, want: "never looks back further"},
		{name: "negative_interval", every: -time.Minute, want: "interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := options()
			opts.SweepPeriod, opts.SweepInterval = tc.period, tc.every
			st := sink.NewMemory()
			_, err := New(opts, collecttest.OnePage(t, "/", "[]"), engine.Env{Data: st, State: st})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v, want no error", err)
			case tc.want != "" && (!failure.IsConfig(err) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New: %v, want a configuration error containing %q", err, tc.want)
			}
		})
	}
}
