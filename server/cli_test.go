package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/coverage"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// setEnv sets the configuration of a local command (t.Setenv: these tests
// cannot run in parallel).
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// TestCollect_leaseHeldExits4: when another run holds the stream's lease,
// collect does nothing, says who holds it and until when, and exits 4 (not 0
// with "work remaining: false").
func TestCollect_leaseHeldExits4(t *testing.T) {
	sim, err := sentrysim.Start(sentrysim.Config{Org: "acme", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	dir := t.TempDir()
	setEnv(t, map[string]string{"SENTRY_ORG": "acme", "SENTRY_AUTH_TOKEN": "tok", "SENTRY_API_BASE": sim.URL(), "LOCAL_OUTPUT_DIR": dir})
	store, err := sink.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.NewLeases(store, nil).Acquire(t.Context(), "sentry/state/events/lease.json", "other-run", time.Minute); err != nil {
		t.Fatal(err)
	}
	err = runCollect(t.Context(), nil, nil)
	if got := exitCode(err); got != exitLeaseHeld {
		t.Fatalf("collect while another run holds the lease: exit %d (%v), want %d", got, err, exitLeaseHeld)
	}
	if msg := err.Error(); !strings.Contains(msg, `another run (other-run)`) || !strings.Contains(msg, "until") {
		t.Errorf("message %q does not say who holds the lease until when", msg)
	}
}

// TestCollectOutcome: collect's exit code says when a stream failed even
// though collector.Run succeeded (another stream was collected): 3 when
// Sentry failed it, 2 when retrying cannot help, 4 when the lease was held.
func TestCollectOutcome(t *testing.T) {
	t.Parallel()
	sentryDown := &engine.ReadError{Err: failure.Transient(errors.New("every project tried failed: 500"))}
	badScope := fmt.Errorf("%w: token lacks org:read", failure.ErrConfig)
	streams := []string{"coverage", "events"}
	tests := []struct {
		name   string
		res    collector.Result
		runErr error
		want   int
	}{
		{"all_collected", collector.Result{}, nil, 0},
		{"events_failed_ledger_read", collector.Result{Errors: map[string]error{"events": sentryDown}}, nil, exitTransient},
		{"events_config", collector.Result{Errors: map[string]error{"events": badScope}}, nil, exitConfig},
		{"one_of_each", collector.Result{Errors: map[string]error{"events": sentryDown, "coverage": badScope}}, nil, exitConfig},
		{"run_failed", collector.Result{}, failure.Transient(errors.New("storage")), exitTransient},
		{"lease_held", collector.Result{Summaries: []engine.Summary{{Stream: "events", LeaseHeld: true}}}, nil, exitLeaseHeld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := collectOutcome(tc.res, tc.runErr, streams)
			if got := exitCode(err); got != tc.want {
				t.Errorf("exit %d (%v), want %d", got, err, tc.want)
			}
			for name := range tc.res.Errors {
				if !strings.Contains(err.Error(), name+" stream") {
					t.Errorf("%q does not name the %s stream", err, name)
				}
			}
		})
	}
}

// TestBackfill_invalidRangeAnsweredWithoutSentry: a range that cannot be
// right is refused (exit 2) before anything is contacted.
func TestBackfill_invalidRangeAnsweredWithoutSentry(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	setEnv(t, map[string]string{"SENTRY_ORG": "acme", "SENTRY_AUTH_TOKEN": "tok", "SENTRY_API_BASE": srv.URL, "LOCAL_OUTPUT_DIR": t.TempDir()})
	start := time.Now()
	err := runBackfillCmd(t.Context(), nil, []string{"-start", "2026-11-02T00:00:00Z", "-end", "2026-11-01T00:00:00Z"})
	if got := exitCode(err); got != exitConfig || !strings.Contains(err.Error(), "must be before end") {
		t.Fatalf("exit %d (%v), want %d naming the range", got, err, exitConfig)
	}
	if n := requests.Load(); n != 0 || time.Since(start) > time.Second {
		t.Errorf("%d requests to Sentry in %v, want none, at once", n, time.Since(start))
	}
}

// TestExitCode_sentryUnavailableIsTransient: the errors a command gets when
// Sentry cannot be reached (connection refused, 503 on every
// attempt) exit 3, "run again", through the one classifier.
func TestExitCode_sentryUnavailableIsTransient(t *testing.T) {
	t.Parallel()
	closed := "http://127.0.0.1:" + strconv.Itoa(collecttest.FreePort(t))
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	for name, base := range map[string]string{
		"connection_refused": closed,
		"503_every_time":     unavailable.URL,
	} {
		c, err := sentry.New(sentry.Options{BaseURL: base, Token: "tok", MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = resolveRegion(t.Context(), c, "acme")
		if got := exitCode(err); got != exitTransient {
			t.Errorf("%s: exit %d for %v, want %d", name, got, err, exitTransient)
		}
	}
	if got := exitCode(errors.New("boom")); got != exitFailure {
		t.Errorf("unclassified error: exit %d, want %d", got, exitFailure)
	}
}

// TestHelp: every command answers -h with its help on stdout and exit 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"collect", "-h"}, {"backfill", "-h"}, {"serve", "-h"}, {"demo", "-h"}} {
		if err := realMain(t.Context(), nil, args); !errors.Is(err, errHelp) {
			t.Errorf("%q: %v, want the help shown", args, err)
		}
	}
	if err := realMain(t.Context(), nil, []string{"collect", "-bogus"}); exitCode(err) != exitConfig {
		t.Errorf("bad flag: exit %d, want %d", exitCode(err), exitConfig)
	}
	if err := realMain(t.Context(), nil, []string{"frobnicate"}); exitCode(err) != exitConfig {
		t.Errorf("unknown command: exit %d, want %d", exitCode(err), exitConfig)
	}
}

// TestCoverageCmd: the verdict decides the exit code (0: every final hour
// complete; 1: not), read from the output's state without Sentry.
func TestCoverageCmd(t *testing.T) {
	hour := time.Now().UTC().Add(-30 * time.Hour).Truncate(time.Hour)
	ledger := func(status string) string {
		return `{"version":1,"project_id":"1","slug":"web","rows":[{"hour":"` + hour.Format(time.RFC3339) +
			`","status":"` + status + `","collected":3,"missing_count":1,"missing":["abc"],"final":true}]}`
	}
	tests := []struct {
		name   string
		ledger string
		args   []string
		want   int
	}{
		{"complete", ledger("complete"), []string{"-since", "48h"}, 0},
		{"missing", ledger("missing"), []string{"-since", "48h"}, exitVerdict},
		{"missing_but_older", ledger("missing"), []string{"-since", "2h"}, 0},
		{"other_project", ledger("missing"), []string{"-since", "48h", "-projects", "api"}, 0},
		{"bad_since", ledger("complete"), []string{"-since", "yesterday"}, exitConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Nothing listens there: the command must not contact Sentry.
			setEnv(t, map[string]string{"SENTRY_ORG": "acme", "SENTRY_AUTH_TOKEN": "tok", "SENTRY_API_BASE": "http://127.0.0.1:1", "LOCAL_OUTPUT_DIR": dir})
			store, err := sink.NewDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Write(t.Context(), "sentry/state/coverage/1.json", []byte(tc.ledger), "application/json", 0); err != nil {
				t.Fatal(err)
			}
			err = runCoverageCmd(t.Context(), tc.args)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("coverage %v: exit %d (%v), want %d", tc.args, got, err, tc.want)
			}
		})
	}
}

