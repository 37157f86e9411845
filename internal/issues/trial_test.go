package issues

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// issuesTrial is one randomised run of the issues stream.
type issuesTrial struct {
	*world
	seed                       int64
	checks, recovered, crashes int
	msgs                       []string          // messages of issues the trial created
	msgProj                    map[string]string // message → project id
	history                    map[string]map[string]bool
	n                          int
}

func (tr *issuesTrial) run(runID string, crashAt int64, mode int, faultP float64) (engine.Summary, error) {
	in, ctx, cancel := tr.Faulty(collecttest.Quiet(context.Background()), crashAt, mode, faultP)
	defer cancel()
	cl := tr.Client("tok")
	s, err := tr.stream(runID, in, cl).Run(ctx, 7*time.Minute)
	tr.recovered += s.ObjectsRecovered
	if in.Fired() {
		tr.crashes++
	}
	return s, err
}

// snapshot records every issue's current version in its history.
func (tr *issuesTrial) snapshot() map[string]sentrysim.IssueInfo {
	out := make(map[string]sentrysim.IssueInfo)
	for _, is := range tr.Sim.Issues() {
		out[is.ID] = is
		if tr.history[is.ID] == nil {
			tr.history[is.ID] = make(map[string]bool)
		}
		tr.history[is.ID][simIssueKey(is)] = true
	}
	return out
}

// change applies random changes: status, level, priority and assignee
// changes without an event (never back to a version the issue had: that
// would be the same version again), new events on issues (some late, within
// the overlap), new issues.
func (tr *issuesTrial) change() {
	r := tr.Rng
	now := tr.Clock.Now()
	for range 1 + r.IntN(12) {
		issues := tr.Sim.Issues()
		is := issues[r.IntN(len(issues))]
		if tr.history[is.ID] == nil {
			tr.history[is.ID] = map[string]bool{simIssueKey(is): true}
		}
		next := is
		switch op := r.IntN(6); op {
		case 0:
			next.Status = []string{"unresolved", "resolved", "ignored"}[r.IntN(3)]
			next.Substatus = map[string]string{"unresolved": "ongoing", "ignored": "archived_forever"}[next.Status]
		case 1:
			next.Level = []string{"fatal", "error", "warning", "info"}[r.IntN(4)]
		case 2:
			next.Assignee = []string{"", "7", "8", "9"}[r.IntN(4)]
		case 3:
			next.Priority = []string{"high", "medium", "low"}[r.IntN(3)]
		case 4:
			if len(tr.msgs) > 0 {
				m := tr.msgs[r.IntN(len(tr.msgs))]
				late := time.Duration(r.IntN(20)) * time.Minute
				tr.Sim.AddEvent(tr.msgProj[m], sentrysim.EventSpec{Timestamp: now.Add(-late - time.Second), VisibleAt: now, Message: m})
			}
			continue
		default:
			tr.n++
			m := "TrialError" + strconv.Itoa(tr.n) + ": boom"
			tr.msgs = append(tr.msgs, m)
			tr.msgProj[m] = is.ProjectID
			tr.Sim.AddEvent(is.ProjectID, sentrysim.EventSpec{Timestamp: now.Add(-time.Duration(r.IntN(300)+1) * time.Second), VisibleAt: now, Message: m})
			continue
		}
		if tr.history[is.ID][simIssueKey(next)] {
			continue
		}
		switch {
		case next.Status != is.Status:
			tr.Sim.SetIssueStatus(is.ID, next.Status)
		case next.Level != is.Level:
			tr.Sim.SetIssueLevel(is.ID, next.Level)
		case next.Assignee != is.Assignee:
			tr.Sim.SetIssueAssignee(is.ID, next.Assignee)
		case next.Priority != is.Priority:
			tr.Sim.SetIssuePriority(is.ID, next.Priority)
		}
		tr.history[is.ID][simIssueKey(next)] = true
	}
	tr.snapshot()
}

// bucket returns the versions in the bucket and how often each appears.
func (tr *issuesTrial) bucket() map[string]int {
	got := make(map[string]int)
	for _, line := range tr.Lines(collecttest.IssuesPrefix) {
		k, ok := issueKey(tr.T, line)
		if !ok {
			tr.T.Errorf("seed %d: a line is not an issue: %.200s", tr.seed, line)
			continue
		}
		got[k]++
	}
	return got
}

// state reads the committed issues state.
func (tr *issuesTrial) state() *state {
	data, _, err := tr.Store.Read(context.Background(), collecttest.StatePrefix+"issues/state.json")
	if err != nil {
		tr.T.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		tr.T.Fatal(err)
	}
	return &st
}

// checkVisible asserts that every version the completed window covered is
// in the bucket: issues whose last event is in [W − Overlap, W) (the window
// started at or before W − Overlap, and ended at W). The version is the
// issue's as of now: its last event, and the changes made before the run.
func (tr *issuesTrial) checkVisible(round int, w time.Time) {
	tr.checks++
	got := tr.bucket()
	for _, is := range tr.snapshot() {
		if is.LastSeen.Before(w.Add(-30*time.Minute)) || !is.LastSeen.Before(w) {
			continue
		}
		if got[simIssueKey(is)] == 0 {
			tr.T.Errorf("seed %d round %d: version %s visible in the window ending %s is not in the bucket", tr.seed, round, simIssueKey(is), w)
		}
	}
}

