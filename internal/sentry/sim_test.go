package sentry

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// TestAgainstSimulator pages through every project of a simulated org, all
// projects in parallel through one shared limiter registry, and checks that
// every visible event comes back exactly once and that pacing at the real
// SaaS limits (events: 60 per 60 s, one in flight) caused no 429.
func TestAgainstSimulator(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		selfHosted bool
		backlog    int
		faults     sentrysim.Faults
	}{
		{name: "saas_limits", backlog: 9000},
		{name: "self_hosted_no_headers", selfHosted: true, backlog: 2000},
		{name: "faults_retried", backlog: 3000, faults: sentrysim.Faults{P5xx: 0.05, P502HTML: 0.05, PTruncated: 0.05, PQueryTimeout: 0.05}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC))
			sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 42, SelfHosted: tc.selfHosted})
			// Backlog only, nothing late: the visible set cannot change while
			// the fake clock advances during rate-limit waits.
			sim.Populate(sentrysim.Scenario{Projects: 4, Backlog: tc.backlog, BacklogSpan: 6 * time.Hour})
			// Backlog events near "now" become visible a few seconds after
			// their timestamp; let them all land before paging (offsets would
			// otherwise drift, which is Sentry's behaviour, not the client's).
			clk.Advance(10 * time.Minute)
			sim.SetFaults(tc.faults)
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			c, err := New(Options{BaseURL: srv.URL, Token: testToken, Clock: clk, HTTPClient: srv.Client(), Limiters: NewLimiters()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()

			org, err := c.Organization(ctx, sim.Org())
			if err != nil {
				t.Fatalf("Organization: %v", err)
			}
			region := c.WithBaseURL(org.RegionURL)

			var projects []Project
			for cursor := ""; ; {
				p, err := region.ListProjects(ctx, sim.Org(), cursor)
				if err != nil {
					t.Fatalf("ListProjects: %v", err)
				}
				projects = append(projects, p.Items...)
				if !p.HasNext {
					break
				}
				cursor = p.NextCursor
			}

			got := map[string]map[string]bool{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, p := range projects {
				wg.Go(func() {
					seen, err := pageAll(ctx, region, sim.Org(), p.ID)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("project %s: %v", p.ID, err)
					}
					got[p.ID] = seen
				})
			}
			wg.Wait()

			want := sim.GroundTruth()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events returned vs ground truth (-want +got):\n%s", diff)
			}
			st := sim.RequestStats()
			if st.RateLimited != 0 {
				t.Errorf("simulator answered %d requests with 429; by status %v", st.RateLimited, st.ByStatus)
			}
			m := c.Metrics()
			if m.RateLimited != 0 {
				t.Errorf("client metrics %+v, want no 429", m)
			}
			if faulty := tc.faults != (sentrysim.Faults{}); faulty != (m.Retries > 0) || m.Retries != st.Faults {
				t.Errorf("client retried %d times, simulator injected %d faults", m.Retries, st.Faults)
			}
			t.Logf("%d events, %d requests, fake time passed %v", tc.backlog, st.Total, clk.Slept())
		})
	}
}

// pageAll returns the set of event ids of a project, failing on duplicates.
func pageAll(ctx context.Context, c *Client, org, project string) (map[string]bool, error) {
	seen := map[string]bool{}
	q := EventsQuery{Org: org, Project: project}
	for {
		p, err := c.ListEvents(ctx, q)
		if err != nil {
			return seen, err
		}
		for _, e := range p.Items {
			if seen[e.ID] {
				return seen, &QueryError{Msg: "duplicate event " + e.ID}
			}
			if e.ProjectID != project {
				return seen, &QueryError{Msg: "event " + e.ID + " has projectID " + e.ProjectID}
			}
			seen[e.ID] = true
		}
		if !p.HasNext {
			return seen, nil
		}
		q.Cursor = p.NextCursor
	}
}
