package events

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Regression tests: the overlap bound, a failing project among healthy ones,
// explicit zero durations, an undecodable checkpoint, the soft stop, bad rows,
// rows out of order.

func TestOverlapMustBeAtMostHalfTheMaxWindow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		overlap time.Duration
		wantErr bool
	}{
		{name: "half_the_window_is_accepted", overlap: 12 * time.Hour},
		{name: "more_than_half_is_refused", overlap: 12*time.Hour + time.Second, wantErr: true},
		{name: "the_whole_window_is_refused", overlap: 24 * time.Hour, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "1")
			e.opts.Overlap = tc.overlap
			_, err := New(e.opts, e.api, engine.Env{Data: e.store, State: e.store})
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("New: got error %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !failure.IsConfig(err) {
				t.Errorf("New: got %v, want a configuration error", err)
			}
		})
	}
}

// An overlap that bypasses validation must still move the watermark forward
// (the window is bounded to end after it); unbounded, it froze the watermark
// at 24 h and moved it back beyond.
func TestOpenWindowAlwaysEndsAfterTheWatermark(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.opts.MaxPagesPerProject = 6
	e.api.Add("1", 3, t0.Add(-time.Hour))
	run := func() {
		c := e.stream(nil, nil)
		c.opts.Overlap = 24 * time.Hour // what New refuses
		if _, err := e.runWith(c); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	run()
	last := e.checkpoint("1").Watermark
	for range 3 {
		e.clk.Advance(10 * time.Minute)
		e.api.Add("1", 2, e.clk.Now().Add(-5*time.Minute))
		run()
		cp := e.checkpoint("1")
		if !cp.Watermark.After(last) {
			t.Fatalf("watermark %v did not move past %v (window %+v)", cp.Watermark, last, cp.Window)
		}
		last = cp.Watermark
	}
	e.check()
}

// One project whose events keep failing (500 after the client's retries)
// must not stop the others, run after run.
func TestTransientProjectErrorDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2", "3")
	for _, p := range []string{"1", "2", "3"} {
		e.api.Add(p, 3, t0.Add(-time.Hour))
	}
	e.run()
	e.api.SetEventErr("1", &sentry.APIError{StatusCode: 500, Detail: "Internal Error"})
	for i := range 4 {
		e.clk.Advance(10 * time.Minute)
		e.api.Add("2", 1, e.clk.Now().Add(-5*time.Minute))
		e.api.Add("3", 1, e.clk.Now().Add(-5*time.Minute))
		s, err := e.runWith(e.stream(nil, nil))
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if s.Records != 2 || s.Projects.Failed != 1 || len(s.Projects.Failures) != 1 || s.Projects.Failures[0].ProjectID != "1" {
			t.Errorf("run %d: written %d, failures %+v; want 2 and project 1", i, s.Records, s.Projects.Failures)
		}
		if !s.WorkRemaining {
			t.Errorf("run %d: work remaining not reported for the failed project", i)
		}
	}
	// The failed project is served after the others (it does not keep the
	// head of the order).
	e.api.ResetQueries()
	e.clk.Advance(10 * time.Minute)
	if _, err := e.runWith(e.stream(nil, nil)); err != nil {
		t.Fatal(err)
	}
	if q := e.api.Queries(); len(q) == 0 || q[0].Project == "1" {
		t.Errorf("failing project served first: %+v", q)
	}
	// Sentry recovers: nothing was lost.
	e.api.SetEventErr("1", nil)
	e.clk.Advance(10 * time.Minute)
	e.run()
	e.check()
}

func TestZeroLagAndOverlapMeanZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.opts.Lag, e.opts.Overlap = 0, 0
	e.api.Add("1", 1, t0.Add(-time.Hour))
	e.run()
	e.clk.Advance(10 * time.Minute)
	e.api.ResetQueries()
	e.run()
	q := e.api.Queries()[0]
	if !q.Start.Equal(t0) || !q.End.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("second window [%v, %v), want [%v, %v)", q.Start, q.End, t0, t0.Add(10*time.Minute))
	}
}

func TestUndecodableCheckpointFailsOnlyItsProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.Add("1", 3, t0.Add(-time.Hour))
	e.api.Add("2", 3, t0.Add(-time.Hour))
	key := testState + "events/projects/1.json"
	if _, err := e.store.Write(t.Context(), key, []byte(`{"version":99}`), "application/json", 0); err != nil {
		t.Fatal(err)
	}
	s, err := e.runWith(e.stream(nil, nil))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s.Records != 3 || s.Projects.Failed != 1 || len(s.Projects.Failures) != 1 || s.Projects.Failures[0].ProjectID != "1" {
		t.Errorf("written %d, failures %+v; want 3 and project 1", s.Records, s.Projects.Failures)
	}
}

// The StopSignal (SIGTERM) ends a run softly: no new page, what was read is
// written and committed, work remains.
func TestStopSignalCommitsAndStops(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.Add("1", 1500, t0.Add(-time.Hour)) // 15 pages: two turns
	e.api.Add("2", 5, t0.Add(-time.Hour))
	stop := make(chan struct{})
	e.stop = stop
	e.opts.Progress = func(ev ProgressEvent) {
		if ev.Object != "" {
			select {
			case <-stop:
			default:
				close(stop)
			}
		}
	}
	s, err := e.runWith(e.stream(nil, nil))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !s.WorkRemaining || s.Records != 1000 || s.Objects != 1 {
		t.Errorf("work remaining %v, written %d in %d objects; want true, 1000 in 1", s.WorkRemaining, s.Records, s.Objects)
	}
	cp := e.checkpoint("1")
	if cp.Window == nil || cp.Window.Cursor == "" || cp.NextSeq != 2 {
		t.Errorf("checkpoint after stop: window %+v next seq %d; want the batch committed", cp.Window, cp.NextSeq)
	}
	// A cut request in flight is not a failure either.
	e2 := newEnv(t, "1")
	e2.api.Add("1", 5, t0.Add(-time.Hour))
	stop2 := make(chan struct{})
	e2.stop = stop2
	hang := &hangAPI{API: e2.api, started: make(chan struct{})}
	c := e2.streamWith(hang, nil, nil)
	go func() {
		<-hang.started
		close(stop2)
	}()
	s, err = e2.runWith(c)
	if err != nil || !s.WorkRemaining || s.Projects.Failed != 0 {
		t.Errorf("cut request: err %v, work remaining %v, failed %d; want nil, true, 0", err, s.WorkRemaining, s.Projects.Failed)
	}
	// Without the signal, the rest is collected.
	e.stop, e.opts.Progress = nil, nil
	e.run()
	e.check()
}

