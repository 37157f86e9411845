package backfill

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// env is the events stream and its backfill jobs over collecttest.Fake.
type env struct {
	t     *testing.T
	clk   interface{ Advance(time.Duration) }
	api   *collecttest.Fake
	store *sink.Memory
	opts  events.Options
	envE  engine.Env
}

func newEnv(t *testing.T, projects ...string) *env {
	t.Helper()
	w := collecttest.New(t, 1, sentrysim.Config{}, "memory")
	store := w.Store.(*sink.Memory)
	return &env{
		t: t, clk: w.Clock, api: collecttest.NewFake(projects...), store: store,
		opts: events.Options{
			Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
			MaxPagesPerProject: -1, Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
		},
		envE: engine.Env{Data: store, State: store, Clock: w.Clock},
	}
}

func (e *env) ctx() context.Context {
	return logging.WithLogger(e.t.Context(), slog.New(slog.DiscardHandler))
}

// stream is the events stream over data (nil: the env's store).
func (e *env) stream(data sinktest.Store) *events.Stream {
	e.t.Helper()
	env := e.envE
	if data != nil {
		env.Data = data
	}
	s, err := events.New(e.opts, e.api, env)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// jobs are the backfill jobs over data (nil: the env's store).
func (e *env) jobs(data sinktest.Store) *Jobs {
	e.t.Helper()
	var bucket Lister = e.store
	if data != nil {
		bucket = data
	}
	j, err := New(e.stream(data), bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) runJob(j *Jobs, id string) (Result, error) { return j.Run(e.ctx(), id, 7*time.Minute) }

// runStream runs the events stream once.
func (e *env) runStream() engine.Summary {
	e.t.Helper()
	s, err := e.stream(nil).Run(e.ctx(), 7*time.Minute)
	if err != nil {
		e.t.Fatalf("stream run: %v", err)
	}
	return s
}

// checkpoint is what the tests read of the events stream's checkpoint.
type checkpoint struct {
	Watermark time.Time `json:"watermark"`
	UpdatedAt time.Time `json:"updated_at"`
	Window    *struct {
		Start time.Time `json:"start"`
	} `json:"window"`
}

func (e *env) checkpoint(pid string) checkpoint {
	e.t.Helper()
	data, _, err := e.store.Read(e.t.Context(), collecttest.StatePrefix+"events/projects/"+pid+".json")
	if err != nil {
		e.t.Fatal(err)
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		e.t.Fatal(err)
	}
	return cp
}

func (e *env) check() *sentrysim.Report {
	e.t.Helper()
	rep, err := sentrysim.Verify(e.t.Context(), e.store, collecttest.DataPrefix, e.api.Truth())
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK() {
		e.t.Errorf("bucket: %s", rep)
	}
	return rep
}

// now is the env's clock.
func (e *env) now() time.Time { return e.envE.Now() }

// countAll counts the events of a ground truth.
func countAll(truth map[string]map[string]bool) int {
	n := 0
	for _, ids := range truth {
		n += len(ids)
	}
	return n
}
