package sentrysim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
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
	q := rq.q
	start, end, _, msg := dateRange(q, rq.now, false, maxSearchPeriod)
	if msg != "" {
		return badRequest(msg)
	}
	statsPeriod, ok := last(q, "groupStatsPeriod")
	if !ok {
		statsPeriod = "24h" // calculate_stats_period
	}
	switch statsPeriod {
	case "", "24h", "14d", "auto":
	default:
		return badRequest(errInvalidStatsPeriod)
	}
	ps, e := s.getProjects(rq, q["project"])
	if e != nil {
		return *e
	}
	if len(ps) == 0 {
		// `if not projects: return Response([])`: no cursor result, so no
		// Link header and no X-Hits.
		return jsonResp(http.StatusOK, []byte("[]"))
	}

	// build_query_params_from_request
	limit := int64(100)
	if raw, _ := last(q, "limit"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return badRequest("invalid limit")
		}
		limit = n
	}
	cur, e := cursorParam(q)
	if e != nil {
		return *e
	}
	query, has := last(q, "query")
	if !has {
		query = defaultIssueQuery
	}
	filter, bad := parseIssueQuery(strings.TrimSpace(query), rq.now)
	if bad != "" {
		return badRequest("Error parsing search query: " + bad)
	}
	sortBy, _ := last(q, "sort")
	if sortBy == "" {
		sortBy = "date"
	}
	switch sortBy {
	case "date", "new", "freq", "user":
	case "inbox", "trends", "recommended":
		return badRequest("sentrysim does not simulate sort=" + sortBy)
	default:
		return badRequest("Sort key '" + sortBy + "' not supported.")
	}

	// The search window: [start, end) clamped to retention and to 90 days.
	// A window entirely before that is an empty result ("backwards
	// compatibility with Django search"), not an error.
	now := rq.now
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
	var rows []issueRow
	if searchStart.Before(searchEnd) {
		rows = s.searchIssues(ps, now, ceilSec(searchStart), ceilSec(searchEnd))
	}

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
		if c := cmp64(b.score, a.score); c != 0 {
			return c
		}
		return cmp64(b.id, a.id)
	})
	page, prev, next := sequencePage(items, limit, cur)

	var st statsSpec
	if statsPeriod != "" {
		st = groupStatsSpec(statsPeriod, now, start, end)
		s.fillIssueStats(rows, page, st, now)
	}
	base := strings.TrimRight(s.cfg.URLPrefix, "/")
	if base == "" {
		base = requestBase(rq.r)
	}
	b := []byte{'['}
	for i, it := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendIssue(b, &rows[it.idx], base, s.cfg.Org, statsPeriod, st)
	}
	resp := jsonResp(http.StatusOK, append(b, ']'))
	resp.header = http.Header{
		"Link":       {s.linkHeader(rq.r, prev, next)},
		"X-Hits":     {strconv.Itoa(min(len(items), 1000))},
		"X-Max-Hits": {"1000"},
	}
	return resp
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

// statsSpec is the "stats" series of the rows: GroupStatsMixin.get_stats
// with tsdb's get_optimal_rollup_series.
type statsSpec struct {
	rollup int64   // seconds
	series []int64 // bucket starts, unix seconds, oldest first
}

// groupStatsSpec: "24h" is 24 hourly points ending now, "14d" 14 daily
// points; "auto" spreads [start, end) over about 30 segments.
func groupStatsSpec(period string, now, start, end time.Time) statsSpec {
	var from, to time.Time
	var rollup int64
	switch period {
	case "24h":
		from, to, rollup = now.Add(-23*time.Hour), now, 3600
	case "14d":
		from, to, rollup = now.Add(-13*24*time.Hour), now, 86400
	default: // auto
		from, to = start, end
		total := end.Sub(start).Seconds()
		const segments, segments12h = 29, 35
		var r float64
		switch {
		case total < 86400:
			r = total / segments
		case total < segments*3600:
			r = 3600
		case total < segments*7200:
			r = 7200
		case total < segments*10800:
			r = 10800
		case total < segments*21600:
			r = 21600
		case total < segments12h*43200:
			r = 43200
		case total < segments*86400:
			r = 86400
		default:
			r = float64(int64(total/(segments*86400)+0.5)) * 86400
		}
		rollup = max(int64(r), 1)
	}
	var series []int64
	step := time.Duration(rollup) * time.Second
	for t := to; !t.Before(from); t = t.Add(-step) {
		sec := t.Unix()
		series = append(series, sec-mod(sec, rollup))
	}
	slices.Reverse(series)
	return statsSpec{rollup: rollup, series: series}
}