// hangAPI blocks every events request until its context ends.
type hangAPI struct {
	API
	started chan struct{}
}

func (h *hangAPI) ListEvents(ctx context.Context, _ sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	close(h.started)
	<-ctx.Done()
	return sentry.Page[sentry.Event]{}, errors.Join(errors.New("request cut"), context.Cause(ctx))
}

// badRowAPI adds a row with an unreadable dateCreated to every events page
// (the client returns it with a zero date instead of failing the page).
type badRowAPI struct{ API }

func (b badRowAPI) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	p, err := b.API.ListEvents(ctx, q)
	if err == nil {
		p.Items = append(p.Items, sentry.Event{ID: "0123456789abcdef0123456789abcdef", ProjectID: q.Project,
			Raw: []byte(`{"id":"0123456789abcdef0123456789abcdef","dateCreated":"yesterday"}`)})
	}
	return p, err
}

func TestBadRowIsCountedAndSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 3, t0.Add(-time.Hour))
	s, err := e.runWith(e.streamWith(badRowAPI{e.api}, nil, nil))
	if err != nil || s.Records != 3 || s.InvalidRows != 1 || s.Projects.Failed != 0 {
		t.Fatalf("written %d, invalid %d, failed %d, %v; want 3, 1, 0, nil", s.Records, s.InvalidRows, s.Projects.Failed, err)
	}
	e.check() // the bad row was never written
}

// A project that fails every run (here Sentry answers its events with a 200
// carrying an error object, a shape the client refuses) is not skipped
// silently for ever: after an hour of failures each run logs it at ERROR
// with error_kind=project_failing, which the "project failing" alert counts;
// once it recovers the clock resets.
func TestProjectFailingForAnHourIsLoggedForTheAlert(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.Add("1", 3, collecttest.T0.Add(-time.Hour))
	e.api.Add("2", 3, collecttest.T0.Add(-time.Hour))
	e.api.SetEventErr("2", &sentry.ShapeError{Endpoint: "GET /api/0/projects/{org}/{project}/events/", Msg: `an object {"detail": ...} where a list of rows was expected`})
	alerts := func() int {
		var buf bytes.Buffer
		e.logger = slog.New(slog.NewJSONHandler(&buf, nil))
		e.run()
		return strings.Count(buf.String(), `"error_kind":"project_failing"`)
	}
	for i, tc := range []struct {
		advance time.Duration
		want    int
	}{{0, 0}, {30 * time.Minute, 0}, {31 * time.Minute, 1}, {10 * time.Minute, 1}} {
		e.clk.Advance(tc.advance)
		if got := alerts(); got != tc.want {
			t.Errorf("run %d (+%v): %d project_failing lines, want %d", i, tc.advance, got, tc.want)
		}
	}
	e.api.SetEventErr("2", nil)
	e.clk.Advance(10 * time.Minute)
	if got := alerts(); got != 0 {
		t.Errorf("after recovery: %d project_failing lines, want 0", got)
	}
	if cp := e.checkpoint("2"); cp.Failing || !cp.FailingSince.IsZero() {
		t.Errorf("after recovery: failing %v since %v", cp.Failing, cp.FailingSince)
	}
}

// disorderAPI serves every page after the first with its oldest row moved
// to the front: rows out of Sentry's order (-timestamp, -event_id).
type disorderAPI struct{ API }

func (d disorderAPI) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	p, err := d.API.ListEvents(ctx, q)
	if err == nil && q.Cursor != "" && len(p.Items) > 1 {
		last := p.Items[len(p.Items)-1]
		p.Items = append([]sentry.Event{last}, p.Items[:len(p.Items)-1]...)
	}
	return p, err
}

// TestRowsOutOfOrderFailThePage: the window's frontier assumes rows newest
// first; a page that breaks the order fails as a transient protocol error
// (what was read before it is committed), never skipping a row silently, and
// a later run with a well-ordered Sentry collects the rest exactly once.
func TestRowsOutOfOrderFailThePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	for i := range 150 {
		e.api.Add("1", 1, t0.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	s, err := e.runWith(e.streamWith(disorderAPI{e.api}, nil, nil))
	if !failure.IsTransient(err) || !engine.IsReadError(err) {
		t.Fatalf("run over a disordered page: err %v, want a transient read error", err)
	}
	if s.Records != 100 || s.Projects.Failed != 1 || len(s.Projects.Failures) != 1 ||
		!strings.Contains(s.Projects.Failures[0].Error, "out of Sentry's order") {
		t.Fatalf("written %d, failed %d, failures %+v; want the first page written and the project failed on the order", s.Records, s.Projects.Failed, s.Projects.Failures)
	}
	if s = e.run(); s.Records != 50 {
		t.Errorf("next run: written %d, want the 50 rows of the failed page and after", s.Records)
	}
	e.check()
}
