package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Prefixes of the issues and audit streams in tests.
const (
	testIssues = "sentry/issues/"
	testAudit  = "sentry/audit/"
)

// streamWorld is the simulator, clock and bucket of an issues or audit
// trial (real client over HTTP, sink.Dir, one shared clock.Fake).
type streamWorld struct {
	t     *testing.T
	clk   *clock.Fake
	sim   *sentrysim.Server
	url   string
	store *sink.Dir
	rng   *rand.Rand
}

func newStreamWorld(t *testing.T, seed int64, cfg sentrysim.Config) *streamWorld {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg.Clock, cfg.Seed = clk, seed
	sim := sentrysim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	d, err := sink.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &streamWorld{t: t, clk: clk, sim: sim, url: srv.URL, store: d, rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed))}
}

func (w *streamWorld) client(token string) *sentry.Client {
	c, err := sentry.New(sentry.Options{BaseURL: w.url, Token: token, Clock: w.clk, MaxAttempts: 8})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *streamWorld) options(prefix, runID string) Options {
	return Options{
		Org: "acme", DataPrefix: prefix, StatePrefix: testState,
		Lag: 2 * time.Minute, Overlap: 30 * time.Minute, InitialLookback: 24 * time.Hour,
		Budget: 7 * time.Minute, Clock: w.clk, RunID: runID,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// injected wraps the bucket for one run: a crash at storage operation
// crashAt (0: none; mode as in injector) and random GCS-like faults.
func (w *streamWorld) injected(ctx context.Context, crashAt int64, mode int, faultP float64) (*injector, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	return &injector{inner: w.store, k: crashAt, mode: mode, cancel: cancel, faultP: faultP,
		rng: rand.New(rand.NewPCG(w.rng.Uint64(), uint64(crashAt)))}, ctx, cancel
}

// lines returns every line of every object under prefix, checking that only
// .ndjson objects are there.
func (w *streamWorld) lines(prefix string) [][]byte {
	w.t.Helper()
	names, err := w.store.List(context.Background(), prefix)
	if err != nil {
		w.t.Fatal(err)
	}
	var out [][]byte
	for _, n := range names {
		if !strings.HasSuffix(n, ".ndjson") {
			w.t.Errorf("unexpected object %s under the data prefix", n)
			continue
		}
		data, _, err := w.store.Read(context.Background(), n)
		if err != nil {
			w.t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				out = append(out, line)
			}
		}
	}
	return out
}

// TestStreamsMissingAuditScopeFailsOnlyAudit runs the three streams with an
// audit token that lacks org:write (403) or is rejected (401): the audit
// stream fails with a clear configuration error, logged with
// error_kind=sentry_auth and counted in its summary; events and issues are
// collected.
func TestStreamsMissingAuditScopeFailsOnlyAudit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		auditToken string
		want       string
	}{
		{name: "token_without_org_write", auditToken: "readonly", want: "org:write"},
		{name: "token_rejected", auditToken: "bogus", want: "SENTRY_AUDIT_TOKEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newStreamWorld(t, 7, sentrysim.Config{Tokens: map[string][]string{
				"tok":      {"org:read", "project:read", "event:read"},
				"readonly": {"org:read", "project:read", "event:read"},
			}})
			w.sim.Populate(sentrysim.Scenario{Projects: 2, Backlog: 50, BacklogSpan: time.Hour})
			w.clk.Advance(time.Minute)
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			main := w.client("tok")
			mk := func(prefix string) Options {
				o := w.options(prefix, "r1")
				o.Logger = logger
				return o
			}
			ev, err := New(mk(testData), main, w.store, w.store)
			if err != nil {
				t.Fatal(err)
			}
			is, err := NewIssues(mk(testIssues), main, w.store, w.store)
			if err != nil {
				t.Fatal(err)
			}
			au, err := NewAudit(mk(testAudit), w.client(tc.auditToken), w.store, w.store)
			if err != nil {
				t.Fatal(err)
			}
			res, err := RunStreams(t.Context(), w.clk, 7*time.Minute, []Stream{au, is, ev}, logger)
			if err != nil {
				t.Fatalf("RunStreams: %v (the other streams must go on)", err)
			}
			if len(res.Errors) != 1 || res.Errors[StreamAudit] == nil {
				t.Fatalf("errors %v, want only the audit stream's", res.Errors)
			}
			aerr := res.Errors[StreamAudit]
			if !IsConfig(aerr) || !strings.Contains(aerr.Error(), tc.want) {
				t.Errorf("audit error %q: want a configuration error mentioning %s", aerr, tc.want)
			}
			if got := res.ConfigErrors(); len(got) != 1 {
				t.Errorf("ConfigErrors() = %v", got)
			}
			sums := map[string]Summary{}
			for _, s := range res.Summaries {
				sums[s.Stream] = s
			}
			if sums[StreamAudit].AuthErrors != 1 {
				t.Errorf("audit summary %+v: want AuthErrors 1", sums[StreamAudit])
			}
			if sums[StreamEvents].EventsWritten == 0 || sums[StreamIssues].Records == 0 {
				t.Errorf("events wrote %d, issues %d records: both should have collected", sums[StreamEvents].EventsWritten, sums[StreamIssues].Records)
			}
			var found bool
			for line := range bytes.Lines(logs.Bytes()) {
				var l map[string]any
				if json.Unmarshal(line, &l) == nil && l["stream"] == StreamAudit && l["error_kind"] == ErrorKindSentryAuth {
					found = true
				}
			}
			if !found {
				t.Errorf("no log line with stream=audit error_kind=sentry_auth:\n%s", logs.String())
			}
			if len(w.lines(testAudit)) != 0 {
				t.Errorf("the failed audit stream wrote data")
			}
		})
	}
}

