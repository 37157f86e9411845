package collector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Regression tests for the independent review (H1, H2, L1, L4, SIGTERM).

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
			_, err := New(e.opts, e.api, e.store, e.store)
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("New: got error %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !IsConfig(err) {
				t.Errorf("New: got %v, want a configuration error", err)
			}
		})
	}
}

// An overlap that bypasses validation must still move the watermark forward
// (the window is bounded to end after it): the review's run showed it frozen
// at 24 h and moving back beyond.
func TestOpenWindowAlwaysEndsAfterTheWatermark(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.opts.MaxPagesPerProject = 6
	e.api.add("1", 3, t0.Add(-time.Hour))
	run := func() {
		c := e.collector(nil, nil)
		c.opts.Overlap = 24 * time.Hour // what New now refuses
		if _, err := c.Run(t.Context()); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	run()
	last := e.checkpoint("1").Watermark
	for range 3 {
		e.clk.Advance(10 * time.Minute)
		e.api.add("1", 2, e.clk.Now().Add(-5*time.Minute))
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
		e.api.add(p, 3, t0.Add(-time.Hour))
	}
	e.run()
	e.api.mu.Lock()
	e.api.eventErrs["1"] = &sentry.APIError{StatusCode: 500, Detail: "Internal Error"}
	e.api.mu.Unlock()
	for i := range 4 {
		e.clk.Advance(10 * time.Minute)
		e.api.add("2", 1, e.clk.Now().Add(-5*time.Minute))
		e.api.add("3", 1, e.clk.Now().Add(-5*time.Minute))
		s, err := e.collector(nil, nil).Run(t.Context())
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if s.EventsWritten != 2 || s.ProjectsFailed != 1 || len(s.Failures) != 1 || s.Failures[0].ProjectID != "1" {
			t.Errorf("run %d: written %d, failures %+v; want 2 and project 1", i, s.EventsWritten, s.Failures)
		}
		if !s.WorkRemaining {
			t.Errorf("run %d: work remaining not reported for the failed project", i)
		}
	}
	// The failed project is served after the others (it does not keep the
	// head of the order).
	e.api.mu.Lock()
	e.api.queries = nil
	e.api.mu.Unlock()
	e.clk.Advance(10 * time.Minute)
	if _, err := e.collector(nil, nil).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if q := e.api.queries; len(q) == 0 || q[0].Project == "1" {
		t.Errorf("failing project served first: %+v", q)
	}
	// Sentry recovers: nothing was lost.
	e.api.mu.Lock()
	e.api.eventErrs["1"] = nil
	e.api.mu.Unlock()
	e.clk.Advance(10 * time.Minute)
	e.run()
	e.check()
}

func TestZeroLagAndOverlapMeanZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.opts.Lag, e.opts.Overlap = ZeroDuration, ZeroDuration
	c := e.collector(nil, nil)
	if c.opts.Lag != 0 || c.opts.Overlap != 0 {
		t.Fatalf("lag %v overlap %v, want 0 and 0", c.opts.Lag, c.opts.Overlap)
	}
	e.api.add("1", 1, t0.Add(-time.Hour))
	e.run()
	e.clk.Advance(10 * time.Minute)
	e.api.queries = nil
	e.run()
	q := e.api.queries[0]
	if !q.Start.Equal(t0) || !q.End.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("second window [%v, %v), want [%v, %v)", q.Start, q.End, t0, t0.Add(10*time.Minute))
	}
	e.opts.Lag, e.opts.Overlap = 0, 0
	if c := e.collector(nil, nil); c.opts.Lag != DefaultLag || c.opts.Overlap != DefaultOverlap {
		t.Errorf("unset lag %v overlap %v, want the defaults", c.opts.Lag, c.opts.Overlap)
	}
}

