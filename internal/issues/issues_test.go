package issues

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// issueKey renders an issue version (id and the fields a change is detected
// on, with the lifetime numbers: the top-level ones describe only the
// window of the request) from a bucket line.
func issueKey(t testing.TB, line []byte) (string, bool) {
	t.Helper()
	var row struct {
		ID         string          `json:"id"`
		Status     string          `json:"status"`
		Substatus  string          `json:"substatus"`
		Level      string          `json:"level"`
		Priority   string          `json:"priority"`
		AssignedTo json.RawMessage `json:"assignedTo"`
		Title      *string         `json:"title"`
		ShortID    *string         `json:"shortId"`
		Lifetime   struct {
			Count    string    `json:"count"`
			LastSeen time.Time `json:"lastSeen"`
		} `json:"lifetime"`
	}
	if err := json.Unmarshal(line, &row); err != nil || row.ID == "" || row.Title == nil || row.ShortID == nil || row.Lifetime.LastSeen.IsZero() {
		return "", false
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%d|%s", row.ID, row.Status, row.Substatus, row.Level, row.Priority,
		row.Lifetime.Count, row.Lifetime.LastSeen.Unix(), assigneeKey(row.AssignedTo)), true
}

// simIssueKey renders the simulator's view of an issue the same way.
func simIssueKey(is sentrysim.IssueInfo) string {
	a := ""
	if is.Assignee != "" {
		a = "user:" + is.Assignee
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%d|%s", is.ID, is.Status, is.Substatus, is.Level, is.Priority, is.Count, is.LastSeen.Unix(), a)
}

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
// is an issue, no version twice, and every version visible in a completed
// window is in the bucket.
func TestIssuesStreamAgainstSimulator(t *testing.T) {
	t.Parallel()
	base := baseSeed(t)
	n := 8
	if testing.Short() {
		n = 3
	}
	for i := range n {
		seed := base + int64(i)
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			t.Parallel()
			runIssuesTrial(t, seed)
		})
	}
}

// TestIssuesVersionsAndRecovery walks one issue through changes and a crash
// between a data object's write and the state commit.
func TestIssuesVersionsAndRecovery(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, sentrysim.Config{})
	p := w.Sim.AddProject("web", "Web")
	// Recent events: a change is seen while the issue's lastSeen is within
	// the window (W − Overlap).
	w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-5 * time.Minute), Message: "KeyError: a"})
	w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-5 * time.Minute), Message: "KeyError: b"})
	w.Clock.Advance(time.Minute)
	run := func(store sinktest.Store) (engine.Summary, error) {
		return w.stream("r", store, w.Client("tok")).Run(collecttest.Quiet(t.Context()), 7*time.Minute)
	}
	// Crash after the object is written, before the state records it.
	crashy := &sinktest.Hooked{Store: w.Store}
	armed, created := true, false
	crashy.Before = func(_ int, op, name string) error {
		if op == "create" {
			created = true
		}
		if armed && op == "write" && created && name == collecttest.StatePrefix+"issues/state.json" {
			return sinktest.ErrInjected
		}
		return nil
	}
	if _, err := run(crashy); !errors.Is(err, sinktest.ErrInjected) {
		t.Fatalf("first run: err %v, want the injected crash", err)
	}
	armed = false
	// One issue changes before the next run: its object differs from the
	// one left behind, whose versions are read back instead of written again.
	a := w.Sim.Issues()[0].ID
	w.Sim.SetIssueStatus(a, "ignored")
	s, err := run(crashy)
	if err != nil || s.ObjectsRecovered != 1 || s.Records != 1 {
		t.Fatalf("recovery run: %+v, %v; want the object recovered and only the changed issue written", s, err)
	}
	// Unchanged: nothing; a status change: one record; unchanged again: nothing.
	w.Clock.Advance(5 * time.Minute)
	if s, _ := run(crashy); s.Records != 0 {
		t.Errorf("unchanged issues: %d records, want 0", s.Records)
	}
	id := a
	w.Sim.SetIssueStatus(id, "resolved")
	w.Clock.Advance(5 * time.Minute)
	if s, _ := run(crashy); s.Records != 1 {
		t.Errorf("after a status change: %d records, want 1", s.Records)
	}
	w.Sim.SetIssueAssignee(id, "5")
	w.Clock.Advance(5 * time.Minute)
	if s, _ := run(crashy); s.Records != 1 {
		t.Errorf("after an assignment: %d records, want 1", s.Records)
	}
	w.Clock.Advance(5 * time.Minute)
	if s, _ := run(crashy); s.Records != 0 {
		t.Errorf("unchanged again: %d records, want 0", s.Records)
	}
	if n := len(w.Lines(collecttest.IssuesPrefix)); n != 5 {
		t.Errorf("%d lines in the bucket, want 5 (2 issues + 3 changes)", n)
	}
}