func runIssuesTrial(t *testing.T, seed int64) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x155))
	cfg := sentrysim.Config{IgnoreDateRange: r.IntN(5) == 0}
	if r.IntN(4) == 0 {
		cfg.RateLimits = sentrysim.RateLimitConfig{
			Events:  sentrysim.Limit{Limit: 3, Window: 10 * time.Second, Concurrent: 1},
			Default: sentrysim.Limit{Limit: 2, Window: time.Second, Concurrent: 2},
		}
	}
	tr := &issuesTrial{world: newWorld(t, seed, cfg), seed: seed, msgProj: map[string]string{}, history: map[string]map[string]bool{}}
	tr.Sim.Populate(sentrysim.Scenario{Projects: 1 + r.IntN(3), Backlog: r.IntN(300), BacklogSpan: 2 * time.Hour})
	tr.Sim.SetFaults(sentrysim.Faults{P5xx: 0.03, P502HTML: 0.01, PTruncated: 0.02})
	// A project of the trial's own, with an issue it can add events to.
	p := tr.Sim.AddProject("trial", "Trial")
	tr.msgs, tr.msgProj["TrialError0: seed"] = []string{"TrialError0: seed"}, p.ID
	tr.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: tr.Clock.Now().Add(-time.Hour), Message: tr.msgs[0]})
	tr.Clock.Advance(time.Minute)
	tr.snapshot()
	storeFaults := []float64{0, 0.03}[r.IntN(2)]
	rounds := 4 + r.IntN(5)
	for round := range rounds {
		if round > 0 {
			tr.change()
		}
		changedAt := tr.Clock.Now()
		if r.IntN(2) == 0 {
			_, _ = tr.run(fmt.Sprintf("crash%d", round), 3+r.Int64N(5), r.IntN(3), storeFaults)
			tr.Clock.Advance(4 * time.Minute) // the crashed run's lease expires
			if r.IntN(2) == 0 {
				// Changes after the crash: the next run's object under the
				// same name differs from the one left behind (recovery).
				tr.change()
				changedAt = tr.Clock.Now()
			}
		}
		var err error
		for attempt := range 5 {
			if _, err = tr.run(fmt.Sprintf("r%d.%d", round, attempt), 0, 0, storeFaults); err == nil {
				break
			}
			tr.Clock.Advance(4 * time.Minute)
		}
		if err == nil {
			if st := tr.state(); st.Window == nil && !st.Watermark.Add(2*time.Minute).Before(changedAt) {
				tr.checkVisible(round, st.Watermark)
			}
		}
		tr.Clock.Advance(time.Duration(1+r.IntN(15)) * time.Minute)
	}
	// Settle: quiet runs until caught up, then the final versions.
	tr.Sim.SetFaults(sentrysim.Faults{})
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatalf("seed %d: still work remaining after 50 quiet runs", seed)
		}
		tr.Clock.Advance(4 * time.Minute)
		s, err := tr.run(fmt.Sprintf("final%d", i), 0, 0, 0)
		if err == nil && !s.WorkRemaining && !s.LeaseHeld {
			break
		}
	}
	tr.checkVisible(rounds, tr.state().Watermark)
	// A sweep that starts after the last change: the current version of
	// every issue (each has an event within the sweep period) is in the
	// bucket, also those changed without an event outside any window.
	lastChange := tr.Clock.Now()
	for i := 0; !tr.state().SweptTo.After(lastChange) || tr.state().Sweep != nil; i++ {
		if i == 50 {
			t.Fatalf("seed %d: no sweep completed after 50 quiet runs", seed)
		}
		tr.Clock.Advance(10 * time.Minute)
		_, _ = tr.run(fmt.Sprintf("sweep%d", i), 0, 0, 0)
	}
	got := tr.bucket()
	for _, is := range tr.snapshot() {
		if got[simIssueKey(is)] == 0 {
			t.Errorf("seed %d: the current version %s is not in the bucket after a sweep", seed, simIssueKey(is))
		}
	}
	for k, n := range got {
		if n > 1 {
			t.Errorf("seed %d: version %s written %d times", seed, k, n)
		}
	}
	t.Logf("seed %d: %d rounds, %d window checks, %d versions written, %d crashes, %d objects recovered",
		seed, rounds, tr.checks, len(got), tr.crashes, tr.recovered)
}

// TestIssuesStreamAgainstSimulator runs randomised trials of the issues
// stream with changes between runs, Sentry faults, rate-limit storms,
// storage faults and crashes at storage boundaries, and checks: every line
// is an issue, no version twice, every version visible in a completed
// window is in the bucket, and after a sweep the current version of every
// issue is.
func TestIssuesStreamAgainstSimulator(t *testing.T) {
	t.Parallel()
	collecttest.SeededTrials(t, 8, 3, runIssuesTrial)
}
