package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"

	"github.com/secops-collectors/sentry-gcs/internal/engine"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

const testInvoker = "ops@example.com"

// fakeBackfiller keeps jobs in memory; runs report remaining work runsLeft
// times.
type fakeBackfiller struct {
	mu                sync.Mutex
	jobs              map[string]backfill.Job
	specs             []backfill.Spec
	runs              []string
	runsLeft          int
	createErr, runErr error
}

func (f *fakeBackfiller) CreateBackfill(_ context.Context, spec backfill.Spec) (backfill.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return backfill.Job{}, f.createErr
	}
	f.specs = append(f.specs, spec)
	id := fmt.Sprintf("job%d", len(f.specs))
	j := backfill.Job{ID: id, Start: spec.Start, End: spec.End, Status: backfill.Pending, CreatedBy: spec.CreatedBy,
		Projects: []backfill.Project{{ID: "1", Slug: "web", WindowsTotal: 4}}}
	f.jobs[id] = j
	return j, nil
}

func (f *fakeBackfiller) GetBackfill(_ context.Context, id string) (backfill.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return j, fmt.Errorf("%w: %q", backfill.ErrNotFound, id)
	}
	return j, nil
}

func (f *fakeBackfiller) RunBackfill(_ context.Context, id string) (backfill.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, id)
	if f.runErr != nil {
		return backfill.Result{}, f.runErr
	}
	j, ok := f.jobs[id]
	if !ok {
		return backfill.Result{}, fmt.Errorf("%w: %q", backfill.ErrNotFound, id)
	}
	j.Projects[0].WindowsDone++
	j.Projects[0].EventsWritten += 10
	j.Status = backfill.Running
	remaining := f.runsLeft > 0
	f.runsLeft--
	if !remaining {
		j.Status = backfill.Done
	}
	f.jobs[id] = j
	return backfill.Result{Summary: engine.Summary{WorkRemaining: remaining, Records: 10}, Job: j}, nil
}

func newBackfillEnv(t *testing.T, mutate func(*serverOptions)) (*testEnv, *fakeBackfiller) {
	t.Helper()
	fb := &fakeBackfiller{jobs: map[string]backfill.Job{}}
	env := newTestEnv(t, func(o *serverOptions) {
		bv, err := auth.NewVerifier(sharedSigner().Validator(t), testAudience, []string{testInvoker})
		if err != nil {
			t.Fatal(err)
		}
		o.Backfill = fb
		o.BackfillVerifier = bv
		if mutate != nil {
			mutate(o)
		}
	})
	return env, fb
}

func (e *testEnv) invokerHeader(t *testing.T, email string) http.Header {
	t.Helper()
	return http.Header{
		"Authorization": {"Bearer " + e.signer.Token(t, authtest.PushClaims(testAudience, email))},
		"Content-Type":  {"application/json"},
	}
}

