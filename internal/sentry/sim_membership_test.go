package sentry

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// TestMembershipAgainstSimulator: with a user token that is a member of no
// project, Sentry's issues endpoint covers no project and answers a bare
// [] without a Link header, which the client takes as an empty, complete
// page; AllProjects (project=-1) covers every project the token can access.
// stats_v2 grouped by project is likewise membership-filtered, and is paced
// by its own limiter group.
func TestMembershipAgainstSimulator(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC))
	sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 1, TokenInfo: map[string]sentrysim.TokenInfo{
		testToken: {Kind: sentrysim.TokenUser},
	}})
	var ids []string
	for _, slug := range []string{"web", "api", "ios"} {
		p := sim.AddProject(slug, slug)
		ids = append(ids, p.ID)
		sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: clk.Now().Add(-time.Hour), Message: "KeyError: " + slug})
	}
	clk.Advance(time.Minute)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := New(Options{BaseURL: srv.URL, Token: testToken, Clock: clk, HTTPClient: srv.Client(), Limiters: NewLimiters()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	issues := []struct {
		name     string
		projects []string
		want     int
	}{
		{"member_of_no_project", nil, 0},
		{"all_projects", []string{AllProjects}, 3},
		{"one_accessible_project", []string{ids[1]}, 1},
	}
	for _, tc := range issues {
		before := sim.RequestStats().Total
		p, err := c.ListIssues(ctx, IssuesQuery{Org: "acme", Projects: tc.projects})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.Items) != tc.want || p.HasNext || sim.RequestStats().Total-before != 1 {
			t.Errorf("%s: %d issues, HasNext %v, %d requests; want %d, false, 1", tc.name, len(p.Items), p.HasNext, sim.RequestStats().Total-before, tc.want)
		}
	}

	q := StatsQuery{Org: "acme", Start: clk.Now().Add(-24 * time.Hour).Truncate(time.Hour), End: clk.Now().Truncate(time.Hour).Add(time.Hour), Interval: time.Hour, GroupByProject: true}
	_, err = c.OrgStats(ctx, q)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Detail != "No projects available" {
		t.Errorf("stats by project without membership: %v, want 400 No projects available", err)
	}
	q.Projects = []string{AllProjects}
	st, err := c.OrgStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, g := range st.Groups {
		got[g.ProjectID] = g.Total
	}
	if diff := cmp.Diff(map[string]int64{ids[0]: 1, ids[1]: 1, ids[2]: 1}, got); diff != "" {
		t.Errorf("stats by project with AllProjects (-want +got):\n%s", diff)
	}
	c.limiters.mu.Lock()
	_, ok := c.limiters.m[limiterKey{c.tokenHash, groupStats}]
	c.limiters.mu.Unlock()
	if !ok {
		t.Errorf("stats_v2 did not use its own limiter group %q", groupStats)
	}
	if n := sim.RequestStats().ByGroup[sentrysim.GroupStats]; n != 2 {
		t.Errorf("simulator saw %d stats_v2 requests, want 2", n)
	}
}

// TestAllProjectsSendsMinusOne: AllProjects is sent as project=-1, Sentry's
// ALL_ACCESS_PROJECTS; no project sends no project parameter.
func TestAllProjectsSendsMinusOne(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		projects []string
		want     []string
	}{
		{"all", []string{AllProjects}, []string{"-1"}},
		{"none", nil, nil},
		{"explicit", []string{"11", "12"}, []string{"11", "12"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			got := map[string][]string{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got[r.URL.Path] = r.URL.Query()["project"]
				mu.Unlock()
				if r.URL.Path == "/api/0/organizations/acme/stats_v2/" {
					writeJSON(w, 200, `{"start":"2026-03-01T00:00:00Z","end":"2026-03-01T01:00:00Z","groups":[]}`)
					return
				}
				writeJSON(w, 200, `[]`)
			})
			c, _ := newTestClient(t, h, clock.NewFake(t0), nil)
			if _, err := c.ListIssues(t.Context(), IssuesQuery{Org: "acme", Projects: tc.projects}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.OrgStats(t.Context(), StatsQuery{Org: "acme", Projects: tc.projects}); err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{"/api/0/organizations/acme/issues/": tc.want, "/api/0/organizations/acme/stats_v2/": tc.want}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("project parameters (-want +got):\n%s", diff)
			}
		})
	}
}