// TestPrintCoverage: the table lists each row, the missing ids and the
// verdict; -json is the report.
func TestPrintCoverage(t *testing.T) {
	t.Parallel()
	n := int64(4)
	rep := &coverage.Report{Verdict: "1 project-hours: NOT OK", Rows: []coverage.ReportRow{{ProjectID: "1", Project: "web",
		Row: coverage.Row{Hour: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), Status: coverage.Missing, Visible: &n, Collected: 3,
			MissingCount: 1, Missing: []string{"abc"}, Note: "queued to be written by the events stream", Final: true}}}}
	var b strings.Builder
	if err := printCoverage(&b, rep, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2026-03-10 12:00", "web", "missing", "(missing: abc)", "NOT OK"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := printCoverage(&b, rep, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"missing": [`) || !strings.Contains(b.String(), `"verdict": "1 project-hours: NOT OK"`) {
		t.Errorf("json:\n%s", b.String())
	}
}

// TestCLILogger: on a terminal the local commands log text whose "_seconds"
// floats read as durations; elsewhere Cloud Logging JSON with the seconds as
// numbers. Both bound a line whatever it is given.
func TestCLILogger(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name     string
		terminal bool
		want     []string // substrings of the line
	}{
		{name: "terminal_text", terminal: true, want: []string{
			"level=WARN", `msg="sentry request failed, retrying"`, " backoff_seconds=1.419s", " summary.duration_seconds=2m3.5s", "…(cut from 2097152 bytes)",
		}},
		{name: "json_elsewhere", terminal: false, want: []string{
			`"severity":"WARNING"`, `"backoff_seconds":1.418977699`, `"summary":{"duration_seconds":123.5}`, "…(cut from 2097152 bytes)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf strings.Builder
			cliLoggerTo(&buf, tc.terminal, "info").Warn("sentry request failed, retrying",
				"backoff_seconds", 1.418977699, slog.Group("summary", "duration_seconds", 123.5), "error", strings.Repeat("x", 2<<20))
			line := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("line %.300q… lacks %q", line, w)
				}
			}
			if n := len(line); n > logging.MaxRecordLen+1<<10 {
				t.Errorf("line is %d bytes, want at most %d", n, logging.MaxRecordLen+1<<10)
			}
		})
	}
}

