package sentrysim

import (
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
	type row struct {
		id                   string
		slug, name, platform string
		created              time.Time
		firstEvent           int64
		hasEvents            bool
		member               bool
	}
	s.mu.RLock()
	rows := make([]row, 0, len(s.projects))
	live := make([]*project, 0, len(s.projects))
	for _, p := range s.projects {
		if p.live {
			rows = append(rows, row{id: p.idStr, slug: p.slug, name: p.name, platform: p.platform, created: p.created, member: rq.caller.isMember(p)})
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
	slices.SortFunc(rows, func(a, b row) int { return cmpString(a.slug, b.slug) })
	render := func(b []byte, r row) []byte {
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
	if v, _ := last(rq.q, "all_projects"); v == "1" {
		b := []byte{'['}
		for i, r := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = render(b, r)
		}
		return jsonResp(http.StatusOK, append(b, ']'))
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
	b := []byte{'['}
	for i := lo; i < hi; i++ {
		if i > lo {
			b = append(b, ',')
		}
		b = render(b, rows[i])
	}
	resp := jsonResp(http.StatusOK, append(b, ']'))
	resp.header = http.Header{"Link": {s.linkHeader(rq.r, prev, next)}}
	return resp
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

// handleEvents serves GET /api/0/projects/{org}/{project}/events/
// (GenericOffsetPaginator; scope project:read).
func (s *Server) handleEvents(rq *request) response {
	p, e := s.resolveProject(rq, "project:read")
	if e != nil {
		return *e
	}
	// Without a range, snuba.py's _prepare_start_end queries from 2008 to
	// now + 1 s (so future-dated events are not listed yet).
	start, end := time.Date(2008, 5, 8, 0, 0, 0, 0, time.UTC), rq.now.Add(time.Second)
	if !s.cfg.IgnoreDateRange {
		st, en, ok, msg := dateRange(rq.q, rq.now, true, 0)
		if msg != "" {
			return badRequest("Invalid date range parameters provided")
		}
		if ok {
			start, end = st, en
		}
	}
	limit, offset, e := s.genericOffsetParams(rq.q)
	if e != nil {
		return *e
	}
	fullV, _ := last(rq.q, "full")
	full := fullV == "1" || fullV == "true"
	if full {
		limit = min(limit, 10)
	}
	query, _ := last(rq.q, "query")
	query = strings.ToLower(query)
	// outside_retention_with_modified_start (src/sentry/utils/dates.py):
	// start moves up to now − retention, and a window that ends before that
	// raises QueryOutsideRetentionError ("Invalid date range. Please try a
	// more recent date range."), which this endpoint does not catch (no
	// handle_query_errors): a 500.
	if s.cfg.Retention > 0 {
		if edge := rq.now.Add(-s.cfg.Retention); edge.After(start) {
			start = edge
		}
		if start.After(end) {
			return internalError(s.newEventID())
		}
	}

	rows := make([]rowCtx, 0, limit+1)
	p.mu.Lock()
	p.promoteLocked(rq.now.UnixNano())
	lo, hi := p.window(ceilSec(start), ceilSec(end))
	if query == "" {
		for i := int64(hi) - 1 - offset; i >= int64(lo) && int64(len(rows)) <= limit; i-- {
			ev := p.visible[i]
			rows = append(rows, rowCtx{e: ev, g: p.groups[ev.group]})
		}
	} else {
		skip := offset
		for i := hi - 1; i >= lo && int64(len(rows)) <= limit; i-- {
			ev := p.visible[i]
			g := p.groups[ev.group]
			msg := ev.msg
			if msg == "" {
				msg = g.tpl.title()
			}
			if !strings.Contains(strings.ToLower(msg), query) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			rows = append(rows, rowCtx{e: ev, g: g})
		}
	}
	p.mu.Unlock()
	s.mu.RLock()
	pid, platform := p.idStr, p.platform
	s.mu.RUnlock()

	hasMore := int64(len(rows)) == limit+1
	if hasMore {
		rows = rows[:limit]
	}
	size := 700
	if full {
		size = 2600
	}
	b := make([]byte, 0, len(rows)*size+2)
	b = append(b, '[')
	for i, rc := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		rc.projectID, rc.platform = pid, platform
		b = appendEvent(b, rc, full)
	}
	b = append(b, ']')
	resp := jsonResp(http.StatusOK, b)
	prev, next := genericOffsetCursors(offset, limit, hasMore)
	resp.header = http.Header{"Link": {s.linkHeader(rq.r, prev, next)}}
	return resp
}

// auditEntry is one audit log row.
type auditEntry struct {
	id        int64
	at        int64 // unix micros
	visibleAt int64 // unix nanos
	event     string
	actorID   int64
	actorName string
	note      string
}

// auditCmp orders entries newest first (datetime, then id).
func auditCmp(a, b auditEntry) int {
	if c := cmp64(b.at, a.at); c != 0 {
		return c
	}
	return cmp64(b.id, a.id)
}

var auditEventNames = []string{
	"alertrule.add", "alertrule.edit", "alertrule.remove", "api-key.add", "api-key.edit", "api-key.remove",
	"integration.add", "integration.edit", "integration.remove", "internal-integration.add-token",
	"internal-integration.create", "internal-integration.disable", "internal-integration.remove-token",
	"issue.delete", "member.accept-invite", "member.add", "member.edit", "member.invite", "member.join-team",
	"member.leave-team", "member.pending", "member.reinvite", "member.remove", "org-auth-token.create",
	"org-auth-token.remove", "org.create", "org.edit", "org.remove", "org.restore", "project.create",
	"project.edit", "project.remove", "projectkey.add", "projectkey.edit", "projectkey.remove",
	"rule.add", "rule.edit", "rule.remove", "sso-identity.link", "sso.disable", "sso.edit", "sso.enable",
	"team.create", "team.edit", "team.remove",
}

// handleAuditLogs serves GET /api/0/organizations/{org}/audit-logs/
// (DateTimePaginator newest first; scope org:write).
func (s *Server) handleAuditLogs(rq *request) response {
	if e := s.orgCheck(rq, "org:write"); e != nil {
		return *e
	}
	q := rq.q
	var actor int64 = -1
	if raw, ok := last(q, "actor"); ok && raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return jsonResp(http.StatusBadRequest, []byte(`{"actor":["A valid integer is required."]}`))
		}
		if n > 2147483647 {
			return jsonResp(http.StatusBadRequest, []byte(`{"actor":["Ensure this value is less than or equal to 2147483647."]}`))
		}
		actor = n
	}
	evName, _ := last(q, "event")
	limit, e := perPage(q)
	if e != nil {
		return *e
	}
	cur, e := cursorParam(q)
	if e != nil {
		return *e
	}
	now := rq.now.UnixNano()
	s.auditMu.Lock()
	entries := make([]auditEntry, 0, len(s.audit))
	for _, a := range s.audit {
		if a.visibleAt > now || (evName != "" && a.event != evName) || (actor >= 0 && a.actorID != actor) {
			continue
		}
		entries = append(entries, a)
	}
	s.auditMu.Unlock()
	items := make([]keysetItem, len(entries))
	for i, a := range entries {
		items[i] = keysetItem{micros: a.at, idx: i}
	}
	page, prev, next := keysetPage(items, limit, cur)
	b := []byte(`{"rows":[`)
	for i, it := range page {
		if i > 0 {
			b = append(b, ',')
		}
		a := entries[it.idx]
		b = append(b, `{"id":"`...)
		b = strconv.AppendInt(b, a.id, 10)
		b = append(b, `","actor":{"id":"`...)
		b = strconv.AppendInt(b, a.actorID, 10)
		b = append(b, `","name":`...)
		b = appendJSONString(b, a.actorName)
		b = append(b, `,"email":`...)
		b = appendJSONString(b, a.actorName)
		b = append(b, `,"isActive":true,"has2fa":true},"event":`...)
		b = appendJSONString(b, a.event)
		b = append(b, `,"ipAddress":"192.0.2.`...)
		b = strconv.AppendInt(b, a.actorID%250+1, 10)
		b = append(b, `","note":`...)
		b = appendJSONString(b, a.note)
		b = append(b, `,"targetObject":`...)
		b = strconv.AppendInt(b, 4000+a.id%97, 10)
		b = append(b, `,"targetUser":null,"data":{},"dateCreated":"`...)
		b = time.UnixMicro(a.at).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
		b = append(b, `"}`...)
	}
	b = append(b, `],"options":[`...)
	for i, n := range auditEventNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	b = append(b, "]}"...)
	resp := jsonResp(http.StatusOK, b)
	resp.header = http.Header{"Link": {s.linkHeader(rq.r, prev, next)}}
	return resp
}