// fillIssueStats counts, for the rows of the page, their visible events
// per bucket of st (by event timestamp; retention applies).
func (s *Server) fillIssueStats(rows []issueRow, page []seqItem, st statsSpec, now time.Time) {
	if len(st.series) == 0 {
		return
	}
	lo, hi := st.series[0], st.series[len(st.series)-1]+st.rollup
	if edge, ok := s.retentionEdge(now); ok {
		lo = max(lo, edge)
	}
	byProject := map[*project][]int{}
	for _, it := range page {
		r := &rows[it.idx]
		r.series = make([]int64, len(st.series))
		byProject[r.p] = append(byProject[r.p], it.idx)
	}
	for p, idxs := range byProject {
		want := map[int32]*issueRow{}
		for _, i := range idxs {
			want[rows[i].g.idx] = &rows[i]
		}
		p.mu.Lock()
		a, z := p.window(lo, hi)
		for _, e := range p.visible[a:z] {
			if r := want[e.group]; r != nil {
				k := (e.ts - mod(e.ts, st.rollup) - st.series[0]) / st.rollup
				if k >= 0 && k < int64(len(r.series)) {
					r.series[k]++
				}
			}
		}
		p.mu.Unlock()
	}
}

// appendIssue renders a StreamGroupSerializerSnuba row: the base group
// fields, count/userCount/firstSeen/lastSeen for the search window
// (_seen_stats_error with start=self.start, end=self.end; all zero or null
// when that query has no row for the group), "stats", "lifetime" (count and
// firstSeen are the group's own; lastSeen and userCount come from an
// unbounded seen-stats query, which the simulator answers over all of the
// group's events, expired ones included; its "stats" is always null) and
// "filtered" (null: no event-level conditions).
func appendIssue(b []byte, r *issueRow, base, org, statsPeriod string, st statsSpec) []byte {
	g := r.g
	b = append(b, `{"id":"`...)
	b = append(b, g.idStr...)
	b = append(b, `","shareId":null,"shortId":`...)
	b = appendJSONString(b, g.shortID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, g.tpl.title())
	b = append(b, `,"culprit":`...)
	b = appendNullableString(b, g.tpl.culprit)
	b = append(b, `,"permalink":`...)
	b = appendJSONString(b, base+"/organizations/"+org+"/issues/"+g.idStr+"/")
	b = append(b, `,"logger":null,"level":"`...)
	b = append(b, levels[r.level]...)
	b = append(b, `","status":"`...)
	b = append(b, r.status...)
	b = append(b, `","statusDetails":{},"substatus":`...)
	b = appendNullableString(b, r.substatus)
	b = append(b, `,"isPublic":false,"platform":"`...)
	b = append(b, r.platform...)
	b = append(b, `","project":{"id":"`...)
	b = append(b, r.projectID...)
	b = append(b, `","name":`...)
	b = appendJSONString(b, r.projectName)
	b = append(b, `,"slug":`...)
	b = appendJSONString(b, r.projectSlug)
	b = append(b, `,"platform":"`...)
	b = append(b, r.platform...)
	b = append(b, `"},"type":"error","metadata":`...)
	b = appendMetadata(b, g)
	b = append(b, `,"numComments":0,"assignedTo":`...)
	if r.assignee == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"type":"user","id":`...)
		b = appendJSONString(b, r.assignee)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, "user"+r.assignee)
		b = append(b, `,"email":`...)
		b = appendJSONString(b, "user"+r.assignee+"@example.com")
		b = append(b, '}')
	}
	b = append(b, `,"isBookmarked":false,"isSubscribed":false,"subscriptionDetails":null,"hasSeen":false,"annotations":[],"issueType":"error","issueCategory":"error","priority":"`...)
	b = append(b, r.priority...)
	b = append(b, `","priorityLockedAt":`...)
	if r.priorityLockedAt == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = appendDateTime(b, time.Unix(0, r.priorityLockedAt))
		b = append(b, '"')
	}
	b = append(b, `,"isUnhandled":`...)
	b = strconv.AppendBool(b, !g.tpl.handled)
	if r.missing {
		b = append(b, `,"count":"0","userCount":0,"firstSeen":null,"lastSeen":null`...)
	} else {
		b = append(b, `,"count":"`...)
		b = strconv.AppendInt(b, r.win.count, 10)
		b = append(b, `","userCount":`...)
		b = strconv.AppendInt(b, r.win.userCount, 10)
		b = append(b, `,"firstSeen":"`...)
		b = appendDate(b, r.win.first)
		b = append(b, `","lastSeen":"`...)
		b = appendDate(b, r.win.last)
		b = append(b, '"')
	}
	if statsPeriod != "" {
		b = append(b, `,"stats":{"`...)
		b = append(b, statsPeriod...)
		b = append(b, `":[`...)
		for i, ts := range st.series {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, r.series[i], 10)
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	b = append(b, `,"lifetime":{"count":"`...)
	b = strconv.AppendInt(b, r.lifeCount, 10)
	b = append(b, `","userCount":`...)
	b = strconv.AppendInt(b, r.lifeUsers, 10)
	b = append(b, `,"firstSeen":"`...)
	b = appendEventTime(b, r.lifeFirst, r.lifeFirstMs)
	b = append(b, `","lastSeen":"`...)
	b = appendDate(b, r.lifeLast)
	b = append(b, '"')
	if statsPeriod != "" {
		b = append(b, `,"stats":null`...)
	}
	b = append(b, `},"filtered":null}`...)
	return b
}

