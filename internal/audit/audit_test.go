package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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

// auditIDs returns the ids of the audit entries in the bucket, in order,
// failing on lines that are not audit entries.
func (w *world) auditIDs(seed int64) []string {
	var out []string
	for _, line := range w.Lines(collecttest.AuditPrefix) {
		var e struct {
			ID          string    `json:"id"`
			Event       *string   `json:"event"`
			DateCreated time.Time `json:"dateCreated"`
		}
		if err := json.Unmarshal(line, &e); err != nil || e.ID == "" || e.Event == nil || e.DateCreated.IsZero() {
			w.T.Errorf("seed %d: a line is not an audit-log entry: %.200s", seed, line)
			continue
		}
		out = append(out, e.ID)
	}
	return out
}

func (w *world) runAudit(runID string, crashAt int64, mode int, faultP float64) (engine.Summary, bool, error) {
	in, ctx, cancel := w.Faulty(collecttest.Quiet(context.Background()), crashAt, mode, faultP)
	defer cancel()
	cl := w.Client("tok")
	s, err := w.stream(runID, in, cl).Run(ctx, 7*time.Minute)
	return s, in.Fired(), err
}

func runAuditTrial(t *testing.T, seed int64) {
	r := rand.New(rand.NewPCG(uint64(seed), 0xa0d17))
	cfg := sentrysim.Config{}
	if r.IntN(4) == 0 {
		cfg.RateLimits = sentrysim.RateLimitConfig{Default: sentrysim.Limit{Limit: 2, Window: time.Second, Concurrent: 2}}
	}
	w := newWorld(t, seed, cfg)
	w.Sim.Populate(sentrysim.Scenario{Projects: 1 + r.IntN(3), Backlog: 10, BacklogSpan: 3 * time.Hour})
	w.Sim.SetFaults(sentrysim.Faults{P5xx: 0.03, P502HTML: 0.01, PTruncated: 0.02})
	storeFaults := []float64{0, 0.03}[r.IntN(2)]
	rounds := 4 + r.IntN(6)
	var crashes, recovered, late int
	lastVisible := w.Clock.Now()
	for round := range rounds {
		// New entries: most on time, some visible late with their original
		// time (within the overlap, DefaultAuditOverlap), some still
		// pending when the run starts (they appear during or after it).
		now := w.Clock.Now()
		for range r.IntN(120) {
			at, vis := now.Add(-time.Duration(r.IntN(60))*time.Second), time.Time{}
			switch x := r.Float64(); {
			case x < 0.2:
				delay := time.Duration(r.Int64N(int64(50 * time.Minute)))
				at, vis = now.Add(-delay), now
				late++
			case x < 0.3:
				vis = now.Add(time.Duration(r.Int64N(int64(5 * time.Minute))))
				at = vis.Add(-time.Duration(r.Int64N(int64(50 * time.Minute))))
				late++
			}
			w.Sim.AddAuditLog(sentrysim.AuditSpec{Event: "member.invite", At: at, VisibleAt: vis, Note: "round " + strconv.Itoa(round)})
			if vis.After(lastVisible) {
				lastVisible = vis
			}
		}
		if r.IntN(2) == 0 {
			s, fired, _ := w.runAudit(fmt.Sprintf("crash%d", round), 3+r.Int64N(6), r.IntN(3), storeFaults)
			recovered += s.ObjectsRecovered
			if fired {
				crashes++
			}
			w.Clock.Advance(4 * time.Minute)
		}
		s, _, _ := w.runAudit(fmt.Sprintf("r%d", round), 0, 0, storeFaults)
		recovered += s.ObjectsRecovered
		w.Clock.Advance(time.Duration(1+r.IntN(12)) * time.Minute)
	}
	if w.Clock.Now().Before(lastVisible) {
		w.Clock.Set(lastVisible)
	}
	w.Sim.SetFaults(sentrysim.Faults{})
	var quiet engine.Summary
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatalf("seed %d: still work remaining after 50 quiet runs", seed)
		}
		w.Clock.Advance(4 * time.Minute)
		s, _, err := w.runAudit(fmt.Sprintf("final%d", i), 0, 0, 0)
		if err == nil && !s.WorkRemaining && !s.LeaseHeld {
			quiet = s
			break
		}
	}
	got := w.auditIDs(seed)
	want := w.Sim.AuditLogIDs()
	counts := make(map[string]int)
	for _, id := range got {
		counts[id]++
	}
	for id, n := range counts {
		if n > 1 {
			t.Errorf("seed %d: audit entry %s written %d times", seed, id, n)
		}
	}
	slices.Sort(want)
	uniq := slices.Compact(slices.Sorted(func(yield func(string) bool) {
		for id := range counts {
			if !yield(id) {
				return
			}
		}
	}))
	if diff := cmp.Diff(want, uniq); diff != "" {
		t.Errorf("seed %d: audit ids in the bucket (-ground truth +bucket):\n%s", seed, diff)
	}
	// An idle sweep re-reads the overlap and writes nothing.
	w.Clock.Advance(10 * time.Minute)
	s, _, err := w.runAudit("idle", 0, 0, 0)
	if err != nil || s.Records != 0 || s.Pages == 0 {
		t.Errorf("seed %d: idle run %+v, %v: want pages read and no records", seed, s, err)
	}
	t.Logf("seed %d: %d rounds, %d entries (%d late), %d crashes, %d objects recovered, last quiet run %d pages",
		seed, rounds, len(want), late, crashes, recovered, quiet.Pages)
}

