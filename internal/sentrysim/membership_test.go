package sentrysim

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// memberWorld is an organisation of four projects, each with one issue,
// and tokens of every kind.
type memberWorld struct {
	h   *harness
	ids []string // project ids, creation order
}

func newMemberWorld(t *testing.T) *memberWorld {
	t.Helper()
	h := newHarness(t, Config{Tokens: map[string][]string{"integration": {"org:read", "event:read", "project:read"}}})
	w := &memberWorld{h: h}
	for _, slug := range []string{"web", "api", "ios", "android"} {
		p := h.s.AddProject(slug, slug)
		w.ids = append(w.ids, p.ID)
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Hour), Message: "KeyError: " + slug})
	}
	// A user who is a member of half the projects (one by id, one by slug).
	h.s.SetToken("half", TokenInfo{Kind: TokenUser, Projects: []string{w.ids[0], "api"}})
	h.s.SetToken("nobody", TokenInfo{Kind: TokenUser})
	h.s.SetToken("closed", TokenInfo{Kind: TokenUser, Projects: []string{w.ids[0]}, NoGlobalAccess: true})
	return w
}

type issueRowT struct {
	ID               string  `json:"id"`
	Status           string  `json:"status"`
	Substatus        *string `json:"substatus"`
	Level            string  `json:"level"`
	Priority         string  `json:"priority"`
	PriorityLockedAt *string `json:"priorityLockedAt"`
	Title            string  `json:"title"`
	Count            string  `json:"count"`
	UserCount        int     `json:"userCount"`
	FirstSeen        *string `json:"firstSeen"`
	LastSeen         *string `json:"lastSeen"`
	Project          struct {
		ID string `json:"id"`
	} `json:"project"`
	AssignedTo *struct{ ID string }  `json:"assignedTo"`
	Stats      map[string][][2]int64 `json:"stats"`
	Lifetime   map[string]any        `json:"lifetime"`
	Filtered   json.RawMessage       `json:"filtered"`
}

func decodeIssues(t *testing.T, r result) []issueRowT {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var rows []issueRowT
	if err := json.Unmarshal(r.body, &rows); err != nil {
		t.Fatalf("decode issues %s: %v", r.body, err)
	}
	return rows
}

