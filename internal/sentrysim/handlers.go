package sentrysim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handleOrg serves GET /api/0/organizations/{org}/ (scope org:read).
func (s *Server) handleOrg(rq *request) response {
	if e := s.orgCheck(rq, "org:read"); e != nil {
		return *e
	}
	region := s.cfg.RegionURL
	if region == "" {
		region = requestBase(rq.r)
	}
	orgURL := s.cfg.URLPrefix
	if orgURL == "" {
		orgURL = requestBase(rq.r)
	}
	b := []byte(`{"id":"`)
	b = append(b, s.cfg.OrgID...)
	b = append(b, `","slug":`...)
	b = appendJSONString(b, s.cfg.Org)
	b = append(b, `,"status":{"id":"active","name":"active"},"name":`...)
	b = appendJSONString(b, strings.ToUpper(s.cfg.Org[:1])+s.cfg.Org[1:]+" Inc")
	b = append(b, `,"dateCreated":"`...)
	b = s.orgCreated.AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","isEarlyAdopter":false,"require2FA":false,"avatar":{"avatarType":"letter_avatar","avatarUuid":null,"avatarUrl":null},"links":{"organizationUrl":`...)
	b = appendJSONString(b, strings.TrimRight(orgURL, "/"))
	b = append(b, `,"regionUrl":`...)
	b = appendJSONString(b, strings.TrimRight(region, "/"))
	b = append(b, `},"hasAuthProvider":false,"allowMemberInvite":true,"allowMemberProjectCreation":true,"allowSuperuserAccess":false,"features":["discover-basic","event-attachments",`...)
	if !s.cfg.NoGlobalViews {
		b = append(b, `"global-views",`...)
	}
	b = append(b, `"integrations-stacktrace-link","open-membership","sso-basic"],"dataScrubber":false,"scrubIPAddresses":false,"isDefault":false,"defaultRole":"member","orgRole":"member","access":[]}`...)
	return jsonResp(http.StatusOK, b)
}

// handleProjects serves GET /api/0/organizations/{org}/projects/
// (OffsetPaginator ordered by slug, live projects only; scope org:read).
// The list is not filtered by membership: a user token sees every project,
// with isMember telling which ones are its teams'.
func (s *Server) handleProjects(rq *request) response {
	if e := s.orgCheck(rq, "org:read"); e != nil {
		return *e
	}
	rows := s.projectRows(rq)
	if v, _ := last(rq.q, "all_projects"); v == "1" {
		return jsonResp(http.StatusOK, renderProjects(rows))
	}
	limit, e := perPage(rq.q)
	if e != nil {
		return *e
	}
	cur, e := cursorParam(rq.q)
	if e != nil {
		return *e
	}
	if cur != nil && cur.floatValue {
		return internalError(s.newEventID())
	}
	lo, hi, prev, next, bad := offsetPage(len(rows), limit, cur)
	if bad != "" {
		return badRequest(bad)
	}
	resp := jsonResp(http.StatusOK, renderProjects(rows[lo:hi]))
	resp.header = http.Header{"Link": {s.linkHeader(rq.r, prev, next)}}
	return resp
}

// projectRow is a project as the projects endpoint lists it.
type projectRow struct {
	id                   string
	slug, name, platform string
	created              time.Time
	firstEvent           int64
	hasEvents            bool
	member               bool
}

// projectRows returns the live projects, by slug, with their first
// visible event and the caller's membership.
func (s *Server) projectRows(rq *request) []projectRow {
	s.mu.RLock()
	rows := make([]projectRow, 0, len(s.projects))
	live := make([]*project, 0, len(s.projects))
	for _, p := range s.projects {
		if p.live {
			rows = append(rows, projectRow{id: p.idStr, slug: p.slug, name: p.name, platform: p.platform, created: p.created, member: rq.caller.isMember(p)})
			live = append(live, p)
		}
	}
	s.mu.RUnlock()
	now := rq.now.UnixNano()
	for i, p := range live {
		p.mu.Lock()
		p.promoteLocked(now)
		if len(p.visible) > 0 {
			rows[i].hasEvents, rows[i].firstEvent = true, p.visible[0].ts
		}
		p.mu.Unlock()
	}
	slices.SortFunc(rows, func(a, b projectRow) int { return cmp.Compare(a.slug, b.slug) })
	return rows
}