func TestRunStreamsErrors(t *testing.T) {
	t.Parallel()
	cfgErr := fmt.Errorf("%w: bad scope", ErrConfig)
	tErr := transient(errors.New("storage down"))
	sentryErr := transient(markSentry(errors.New("sentry down")))
	cases := []struct {
		name          string
		errs          []error
		wantNil       bool
		wantTransient bool
		wantConfig    bool
		wantRemaining []string
	}{
		{name: "all_ok", errs: []error{nil, nil}, wantNil: true},
		{name: "one_config_error", errs: []error{cfgErr, nil}, wantNil: true},
		{name: "all_config_errors", errs: []error{cfgErr, cfgErr}, wantConfig: true},
		{name: "transient_wins", errs: []error{cfgErr, tErr}, wantTransient: true, wantRemaining: []string{"s1"}},
		{name: "one_stream_sentry_failure_is_that_streams_only", errs: []error{sentryErr, nil}, wantNil: true, wantRemaining: []string{"s0"}},
		{name: "every_stream_failed", errs: []error{sentryErr, cfgErr}, wantTransient: true, wantRemaining: []string{"s0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			var ss []Stream
			for i, e := range tc.errs {
				ss = append(ss, fakeStream{name: fmt.Sprintf("s%d", i), err: e, clk: clk})
			}
			res, err := RunStreams(t.Context(), clk, 6*time.Minute, ss, slog.New(slog.DiscardHandler))
			switch {
			case tc.wantNil && err != nil:
				t.Errorf("err %v, want nil", err)
			case tc.wantTransient && !IsTransient(err):
				t.Errorf("err %v, want transient", err)
			case tc.wantConfig && (!IsConfig(err) || IsTransient(err)):
				t.Errorf("err %v, want a configuration error", err)
			}
			if len(res.Summaries) != len(tc.errs) {
				t.Errorf("%d summaries, want %d", len(res.Summaries), len(tc.errs))
			}
			if fmt.Sprint(res.Remaining) != fmt.Sprint(tc.wantRemaining) {
				t.Errorf("remaining %v, want %v", res.Remaining, tc.wantRemaining)
			}
		})
	}
}

// fakeStream records its budget and returns err.
type fakeStream struct {
	name string
	err  error
	clk  *clock.Fake
}

func (f fakeStream) Name() string { return f.name }
func (f fakeStream) RunBudget(_ context.Context, budget time.Duration) (Summary, error) {
	return Summary{Stream: f.name, Duration: budget}, f.err
}

func TestRunStreamsFairShare(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	var got []time.Duration
	mk := func(name string, use time.Duration) Stream {
		return budgetStream{name: name, use: use, clk: clk, got: &got}
	}
	_, err := RunStreams(t.Context(), clk, 9*time.Minute, []Stream{mk("a", time.Minute), mk("b", 3*time.Minute), mk("c", 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// a: 9m/3; b: (9m−1m)/2; c: what is left, 9m − 1m − 3m.
	want := []time.Duration{3 * time.Minute, 4 * time.Minute, 5 * time.Minute}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("budgets %v, want %v", got, want)
	}
}

type budgetStream struct {
	name string
	use  time.Duration
	clk  *clock.Fake
	got  *[]time.Duration
}

func (b budgetStream) Name() string { return b.name }
func (b budgetStream) RunBudget(_ context.Context, budget time.Duration) (Summary, error) {
	*b.got = append(*b.got, budget)
	b.clk.Advance(b.use)
	return Summary{Stream: b.name}, nil
}

func TestParseStreams(t *testing.T) {
	t.Parallel()
	got, err := ParseStreams([]string{" Events", "audit", "", "events"})
	if err != nil || fmt.Sprint(got) != "[audit events]" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ParseStreams([]string{"events", "spans"}); err == nil || !strings.Contains(err.Error(), "spans") {
		t.Errorf("unknown stream: err %v", err)
	}
}