// issueFilter is a parsed issue search query: every term must match.
type issueFilter struct {
	terms []issueTerm
}

type issueTerm struct {
	neg   bool
	match func(r *issueRow) bool
}

func (f issueFilter) match(r *issueRow) bool {
	for _, t := range f.terms {
		if t.match(r) == t.neg {
			return false
		}
	}
	return true
}

var (
	issueStatuses   = []string{"unresolved", "resolved", "ignored", "archived"}
	issueSubstatus  = []string{"ongoing", "escalating", "regressed", "new", "archived_until_escalating", "archived_until_condition_met", "archived_forever"}
	issueAssignment = []string{"assigned", "unassigned"}
)

// parseIssueQuery parses the subset of Sentry's issue search syntax
// (src/sentry/api/issue_search.py) that a collector uses: is:<status,
// substatus or assignment>, level:, issue.priority:, assigned:<user id or
// email>, lastSeen: and firstSeen:/age: (relative -24h / +24h, or
// >, >=, <, <= with an ISO date), timesSeen: (with the same operators),
// list values [a, b], a leading ! to negate, and free text (a substring of
// the title). lastSeen and timesSeen describe the events of the window, as
// the snuba search aggregates them; firstSeen is the issue's own. Any other
// key is an error: the simulator does not pretend to filter on tags.
func parseIssueQuery(q string, now time.Time) (f issueFilter, errMsg string) {
	toks, bad := splitQuery(q)
	if bad != "" {
		return f, bad
	}
	for _, tok := range toks {
		neg := strings.HasPrefix(tok, "!")
		body := strings.TrimPrefix(tok, "!")
		key, value, ok := strings.Cut(body, ":")
		if !ok || key == "" || strings.HasPrefix(body, `"`) {
			text := strings.ToLower(strings.Trim(body, `"`))
			f.terms = append(f.terms, issueTerm{neg: neg, match: func(r *issueRow) bool {
				return strings.Contains(strings.ToLower(r.g.tpl.title()), text)
			}})
			continue
		}
		values := listValues(value)
		var m func(r *issueRow) bool
		switch key {
		case "is":
			var ms []func(r *issueRow) bool
			for _, v := range values {
				switch {
				case slices.Contains(issueStatuses, v):
					st := v
					if st == "archived" {
						st = "ignored"
					}
					ms = append(ms, func(r *issueRow) bool { return r.status == st })
				case slices.Contains(issueSubstatus, v):
					ms = append(ms, func(r *issueRow) bool { return r.substatus == v })
				case v == "assigned":
					ms = append(ms, func(r *issueRow) bool { return r.assignee != "" })
				case v == "unassigned":
					ms = append(ms, func(r *issueRow) bool { return r.assignee == "" })
				default:
					valid := slices.Concat(issueStatuses, issueSubstatus, issueAssignment)
					slices.Sort(valid)
					return f, `Invalid value for "is" search, valid values are ['` + strings.Join(valid, "', '") + `']`
				}
			}
			m = anyOf(ms)
		case "level":
			m = func(r *issueRow) bool { return slices.Contains(values, levels[r.level]) }
		case "issue.priority":
			m = func(r *issueRow) bool { return slices.Contains(values, r.priority) }
		case "assigned":
			m = func(r *issueRow) bool {
				return r.assignee != "" && (slices.Contains(values, r.assignee) || slices.Contains(values, "user"+r.assignee+"@example.com"))
			}
		case "lastSeen":
			c, bad := parseDateFilter(value, now)
			if bad != "" {
				return f, bad
			}
			m = func(r *issueRow) bool { return c(r.win.last * 1000) }
		case "firstSeen", "age":
			c, bad := parseDateFilter(value, now)
			if bad != "" {
				return f, bad
			}
			m = func(r *issueRow) bool { return c(r.lifeFirst*1000 + int64(r.lifeFirstMs)) }
		case "timesSeen":
			c, bad := parseNumberFilter(value)
			if bad != "" {
				return f, bad
			}
			m = func(r *issueRow) bool { return c(r.win.count) }
		default:
			return f, "sentrysim does not simulate the search key " + strconv.Quote(key)
		}
		f.terms = append(f.terms, issueTerm{neg: neg, match: m})
	}
	return f, ""
}

