package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// TestStreams_pushRunsSelectedStreams drives the real collector (simulated
// Sentry, local directory) through the router with STREAMS=events,issues,
// audit: a tick collects every stream into its own prefix; with an audit
// token lacking org:write, the tick still collects events and issues (200)
// and logs the audit stream's configuration error with
// error_kind=sentry_auth.
func TestStreams_pushRunsSelectedStreams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		auditToken string
		wantAudit  bool
	}{
		{name: "all_streams", auditToken: "audit", wantAudit: true},
		{name: "audit_token_without_org_write", auditToken: "readonly", wantAudit: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim, err := sentrysim.Start(sentrysim.Config{Org: "acme", Seed: 3, Tokens: map[string][]string{
				"tok":      {"org:read", "project:read", "event:read"},
				"readonly": {"org:read", "project:read", "event:read"},
				"audit":    {"org:read", "org:write"},
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sim.Close() })
			p := sim.AddProject("web", "Web")
			now := time.Now().UTC()
			for i := range 5 {
				sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: now.Add(-time.Duration(10+i) * time.Minute), Message: "KeyError: x"})
			}
			sim.AddAuditLog(sentrysim.AuditSpec{Event: "member.invite", At: now.Add(-time.Minute)})
			store, err := sink.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			a := newTestApp(t, sim.URL(), store, map[string]string{
				"STREAMS": "events,issues,audit", "SENTRY_AUDIT_TOKEN": tc.auditToken,
			})
			env := newTestEnv(t, func(o *serverOptions) {
				o.Collector = a
				o.Verifier, o.AuthDisabled = nil, true
			})
			if rec := env.push(t, wrapped("tick", "{}", 0)); rec.Code != http.StatusOK {
				t.Fatalf("tick: %d %s", rec.Code, rec.Body.String())
			}
			for prefix, want := range map[string]bool{"sentry/events/": true, "sentry/issues/": true, "sentry/audit/": tc.wantAudit} {
				names, err := store.List(t.Context(), prefix)
				if err != nil {
					t.Fatal(err)
				}
				if got := len(names) > 0; got != want {
					t.Errorf("objects under %s: %v, want any: %v", prefix, names, want)
				}
			}
			logs := env.logs.String()
			for _, s := range []string{`"stream":"events"`, `"stream":"issues"`, `"stream":"audit"`} {
				if !strings.Contains(logs, s) {
					t.Errorf("logs lack %s", s)
				}
			}
			if got := strings.Contains(logs, `"error_kind":"sentry_auth"`); got == tc.wantAudit {
				t.Errorf("error_kind=sentry_auth logged: %v, want %v", got, !tc.wantAudit)
			}
		})
	}
}

// streamRecorder is a Collector that records the streams asked for.
type streamRecorder struct {
	asked  []string
	result RunResult
}

func (s *streamRecorder) RunStreams(_ context.Context, stream string) (RunResult, error) {
	s.asked = append(s.asked, stream)
	return s.result, nil
}

// TestStreams_continuationNamesStream checks which streams a push runs (a
// tick: all; a continuation: the one it names) and which stream the next
// continuation names.
func TestStreams_continuationNamesStream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		data      string
		result    RunResult
		wantAsked string
		wantSent  []pubsub.Work
	}{
		{name: "tick_one_stream_left", data: "{}", result: RunResult{WorkRemaining: true, Continue: "issues"},
			wantAsked: "", wantSent: []pubsub.Work{{Kind: pubsub.KindContinue, Stream: "issues", Hop: 1}}},
		{name: "tick_several_left", data: "{}", result: RunResult{WorkRemaining: true, Continue: "all"},
			wantAsked: "", wantSent: []pubsub.Work{{Kind: pubsub.KindContinue, Stream: "all", Hop: 1}}},
		{name: "continue_audit", data: `{"type":"continue","stream":"audit","hop":2}`, result: RunResult{WorkRemaining: true, Continue: "audit"},
			wantAsked: "audit", wantSent: []pubsub.Work{{Kind: pubsub.KindContinue, Stream: "audit", Hop: 3}}},
		{name: "continue_done", data: `{"type":"continue","stream":"events","hop":1}`, result: RunResult{},
			wantAsked: "events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &streamRecorder{result: tc.result}
			env := newTestEnv(t, func(o *serverOptions) { o.Collector = rec })
			if r := env.push(t, wrapped("m1", tc.data, 0)); r.Code != http.StatusOK {
				t.Fatalf("push: %d %s", r.Code, r.Body.String())
			}
			if diff := cmp.Diff([]string{tc.wantAsked}, rec.asked); diff != "" {
				t.Errorf("streams asked (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSent, env.publisher.Sent()); diff != "" {
				t.Errorf("continuations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStreams_resultAndSelection(t *testing.T) {
	t.Parallel()
	got := []RunResult{
		streamsResult(collector.Result{}),
		streamsResult(collector.Result{Remaining: []string{"issues"}}),
		streamsResult(collector.Result{Remaining: []string{"audit", "events"}}),
		streamsResult(collector.Result{AllLeaseHeld: true}),
	}
	want := []RunResult{{}, {WorkRemaining: true, Continue: "issues"}, {WorkRemaining: true, Continue: "all"}, {LeaseHeld: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streamsResult (-want +got):\n%s", diff)
	}
	// The coverage ledger runs with the events stream, before it (it is
	// cheap, and leaves its share to the events); a continuation may name it.
	a := newTestApp(t, "https://sentry.io", sink.NewMemory(), map[string]string{"STREAMS": "events,issues"})
	if diff := cmp.Diff([][]string{{"issues", "coverage", "events"}, {"issues", "coverage", "events"}, {"issues"}, {"coverage"}, nil},
		[][]string{a.selected(""), a.selected("all"), a.selected("issues"), a.selected("coverage"), a.selected("audit")}); diff != "" {
		t.Errorf("selected (-want +got):\n%s", diff)
	}
	off := newTestApp(t, "https://sentry.io", sink.NewMemory(), map[string]string{"STREAMS": "events", "COVERAGE_LEDGER": "false"})
	noEvents := newTestApp(t, "https://sentry.io", sink.NewMemory(), map[string]string{"STREAMS": "issues"})
	if diff := cmp.Diff([][]string{{"events"}, {"issues"}}, [][]string{off.selected(""), noEvents.selected("")}); diff != "" {
		t.Errorf("selected without the ledger (-want +got):\n%s", diff)
	}
	// The audit client always uses SENTRY_API_BASE as configured (the
	// control host), never the organisation's region host.
	b := newTestApp(t, "https://sentry.io", sink.NewMemory(), map[string]string{"STREAMS": "audit", "SENTRY_AUDIT_TOKEN": "t"})
	if b.audit == nil || b.audit.BaseURL() != "https://sentry.io" {
		t.Errorf("audit client %v", b.audit)
	}
}
