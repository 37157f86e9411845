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

var (
	statsFields     = []string{"sum(quantity)", "sum(times_seen)"}
	statsGroupBys   = []string{"outcome", "category", "reason", "project"}
	statsCategories = []string{"error", "default", "security", "transaction", "attachment", "replay", "profile", "profile_duration", "profile_duration_ui", "profile_chunk", "profile_chunk_ui", "monitor", "span", "log_item", "log_byte"}
	statsOutcomes   = []string{"accepted", "filtered", "rate_limited", "invalid", "abuse", "client_discard", "cardinality_limited"}
)

const maxStatsPoints = 1000

// handleStats serves GET /api/0/organizations/{org}/stats_v2/ for accepted
// error outcomes, counted by RECEIVED time once their outcome delay has
// passed (scope org:read).
func (s *Server) handleStats(rq *request) response {
	if e := s.orgCheck(rq, "org:read"); e != nil {
		return *e
	}
	// build_outcomes_query resolves the projects before it parses the rest.
	ps, e := s.statsProjects(rq)
	if e != nil {
		return *e
	}
	sq, e := parseStatsQuery(rq.q, rq.now)
	if e != nil {
		return *e
	}
	return jsonResp(http.StatusOK, renderStats(sq, s.statsGroups(ps, sq, rq.now)))
}

// statsQuery is a validated stats_v2 query.
type statsQuery struct {
	fields     []string // once each, in order
	groupBy    []string // once each, in order
	interval   int64    // seconds
	start, end int64    // unix seconds, aligned to the interval
	n          int64    // intervals in [start, end)
	hourly     bool     // an interval of an hour or more: hourly outcomes
	byProject  bool     // groupBy=project
	// counted: the query selects what the simulator counts, the accepted
	// outcomes of category error (with reason "none", which only the
	// hourly outcomes have, when a reason is given).
	counted bool
}

// parseStatsQuery validates the parameters in the order Sentry does:
// fields, groupBy, category or groupBy=category, interval, date range,
// categories, outcomes.
func parseStatsQuery(q url.Values, now time.Time) (statsQuery, *response) {
	var sq statsQuery
	if len(q["field"]) == 0 {
		resp := badRequest(`At least one "field" is required.`)
		return sq, &resp
	}
	var e *response
	if sq.fields, e = uniqueValid(q["field"], statsFields, "field"); e != nil {
		return sq, e
	}
	if sq.groupBy, e = uniqueValid(q["groupBy"], statsGroupBys, "groupBy"); e != nil {
		return sq, e
	}
	cats := q["category"]
	if len(cats) == 0 && !slices.Contains(sq.groupBy, "category") {
		resp := badRequest("Query must have category as groupby or filter")
		return sq, &resp
	}
	if e = sq.parseWindow(q, now); e != nil {
		return sq, e
	}
	errorSelected, e := statsErrorSelected(cats)
	if e != nil {
		return sq, e
	}
	acceptedSelected, e := statsAcceptedSelected(q["outcome"])
	if e != nil {
		return sq, e
	}
	sq.hourly = sq.interval >= 3600
	reasonOK := true
	if reason, ok := last(q, "reason"); ok {
		reasonOK = sq.hourly && reason == "none"
	}
	sq.byProject = slices.Contains(sq.groupBy, "project")
	sq.counted = errorSelected && acceptedSelected && reasonOK
	return sq, nil
}

