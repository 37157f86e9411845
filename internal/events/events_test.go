package events

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
	"github.com/secops-collectors/sentry-gcs/internal/state"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	testData  = "sentry/events/"
	testState = "sentry/state/"
)

// store is what the tests hand to a stream: a data and state store.
type store interface {
	engine.Objects
	state.Objects
}

// env is an events stream over fakes.
type env struct {
	t      *testing.T
	clk    *clock.Fake
	api    *collecttest.Fake
	store  *sink.Memory
	opts   Options
	budget time.Duration
	stop   <-chan struct{}
	logger *slog.Logger
}

func newEnv(t *testing.T, projects ...string) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	return &env{
		t:      t,
		clk:    clk,
		api:    collecttest.NewFake(projects...),
		store:  sink.NewMemory(),
		budget: 7 * time.Minute,
		logger: slog.New(slog.DiscardHandler),
		opts: Options{
			Org:                "acme",
			DataPrefix:         testData,
			StatePrefix:        testState,
			MaxPagesPerProject: -1,
			Lag:                2 * time.Minute,
			Overlap:            30 * time.Minute,
			InitialLookback:    24 * time.Hour,
		},
	}
}

// ctx carries the env's logger.
func (e *env) ctx() context.Context { return logging.WithLogger(e.t.Context(), e.logger) }

// streamWith returns a stream reading through api and writing to data and
// state (nil: the env's store).
func (e *env) streamWith(api API, data, st store) *Stream {
	e.t.Helper()
	if data == nil {
		data = e.store
	}
	if st == nil {
		st = e.store
	}
	s, err := New(e.opts, api, engine.Env{Data: data, State: st, Clock: e.clk, Stop: e.stop, Counters: e.api.RequestCounts})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return s
}

func (e *env) stream(data, st store) *Stream { return e.streamWith(e.api, data, st) }

func (e *env) runWith(s *Stream) (engine.Summary, error) { return s.Run(e.ctx(), e.budget) }

func (e *env) run() engine.Summary {
	e.t.Helper()
	s, err := e.runWith(e.stream(nil, nil))
	if err != nil {
		e.t.Fatalf("Run: %v", err)
	}
	return s
}

func (e *env) checkpoint(pid string) *checkpoint {
	e.t.Helper()
	doc, err := loadCheckpoint(e.t.Context(), e.stream(nil, nil), pid, "")
	if err != nil || !doc.Exists() {
		e.t.Fatalf("read checkpoint: %v (exists %v)", err, err == nil && doc.Exists())
	}
	return &doc.V
}

func (e *env) check() *sentrysim.Report {
	e.t.Helper()
	rep, err := sentrysim.Verify(e.t.Context(), e.store, testData, e.api.Truth())
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK() {
		e.t.Errorf("bucket: %s", rep)
	}
	return rep
}

func TestWindowBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 3, t0.Add(-time.Hour))
	e.clk.Set(t0.Add(500 * time.Millisecond))
	s := e.run()
	if got, want := s.Records, 3; got != want {
		t.Errorf("events written: got %d, want %d", got, want)
	}
	q := e.api.Queries()[0]
	if got, want := q.Start, t0.Add(-24*time.Hour); !got.Equal(want) {
		t.Errorf("first window start: got %v, want %v", got, want)
	}
	if got, want := q.End, t0.Add(-2*time.Minute); !got.Equal(want) {
		t.Errorf("first window end (floored to the second): got %v, want %v", got, want)
	}
	cp := e.checkpoint("1")
	if cp.Window != nil || !cp.Watermark.Equal(t0.Add(-2*time.Minute)) {
		t.Errorf("after the window: window %+v watermark %v, want none and %v", cp.Window, cp.Watermark, t0.Add(-2*time.Minute))
	}

	e.clk.Advance(10 * time.Minute)
	e.api.ResetQueries()
	e.run()
	q = e.api.Queries()[0]
	if got, want := q.Start, t0.Add(-32*time.Minute); !got.Equal(want) {
		t.Errorf("second window start (W − overlap): got %v, want %v", got, want)
	}
	if got, want := q.End, t0.Add(8*time.Minute); !got.Equal(want) {
		t.Errorf("second window end: got %v, want %v", got, want)
	}
	e.check()
}

func TestNothingNewOpensNoWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.run()
	e.api.ResetQueries()
	s := e.run() // same instant: end == W
	if len(e.api.Queries()) != 0 || s.WorkRemaining {
		t.Errorf("queries %d, work remaining %v; want none", len(e.api.Queries()), s.WorkRemaining)
	}
}

func TestResumeFromCursorAfterPageCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.opts.MaxPagesPerProject = 2
	e.api.Add("1", 550, t0.Add(-3*time.Hour))
	e.api.Add("2", 30, t0.Add(-3*time.Hour))
	s := e.run()
	if got, want := s.Records, 230; got != want {
		t.Errorf("first run events: got %d, want %d", got, want)
	}
	if !s.WorkRemaining {
		t.Error("first run: want work remaining")
	}
	cp := e.checkpoint("1")
	if cp.Window == nil || cp.Window.Cursor != "0:200:0" || !cp.Watermark.IsZero() {
		t.Fatalf("capped window: got %+v watermark %v, want cursor 0:200:0 and no watermark", cp.Window, cp.Watermark)
	}
	// Events that become visible late (within the overlap) arrive at the
	// top: rows shift, the stored cursor re-reads some rows (skipped), and
	// the late events, newer than the frontier, come with the next window.
	e.api.Add("1", 40, t0.Add(-20*time.Minute))
	e.clk.Advance(time.Minute)
	for runs := 1; s.WorkRemaining; runs++ {
		if runs > 10 {
			t.Fatal("no end after 10 runs")
		}
		s = e.run()
	}
	e.clk.Advance(time.Minute)
	e.run()
	rep := e.check()
	if got, want := rep.Distinct(), 620; got != want {
		t.Errorf("distinct events: got %d, want %d", got, want)
	}
}

func TestWatermarkAdvancesOnlyAfterDurableWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 150, t0.Add(-time.Hour))
	failing := &sinktest.Hooked{Store: e.store, Before: func(_ int, op, _ string) error {
		if op == "create" {
			return errors.New("injected: bucket unavailable")
		}
		return nil
	}}
	_, err := e.runWith(e.stream(failing, nil))
	if err == nil || !failure.IsTransient(err) {
		t.Fatalf("Run with failing data store: got %v, want a transient error", err)
	}
	cp := e.checkpoint("1")
	if cp.Window == nil || !cp.Watermark.IsZero() || cp.Window.Cursor != "" || len(cp.Seen) != 0 {
		t.Fatalf("after a failed write: got window %+v watermark %v seen %d; want the persisted window, no progress", cp.Window, cp.Watermark, len(cp.Seen))
	}
	s := e.run()
	if s.Records != 150 {
		t.Errorf("rerun events: got %d, want 150", s.Records)
	}
	if cp := e.checkpoint("1"); cp.Watermark.IsZero() {
		t.Error("watermark not advanced after the durable write")
	}
	e.check()
}

func TestWindowPersistedBeforeObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 5, t0.Add(-time.Hour))
	var ops []string
	rec := &sinktest.Hooked{Store: e.store, Before: func(_ int, op, name string) error {
		ops = append(ops, op+" "+strings.TrimPrefix(strings.TrimPrefix(name, testState), testData))
		return nil
	}}
	if _, err := e.runWith(e.stream(rec, rec)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"read events/lease.json",
		"write events/lease.json",
		"read events/projects/1.json",
		"write events/projects/1.json", // the window, before any object
		"create 2026/03/10/11/acme-1-1773143880-000001.ndjson",
		"write events/projects/1.json", // then the commit
		"write events/lease.json",      // release (compare-and-swap on the generation held)
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
}