// TestResolveRegion_unexpectedURLBounded: sentry.io reports a region URL
// the token must not be sent to; the error names it, clipped, since Sentry
// (or a proxy) chooses its length.
func TestResolveRegion_unexpectedURLBounded(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name     string
		url      string
		wantErr  string
		wantsCut bool
	}{
		{name: "not_https", url: "http://us.sentry.io", wantErr: `unexpected region URL "http://us.sentry.io"`},
		{name: "not_sentry", url: "https://sentry.example.com", wantErr: `unexpected region URL "https://sentry.example.com"`},
		{name: "2_mib", url: "https://example.com/" + strings.Repeat("r", 2<<20), wantErr: `unexpected region URL "https://example.com/rrr`, wantsCut: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			org, err := json.Marshal(map[string]any{"id": "1", "slug": "acme", "name": "Acme", "links": map[string]string{"regionUrl": tc.url}})
			if err != nil {
				t.Fatal(err)
			}
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(org)
			}))
			t.Cleanup(fake.Close)
			u, err := url.Parse(fake.URL)
			if err != nil {
				t.Fatal(err)
			}
			// The client believes it talks to sentry.io, which reports
			// regions; its requests go to the fake.
			toFake := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
				return http.DefaultTransport.RoundTrip(r)
			})
			c, err := sentry.New(sentry.Options{BaseURL: "https://sentry.io", Token: "tok", MaxAttempts: 1, HTTPClient: &http.Client{Transport: toFake}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = resolveRegion(t.Context(), c, "acme")
			if got := exitCode(err); got != exitConfig {
				t.Fatalf("exit %d for %.300v, want %d", got, err, exitConfig)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) || tc.wantsCut != strings.Contains(msg, "…(cut from ") {
				t.Errorf("error %.400q… does not contain %q (cut: %v)", msg, tc.wantErr, tc.wantsCut)
			}
			if n := len(msg); n > 1<<10 {
				t.Errorf("error is %d bytes, want at most 1 KiB", n)
			}
		})
	}
}

// TestBackfillCmd_flagsEchoedClipped: a -start or -end that is not a time
// is named in the error, clipped.
func TestBackfillCmd_flagsEchoedClipped(t *testing.T) {
	t.Parallel()

	huge := strings.Repeat("z", 900<<10)
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "start", args: []string{"-start", huge, "-end", "2026-11-01T00:00:00Z"}, wantErr: `-start must be an RFC 3339 time such as 2026-01-01T00:00:00Z, got "zzz`},
		{name: "end", args: []string{"-start", "2026-11-01T00:00:00Z", "-end", huge}, wantErr: `-end must be an RFC 3339 time such as 2026-01-08T00:00:00Z, got "zzz`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := runBackfillCmd(t.Context(), nil, tc.args)
			if got := exitCode(err); got != exitConfig {
				t.Fatalf("exit %d for %.300v, want %d", got, err, exitConfig)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantErr) || !strings.Contains(msg, "…(cut from 921600 bytes)") || len(msg) > 1<<10 {
				t.Errorf("error (%d bytes) %.300q… does not contain %q, clipped", len(msg), msg, tc.wantErr)
			}
		})
	}
}