func issueProjects(rows []issueRowT) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Project.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// TestIssuesCoverMemberProjects mirrors OrganizationEndpoint.get_projects
// (src/sentry/api/bases/organization.py): "A project_id of -1 means 'all
// projects I have access to' While no project_ids means 'all projects I am
// a member of'." Internal integrations are members of every project; open
// membership gives users access to every project.
func TestIssuesCoverMemberProjects(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	ids := w.ids
	tests := []struct {
		name       string
		token      string
		query      string
		wantStatus int
		want       []string
	}{
		{"integration_no_param_is_every_project", "integration", "", 200, sorted(ids...)},
		{"user_no_param_is_member_projects", "half", "", 200, sorted(ids[0], ids[1])},
		{"user_minus_one_is_every_accessible_project", "half", "&project=-1", 200, sorted(ids...)},
		{"user_explicit_non_member_project_with_open_membership", "half", "&project=" + ids[3], 200, sorted(ids[3])},
		{"user_without_membership_no_param", "nobody", "", 200, sorted()},
		{"user_without_membership_minus_one", "nobody", "&project=-1", 200, sorted(ids...)},
		{"closed_user_minus_one_is_member_projects", "closed", "&project=-1", 200, sorted(ids[0])},
		{"closed_user_explicit_non_member_is_forbidden", "closed", "&project=" + ids[2], 403, nil},
		{"minus_one_with_an_id_is_forbidden", "half", "&project=-1&project=" + ids[0], 403, nil},
		{"not_a_number", "half", "&project=web", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := w.h.get(t, tc.token, "/api/0/organizations/acme/issues/?query="+tc.query)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus != 200 {
				return
			}
			got := issueProjects(decodeIssues(t, r))
			if got == nil {
				got = []string{}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("projects of the returned issues (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIssuesNoVisibleProjectIsEmptyWithoutLink mirrors
// organization_group_index.py: `if not projects: return Response([])`,
// before the query, limit and cursor are even parsed: a bare empty list
// with no Link header (and no X-Hits).
func TestIssuesNoVisibleProjectIsEmptyWithoutLink(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	for _, q := range []string{"", "?query=", "?statsPeriod=14d", "?limit=ten&cursor=junk&query=nonsense:key"} {
		r := w.h.get(t, "nobody", "/api/0/organizations/acme/issues/"+q)
		if r.status != 200 || string(r.body) != "[]" {
			t.Errorf("%q: %d %s, want 200 []", q, r.status, r.body)
		}
		for _, h := range []string{"Link", "X-Hits", "X-Max-Hits"} {
			if v := r.header.Get(h); v != "" {
				t.Errorf("%q: %s = %q, want none", q, h, v)
			}
		}
	}
	// A member with no issue in the window gets an empty page WITH a Link
	// header: that answer comes from the paginator.
	r := w.h.get(t, "half", "/api/0/organizations/acme/issues/?query=&statsPeriod=1m")
	if r.status != 200 || string(r.body) != "[]" || r.header.Get("Link") == "" {
		t.Errorf("empty search: %d %s Link=%q, want 200 [] with a Link header", r.status, r.body, r.header.Get("Link"))
	}
}

// TestProjectListIsNotFilteredByMembership: the project list shows every
// active project to a user token (isMember says which are its teams').
func TestProjectListIsNotFilteredByMembership(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	gone := w.h.s.AddProject("zzz-gone", "gone")
	w.h.s.DeleteProject(gone.ID)
	r := w.h.get(t, "half", "/api/0/organizations/acme/projects/")
	var rows []struct {
		Slug     string `json:"slug"`
		IsMember bool   `json:"isMember"`
	}
	if err := json.Unmarshal(r.body, &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, row := range rows {
		got[row.Slug] = row.IsMember
	}
	want := map[string]bool{"android": false, "api": true, "ios": false, "web": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slug → isMember (-want +got):\n%s", diff)
	}
}

// TestStatsProjectSelection mirrors _get_projects_for_orgstats_query and
// _is_org_total_query (src/sentry/api/endpoints/organization_stats_v2.py):
// with no project ids (or -1) and "project" not in
// request.GET.get("groupBy") (the LAST groupBy value, tested as a
// substring), the query is an org total over every project of the
// organisation, deleted ones included and whatever the caller's membership;
// otherwise get_projects applies, and no project at all is 400 "No projects
// available".
func TestStatsProjectSelection(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	gone := w.h.s.AddProject("gone", "gone")
	w.h.s.AddEvent(gone.ID, EventSpec{Timestamp: t0.Add(-time.Hour)})
	w.h.s.DeleteProject(gone.ID)
	w.h.clock.Advance(time.Minute) // past the outcome delay
	ids := w.ids
	const base = "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&statsPeriod=1d&interval=1h"
	tests := []struct {
		name       string
		token      string
		query      string
		wantStatus int
		wantDetail string
		wantTotal  int64    // ungrouped
		wantByProj []string // grouped by project
	}{
		{name: "org_total_counts_every_project_even_deleted", token: "nobody", wantStatus: 200, wantTotal: 5},
		{name: "org_total_with_minus_one", token: "half", query: "&project=-1", wantStatus: 200, wantTotal: 5},
		{name: "explicit_project_is_filtered", token: "half", query: "&project=" + ids[2], wantStatus: 200, wantTotal: 1},
		{name: "grouped_by_project_is_member_projects", token: "half", query: "&groupBy=project", wantStatus: 200, wantByProj: sorted(ids[0], ids[1])},
		{name: "grouped_minus_one_is_accessible_projects", token: "half", query: "&groupBy=project&project=-1", wantStatus: 200, wantByProj: sorted(ids...)},
		{name: "grouped_integration_is_every_live_project", token: "integration", query: "&groupBy=outcome&groupBy=project", wantStatus: 200, wantByProj: sorted(ids...)},
		{name: "grouped_project_first_is_an_org_total_query", token: "half", query: "&groupBy=project&groupBy=outcome", wantStatus: 200, wantByProj: sorted(append([]string{gone.ID}, ids...)...)},
		{name: "grouped_no_member_project", token: "nobody", query: "&groupBy=project", wantStatus: 400, wantDetail: "No projects available"},
		{name: "closed_user_explicit_non_member", token: "closed", query: "&project=" + ids[1], wantStatus: 403, wantDetail: "You do not have permission to perform this action."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := w.h.get(t, tc.token, base+tc.query)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantDetail != "" {
				if got := r.detail(t); got != tc.wantDetail {
					t.Errorf("detail %q, want %q", got, tc.wantDetail)
				}
				return
			}
			var s statsResp
			if err := json.Unmarshal(r.body, &s); err != nil {
				t.Fatal(err)
			}
			if tc.wantByProj == nil {
				if len(s.Groups) != 1 || s.Groups[0].Totals["sum(quantity)"] != tc.wantTotal {
					t.Errorf("want one group with total %d: %s", tc.wantTotal, r.body)
				}
				return
			}
			var got []string
			for _, g := range s.Groups {
				got = append(got, jsonNumber(g.By["project"]))
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.wantByProj, got); diff != "" {
				t.Errorf("projects (-want +got):\n%s", diff)
			}
		})
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
