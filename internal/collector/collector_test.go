package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/audit"
	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/issues"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// TestMissingAuditScopeFailsOnlyAudit runs the three streams with an audit
// token that lacks org:write (403) or is rejected (401): the audit stream
// fails with a clear configuration error, logged once with
// error_kind=sentry_auth and counted in its summary; events and issues are
// collected.
func TestMissingAuditScopeFailsOnlyAudit(t *testing.T) {
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
			w := collecttest.New(t, 7, sentrysim.Config{Tokens: map[string][]string{
				"tok":      {"org:read", "project:read", "event:read"},
				"readonly": {"org:read", "project:read", "event:read"},
			}}, "dir")
			w.Sim.Populate(sentrysim.Scenario{Projects: 2, Backlog: 50, BacklogSpan: time.Hour})
			w.Clock.Advance(time.Minute)
			var logs bytes.Buffer
			ctx := logging.WithLogger(t.Context(), slog.New(slog.NewJSONHandler(&logs, nil)))
			main := w.Client("tok")
			ev, err := events.New(events.Options{
				Org: collecttest.Org, DataPrefix: collecttest.DataPrefix, StatePrefix: collecttest.StatePrefix,
				Lag: 2 * time.Minute, Overlap: 30 * time.Minute,
			}, main, w.Env("r1", nil, main))
			if err != nil {
				t.Fatal(err)
			}
			is, err := issues.New(issues.Options{
				Org: collecttest.Org, DataPrefix: collecttest.IssuesPrefix, StatePrefix: collecttest.StatePrefix,
				Lag: 2 * time.Minute, Overlap: 30 * time.Minute,
			}, main, w.Env("r1", nil, main))
			if err != nil {
				t.Fatal(err)
			}
			ac := w.Client(tc.auditToken)
			au, err := audit.New(audit.Options{
				Org: collecttest.Org, DataPrefix: collecttest.AuditPrefix, StatePrefix: collecttest.StatePrefix,
			}, ac, w.Env("r1", nil, ac))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(ctx, w.Clock, 7*time.Minute, []Stream{au, is, ev}, nil)
			if err != nil {
				t.Fatalf("Run: %v (the other streams must go on)", err)
			}
			if len(res.Errors) != 1 || res.Errors[audit.Name] == nil {
				t.Fatalf("errors %v, want only the audit stream's", res.Errors)
			}
			aerr := res.Errors[audit.Name]
			if !failure.IsConfig(aerr) || !strings.Contains(aerr.Error(), tc.want) {
				t.Errorf("audit error %q: want a configuration error mentioning %s", aerr, tc.want)
			}
			sums := map[string]engine.Summary{}
			for _, s := range res.Summaries {
				sums[s.Stream] = s
			}
			if sums[audit.Name].AuthErrors != 1 {
				t.Errorf("audit summary %+v: want AuthErrors 1", sums[audit.Name])
			}
			if sums[events.Name].Records == 0 || sums[issues.Name].Records == 0 {
				t.Errorf("events wrote %d, issues %d records: both should have collected", sums[events.Name].Records, sums[issues.Name].Records)
			}
			tagged := 0
			for line := range bytes.Lines(logs.Bytes()) {
				var l map[string]any
				if json.Unmarshal(line, &l) == nil && l["error_kind"] == failure.ErrorKindAuth {
					tagged++
					if l["stream"] != audit.Name {
						t.Errorf("error_kind=sentry_auth on a line of stream %v", l["stream"])
					}
				}
			}
			if tagged != 1 {
				t.Errorf("%d log lines with error_kind=sentry_auth, want exactly 1 (one alert per failure):\n%s", tagged, logs.String())
			}
			if len(w.Lines(collecttest.AuditPrefix)) != 0 {
				t.Errorf("the failed audit stream wrote data")
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	cfgErr := fmt.Errorf("%w: bad scope", failure.ErrConfig)
	storageErr := failure.Transient(errors.New("storage down"))
	readErr := &engine.ReadError{Err: failure.Transient(errors.New("sentry down"))}
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
		{name: "storage_failure_fails_the_run", errs: []error{cfgErr, storageErr}, wantTransient: true, wantRemaining: []string{"s1"}},
		{name: "one_stream_sentry_failure_is_that_streams_only", errs: []error{readErr, nil}, wantNil: true, wantRemaining: []string{"s0"}},
		{name: "every_stream_failed", errs: []error{readErr, cfgErr}, wantTransient: true, wantRemaining: []string{"s0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(collecttest.T0)
			var ss []Stream
			for i, e := range tc.errs {
				ss = append(ss, fakeStream{name: fmt.Sprintf("s%d", i), err: e})
			}
			res, err := Run(t.Context(), clk, 6*time.Minute, ss, nil)
			switch {
			case tc.wantNil && err != nil:
				t.Errorf("err %v, want nil", err)
			case tc.wantTransient && !failure.IsTransient(err):
				t.Errorf("err %v, want transient", err)
			case tc.wantConfig && !failure.IsConfig(err):
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

// fakeStream returns err.
type fakeStream struct {
	name string
	err  error
}

func (f fakeStream) Name() string { return f.name }
func (f fakeStream) Run(_ context.Context, budget time.Duration) (engine.Summary, error) {
	return engine.Summary{Stream: f.name, Duration: budget}, f.err
}

func TestFairShare(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(collecttest.T0)
	var got []time.Duration
	mk := func(name string, use time.Duration) Stream {
		return budgetStream{name: name, use: use, clk: clk, got: &got}
	}
	_, err := Run(t.Context(), clk, 9*time.Minute, []Stream{mk("a", time.Minute), mk("b", 3*time.Minute), mk("c", 0)}, nil)
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
func (b budgetStream) Run(_ context.Context, budget time.Duration) (engine.Summary, error) {
	*b.got = append(*b.got, budget)
	b.clk.Advance(b.use)
	return engine.Summary{Stream: b.name}, nil
}

func TestOrder(t *testing.T) {
	t.Parallel()
	if got := Order([]string{"events", "x", "audit", "issues"}); fmt.Sprint(got) != "[audit issues events x]" {
		t.Errorf("Order = %v", got)
	}
}
