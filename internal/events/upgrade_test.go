package events

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Upgrade from the previous version: testdata/v1 (its README says how it was
// made) is a bucket that version's events stream left when it died mid-run,
// with windows in progress, an object written but never committed, and an
// unreleased lease. Today's stream must take over from there exactly once:
// it must recognise the old object names (the uncommitted object is found
// under the checkpoint's next name and absorbed, not written again) and read
// the old checkpoints and lease documents.

// v1Time is the fake clock of the fixture's first old run; the second ran a
// minute later, and its lease expires at v1LeaseExpiry.
var (
	v1Time        = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	v1LeaseExpiry = v1Time.Add(4 * time.Minute)
)

// v1Projects are the fixture's projects in the order they were added to
// the simulator, with the ids it gave them.
var v1Projects = []struct{ slug, id string }{
	{"api", "4506000000007919"},
	{"web", "4506000000015838"},
	{"worker", "4506000000023757"},
}

// v1Events are the events the fixture's simulator held, with their ids and
// timestamps. The last four were not visible to the old runs: the two late
// api events (visible at 12:05) shift the rows of api's window in progress
// down by two, so the page after its stored cursor begins with …0007, which
// the old run wrote and then pruned from seen (newer than the frontier,
// older than the window's last overlap): only the frontier skips it.
var v1Events = []struct {
	slug, id    string
	at, visible time.Time // visible zero: at its timestamp
}{
	{"api", "a1000000000000000000000000000001", v1Time.Add(-200 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000002", v1Time.Add(-170 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000003", v1Time.Add(-140 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000004", v1Time.Add(-110 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000005", v1Time.Add(-80 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000006", v1Time.Add(-50 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000007", v1Time.Add(-40 * time.Minute), time.Time{}},
	{"api", "a1000000000000000000000000000008", v1Time.Add(-10 * time.Minute), time.Time{}},
	{"web", "b2000000000000000000000000000001", v1Time.Add(-90 * time.Minute), time.Time{}},
	{"web", "b2000000000000000000000000000002", v1Time.Add(-60 * time.Minute), time.Time{}},
	{"web", "b2000000000000000000000000000003", v1Time.Add(-30 * time.Minute), time.Time{}},
	{"web", "b2000000000000000000000000000004", v1Time.Add(-15 * time.Minute), time.Time{}},
	{"web", "b2000000000000000000000000000005", v1Time.Add(-5 * time.Minute), time.Time{}},
	{"worker", "c3000000000000000000000000000001", v1Time.Add(-25 * time.Minute), time.Time{}},
	{"worker", "c3000000000000000000000000000002", v1Time.Add(-12 * time.Minute), time.Time{}},
	{"api", "a100000000000000000000000000000a", v1Time.Add(-15 * time.Minute), v1Time.Add(5 * time.Minute)},
	{"api", "a100000000000000000000000000000b", v1Time.Add(-16 * time.Minute), v1Time.Add(5 * time.Minute)},
	{"api", "a1000000000000000000000000000009", v1Time.Add(4 * time.Minute), time.Time{}},
	{"worker", "c3000000000000000000000000000003", v1Time.Add(3 * time.Minute), time.Time{}},
}

const (
	// v1Uncommitted is the object the old run wrote for api and died
	// before committing; v1UncommittedIDs are its events.
	v1Uncommitted = "sentry/events/2026/03/10/11/acme-4506000000007919-1773143880-000002.ndjson"
	v1LeaseKey    = "sentry/state/events/lease.json"
)

var v1UncommittedIDs = []string{
	"a1000000000000000000000000000003",
	"a1000000000000000000000000000004",
	"a1000000000000000000000000000005",
}

// v1Checkpoint is the part of the previous version's checkpoint format the
// test reads, declared here rather than with today's types so that a change
// to today's field names cannot go unnoticed.
type v1Checkpoint struct {
	Watermark time.Time `json:"watermark"`
	Window    *struct {
		Start  time.Time `json:"start"`
		End    time.Time `json:"end"`
		Cursor string    `json:"cursor"`
	} `json:"window"`
	NextSeq int64 `json:"next_seq"`
}

// v1Checkpoint returns the fixture's checkpoint of project id.
func (u *upgrade) v1Checkpoint(id string) v1Checkpoint {
	u.t.Helper()
	var cp v1Checkpoint
	if err := json.Unmarshal(u.fixture[collecttest.StatePrefix+"events/projects/"+id+".json"], &cp); err != nil {
		u.t.Fatalf("old checkpoint of %s: %v", id, err)
	}
	return cp
}

// upgrade is the fixture's bucket copied into a local directory, and today's
// simulator holding the same organisation.
type upgrade struct {
	t       *testing.T
	w       *collecttest.World
	store   *sink.Dir
	fixture map[string][]byte // object name → bytes, as the old version left them

	mu      sync.Mutex
	queries []sentry.EventsQuery // every events query of today's runs
}

// recorder is the Sentry client, recording the events queries.
type recorder struct {
	*sentry.Client
	u *upgrade
}

func (r recorder) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	r.u.mu.Lock()
	r.u.queries = append(r.u.queries, q)
	r.u.mu.Unlock()
	return r.Client.ListEvents(ctx, q)
}

// newUpgrade copies the fixture's bucket, with its lease document replaced
// by lease when that is not nil, and starts the simulator.
func newUpgrade(t *testing.T, lease []byte) *upgrade {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "v1", "bucket"))); err != nil {
		t.Fatalf("copy the fixture: %v", err)
	}
	if lease != nil {
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(v1LeaseKey)), lease, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fixture := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		fixture[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fixture[v1Uncommitted]; !ok {
		t.Fatalf("the fixture has no %s", v1Uncommitted)
	}
	store, err := sink.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	w := collecttest.New(t, 1, sentrysim.Config{Org: "acme", SelfHosted: true, OutcomeDelay: -1}, "memory")
	w.Store = store
	if !w.Clock.Now().Equal(v1Time) {
		t.Fatalf("the world starts at %v, the fixture at %v", w.Clock.Now(), v1Time)
	}
	ids := map[string]string{}
	for _, p := range v1Projects {
		got := w.Sim.AddProject(p.slug, p.slug).ID
		if got != p.id {
			t.Fatalf("project %s: the simulator gave id %s, the fixture has %s", p.slug, got, p.id)
		}
		ids[p.slug] = got
	}
	for _, e := range v1Events {
		w.Sim.AddEvent(ids[e.slug], sentrysim.EventSpec{ID: e.id, Timestamp: e.at, VisibleAt: e.visible, Message: "Error: " + e.slug})
	}
	return &upgrade{t: t, w: w, store: store, fixture: fixture}
}

// stream is today's events stream over the copied bucket, with the options
// the fixture was made with (except the page cap).
func (u *upgrade) stream(runID string) *Stream {
	u.t.Helper()
	cl := u.w.Client("tok")
	s, err := New(Options{
		Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
		MaxPagesPerProject: 1, Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
	}, recorder{cl, u}, u.w.Env(runID, nil, cl))
	if err != nil {
		u.t.Fatalf("New: %v", err)
	}
	return s
}

// runAt runs today's stream at clock time at until no work remains and
// returns the summaries.
func (u *upgrade) runAt(at time.Time, runID string) []engine.Summary {
	u.t.Helper()
	u.w.Clock.Set(at)
	var out []engine.Summary
	for range 20 {
		sum, err := u.stream(runID).Run(collecttest.Quiet(u.t.Context()), 7*time.Minute)
		if err != nil {
			u.t.Fatalf("run at %v: %v", at, err)
		}
		out = append(out, sum)
		if sum.LeaseHeld || !sum.WorkRemaining {
			return out
		}
	}
	u.t.Fatalf("work still remains after %d runs at %v", len(out), at)
	return nil
}

// names lists the objects under prefix.
func (u *upgrade) names(prefix string) []string {
	u.t.Helper()
	names, err := u.store.List(u.t.Context(), prefix)
	if err != nil {
		u.t.Fatal(err)
	}
	return names
}

// read returns an object's bytes.
func (u *upgrade) read(name string) []byte {
	u.t.Helper()
	data, _, err := u.store.Read(u.t.Context(), name)
	if err != nil {
		u.t.Fatalf("read %s: %v", name, err)
	}
	return data
}

// checkOldObjects fails unless every data object the old version left is
// still there, byte for byte.
func (u *upgrade) checkOldObjects() {
	u.t.Helper()
	for name, want := range u.fixture {
		if !strings.HasPrefix(name, collecttest.DataPrefix) {
			continue
		}
		if got := u.read(name); !bytes.Equal(got, want) {
			u.t.Errorf("old object %s was rewritten (%d bytes, was %d)", name, len(got), len(want))
		}
	}
}

// checkResumed fails unless each project's first read by today's stream
// continued from its old checkpoint: a window in progress at its stored
// cursor, a completed one at its watermark − Overlap.
func (u *upgrade) checkResumed() {
	u.t.Helper()
	u.mu.Lock()
	queries := slices.Clone(u.queries)
	u.mu.Unlock()
	for _, p := range v1Projects {
		old := u.v1Checkpoint(p.id)
		i := slices.IndexFunc(queries, func(q sentry.EventsQuery) bool { return q.Project == p.id })
		if i < 0 {
			u.t.Errorf("project %s was never read", p.slug)
			continue
		}
		q := queries[i]
		want := sentry.EventsQuery{Org: collecttest.Org, Project: p.id, Start: old.Watermark.Add(-30 * time.Minute)}
		if w := old.Window; w != nil {
			want.Start, want.End, want.Cursor = w.Start, w.End, w.Cursor
		}
		if !q.Start.Equal(want.Start) || (old.Window != nil && (!q.End.Equal(want.End) || q.Cursor != want.Cursor)) {
			u.t.Errorf("project %s: first read %+v, want it to continue the old checkpoint: %+v", p.slug, q, want)
		}
	}
}

// checkUpgraded checks the bucket after today's stream caught up: every
// event on exactly one line, the old objects untouched (the uncommitted one
// absorbed, its events not written again), and checkpoints and lease in
// today's form.
func (u *upgrade) checkUpgraded(sums []engine.Summary, runID string) {
	u.t.Helper()
	u.checkResumed()
	rep := u.w.Verify()
	if got, want := rep.Distinct(), len(v1Events); got != want {
		u.t.Errorf("distinct events stored: got %d, want %d", got, want)
	}
	for _, id := range v1UncommittedIDs {
		if n := rep.Stored[v1Projects[0].id][id]; n != 1 {
			u.t.Errorf("event %s of the uncommitted object: on %d lines, want 1", id, n)
		}
	}
	recovered, objects := 0, 0
	for _, s := range sums {
		recovered += s.ObjectsRecovered
		objects += s.Objects
	}
	if recovered != 1 {
		u.t.Errorf("objects recovered: got %d, want 1 (the old run's uncommitted object)", recovered)
	}
	u.checkOldObjects()

	// Today's objects: under new names only, none holding an event of the
	// uncommitted object.
	var fresh []string
	for _, n := range u.names(collecttest.DataPrefix) {
		if _, old := u.fixture[n]; !old {
			fresh = append(fresh, n)
		}
	}
	if len(fresh) != objects {
		u.t.Errorf("new objects in the bucket %v, the runs report %d", fresh, objects)
	}
	for _, n := range fresh {
		data := u.read(n)
		for _, id := range v1UncommittedIDs {
			if bytes.Contains(data, []byte(`"id":"`+id+`"`)) {
				u.t.Errorf("new object %s holds %s, an event of the uncommitted object", n, id)
			}
		}
	}

	// Checkpoints: every project caught up, the sequence past the old
	// objects, and the fields this version adds recorded.
	s := u.stream(runID)
	end := u.w.Clock.Now().Add(-2 * time.Minute).Truncate(time.Second)
	for _, p := range v1Projects {
		doc, err := loadCheckpoint(u.t.Context(), s, p.id, "")
		if err != nil {
			u.t.Fatalf("project %s: %v", p.slug, err)
		}
		cp, old := doc.V, u.v1Checkpoint(p.id)
		if cp.Window != nil || !cp.Watermark.Equal(end) {
			u.t.Errorf("project %s: window %+v watermark %v, want none and %v", p.slug, cp.Window, cp.Watermark, end)
		}
		if cp.NextSeq <= old.NextSeq {
			u.t.Errorf("project %s: next_seq %d, want past the old %d", p.slug, cp.NextSeq, old.NextSeq)
		}
		if cp.UpdatedBy != runID {
			u.t.Errorf("project %s: updated by %q, want %q", p.slug, cp.UpdatedBy, runID)
		}
		if len(cp.Reads) == 0 || cp.Reads[len(cp.Reads)-1].E != end.Unix() {
			u.t.Errorf("project %s: reads %+v, want the last ending at %v", p.slug, cp.Reads, end)
		}
		if cp.HoursSince == 0 || len(cp.Hours) == 0 {
			u.t.Errorf("project %s: hours %v since %d, want them counted", p.slug, cp.Hours, cp.HoursSince)
		}
		raw := u.read(s.CheckpointKey(p.id))
		for _, key := range []string{`"reads":`, `"hours":`, `"hours_since":`} {
			if !bytes.Contains(raw, []byte(key)) {
				u.t.Errorf("project %s: checkpoint has no %s: %s", p.slug, key, raw)
			}
		}
	}

	// The lease: taken over and released in today's format.
	var lease struct {
		Owner      string     `json:"owner"`
		ExpiresAt  time.Time  `json:"expires_at"`
		ReleasedAt *time.Time `json:"released_at"`
	}
	if err := json.Unmarshal(u.read(v1LeaseKey), &lease); err != nil {
		u.t.Fatalf("lease: %v", err)
	}
	if lease.Owner != runID || lease.ExpiresAt.IsZero() || lease.ReleasedAt == nil {
		u.t.Errorf("lease after the run: %+v, want released by %s", lease, runID)
	}
}

// The fixture as the old version left it: its crashed run's lease has
// expired when today's version starts.
func TestUpgradeFromV1(t *testing.T) {
	t.Parallel()
	u := newUpgrade(t, nil)
	sums := u.runAt(v1LeaseExpiry.Add(6*time.Minute), "new-run")
	u.checkUpgraded(sums, "new-run")
}

// A lease in the previous version's fallback format (owner, expiry,
// acquired) is not today's: its expiry cannot be read, so it counts as
// expired and never blocks the stream, even before the old expiry; the
// checkpoints' compare-and-swap keeps a takeover safe.
func TestUpgradeFromV1FallbackLease(t *testing.T) {
	t.Parallel()
	lease, err := os.ReadFile(filepath.Join("testdata", "v1", "fallback-lease.json"))
	if err != nil {
		t.Fatal(err)
	}
	u := newUpgrade(t, lease)
	early := u.runAt(v1LeaseExpiry.Add(-2*time.Minute), "new-run")
	if early[0].LeaseHeld {
		t.Fatalf("the fallback-format lease blocked the stream: %+v", early[0])
	}
	sums := append(early, u.runAt(v1LeaseExpiry.Add(6*time.Minute), "new-run")...)
	u.checkUpgraded(sums, "new-run")
}

// The crashed old run's lease, in the shared format, is honoured until it
// expires: today's run then does nothing at all, and afterwards takes over.
func TestUpgradeWaitsForTheV1LeaseToExpire(t *testing.T) {
	t.Parallel()
	u := newUpgrade(t, nil)
	held := u.runAt(v1LeaseExpiry.Add(-time.Minute), "new-run")
	if len(held) != 1 || !held[0].LeaseHeld || held[0].LeaseHolder != "old-run-2" || !held[0].LeaseUntil.Equal(v1LeaseExpiry) {
		t.Fatalf("before the old lease expires: %+v, want held by old-run-2 until %v", held, v1LeaseExpiry)
	}
	var after []string
	for _, n := range u.names("") {
		after = append(after, n)
		if want, ok := u.fixture[n]; !ok || !bytes.Equal(u.read(n), want) {
			t.Errorf("%s changed while the old lease was held", n)
		}
	}
	if len(after) != len(u.fixture) {
		t.Errorf("objects while the old lease was held: %v, want the fixture's %d", after, len(u.fixture))
	}
	sums := u.runAt(v1LeaseExpiry.Add(6*time.Minute), "new-run")
	u.checkUpgraded(sums, "new-run")
}