func anyOf(ms []func(r *issueRow) bool) func(r *issueRow) bool {
	return func(r *issueRow) bool {
		for _, m := range ms {
			if m(r) {
				return true
			}
		}
		return false
	}
}

// splitQuery splits a search query on white space outside quotes and
// brackets (so `issue.priority:[high, medium]` is one term).
func splitQuery(q string) (toks []string, errMsg string) {
	var out []string
	var b strings.Builder
	inQuote, depth := false, 0
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	for _, c := range q {
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case unicode.IsSpace(c) && depth == 0:
			flush()
			continue
		}
		b.WriteRune(c)
	}
	if inQuote {
		return nil, "unterminated quote"
	}
	flush()
	return out, ""
}

// listValues splits "[a, b]" into its values; any other value is a list
// of one.
func listValues(v string) []string {
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		return []string{strings.Trim(v, `"`)}
	}
	var out []string
	for _, x := range strings.Split(v[1:len(v)-1], ",") {
		if x = strings.Trim(strings.TrimSpace(x), `"`); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parseDateFilter returns a predicate on unix milliseconds. "-24h" means
// within the last 24 hours (>= now-24h), "+24h" older than that
// (<= now-24h); an operator and an ISO date or datetime compare with that
// instant; a bare date is that whole UTC day.
func parseDateFilter(v string, now time.Time) (match func(ms int64) bool, errMsg string) {
	if len(v) > 1 && (v[0] == '-' || v[0] == '+') {
		d, ok := parseStatsPeriod(v[1:])
		if !ok {
			return nil, "Invalid date: " + v
		}
		at := now.Add(-d).UnixMilli()
		if v[0] == '-' {
			return func(ms int64) bool { return ms >= at }, ""
		}
		return func(ms int64) bool { return ms <= at }, ""
	}
	op, rest := cutOperator(v)
	t, ok := parseDateTime(rest)
	if !ok {
		return nil, "Invalid date: " + v
	}
	at := t.UnixMilli()
	if op == "" {
		if len(rest) != len("2006-01-02") {
			return nil, "Invalid date: " + v + " (use an operator with a datetime)"
		}
		to := t.Add(24 * time.Hour).UnixMilli()
		return func(ms int64) bool { return ms >= at && ms < to }, ""
	}
	return compareOp(op, at), ""
}

func parseNumberFilter(v string) (match func(n int64) bool, errMsg string) {
	op, rest := cutOperator(v)
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return nil, "Invalid number: " + v
	}
	if op == "" {
		op = "="
	}
	return compareOp(op, n), ""
}

func cutOperator(v string) (op, rest string) {
	for _, o := range []string{">=", "<=", ">", "<", "="} {
		if strings.HasPrefix(v, o) {
			return o, v[len(o):]
		}
	}
	return "", v
}

func compareOp(op string, x int64) func(int64) bool {
	switch op {
	case ">=":
		return func(n int64) bool { return n >= x }
	case "<=":
		return func(n int64) bool { return n <= x }
	case ">":
		return func(n int64) bool { return n > x }
	case "<":
		return func(n int64) bool { return n < x }
	}
	return func(n int64) bool { return n == x }
}