func TestRecoversUncommittedObject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		newEvents  int // events arriving before the rerun
		wantRecov  int
		wantEvents int
	}{
		{name: "same_content_is_a_retry", newEvents: 0, wantRecov: 0, wantEvents: 120},
		{name: "different_content_is_absorbed", newEvents: 7, wantRecov: 1, wantEvents: 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1")
			e.api.Add("1", 120, t0.Add(-time.Hour))
			// Crash between the object's creation and the commit.
			created := false
			crash := &sinktest.Hooked{Store: e.store, Before: func(_ int, op, name string) error {
				if op == "create" {
					created = true
				}
				if created && op == "write" && strings.Contains(name, "projects/") {
					return errors.New("injected crash before commit")
				}
				return nil
			}}
			if _, err := e.runWith(e.stream(crash, crash)); err == nil {
				t.Fatal("crashed run: want an error")
			}
			e.api.Add("1", tc.newEvents, t0.Add(-30*time.Minute))
			s := e.run()
			if s.ObjectsRecovered != tc.wantRecov || s.Records != tc.wantEvents {
				t.Errorf("rerun: recovered %d events %d, want %d and %d", s.ObjectsRecovered, s.Records, tc.wantRecov, tc.wantEvents)
			}
			e.check()
		})
	}
}

func TestCompareAndSwapConflictReloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 250, t0.Add(-time.Hour))
	e.opts.MaxPagesPerProject = 1
	e.run() // window open, one page committed
	// Another writer commits the same state under a new generation just
	// before our second commit: the swap is lost, the state reloaded.
	bumped := false
	racing := &sinktest.Hooked{Store: e.store, Before: func(_ int, op, name string) error {
		if op == "write" && strings.Contains(name, "projects/") && !bumped {
			bumped = true
			data, gen, err := e.store.Read(context.Background(), name)
			if err != nil {
				return err
			}
			if _, err := e.store.Write(context.Background(), name, data, "application/json", gen); err != nil {
				return err
			}
		}
		return nil
	}}
	e.opts.MaxPagesPerProject = -1
	s, err := e.runWith(e.stream(racing, racing))
	if err != nil {
		t.Fatal(err)
	}
	if s.Conflicts != 1 {
		t.Errorf("conflicts: got %d, want 1", s.Conflicts)
	}
	for i := 0; s.WorkRemaining && i < 5; i++ {
		s = e.run()
	}
	e.check()
}

func TestSeenSetIsPruned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 300, t0.Add(-5*time.Hour))
	e.api.Add("1", 10, t0.Add(-20*time.Minute))
	e.api.Add("1", 10, t0.Add(-50*time.Minute))
	e.run()
	cp := e.checkpoint("1")
	// W = t0 − 2m; keep ids at or after W − 30m = t0 − 32m.
	if got, want := len(cp.Seen), 10; got != want {
		t.Errorf("seen after the first window: got %d ids, want %d", got, want)
	}
	e.clk.Advance(time.Hour)
	e.run()
	if got := len(e.checkpoint("1").Seen); got != 0 {
		t.Errorf("seen after an empty hour: got %d ids, want 0", got)
	}
	e.check()
}

func TestLargeWindowKeepsSeenSmall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.opts.MaxPagesPerProject = 3
	for h := range 20 {
		e.api.Add("1", 100, t0.Add(-time.Duration(h+1)*time.Hour))
	}
	maxSeen := 0
	for i := 0; i < 20; i++ {
		s := e.run()
		maxSeen = max(maxSeen, len(e.checkpoint("1").Seen))
		if !s.WorkRemaining {
			break
		}
	}
	// Inside a window, only ids in its last overlap and at the frontier
	// second are kept, not the whole window.
	if maxSeen > 200 {
		t.Errorf("largest seen set: got %d ids, want at most 200 of 2000", maxSeen)
	}
	e.check()
}

func TestServerIgnoringDateRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.SetIgnoreRange(true)
	e.api.Add("1", 50, t0.Add(-48*time.Hour)) // before the first window
	e.api.Add("1", 150, t0.Add(-time.Hour))
	e.api.Add("1", 20, t0.Add(-time.Minute)) // after the window's end
	s := e.run()
	if s.Records != 150 {
		t.Errorf("events written: got %d, want 150", s.Records)
	}
	if len(e.api.Queries()) != 2 {
		t.Errorf("pages: got %d, want 2 (stop at rows older than the window)", len(e.api.Queries()))
	}
	e.clk.Advance(5 * time.Minute)
	e.run()
	rep, err := sentrysim.Verify(t.Context(), e.store, testData, e.api.Truth())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Duplicated) != 0 || len(rep.Lost) != 50 {
		t.Errorf("want only the 50 events older than the look-back missing: %s", rep)
	}
}

func TestLeaseHeldByAnotherRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 5, t0.Add(-time.Hour))
	other := state.NewLeases(e.store, e.clk)
	if _, err := other.Acquire(t.Context(), testState+"events/lease.json", "other", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	s := e.run()
	if !s.LeaseHeld || len(e.api.Queries()) != 0 {
		t.Errorf("got lease held %v after %d queries, want true and none", s.LeaseHeld, len(e.api.Queries()))
	}
	e.clk.Advance(11 * time.Minute) // the other run crashed: its lease expires
	s = e.run()
	if s.LeaseHeld || s.Records != 5 {
		t.Errorf("after expiry: lease held %v, events %d; want false and 5", s.LeaseHeld, s.Records)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	notFound := &sentry.APIError{StatusCode: 404, Endpoint: "GET /api/0/projects/{org}/{project}/events/", Detail: "The requested resource does not exist"}
	unauthorized := &sentry.APIError{StatusCode: 401, Endpoint: "GET /api/0/organizations/{org}/projects/", Detail: "Invalid token"}
	unavailable := &sentry.APIError{StatusCode: 503, Endpoint: "GET /api/0/projects/{org}/{project}/events/"}
	cases := []struct {
		name          string
		listErr       error
		eventErr      error
		wantConfig    bool
		wantTransient bool
		bothProjects  bool
		wantFailed    int
		wantEvents    int
		wantRemaining bool
	}{
		{name: "token_rejected_is_a_configuration_error", listErr: unauthorized, wantConfig: true},
		{name: "project_gone_is_skipped", eventErr: notFound, wantFailed: 1, wantEvents: 5},
		{name: "sentry_down_on_one_project_skips_it", eventErr: unavailable, wantFailed: 1, wantEvents: 5, wantRemaining: true},
		{name: "sentry_down_on_every_project_is_transient", eventErr: unavailable, bothProjects: true, wantTransient: true, wantFailed: 2, wantRemaining: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1", "2")
			e.api.Add("1", 5, t0.Add(-time.Hour))
			e.api.Add("2", 5, t0.Add(-time.Hour))
			e.api.SetListErr(tc.listErr)
			if tc.eventErr != nil {
				e.api.SetEventErr("2", tc.eventErr)
				e.api.SetEventErr("1", nil)
				if tc.bothProjects {
					e.api.SetEventErr("1", tc.eventErr)
				}
			}
			s, err := e.runWith(e.stream(nil, nil))
			if got := failure.IsConfig(err); got != tc.wantConfig {
				t.Errorf("IsConfig(%v): got %v, want %v", err, got, tc.wantConfig)
			}
			if got := failure.IsTransient(err); got != tc.wantTransient {
				t.Errorf("IsTransient(%v): got %v, want %v", err, got, tc.wantTransient)
			}
			if tc.wantConfig && !strings.Contains(err.Error(), "project:read") {
				t.Errorf("configuration error %q does not say what to fix", err)
			}
			if s.Projects.Failed != tc.wantFailed || (!tc.wantTransient && s.Records != tc.wantEvents) {
				t.Errorf("failed %d events %d, want %d and %d", s.Projects.Failed, s.Records, tc.wantFailed, tc.wantEvents)
			}
			if s.WorkRemaining != tc.wantRemaining {
				t.Errorf("work remaining %v, want %v", s.WorkRemaining, tc.wantRemaining)
			}
		})
	}
}

func TestBudgetStopsStartingWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 3000, t0.Add(-time.Hour))
	// Each page takes 20 s of (fake) time; 7 min budget, 3 s margin.
	slow := &slowAPI{API: e.api, clk: e.clk, d: 20 * time.Second}
	c := e.streamWith(slow, nil, nil)
	s, err := e.runWith(c)
	if err != nil {
		t.Fatal(err)
	}
	if !s.WorkRemaining || s.Pages == 0 || s.Pages > 20 {
		t.Errorf("pages %d, work remaining %v; want a partial run", s.Pages, s.WorkRemaining)
	}
	if s.Duration > e.budget {
		t.Errorf("run took %v, budget %v", s.Duration, e.budget)
	}
	for i := 0; s.WorkRemaining && i < 10; i++ {
		if s, err = e.runWith(c); err != nil {
			t.Fatal(err)
		}
	}
	e.check()
}