// uniqueValid checks every value against the allowed ones (400 `Invalid
// <name>: "<value>"`) and keeps each once, in order.
func uniqueValid(values, allowed []string, name string) ([]string, *response) {
	var out []string
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			resp := badRequest(`Invalid ` + name + `: "` + v + `"`)
			return nil, &resp
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// parseWindow reads the interval (default 1h; one that does not parse is
// the default) and the date range (default the last 90 days, start no
// later than now), and aligns the range outwards to the interval.
func (sq *statsQuery) parseWindow(q url.Values, now time.Time) *response {
	interval := int64(3600)
	if raw, ok := last(q, "interval"); ok {
		if d, good := parseStatsPeriod(raw); good {
			interval = int64(d / time.Second)
		}
	}
	var msg string
	switch {
	case interval%60 != 0 || interval < 60:
		msg = "The interval has to be a multiple of the minimum interval of one minute."
	case interval > 86400:
		msg = "The interval has to be less than one day."
	case 86400%interval != 0:
		msg = "The interval should divide one day without a remainder."
	}
	if msg != "" {
		resp := badRequest(msg)
		return &resp
	}
	start, end, _, msg := dateRange(q, now, false, 90*24*time.Hour)
	if msg != "" {
		resp := badRequest(msg)
		return &resp
	}
	if start.After(now) {
		start = now
	}
	sq.interval = interval
	sq.start = start.Unix()
	sq.start -= mod(sq.start, interval)
	sq.end = end.Unix()
	if r := mod(sq.end, interval); r != 0 {
		sq.end += interval - r
	}
	sq.n = (sq.end - sq.start) / interval
	if sq.n > maxStatsPoints {
		resp := badRequest("Your interval and date range would create too many results. Use a larger interval, or a smaller date range.")
		return &resp
	}
	return nil
}

// statsErrorSelected validates the category filter and reports whether it
// selects errors (no filter selects every category).
func statsErrorSelected(cats []string) (bool, *response) {
	selected := len(cats) == 0
	for _, c := range cats {
		if !slices.Contains(statsCategories, c) {
			resp := badRequest(`Invalid category: "` + c + `"`)
			return false, &resp
		}
		if c == "attachment" && len(cats) > 1 {
			resp := badRequest("if filtering by attachment no other category may be present")
			return false, &resp
		}
		if c == "error" {
			selected = true
		}
	}
	return selected, nil
}

// statsAcceptedSelected validates the outcome filter (any case) and
// reports whether it selects accepted outcomes (no filter selects all).
func statsAcceptedSelected(outcomes []string) (bool, *response) {
	selected := len(outcomes) == 0
	for _, o := range outcomes {
		lo := strings.ToLower(o)
		if !slices.Contains(statsOutcomes, lo) {
			resp := badRequest(`Invalid outcome: "` + o + `"`)
			return false, &resp
		}
		if lo == "accepted" {
			selected = true
		}
	}
	return selected, nil
}

// statsSeries is one group of the answer: one project's counts
// (groupBy=project) or those of every project together.
type statsSeries struct {
	projectID string
	buckets   []int64
	total     int64
}

// statsGroups counts the outcomes of ps in the intervals of sq. With
// groupBy=project a project without outcomes has no group; without it,
// the one group is left out only when a groupBy is given and it is empty.
func (s *Server) statsGroups(ps []*project, sq statsQuery, now time.Time) []*statsSeries {
	var groups []*statsSeries
	merged := &statsSeries{buckets: make([]int64, sq.n)}
	for _, p := range ps {
		cur := merged
		if sq.byProject {
			cur = &statsSeries{projectID: p.idStr, buckets: make([]int64, sq.n)}
		}
		if sq.counted {
			cur.addOutcomes(p, sq, now.UnixNano())
		}
		if sq.byProject && cur.total > 0 {
			groups = append(groups, cur)
		}
	}
	if !sq.byProject && (len(sq.groupBy) == 0 || merged.total > 0) {
		groups = append(groups, merged)
	}
	slices.SortFunc(groups, func(a, b *statsSeries) int { return cmp.Compare(a.projectID, b.projectID) })
	return groups
}

// addOutcomes adds p's counted outcomes (per received minute, or per
// received hour when sq is hourly) that fall in [sq.start, sq.end).
func (g *statsSeries) addOutcomes(p *project, sq statsQuery, now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.promoteLocked(now)
	for minute, c := range p.minutes {
		ts := minute * 60
		if sq.hourly {
			ts -= mod(ts, 3600)
		}
		if ts < sq.start || ts >= sq.end {
			continue
		}
		g.buckets[(ts-sq.start)/sq.interval] += c
		g.total += c
	}
}

// renderStats renders the answer: start, end, the intervals (not with
// groupBy=project), then the groups.
func renderStats(sq statsQuery, groups []*statsSeries) []byte {
	b := []byte(`{"start":"`)
	b = appendDate(b, sq.start)
	b = append(b, `","end":"`...)
	b = appendDate(b, sq.end)
	b = append(b, '"')
	if !sq.byProject {
		b = append(b, `,"intervals":[`...)
		for i := range sq.n {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = appendDate(b, sq.start+i*sq.interval)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	b = append(b, `,"groups":[`...)
	for i, g := range groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStatsGroup(b, sq, g)
	}
	return append(b, "]}"...)
}

// appendStatsGroup renders a group: "by" (the one category, outcome and
// reason counted), "totals", and "series" (not with groupBy=project).
func appendStatsGroup(b []byte, sq statsQuery, g *statsSeries) []byte {
	b = append(b, `{"by":{`...)
	for j, k := range sq.groupBy {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		switch k {
		case "project":
			b = append(b, g.projectID...)
		case "category":
			b = append(b, `"error"`...)
		case "outcome":
			b = append(b, `"accepted"`...)
		case "reason":
			if sq.hourly {
				b = append(b, `"none"`...)
			} else {
				b = append(b, "null"...)
			}
		}
	}
	b = append(b, `},"totals":{`...)
	for j, f := range sq.fields {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f)
		b = append(b, ':')
		b = strconv.AppendInt(b, g.total, 10)
	}
	b = append(b, '}')
	if !sq.byProject {
		b = appendStatsSeries(b, sq.fields, g.buckets)
	}
	return append(b, '}')
}

// appendStatsSeries renders "series": the buckets once per field.
func appendStatsSeries(b []byte, fields []string, buckets []int64) []byte {
	b = append(b, `,"series":{`...)
	for j, f := range fields {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f)
		b = append(b, ":["...)
		for k, v := range buckets {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// statsProjects is _get_projects_for_orgstats_query
// (src/sentry/api/endpoints/organization_stats_v2.py). An "org total
// query" (no project ids, or only -1, and "project" not in
// request.GET.get("groupBy")) is not filtered by project at all: it counts
// every project of the organisation, deleted ones included, whatever the
// caller's membership. Otherwise get_projects applies: without ids, the
// member projects; "No projects available" (400) when that is empty.
//
// request.GET.get returns the LAST groupBy value and the test is a
// substring test on it, so groupBy=project&groupBy=outcome is an org total
// query (not membership-filtered) while groupBy=outcome&groupBy=project is
// not.
func (s *Server) statsProjects(rq *request) ([]*project, *response) {
	raw := rq.q["project"]
	ids, all, e := parseProjectIDs(raw)
	if e != nil {
		return nil, e
	}
	lastGroupBy, _ := last(rq.q, "groupBy")
	if (len(ids) == 0 || all) && !strings.Contains(lastGroupBy, "project") {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return slices.Clone(s.projects), nil
	}
	ps, e := s.getProjects(rq, raw)
	if e != nil {
		return nil, e
	}
	if len(ps) == 0 {
		resp := badRequest("No projects available")
		return nil, &resp
	}
	return ps, nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