func TestBackfill_create(t *testing.T) {
	t.Parallel()
	const valid = `{"start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00Z"}`
	cases := []struct {
		name        string
		body        string
		contentType string // "" : application/json
		email       string // "" : no Authorization header
		badToken    bool
		createErr   error
		noPublisher bool
		publishErr  error
		wantStatus  int
		wantError   string
		wantSpec    *backfill.Spec
	}{
		{name: "accepted_all", body: valid, email: testInvoker, wantStatus: http.StatusAccepted,
			wantSpec: &backfill.Spec{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), CreatedBy: testInvoker}},
		{name: "accepted_projects", body: `{"projects":["web","42"],"start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00+01:00","streams":["events"]}`,
			email: testInvoker, wantStatus: http.StatusAccepted,
			wantSpec: &backfill.Spec{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC),
				Projects: []string{"web", "42"}, Streams: []string{"events"}, CreatedBy: testInvoker}},
		{name: "accepted_all_string", body: `{"projects":"all","start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00Z"}`, email: testInvoker, wantStatus: http.StatusAccepted,
			wantSpec: &backfill.Spec{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), CreatedBy: testInvoker}},
		{name: "missing_token", body: valid, wantStatus: http.StatusUnauthorized},
		{name: "invalid_token", body: valid, email: testInvoker, badToken: true, wantStatus: http.StatusUnauthorized},
		{name: "not_an_invoker", body: valid, email: testPushSA, wantStatus: http.StatusForbidden},
		{name: "not_json", body: `start=1`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "JSON object"},
		{name: "unknown_field", body: `{"begin":"x"}`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "JSON object"},
		{name: "bad_start", body: `{"start":"yesterday","end":"2026-11-21T00:00:00Z"}`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "start must be an RFC 3339"},
		{name: "missing_end", body: `{"start":"2026-11-20T00:00:00Z"}`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "end must be an RFC 3339"},
		{name: "bad_projects", body: `{"projects":"some","start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00Z"}`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: `"all" or a list`},
		{name: "empty_projects", body: `{"projects":[],"start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00Z"}`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "non-empty list"},
		{name: "trailing_garbage", body: valid + `{"start":"x"}`, email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "nothing after it"},
		{name: "form_content_type", body: valid, contentType: "application/x-www-form-urlencoded", email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "Content-Type: application/json"},
		{name: "json_with_charset", body: valid, contentType: "application/json; charset=utf-8", email: testInvoker, wantStatus: http.StatusAccepted,
			wantSpec: &backfill.Spec{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), CreatedBy: testInvoker}},
		{name: "invalid_range", body: valid, email: testInvoker, createErr: fmt.Errorf("%w: start is older than Sentry's 90-day retention", backfill.ErrInvalid),
			wantStatus: http.StatusBadRequest, wantError: "invalid backfill request: start is older than Sentry's 90-day retention"},
		{name: "sentry_down", body: valid, email: testInvoker, createErr: failure.Transient(errors.New("sentry 502")), wantStatus: http.StatusServiceUnavailable},
		{name: "unexpected", body: valid, email: testInvoker, createErr: errors.New("undecodable job"), wantStatus: http.StatusInternalServerError},
		{name: "no_topic", body: valid, email: testInvoker, noPublisher: true, wantStatus: http.StatusServiceUnavailable, wantError: "PUBSUB_TOPIC"},
		{name: "publish_fails", body: valid, email: testInvoker, publishErr: errors.New("pubsub down"), wantStatus: http.StatusServiceUnavailable, wantError: "retry the same request: it returns this job (no second job is created)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, fb := newBackfillEnv(t, func(o *serverOptions) {
				if tc.noPublisher {
					o.Publisher = nil
				}
			})
			fb.createErr = tc.createErr
			env.publisher.err = tc.publishErr
			h := http.Header{"Content-Type": {"application/json"}}
			if tc.email != "" {
				h = env.invokerHeader(t, tc.email)
			}
			if tc.badToken {
				h.Set("Authorization", h.Get("Authorization")+"x")
			}
			if tc.contentType != "" {
				h.Set("Content-Type", tc.contentType)
			}
			rec := env.do(t, http.MethodPost, pathBackfill, tc.body, h)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			body := decodeBody(t, rec)
			if strings.Contains(fmt.Sprint(body["error"]), "configuration error") && rec.Code == http.StatusBadRequest {
				t.Errorf("bad input called a configuration error: %q", body["error"])
			}
			if tc.wantError != "" && !strings.Contains(fmt.Sprint(body["error"]), tc.wantError) {
				t.Errorf("error = %q, want it to contain %q", body["error"], tc.wantError)
			}
			if tc.wantStatus != http.StatusAccepted {
				return
			}
			if body["job_id"] != "job1" || body["status_url"] != "/backfill/job1" || body["status"] != "pending" {
				t.Errorf("body = %v", body)
			}
			if diff := cmp.Diff(*tc.wantSpec, fb.specs[0]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]pubsub.Work{{Kind: pubsub.KindBackfill, JobID: "job1", Hop: 1}}, env.publisher.Sent()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackfill_getProgress(t *testing.T) {
	t.Parallel()
	env, fb := newBackfillEnv(t, nil)
	if _, err := fb.CreateBackfill(t.Context(), backfill.Spec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fb.RunBackfill(t.Context(), "job1"); err != nil {
		t.Fatal(err)
	}
	rec := env.do(t, http.MethodGet, pathBackfill+"/job1", "", env.invokerHeader(t, testInvoker))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
	}
	body := decodeBody(t, rec)
	for k, want := range map[string]any{"job_id": "job1", "status": "done", "windows_done": 1.0, "windows_total": 4.0, "events_written": 10.0} {
		if body[k] != want {
			t.Errorf("%s = %v, want %v (body %v)", k, body[k], want, body)
		}
	}
	if errs, ok := body["errors"].([]any); !ok || len(errs) != 0 {
		t.Errorf("errors = %v, want []", body["errors"])
	}
	for path, want := range map[string]int{"/backfill/nope": http.StatusNotFound} {
		if rec := env.do(t, http.MethodGet, path, "", env.invokerHeader(t, testInvoker)); rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
	if rec := env.do(t, http.MethodGet, pathBackfill+"/job1", "", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET without token = %d, want 401", rec.Code)
	}
	if rec := env.do(t, http.MethodGet, pathBackfill+"/job1", "", env.invokerHeader(t, testPushSA)); rec.Code != http.StatusForbidden {
		t.Errorf("GET by the push identity = %d, want 403", rec.Code)
	}
}

func TestBackfill_authDisabledAndNoInvokers(t *testing.T) {
	t.Parallel()
	// No BACKFILL_INVOKERS: nobody may backfill.
	env, _ := newBackfillEnv(t, func(o *serverOptions) { o.BackfillVerifier = nil })
	if rec := env.do(t, http.MethodGet, pathBackfill+"/job1", "", env.invokerHeader(t, testInvoker)); rec.Code != http.StatusForbidden {
		t.Errorf("no invokers: status = %d, want 403", rec.Code)
	}
	// Authentication disabled (local): no token needed.
	env, fb := newBackfillEnv(t, func(o *serverOptions) { o.Verifier, o.BackfillVerifier, o.AuthDisabled = nil, nil, true })
	rec := env.do(t, http.MethodPost, pathBackfill, `{"start":"2026-11-20T00:00:00Z","end":"2026-11-21T00:00:00Z"}`, http.Header{"Content-Type": {"application/json"}})
	if rec.Code != http.StatusAccepted || len(fb.specs) != 1 {
		t.Errorf("auth disabled: status = %d: %s", rec.Code, rec.Body.String())
	}
}

func TestBackfill_push(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		data        string
		runsLeft    int
		runErr      error
		wantStatus  int
		wantOutcome string
		wantSent    []pubsub.Work
	}{
		{name: "done", data: `{"type":"backfill","job_id":"job1","hop":1}`, wantStatus: http.StatusOK, wantOutcome: outcomeDone},
		{name: "continues", data: `{"type":"backfill","job_id":"job1","hop":1}`, runsLeft: 2, wantStatus: http.StatusOK, wantOutcome: outcomeContinued,
			wantSent: []pubsub.Work{{Kind: pubsub.KindBackfill, JobID: "job1", Hop: 2}}},
		{name: "hop_limit", data: `{"type":"backfill","job_id":"job1","hop":10}`, runsLeft: 2, wantStatus: http.StatusOK, wantOutcome: outcomeTooManyHops},
		{name: "unknown_job", data: `{"type":"backfill","job_id":"zzz"}`, wantStatus: http.StatusBadRequest},
		{name: "transient", data: `{"type":"backfill","job_id":"job1"}`, runErr: failure.Transient(errors.New("gcs 503")), wantStatus: http.StatusServiceUnavailable},
		{name: "config", data: `{"type":"backfill","job_id":"job1"}`, runErr: errConfigTest, wantStatus: http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, fb := newBackfillEnv(t, nil)
			if _, err := fb.CreateBackfill(t.Context(), backfill.Spec{}); err != nil {
				t.Fatal(err)
			}
			fb.runsLeft, fb.runErr = tc.runsLeft, tc.runErr
			rec := env.push(t, wrapped("m1", tc.data, 0))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantOutcome != "" {
				if got := decodeBody(t, rec)["outcome"]; got != tc.wantOutcome {
					t.Errorf("outcome = %v, want %s", got, tc.wantOutcome)
				}
			}
			if diff := cmp.Diff(tc.wantSent, env.publisher.Sent()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			if env.collector.Calls() != 0 {
				t.Errorf("a backfill message ran the stream")
			}
		})
	}
}