type slowAPI struct {
	API
	clk *clock.Fake
	d   time.Duration
}

func (s *slowAPI) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	s.clk.Advance(s.d)
	return s.API.ListEvents(ctx, q)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{name: "org_required", opts: Options{DataPrefix: "d/", StatePrefix: "s/"}, want: "organisation"},
		{name: "state_inside_data", opts: Options{Org: "a", DataPrefix: "sentry/events/", StatePrefix: "sentry/events/state/"}, want: "must not lie inside"},
		{name: "state_key_inside_data", opts: Options{Org: "a", DataPrefix: "sentry/events/", StatePrefix: "sentry/"}, want: "must not lie inside"},
		{name: "empty_data_prefix", opts: Options{Org: "a", StatePrefix: "s/"}, want: "data prefix"},
		{name: "retention_under_a_day", opts: Options{Org: "a", DataPrefix: "d/", StatePrefix: "s/", Retention: time.Hour}, want: "retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.opts, collecttest.NewFake(), engine.Env{Data: sink.NewMemory(), State: sink.NewMemory()})
			if err == nil || !failure.IsConfig(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a configuration error containing %q", err, tc.want)
			}
		})
	}
}

func TestObjectName(t *testing.T) {
	t.Parallel()
	got := engine.ObjectName("sentry/events/", "acme", "42", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix(), 7)
	if want := "sentry/events/2026/01/02/03/acme-42-1767323045-000007.ndjson"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestSummaryIsLoggedOnce checks the run summary line the log-based metrics
// read: logged once per run, with events_written for the events stream.
func TestSummaryIsLoggedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.Add("1", 3, t0.Add(-time.Hour))
	e.api.SetEventErr("2", &sentry.APIError{StatusCode: 404, Detail: "The requested resource does not exist"})
	var buf bytes.Buffer
	e.logger = slog.New(slog.NewJSONHandler(&buf, nil))
	e.run()
	if n := strings.Count(buf.String(), `"msg":"run summary"`); n != 1 {
		t.Fatalf("run summary logged %d times, want once:\n%s", n, buf.String())
	}
	for _, want := range []string{`"events_written":3`, `"records_written":3`, `"stream":"events"`, `"projects":2`, `"projects_failed":1`, `"failures":["2 (p2): `} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestSeenSetJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := engine.Seen{"b": 2, "a": 2, "c": 1}
	data, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"1":["c"],"2":["a","b"]}`; got != want {
		t.Errorf("encoding: got %s, want %s", got, want)
	}
	var out engine.Seen
	if err := out.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	_ = sink.ErrExists
}

// TestSentryAuthFailuresAreTaggedInLogs checks the log field the
// authentication alert (terraform/monitoring.tf) keys on.
func TestSentryAuthFailuresAreTaggedInLogs(t *testing.T) {
	t.Parallel()
	forbidden := &sentry.APIError{StatusCode: 403, Endpoint: "GET /api/0/projects/{org}/{project}/events/", Detail: "You do not have permission to perform this action."}
	unauthorized := &sentry.APIError{StatusCode: 401, Endpoint: "GET /api/0/organizations/{org}/projects/", Detail: "Invalid token"}
	unavailable := &sentry.APIError{StatusCode: 503, Endpoint: "GET /api/0/projects/{org}/{project}/events/"}
	cases := []struct {
		name     string
		listErr  error
		eventErr error
		want     bool
	}{
		{name: "token_rejected", listErr: unauthorized, want: true},
		{name: "scope_missing_on_a_project", eventErr: forbidden, want: true},
		{name: "sentry_down", eventErr: unavailable, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1")
			e.api.Add("1", 5, t0.Add(-time.Hour))
			e.api.SetListErr(tc.listErr)
			if tc.eventErr != nil {
				e.api.SetEventErr("1", tc.eventErr)
			}
			var buf bytes.Buffer
			e.logger = slog.New(slog.NewJSONHandler(&buf, nil))
			_, _ = e.runWith(e.stream(nil, nil))
			if got := strings.Contains(buf.String(), `"error_kind":"sentry_auth"`); got != tc.want {
				t.Errorf("error_kind=sentry_auth logged: got %v, want %v; logs:\n%s", got, tc.want, buf.String())
			}
		})
	}
}