// TestAuditStreamAgainstSimulator runs randomised trials of the audit-log
// stream: entries arriving between and during runs, some late with their
// original time (within the overlap), Sentry and storage faults, crashes at
// storage boundaries; the bucket must hold exactly the simulator's entries,
// each once, and nothing else.
func TestAuditStreamAgainstSimulator(t *testing.T) {
	t.Parallel()
	collecttest.SeededTrials(t, 8, 3, runAuditTrial)
}

// TestAuditRecoversUncommittedObject crashes between a data object's write
// and the state commit; the next run reads the object's ids back.
func TestAuditRecoversUncommittedObject(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3, sentrysim.Config{})
	for i := range 5 {
		w.Sim.AddAuditLog(sentrysim.AuditSpec{Event: "member.add", At: collecttest.T0.Add(-time.Duration(i+1) * time.Minute)})
	}
	crashy := &sinktest.Hooked{Store: w.Store}
	armed, created := true, false
	crashy.Before = func(_ int, op, name string) error {
		if op == "create" {
			created = true
		}
		if armed && op == "write" && created && name == collecttest.StatePrefix+"audit/state.json" {
			return sinktest.ErrInjected
		}
		return nil
	}
	run := func() (engine.Summary, error) {
		return w.stream("r", crashy, w.Client("tok")).Run(collecttest.Quiet(t.Context()), 7*time.Minute)
	}
	if _, err := run(); !errors.Is(err, sinktest.ErrInjected) {
		t.Fatalf("first run: %v, want the injected crash", err)
	}
	armed = false
	// A new entry makes the next object differ from the one left behind.
	w.Sim.AddAuditLog(sentrysim.AuditSpec{Event: "org.edit", At: collecttest.T0})
	s, err := run()
	if err != nil || s.ObjectsRecovered != 1 || s.Records != 1 {
		t.Fatalf("recovery run: %+v, %v; want 1 object recovered and only the new entry written", s, err)
	}
	if got := w.auditIDs(0); len(got) != 6 {
		t.Errorf("bucket holds %v, want the 6 entries once", got)
	}
}

// world is a simulated organisation for the audit stream.
type world struct {
	*collecttest.World
}

func newWorld(t *testing.T, seed int64, cfg sentrysim.Config) *world {
	t.Helper()
	return &world{collecttest.New(t, seed, cfg, "dir")}
}

