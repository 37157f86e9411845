package issues

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// runWith runs the stream once with opts over the world's store (st: nil)
// or st, through a new client with token tok.
func (w *world) runWith(opts Options, st sinktest.Store, tok string) (engine.Summary, error) {
	w.T.Helper()
	cl := w.Client(tok)
	return w.streamWith(opts, "r", st, cl).Run(collecttest.Quiet(context.Background()), 7*time.Minute)
}

// bucketIDs returns the issue id of every line in the bucket, sorted.
func (w *world) bucketIDs() []string {
	w.T.Helper()
	var ids []string
	for _, line := range w.Lines(collecttest.IssuesPrefix) {
		rec, err := Parse(line)
		if err != nil {
			w.T.Fatalf("bucket line %.200q: %v", line, err)
		}
		ids = append(ids, rec.ID)
	}
	slices.Sort(ids)
	return ids
}

// simIDs returns the ids of the simulator's issues, sorted.
func (w *world) simIDs() []string {
	var ids []string
	for _, is := range w.Sim.Issues() {
		ids = append(ids, is.ID)
	}
	slices.Sort(ids)
	return ids
}

// readState reads the committed state document.
func (w *world) readState() *state {
	w.T.Helper()
	data, _, err := w.Store.Read(context.Background(), collecttest.StatePrefix+"issues/state.json")
	if err != nil {
		w.T.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		w.T.Fatal(err)
	}
	return &st
}

// hasVersion reports whether the bucket holds the version key (simIssueKey).
func (w *world) hasVersion(key string) bool {
	for _, line := range w.Lines(collecttest.IssuesPrefix) {
		if k, ok := issueKey(w.T, line); ok && k == key {
			return true
		}
	}
	return false
}

// TestUnchangedIssuesAreWrittenOnce: every pass returns each issue again
// (windows overlap, sweeps cover the windows), with top-level numbers that
// differ from pass to pass because each describes only its window's events.
// With nothing changed in Sentry, three passes write each issue once.
func TestUnchangedIssuesAreWrittenOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		sweepPeriod time.Duration
		gap         time.Duration // between runs
		missing     float64       // share of issues without a seen-stats row
	}{
		{name: "overlapping_windows", sweepPeriod: -1, gap: 5 * time.Minute},
		{name: "windows_and_a_sweep_each_run", gap: 61 * time.Minute},
		{name: "lastSeen_null", gap: 61 * time.Minute, missing: 0.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 5, sentrysim.Config{MissingSeenStats: tc.missing})
			p := w.Sim.AddProject("web", "Web")
			const n = 12
			for i := range n {
				msg := fmt.Sprintf("KeyError: k%d", i)
				// One event long before, one in the overlap of every
				// window: the windows' top-level counts differ.
				w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-2 * time.Hour), Message: msg})
				w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-5 * time.Minute), Message: msg})
			}
			w.Clock.Advance(time.Minute)
			opts := options()
			opts.SweepPeriod = tc.sweepPeriod
			var records []int
			for i := range 3 {
				if i > 0 {
					w.Clock.Advance(tc.gap)
				}
				s, err := w.runWith(opts, nil, "tok")
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				records = append(records, s.Records)
			}
			if diff := cmp.Diff([]int{n, 0, 0}, records); diff != "" {
				t.Errorf("records written per run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(w.simIDs(), w.bucketIDs()); diff != "" {
				t.Errorf("issues in the bucket, each once (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEveryAccessibleProject: without a project parameter, Sentry's issue
// search covers only the projects of the token user's teams. The stream asks
// for every accessible project (project=-1), so a user token that is a member
// of half the projects still gets every project's issues, as an internal
// integration does. Where the organisation's membership is closed, a user
// sees only their teams' projects, whatever is asked.
func TestEveryAccessibleProject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		token      func(member []string) sentrysim.TokenInfo
		wantMember bool // only the member projects' issues
	}{
		{name: "internal_integration", token: func([]string) sentrysim.TokenInfo { return sentrysim.TokenInfo{} }},
		{name: "user_member_of_half", token: func(m []string) sentrysim.TokenInfo {
			return sentrysim.TokenInfo{Kind: sentrysim.TokenUser, Projects: m}
		}},
		{name: "user_closed_membership", wantMember: true, token: func(m []string) sentrysim.TokenInfo {
			return sentrysim.TokenInfo{Kind: sentrysim.TokenUser, Projects: m, NoGlobalAccess: true}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 3, sentrysim.Config{})
			var member []string
			memberIssues := map[string]bool{}
			for i := range 4 {
				p := w.Sim.AddProject(fmt.Sprintf("p%d", i), fmt.Sprintf("P%d", i))
				if i%2 == 0 {
					member = append(member, p.ID)
				}
				for k := range 3 {
					w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-time.Hour), Message: fmt.Sprintf("E%d: %d", i, k)})
				}
			}
			for _, is := range w.Sim.Issues() {
				memberIssues[is.ID] = slices.Contains(member, is.ProjectID)
			}
			w.Sim.SetToken("user", tc.token(member))
			w.Clock.Advance(time.Minute)
			if _, err := w.runWith(options(), nil, "user"); err != nil {
				t.Fatal(err)
			}
			want := w.simIDs()
			if tc.wantMember {
				want = slices.DeleteFunc(want, func(id string) bool { return !memberIssues[id] })
			}
			if diff := cmp.Diff(want, w.bucketIDs()); diff != "" {
				t.Errorf("issues in the bucket (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNoVisibleProject: when the token can see no project, Sentry answers
// the issue search with 200 [] and no Link header. That is a complete, empty
// answer: the run succeeds, the window and the sweep complete, and nothing is
// written.
func TestNoVisibleProject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(sim *sentrysim.Server)
	}{
		{name: "organisation_without_projects", setup: func(*sentrysim.Server) {}},
		{name: "user_without_access", setup: func(sim *sentrysim.Server) {
			p := sim.AddProject("web", "Web")
			sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-time.Hour), Message: "E: x"})
			sim.SetToken("tok", sentrysim.TokenInfo{Kind: sentrysim.TokenUser, NoGlobalAccess: true})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 1, sentrysim.Config{})
			tc.setup(w.Sim)
			w.Clock.Advance(time.Minute)
			s, err := w.runWith(options(), nil, "tok")
			if err != nil || s.Records != 0 || s.WorkRemaining || s.Pages != 2 {
				t.Fatalf("run: records %d, work remaining %v, pages %d, err %v; want 0, false, 2 (one empty page per pass), nil",
					s.Records, s.WorkRemaining, s.Pages, err)
			}
			st := w.readState()
			if st.Window != nil || st.Sweep != nil || st.Watermark.IsZero() || st.SweptTo.IsZero() {
				t.Errorf("state: window %v, sweep %v, watermark %s, swept to %s; want both passes completed", st.Window, st.Sweep, st.Watermark, st.SweptTo)
			}
			if ids := w.bucketIDs(); len(ids) != 0 {
				t.Errorf("bucket holds %v, want nothing", ids)
			}
		})
	}
}