// renderProjects renders the rows as a JSON array.
func renderProjects(rows []projectRow) []byte {
	b := []byte{'['}
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendProject(b, r)
	}
	return append(b, ']')
}

// appendProject renders an OrganizationProjectsEndpoint row.
func appendProject(b []byte, r projectRow) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.id...)
	b = append(b, `","slug":`...)
	b = appendJSONString(b, r.slug)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, r.name)
	b = append(b, `,"platform":"`...)
	b = append(b, r.platform...)
	b = append(b, `","platforms":["`...)
	b = append(b, r.platform...)
	b = append(b, `"],"dateCreated":"`...)
	b = r.created.AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","isBookmarked":false,"isMember":`...)
	b = strconv.AppendBool(b, r.member)
	b = append(b, `,"features":["alert-filters","minidump","similarity-indexing"],"firstEvent":`...)
	if r.hasEvents {
		b = append(b, '"')
		b = appendDate(b, r.firstEvent)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"firstTransactionEvent":false,"access":["project:read","event:read"],"hasAccess":true,"hasMinifiedStackTrace":false,"hasMonitors":false,"hasProfiles":false,"hasReplays":false,"hasFeedbacks":false,"hasSessions":false,"isInternal":false,"isPublic":false,"avatar":{"avatarType":"letter_avatar","avatarUuid":null},"color":"#3f70bf","team":{"id":"1","name":"Platform","slug":"platform"},"teams":[{"id":"1","name":"Platform","slug":"platform"}],"environments":["production","staging"],"latestRelease":null,"latestDeploys":null,"hasUserReports":false}`...)
	return b
}

// resolveProject is ProjectEndpoint.convert_args: id or slug; 404 for
// unknown or inactive projects; 302 for a renamed slug (after the
// permission check, so a rename is not revealed to callers without access).
func (s *Server) resolveProject(rq *request, scope string) (*project, *response) {
	org := rq.r.PathValue("org")
	if org != s.cfg.Org && org != s.cfg.OrgID {
		resp := notFound()
		return nil, &resp
	}
	key := rq.r.PathValue("project")
	s.mu.RLock()
	p := s.byID[key]
	if p == nil {
		p = s.bySlug[key]
	}
	var moved *project
	var newSlug string
	if p == nil {
		if moved = s.redirects[key]; moved != nil {
			newSlug = moved.slug
		}
	}
	var live bool
	if p != nil {
		live = p.live
	} else if moved != nil {
		live = moved.live
	}
	s.mu.RUnlock()
	switch {
	case p != nil:
		if !live {
			resp := notFound()
			return nil, &resp
		}
		if !hasScope(rq.scopes, scope) {
			resp := forbidden()
			return nil, &resp
		}
		return p, nil
	case moved != nil:
		if !hasScope(rq.scopes, scope) {
			resp := forbidden()
			return nil, &resp
		}
		requested := rq.r.URL.RequestURI()
		newURL := strings.Replace(requested, "projects/"+org+"/"+key+"/", "projects/"+org+"/"+newSlug+"/", 1)
		if !live || newURL == requested {
			resp := notFound()
			return nil, &resp
		}
		b := []byte(`{"slug":`)
		b = appendJSONString(b, newSlug)
		b = append(b, `,"detail":{"code":"resource-moved","message":"Resource has been moved","extra":{"url":`...)
		b = appendJSONString(b, newURL)
		b = append(b, `,"slug":`...)
		b = appendJSONString(b, newSlug)
		b = append(b, `}}}`...)
		resp := jsonResp(http.StatusFound, b)
		resp.header = http.Header{"Location": {newURL}}
		return nil, &resp
	}
	resp := notFound()
	return nil, &resp
}
