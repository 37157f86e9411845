package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/backfill"

	"github.com/secops-collectors/sentry-gcs/internal/failure"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
)

func TestBackfillLoop(t *testing.T) {
	t.Parallel()
	job := func(status string, done int) backfill.Job {
		return backfill.Job{ID: "j1", Status: status,
			Projects: []backfill.Project{{ID: "1", WindowsDone: done, WindowsTotal: 3, EventsWritten: 5 * done}}}
	}
	cases := []struct {
		name     string
		results  []backfill.Result
		err      error
		wantCode int
		wantOut  string
	}{
		{name: "runs_until_done", results: []backfill.Result{
			{Summary: engine.Summary{WorkRemaining: true}, Job: job("running", 1)},
			{Summary: engine.Summary{WorkRemaining: true}, Job: job("running", 2)},
			{Job: job("done", 3)},
		}, wantOut: "backfill j1 done: 3/3 windows, 15 events written"},
		{name: "other_error", err: errors.New("boom"), wantCode: exitFailure},
		{name: "config", err: failure.ErrConfig, wantCode: exitConfig},
		{name: "failed_projects", results: []backfill.Result{{Job: func() backfill.Job {
			j := job("failed", 3)
			j.Errors = []string{"project 1: 404"}
			return j
		}()}}, wantCode: exitConfig, wantOut: "error: project 1: 404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			i := 0
			err := backfillLoop(t.Context(), nil, os.Stderr, &out, false, "j1", func(context.Context) (backfill.Result, error) {
				if tc.err != nil {
					return backfill.Result{}, tc.err
				}
				i++
				return tc.results[i-1], nil
			})
			code := 0
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code = %d (%v), want %d", code, err, tc.wantCode)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output = %q, want %q", out.String(), tc.wantOut)
			}
			if tc.err == nil && i != len(tc.results) {
				t.Errorf("%d runs, want %d", i, len(tc.results))
			}
		})
	}
}