// stream returns the audit stream of one run over st, reading through cl.
func (w *world) stream(runID string, st sinktest.Store, cl *sentry.Client) *Stream {
	w.T.Helper()
	s, err := New(Options{
		Org: collecttest.Org, DataPrefix: collecttest.AuditPrefix, StatePrefix: collecttest.StatePrefix,
		Overlap: DefaultOverlap, InitialLookback: 24 * time.Hour,
	}, cl, w.Env(runID, st, cl))
	if err != nil {
		w.T.Fatal(err)
	}
	return s
}

// A row with a missing id or an unreadable date does not fail the page (one
// such row would block the stream for ever): it is counted as invalid and
// never written, and the other rows are collected.
func TestBadRowsAreCountedAndSkipped(t *testing.T) {
	t.Parallel()
	ts := collecttest.T0.Add(-time.Hour).Format(time.RFC3339)
	entry := func(id, date string) string {
		return `{` + id + `"event":"member.add","dateCreated":` + date + `,"data":{}}`
	}
	body := `{"rows":[` + strings.Join([]string{
		entry(`"id":"9",`, `"`+ts+`"`),
		entry(``, `"`+ts+`"`),              // no id
		entry(`"id":"10",`, `"last week"`), // unreadable dateCreated
		entry(`"id":"11",`, `"`+ts+`"`),
	}, ",") + `],"options":[]}`
	w := newWorld(t, 1, sentrysim.Config{})
	cl := collecttest.OnePage(t, "/api/0/organizations/acme/audit-logs/", body)
	s, err := w.stream("r", nil, cl).Run(collecttest.Quiet(t.Context()), 7*time.Minute)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if s.Records != 2 || s.InvalidRows != 2 {
		t.Errorf("records %d, invalid rows %d; want 2 and 2", s.Records, s.InvalidRows)
	}
	lines := w.Lines(collecttest.AuditPrefix)
	if len(lines) != 2 || !strings.Contains(string(lines[0]), `"id":"9"`) || !strings.Contains(string(lines[1]), `"id":"11"`) {
		t.Errorf("bucket lines %q; want entries 9 and 11 only", lines)
	}
}

// stopsInFlight is a Sentry whose audit-log request is in flight when the
// soft stop comes: it gives the stop and answers when the request is cut.
type stopsInFlight struct{ stop chan struct{} }

func (s stopsInFlight) ListAuditLogs(ctx context.Context, _ sentry.AuditLogQuery) (sentry.Page[sentry.AuditLogEntry], error) {
	close(s.stop)
	<-ctx.Done()
	return sentry.Page[sentry.AuditLogEntry]{}, ctx.Err()
}

// A run that the soft stop (or the budget) ends in the middle of a sweep
// still reports how far behind the collected log is: lag_seconds is what
// the lag metric reads, and a stopped run is when it matters.
func TestStoppedRunReportsLag(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5, sentrysim.Config{})
	newest := collecttest.T0.Add(-time.Minute)
	w.Sim.AddAuditLog(sentrysim.AuditSpec{Event: "member.add", At: newest})
	if s, err := w.stream("r1", nil, w.Client("tok")).Run(collecttest.Quiet(t.Context()), 7*time.Minute); err != nil || s.Records != 1 {
		t.Fatalf("first run: %+v, %v; want the entry written", s, err)
	}
	w.Clock.Advance(10 * time.Minute)
	api := stopsInFlight{stop: make(chan struct{})}
	env := w.Env("r2", nil, nil)
	env.Stop = api.stop
	st, err := New(Options{Org: collecttest.Org, DataPrefix: collecttest.AuditPrefix, StatePrefix: collecttest.StatePrefix}, api, env)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Run(collecttest.Quiet(t.Context()), 7*time.Minute)
	if err != nil || !s.WorkRemaining {
		t.Fatalf("stopped run: %+v, %v; want work remaining and no error", s, err)
	}
	if want := w.Clock.Now().Sub(newest); s.Lag != want {
		t.Errorf("stopped run reports lag %s, want %s (now − the newest entry collected)", s.Lag, want)
	}
}
