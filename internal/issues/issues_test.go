package issues

import (
	"encoding/json"
	"errors"
	"fmt"
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
