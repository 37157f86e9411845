package sentrysim

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The organisation issues endpoint, GET /api/0/organizations/{org}/issues/
// (src/sentry/issues/endpoints/organization_group_index.py): an issue
// search over the EVENTS of a time window, a SequencePaginator keyset on a
// score, and StreamGroupSerializerSnuba rows whose top-level numbers
// describe the window only.

const (
	// defaultIssueQuery is DEFAULT_QUERY in
	// src/sentry/api/helpers/group_index/index.py, used when the query
	// parameter is absent (query= explicitly means every status).
	defaultIssueQuery = "is:unresolved issue.priority:[high, medium]"
	// errInvalidStatsPeriod is ERR_INVALID_STATS_PERIOD.
	errInvalidStatsPeriod = "Invalid stats_period. Valid choices are '', '24h', '14d' and 'auto'"
	// maxSearchPeriod: the snuba search executor never looks further back
	// than 90 days, whatever the retention (retention_date =
	// max(retention_window_start, now - timedelta(days=90))).
	maxSearchPeriod = 90 * 24 * time.Hour
)

// seenStats aggregates a group's events over a time range, as the
// seen-stats query (count(), min/max(timestamp), uniq(user)) does.
type seenStats struct {
	count       int64
	first, last int64 // unix seconds; meaningful when count > 0
	users       [8]uint64
	userCount   int64
}

func (st *seenStats) add(e event) {
	if st.count == 0 || e.ts < st.first {
		st.first = e.ts
	}
	if st.count == 0 || e.ts > st.last {
		st.last = e.ts
	}
	st.count++
	u := e.seq % userPool
	if st.users[u/64]&(1<<(u%64)) == 0 {
		st.users[u/64] |= 1 << (u % 64)
		st.userCount++
	}
}

// issueRow is a snapshot of an issue for one request.
type issueRow struct {
	g                *group
	p                *project
	status           string
	substatus        string
	assignee         string
	priority         string
	priorityLockedAt int64 // unix nanos; 0 never set by hand
	level            uint8
	win              seenStats // events in the search window
	missing          bool      // the windowed seen-stats query has no row for it
	lifeCount        int64
	lifeUsers        int64
	lifeFirst        int64 // unix seconds
	lifeFirstMs      uint16
	lifeLast         int64 // unix seconds
	projectID        string
	projectSlug      string
	projectName      string
	platform         string
	series           []int64 // stats buckets (rows of the page only)
}

// handleIssues serves GET /api/0/organizations/{org}/issues/ (scope
// event:read), in the order of OrganizationGroupIndexEndpoint.get.
func (s *Server) handleIssues(rq *request) response {
	if e := s.orgCheck(rq, "event:read"); e != nil {
		return *e
	}
	iq, ps, e := s.parseIssuesQuery(rq)
	if e != nil {
		return *e
	}
	rows := s.issuesInWindow(ps, rq.now, iq.start, iq.end)
	items := rankIssues(rows, iq.filter, iq.sortBy)
	page, prev, next := sequencePage(items, iq.limit, iq.cur)
	var st statsSpec
	if iq.statsPeriod != "" {
		st = groupStatsSpec(iq.statsPeriod, rq.now, iq.start, iq.end)
		s.fillIssueStats(rows, page, st, rq.now)
	}
	resp := jsonResp(http.StatusOK, s.renderIssues(rq.r, rows, page, iq.statsPeriod, st))
	resp.header = http.Header{
		"Link":       {s.linkHeader(rq.r, prev, next)},
		"X-Hits":     {strconv.Itoa(min(len(items), 1000))},
		"X-Max-Hits": {"1000"},
	}
	return resp
}

// issuesQuery is a validated issues query.
type issuesQuery struct {
	start, end  time.Time
	statsPeriod string // groupStatsPeriod; "" renders no "stats"
	limit       int64
	cur         *cursor
	filter      issueFilter
	sortBy      string
}

// parseIssuesQuery reads the date range, groupStatsPeriod and the
// projects, then the search parameters. It returns the answer itself when
// that is decided before the search: an error, or [] without projects.
func (s *Server) parseIssuesQuery(rq *request) (issuesQuery, []*project, *response) {
	q := rq.q
	var iq issuesQuery
	var msg string
	iq.start, iq.end, _, msg = dateRange(q, rq.now, false, maxSearchPeriod)
	if msg != "" {
		resp := badRequest(msg)
		return iq, nil, &resp
	}
	statsPeriod, ok := last(q, "groupStatsPeriod")
	if !ok {
		statsPeriod = "24h" // calculate_stats_period
	}
	switch statsPeriod {
	case "", "24h", "14d", "auto":
	default:
		resp := badRequest(errInvalidStatsPeriod)
		return iq, nil, &resp
	}
	iq.statsPeriod = statsPeriod
	ps, e := s.getProjects(rq, q["project"])
	if e != nil {
		return iq, nil, e
	}
	if len(ps) == 0 {
		// `if not projects: return Response([])`: no cursor result, so no
		// Link header and no X-Hits.
		resp := jsonResp(http.StatusOK, []byte("[]"))
		return iq, nil, &resp
	}
	if e := iq.parseSearchParams(q, rq.now); e != nil {
		return iq, nil, e
	}
	return iq, ps, nil
}