// world is a simulated organisation for the issues stream.
type world struct {
	*collecttest.World
}

func newWorld(t *testing.T, seed int64, cfg sentrysim.Config) *world {
	t.Helper()
	return &world{collecttest.New(t, seed, cfg, "dir")}
}

// options are the stream's options in tests.
func options() Options {
	return Options{
		Org: collecttest.Org, DataPrefix: collecttest.IssuesPrefix, StatePrefix: collecttest.StatePrefix,
		Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
	}
}

// stream returns the issues stream of one run over st, reading through cl.
func (w *world) stream(runID string, st sinktest.Store, cl *sentry.Client) *Stream {
	w.T.Helper()
	return w.streamWith(options(), runID, st, cl)
}

// streamWith is stream with the given options.
func (w *world) streamWith(opts Options, runID string, st sinktest.Store, cl *sentry.Client) *Stream {
	w.T.Helper()
	s, err := New(opts, cl, w.Env(runID, st, cl))
	if err != nil {
		w.T.Fatal(err)
	}
	return s
}

// baseSeed is the seed of the randomised trials (COLLECTOR_SEED, or the clock).
func baseSeed(t *testing.T) int64 {
	t.Helper()
	if s := os.Getenv("COLLECTOR_SEED"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	seed := time.Now().UnixNano() % 1_000_000_000
	t.Logf("base seed %d (rerun with COLLECTOR_SEED=%d)", seed, seed)
	return seed
}

// A row with a missing id or an unreadable date does not fail the page (one
// such row would block the stream for ever): it is counted as invalid and
// never written, and the other rows are collected. A null lastSeen (Sentry's
// seen-stats query had no row for the issue) is not unreadable: the row is
// written.
func TestBadRowsAreCountedAndSkipped(t *testing.T) {
	t.Parallel()
	ts := `"` + collecttest.T0.Add(-time.Hour).Format(time.RFC3339) + `"`
	issue := func(id, lastSeen, lifetime string) string {
		return `{` + id + `"project":{"id":"7"},"status":"unresolved","level":"error","count":"3","firstSeen":` + ts + `,"lastSeen":` + lastSeen + lifetime + `}`
	}
	lifetime := func(lastSeen string) string {
		return `,"lifetime":{"count":"5","userCount":1,"firstSeen":` + ts + `,"lastSeen":` + lastSeen + `}`
	}
	body := "[" + strings.Join([]string{
		issue(`"id":"41",`, ts, ""),
		issue(``, ts, ""),                                // no id
		issue(`"id":"42",`, `"yesterday"`, ""),           // unreadable lastSeen, no lifetime
		issue(`"id":{"n":43},`, ts, ""),                  // id not a string
		issue(`"id":"44",`, ts, lifetime(ts)),            // lifetime numbers
		issue(`"id":"45",`, `null`, lifetime(ts)),        // no seen-stats row in the window
		issue(`"id":"46",`, `null`, lifetime(`null`)),    // no seen-stats row at all
		issue(`"id":"47",`, ts, lifetime(`"yesterday"`)), // unreadable lifetime lastSeen
	}, ",") + "]"
	w := newWorld(t, 1, sentrysim.Config{})
	cl := collecttest.OnePage(t, "/api/0/organizations/acme/issues/", body)
	opts := options()
	opts.SweepPeriod = -1 // one pass: the page is the same for every query
	s, err := w.streamWith(opts, "r", nil, cl).Run(collecttest.Quiet(t.Context()), 7*time.Minute)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if s.Records != 4 || s.InvalidRows != 4 {
		t.Errorf("records %d, invalid rows %d; want 4 and 4", s.Records, s.InvalidRows)
	}
	var ids []string
	for _, line := range w.Lines(collecttest.IssuesPrefix) {
		rec, err := Parse(line)
		if err != nil {
			t.Fatalf("bucket line %q: %v", line, err)
		}
		ids = append(ids, rec.ID)
	}
	if diff := cmp.Diff([]string{"41", "44", "45", "46"}, ids); diff != "" {
		t.Errorf("issues in the bucket (-want +got):\n%s", diff)
	}
}
