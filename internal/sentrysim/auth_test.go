package sentrysim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthAndScopes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Tokens: map[string][]string{
		"reader":   {"org:read", "project:read", "event:read"},
		"admin":    {"org:admin"},
		"ci":       {"org:ci"},
		"projonly": {"project:admin"},
	}})
	p := h.s.AddProject("web", "Web")
	gone := h.s.AddProject("old", "Old")
	h.s.DeleteProject(gone.ID)
	addEvents(h.s, p.ID, 3, t0.Add(-time.Minute))

	const (
		notProvided = "Authentication credentials were not provided."
		invalid     = "Invalid token"
		denied      = "You do not have permission to perform this action."
		missing     = "The requested resource does not exist"
	)
	tests := []struct {
		name       string
		token      string
		path       string
		wantStatus int
		wantDetail string
	}{
		{"missing_token", "", "/api/0/organizations/acme/", 401, notProvided},
		{"unknown_token", "nope", "/api/0/organizations/acme/", 401, invalid},
		{"org_read_ok", "reader", "/api/0/organizations/acme/", 200, ""},
		{"org_by_id_ok", "reader", "/api/0/organizations/1000001/", 200, ""},
		{"unknown_org", "reader", "/api/0/organizations/other/", 404, missing},
		{"unknown_org_before_scope", "ci", "/api/0/organizations/other/projects/", 404, missing},
		{"org_token_cannot_list_projects", "ci", "/api/0/organizations/acme/projects/", 403, denied},
		{"events_ok_by_slug", "reader", "/api/0/projects/acme/web/events/", 200, ""},
		{"events_ok_by_id", "reader", "/api/0/projects/acme/" + p.ID + "/events/", 200, ""},
		{"events_admin_implies_read", "projonly", "/api/0/projects/acme/web/events/", 200, ""},
		{"events_without_project_read", "admin", "/api/0/projects/acme/web/events/", 403, denied},
		{"events_unknown_project", "reader", "/api/0/projects/acme/nope/events/", 404, missing},
		{"events_deleted_project", "reader", "/api/0/projects/acme/" + gone.ID + "/events/", 404, missing},
		{"events_unknown_org", "reader", "/api/0/projects/zzz/web/events/", 404, missing},
		{"issues_need_event_read", "admin", "/api/0/organizations/acme/issues/", 403, denied},
		{"issues_ok", "reader", "/api/0/organizations/acme/issues/", 200, ""},
		{"audit_read_only_denied", "reader", "/api/0/organizations/acme/audit-logs/", 403, denied},
		{"audit_admin_ok", "admin", "/api/0/organizations/acme/audit-logs/", 200, ""},
		{"stats_ok", "reader", "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error&statsPeriod=1d", 200, ""},
		{"stats_ci_denied", "ci", "/api/0/organizations/acme/stats_v2/?field=sum(quantity)&category=error", 403, denied},
		{"unknown_route", "reader", "/api/0/nothing/", 404, missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.get(t, tc.token, tc.path)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantDetail != "" {
				if got := r.detail(t); got != tc.wantDetail {
					t.Errorf("detail = %q, want %q", got, tc.wantDetail)
				}
			}
		})
	}
}

func TestAuthHeaderVariants(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	tests := []struct {
		name       string
		header     string
		wantStatus int
		wantDetail string
	}{
		{"bearer_without_value", "Bearer ", 401, "Invalid token header. No credentials provided."},
		{"basic_is_not_bearer", "Basic dXNlcjo=", 401, "Authentication credentials were not provided."},
		{"any_token_when_map_empty", "Bearer whatever", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.ts.URL+"/api/0/organizations/acme/", nil)
			req.Header.Set("Authorization", tc.header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var v struct{ Detail string }
			_ = json.NewDecoder(resp.Body).Decode(&v)
			if resp.StatusCode != tc.wantStatus || v.Detail != tc.wantDetail {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, v.Detail, tc.wantStatus, tc.wantDetail)
			}
		})
	}
}