func TestUndecodableCheckpointFailsOnlyItsProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.add("1", 3, t0.Add(-time.Hour))
	e.api.add("2", 3, t0.Add(-time.Hour))
	key := testState + "events/projects/1.json"
	if _, err := e.store.Write(t.Context(), key, []byte(`{"version":99}`), contentTypeJSON, 0); err != nil {
		t.Fatal(err)
	}
	s, err := e.collector(nil, nil).Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s.EventsWritten != 3 || s.ProjectsFailed != 1 || len(s.Failures) != 1 || s.Failures[0].ProjectID != "1" {
		t.Errorf("written %d, failures %+v; want 3 and project 1", s.EventsWritten, s.Failures)
	}
}

// The StopSignal (SIGTERM) ends a run softly: no new page, what was read is
// written and committed, work remains.
func TestStopSignalCommitsAndStops(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.add("1", 1500, t0.Add(-time.Hour)) // 15 pages: two turns
	e.api.add("2", 5, t0.Add(-time.Hour))
	stop := make(chan struct{})
	e.opts.StopSignal = stop
	e.opts.Progress = func(ev ProgressEvent) {
		if ev.Object != "" {
			select {
			case <-stop:
			default:
				close(stop)
			}
		}
	}
	s, err := e.collector(nil, nil).Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !s.WorkRemaining || s.EventsWritten != 1000 || s.Objects != 1 {
		t.Errorf("work remaining %v, written %d in %d objects; want true, 1000 in 1", s.WorkRemaining, s.EventsWritten, s.Objects)
	}
	cp := e.checkpoint("1")
	if cp.Window == nil || cp.Window.Cursor == "" || cp.NextSeq != 2 {
		t.Errorf("checkpoint after stop: window %+v next seq %d; want the batch committed", cp.Window, cp.NextSeq)
	}
	// A cut request in flight is not a failure either.
	e2 := newEnv(t, "1")
	e2.api.add("1", 5, t0.Add(-time.Hour))
	stop2 := make(chan struct{})
	e2.opts.StopSignal = stop2
	hang := &hangAPI{SentryAPI: e2.api, started: make(chan struct{})}
	c, err := New(e2.opts, hang, e2.store, e2.store)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-hang.started
		close(stop2)
	}()
	s, err = c.Run(t.Context())
	if err != nil || !s.WorkRemaining || s.ProjectsFailed != 0 {
		t.Errorf("cut request: err %v, work remaining %v, failed %d; want nil, true, 0", err, s.WorkRemaining, s.ProjectsFailed)
	}
	// Without the signal, the rest is collected.
	e.opts.StopSignal, e.opts.Progress = nil, nil
	e.run()
	e.check()
}

// hangAPI blocks every events request until its context ends.
type hangAPI struct {
	SentryAPI
	started chan struct{}
}

func (h *hangAPI) ListEvents(ctx context.Context, _ sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	close(h.started)
	<-ctx.Done()
	return sentry.Page[sentry.Event]{}, errors.Join(errors.New("request cut"), context.Cause(ctx))
}

// badRowAPI adds a row with an unreadable dateCreated to every events page
// (the client returns it with a zero date instead of failing the page).
type badRowAPI struct{ SentryAPI }

func (b badRowAPI) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	p, err := b.SentryAPI.ListEvents(ctx, q)
	if err == nil {
		p.Items = append(p.Items, sentry.Event{ID: "0123456789abcdef0123456789abcdef", ProjectID: q.Project,
			Raw: []byte(`{"id":"0123456789abcdef0123456789abcdef","dateCreated":"yesterday"}`)})
	}
	return p, err
}

func TestBadRowIsCountedAndSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.add("1", 3, t0.Add(-time.Hour))
	c, err := New(e.opts, badRowAPI{e.api}, e.store, e.store)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Run(t.Context())
	if err != nil || s.EventsWritten != 3 || s.InvalidRows != 1 || s.ProjectsFailed != 0 {
		t.Fatalf("written %d, invalid %d, failed %d, %v; want 3, 1, 0, nil", s.EventsWritten, s.InvalidRows, s.ProjectsFailed, err)
	}
	e.check() // the bad row was never written
}