// parseSearchParams is build_query_params_from_request: limit, cursor, the
// search query (DEFAULT_QUERY when the parameter is absent) and the sort.
func (iq *issuesQuery) parseSearchParams(q url.Values, now time.Time) *response {
	iq.limit = 100
	if raw, _ := last(q, "limit"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			resp := badRequest("invalid limit")
			return &resp
		}
		iq.limit = n
	}
	var e *response
	if iq.cur, e = cursorParam(q); e != nil {
		return e
	}
	query, has := last(q, "query")
	if !has {
		query = defaultIssueQuery
	}
	var bad string
	if iq.filter, bad = parseIssueQuery(strings.TrimSpace(query), now); bad != "" {
		resp := badRequest("Error parsing search query: " + bad)
		return &resp
	}
	iq.sortBy, _ = last(q, "sort")
	if iq.sortBy == "" {
		iq.sortBy = "date"
	}
	var msg string
	switch iq.sortBy {
	case "date", "new", "freq", "user":
	case "inbox", "trends", "recommended":
		msg = "sentrysim does not simulate sort=" + iq.sortBy
	default:
		msg = "Sort key '" + iq.sortBy + "' not supported."
	}
	if msg != "" {
		resp := badRequest(msg)
		return &resp
	}
	return nil
}

// issuesInWindow searches the issues of ps in the search window: [start,
// end) clamped to retention and to 90 days. A window entirely before that
// is an empty result ("backwards compatibility with Django search"), not
// an error.
func (s *Server) issuesInWindow(ps []*project, now, start, end time.Time) []issueRow {
	retDate := now.Add(-maxSearchPeriod)
	if s.cfg.Retention > 0 && s.cfg.Retention < maxSearchPeriod {
		retDate = now.Add(-s.cfg.Retention)
	}
	searchStart, searchEnd := start, end
	if retDate.After(searchStart) {
		searchStart = retDate
	}
	if retDate.After(searchEnd) {
		searchEnd = retDate
	}
	if !searchStart.Before(searchEnd) {
		return nil
	}
	return s.searchIssues(ps, now, ceilSec(searchStart), ceilSec(searchEnd))
}

// rankIssues keeps the rows that match filter and orders them for the
// SequencePaginator: by the sort's score, then by id, both descending.
func rankIssues(rows []issueRow, filter issueFilter, sortBy string) []seqItem {
	items := make([]seqItem, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		if !filter.match(r) {
			continue
		}
		var score int64
		switch sortBy {
		case "date":
			score = r.win.last * 1000 // toUInt64(max(timestamp)) * 1000
		case "new":
			score = r.lifeFirst * 1000 // the group's first_seen
		case "freq":
			score = r.win.count
		case "user":
			score = r.win.userCount
		}
		items = append(items, seqItem{score: score, id: r.g.id, idx: i})
	}
	slices.SortFunc(items, func(a, b seqItem) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
	return items
}

// renderIssues renders the rows of the page as a JSON array.
func (s *Server) renderIssues(r *http.Request, rows []issueRow, page []seqItem, statsPeriod string, st statsSpec) []byte {
	base := strings.TrimRight(s.cfg.URLPrefix, "/")
	if base == "" {
		base = requestBase(r)
	}
	b := []byte{'['}
	for i, it := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendIssue(b, &rows[it.idx], base, s.cfg.Org, statsPeriod, st)
	}
	return append(b, ']')
}

// searchIssues returns a row for every issue of ps with at least one
// visible event with lo <= timestamp < hi (unix seconds): the search runs
// over the events of the window, so an issue whose events all lie outside
// it is not found, whatever its status or assignee.
func (s *Server) searchIssues(ps []*project, now time.Time, lo, hi int64) []issueRow {
	type meta struct{ id, slug, name, platform string }
	metas := make([]meta, len(ps))
	s.mu.RLock()
	for i, p := range ps {
		metas[i] = meta{p.idStr, p.slug, p.name, p.platform}
	}
	s.mu.RUnlock()
	nowN := now.UnixNano()
	var rows []issueRow
	for i, p := range ps {
		p.mu.Lock()
		p.promoteLocked(nowN)
		a, z := p.window(lo, hi)
		stats := make([]seenStats, len(p.groups))
		for _, e := range p.visible[a:z] {
			stats[e.group].add(e)
		}
		for gi, g := range p.groups {
			if stats[gi].count == 0 {
				continue
			}
			m := metas[i]
			rows = append(rows, issueRow{
				g: g, p: p, status: g.status, substatus: g.substatus, assignee: g.assignee, priority: g.priority,
				priorityLockedAt: g.priorityLockedAt, level: g.level, win: stats[gi],
				missing:   g.noSeenStats || s.seenStatsMissing(g.id),
				lifeCount: g.count, lifeUsers: g.userCount, lifeFirst: g.firstSeen, lifeFirstMs: g.firstSeenMs, lifeLast: g.lastSeen,
				projectID: m.id, projectSlug: m.slug, projectName: m.name, platform: m.platform,
			})
		}
		p.mu.Unlock()
	}
	return rows
}

// seenStatsMissing reports whether Config.MissingSeenStats picks issue id.
func (s *Server) seenStatsMissing(id int64) bool {
	if s.cfg.MissingSeenStats <= 0 {
		return false
	}
	x := uint64(s.cfg.Seed)*0x9e3779b97f4a7c15 ^ uint64(id)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/(1<<53) < s.cfg.MissingSeenStats
}