func TestRenamedProjectRedirects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Tokens: map[string][]string{"reader": {"project:read"}, "none": {"org:read"}}})
	p := h.s.AddProject("web", "Web")
	h.s.RenameProject(p.ID, "storefront")

	r := h.get(t, "reader", "/api/0/projects/acme/web/events/?per_page=5&cursor=0:5:0")
	if r.status != http.StatusFound {
		t.Fatalf("status = %d, want 302: %s", r.status, r.body)
	}
	wantLoc := "/api/0/projects/acme/storefront/events/?per_page=5&cursor=0:5:0"
	if got := r.header.Get("Location"); got != wantLoc {
		t.Errorf("Location = %q, want %q", got, wantLoc)
	}
	var body struct {
		Slug   string `json:"slug"`
		Detail struct {
			Code  string `json:"code"`
			Extra struct {
				URL  string `json:"url"`
				Slug string `json:"slug"`
			} `json:"extra"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Slug != "storefront" || body.Detail.Extra.Slug != "storefront" || body.Detail.Extra.URL != wantLoc || body.Detail.Code != "resource-moved" {
		t.Errorf("body = %s", r.body)
	}
	if r := h.get(t, "none", "/api/0/projects/acme/web/events/"); r.status != http.StatusForbidden {
		t.Errorf("without scope: status %d, want 403 (rename not revealed)", r.status)
	}
	if r := h.get(t, "reader", "/api/0/projects/acme/storefront/events/"); r.status != 200 {
		t.Errorf("new slug: status %d", r.status)
	}
	if r := h.get(t, "reader", "/api/0/projects/acme/"+p.ID+"/events/"); r.status != 200 {
		t.Errorf("numeric id: status %d", r.status)
	}
}

func TestOrganizationLinks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	r := h.get(t, "tok", "/api/0/organizations/acme/")
	var org struct {
		ID    string `json:"id"`
		Slug  string `json:"slug"`
		Links struct {
			RegionURL       string `json:"regionUrl"`
			OrganizationURL string `json:"organizationUrl"`
		} `json:"links"`
	}
	if err := json.Unmarshal(r.body, &org); err != nil {
		t.Fatal(err)
	}
	if org.Slug != "acme" || org.ID != "1000001" || org.Links.RegionURL != h.ts.URL || org.Links.OrganizationURL == "" {
		t.Errorf("org = %+v, want regionUrl %s", org, h.ts.URL)
	}
	h2 := newHarness(t, Config{RegionURL: "http://us.example.test"})
	r = h2.get(t, "tok", "/api/0/organizations/acme/")
	if err := json.Unmarshal(r.body, &org); err != nil || org.Links.RegionURL != "http://us.example.test" {
		t.Errorf("regionUrl override = %q (%v)", org.Links.RegionURL, err)
	}
}

func TestProjectsPageNumberPagination(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	for _, s := range []string{"echo", "alpha", "delta", "bravo", "charlie", "foxtrot"} {
		h.s.AddProject(s, s)
	}
	gone := h.s.AddProject("aaa-deleted", "x")
	h.s.DeleteProject(gone.ID)

	type page struct {
		Slugs       []string
		Prev, Next  string
		PrevResults bool
		NextResults bool
	}
	var got []page
	cursor := ""
	for range 10 {
		q := "per_page=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := h.get(t, "tok", "/api/0/organizations/acme/projects/?"+q)
		var rows []struct{ Slug string }
		if err := json.Unmarshal(r.body, &rows); err != nil {
			t.Fatal(err)
		}
		prev, next := parseLink(t, r.header.Get("Link"))
		pg := page{Prev: prev.cursor, Next: next.cursor, PrevResults: prev.results, NextResults: next.results}
		for _, row := range rows {
			pg.Slugs = append(pg.Slugs, row.Slug)
		}
		got = append(got, pg)
		if !next.results {
			break
		}
		cursor = next.cursor
	}
	want := []page{
		{Slugs: []string{"alpha", "bravo"}, Prev: "2:-1:1", Next: "2:1:0", NextResults: true},
		{Slugs: []string{"charlie", "delta"}, Prev: "2:0:1", Next: "2:2:0", PrevResults: true, NextResults: true},
		{Slugs: []string{"echo", "foxtrot"}, Prev: "2:1:1", Next: "2:3:0", PrevResults: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	r := h.get(t, "tok", "/api/0/organizations/acme/projects/?cursor=2:-1:1")
	if r.status != 400 || r.detail(t) != "Pagination offset cannot be negative" {
		t.Errorf("negative page: %d %s", r.status, r.body)
	}
}

func TestIssues(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	var issueIDs []string
	for i := range 7 {
		h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Duration(10-i) * time.Minute), Message: "KeyError: k" + strconv.Itoa(i)})
	}
	// Issues 0..6 have lastSeen ascending with i; newest first is 6..0.
	all := func(query string) []string {
		var out []string
		cursor := ""
		for range 10 {
			q := "limit=3&" + query
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := h.get(t, "tok", "/api/0/organizations/acme/issues/?"+q)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if r.header.Get("X-Hits") == "" || r.header.Get("X-Max-Hits") != "1000" {
				t.Errorf("X-Hits %q X-Max-Hits %q", r.header.Get("X-Hits"), r.header.Get("X-Max-Hits"))
			}
			var rows []struct {
				ID, Title, Status, Count string
				LastSeen                 string
			}
			if err := json.Unmarshal(r.body, &rows); err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				out = append(out, row.Title)
			}
			_, next := parseLink(t, r.header.Get("Link"))
			if !next.results {
				break
			}
			cursor = next.cursor
		}
		return out
	}
	want := []string{"KeyError: k6", "KeyError: k5", "KeyError: k4", "KeyError: k3", "KeyError: k2", "KeyError: k1", "KeyError: k0"}
	if diff := cmp.Diff(want, all("")); diff != "" {
		t.Errorf("default query (-want +got):\n%s", diff)
	}
	// Resolve k5: the default is:unresolved hides it, query= shows it.
	r := h.get(t, "tok", "/api/0/organizations/acme/issues/?query=k5")
	var rows []struct{ ID string }
	_ = json.Unmarshal(r.body, &rows)
	if len(rows) != 1 {
		t.Fatalf("query=k5: %s", r.body)
	}
	issueIDs = append(issueIDs, rows[0].ID)
	h.s.SetIssueStatus(issueIDs[0], "resolved")
	if got := all(""); len(got) != 6 {
		t.Errorf("default is:unresolved returned %d issues, want 6", len(got))
	}
	if got := all("query="); len(got) != 7 {
		t.Errorf("empty query returned %d issues, want 7", len(got))
	}
	if got := all("query=is:resolved"); len(got) != 1 {
		t.Errorf("is:resolved returned %d issues, want 1", len(got))
	}
}
