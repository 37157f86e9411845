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

	"github.com/secops-collectors/sentry-gcs/internal/coverage"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// fakeCoverager answers a fixed report and records what it was asked.
type fakeCoverager struct {
	mu       sync.Mutex
	since    time.Time
	projects []string
	err      error
}

func (f *fakeCoverager) Coverage(_ context.Context, since time.Time, projects []string) (*coverage.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since, f.projects = since, projects
	if f.err != nil {
		return nil, f.err
	}
	return &coverage.Report{Org: "acme", Since: since, OK: true, Verdict: "1 project-hours: OK",
		Rows: []coverage.ReportRow{{ProjectID: "1", Project: "web", Row: coverage.Row{Status: coverage.Complete, Collected: 3}}}}, nil
}

func TestCoverage(t *testing.T) {
	t.Parallel()
	fixed := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name         string
		query        string
		email        string // "" : no Authorization header
		err          error
		wantStatus   int
		wantError    string
		wantSinceAgo time.Duration // with wantSince zero
		wantSince    time.Time
		wantProjects []string
	}{
		{name: "default_day", email: testInvoker, wantStatus: http.StatusOK, wantSinceAgo: 24 * time.Hour},
		{name: "duration", query: "?since=90m", email: testInvoker, wantStatus: http.StatusOK, wantSinceAgo: 90 * time.Minute},
		{name: "time_and_projects", query: "?since=2026-11-20T00:00:00Z&projects=web,%2042", email: testInvoker,
			wantStatus: http.StatusOK, wantSince: fixed, wantProjects: []string{"web", "42"}},
		{name: "bad_since", query: "?since=yesterday", email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "since must be a positive duration"},
		{name: "negative_since", query: "?since=-1h", email: testInvoker, wantStatus: http.StatusBadRequest, wantError: "since must be a positive duration"},
		{name: "missing_token", wantStatus: http.StatusUnauthorized},
		{name: "push_identity", email: testPushSA, wantStatus: http.StatusForbidden},
		{name: "store_down", email: testInvoker, err: failure.Transient(errors.New("gcs 503")), wantStatus: http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc := &fakeCoverager{err: tc.err}
			env, _ := newBackfillEnv(t, func(o *serverOptions) { o.Coverage = fc })
			h := http.Header{}
			if tc.email != "" {
				h = env.invokerHeader(t, tc.email)
			}
			before := time.Now().UTC()
			rec := env.do(t, http.MethodGet, pathCoverage+tc.query, "", h)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			body := decodeBody(t, rec)
			if tc.wantError != "" && !strings.Contains(fmt.Sprint(body["error"]), tc.wantError) {
				t.Errorf("error = %q, want it to contain %q", body["error"], tc.wantError)
			}
			if tc.wantStatus != http.StatusOK {
				return
			}
			if body["ok"] != true || body["verdict"] != "1 project-hours: OK" {
				t.Errorf("body = %v", body)
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if !tc.wantSince.IsZero() {
				if !fc.since.Equal(tc.wantSince) {
					t.Errorf("since = %s, want %s", fc.since, tc.wantSince)
				}
			} else if ago := before.Sub(fc.since); ago < tc.wantSinceAgo-time.Minute || ago > tc.wantSinceAgo+time.Minute {
				t.Errorf("since = %s, want about %s ago", fc.since, tc.wantSinceAgo)
			}
			if diff := cmp.Diff(tc.wantProjects, fc.projects); diff != "" {
				t.Errorf("projects (-want +got):\n%s", diff)
			}
		})
	}
}
