package sentrysim

import (
	"net/http"
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
	q := rq.q
	// build_outcomes_query resolves the projects before it parses the rest.
	ps, e := s.statsProjects(rq)
	if e != nil {
		return *e
	}
	if len(q["field"]) == 0 {
		return badRequest(`At least one "field" is required.`)
	}
	var fields []string
	for _, f := range q["field"] {
		if !slices.Contains(statsFields, f) {
			return badRequest(`Invalid field: "` + f + `"`)
		}
		if !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	var groupBy []string
	for _, g := range q["groupBy"] {
		if !slices.Contains(statsGroupBys, g) {
			return badRequest(`Invalid groupBy: "` + g + `"`)
		}
		if !slices.Contains(groupBy, g) {
			groupBy = append(groupBy, g)
		}
	}
	cats := q["category"]
	if len(cats) == 0 && !slices.Contains(groupBy, "category") {
		return badRequest("Query must have category as groupby or filter")
	}

	interval := int64(3600)
	if raw, ok := last(q, "interval"); ok {
		if d, good := parseStatsPeriod(raw); good {
			interval = int64(d / time.Second)
		}
	}
	switch {
	case interval%60 != 0 || interval < 60:
		return badRequest("The interval has to be a multiple of the minimum interval of one minute.")
	case interval > 86400:
		return badRequest("The interval has to be less than one day.")
	case 86400%interval != 0:
		return badRequest("The interval should divide one day without a remainder.")
	}
	start, end, _, msg := dateRange(q, rq.now, false, 90*24*time.Hour)
	if msg != "" {
		return badRequest(msg)
	}
	if start.After(rq.now) {
		start = rq.now
	}
	startS := start.Unix()
	startS -= mod(startS, interval)
	endS := end.Unix()
	if r := mod(endS, interval); r != 0 {
		endS += interval - r
	}
	n := (endS - startS) / interval
	if n > maxStatsPoints {
		return badRequest("Your interval and date range would create too many results. Use a larger interval, or a smaller date range.")
	}

	errorSelected := len(cats) == 0
	for _, c := range cats {
		if !slices.Contains(statsCategories, c) {
			return badRequest(`Invalid category: "` + c + `"`)
		}
		if c == "attachment" && len(cats) > 1 {
			return badRequest("if filtering by attachment no other category may be present")
		}
		if c == "error" {
			errorSelected = true
		}
	}
	acceptedSelected := len(q["outcome"]) == 0
	for _, o := range q["outcome"] {
		lo := strings.ToLower(o)
		if !slices.Contains(statsOutcomes, lo) {
			return badRequest(`Invalid outcome: "` + o + `"`)
		}
		if lo == "accepted" {
			acceptedSelected = true
		}
	}
	hourly := interval >= 3600
	reasonOK := true
	if reason, ok := last(q, "reason"); ok {
		reasonOK = hourly && reason == "none"
	}
	byProject := slices.Contains(groupBy, "project")

	type series struct {
		projectID string
		buckets   []int64
		total     int64
	}
	var groups []*series
	merged := &series{buckets: make([]int64, n)}
	now := rq.now.UnixNano()
	for _, p := range ps {
		cur := merged
		if byProject {
			cur = &series{projectID: p.idStr, buckets: make([]int64, n)}
		}
		if errorSelected && acceptedSelected && reasonOK {
			p.mu.Lock()
			p.promoteLocked(now)
			for minute, c := range p.minutes {
				ts := minute * 60
				if hourly {
					ts -= mod(ts, 3600)
				}
				if ts < startS || ts >= endS {
					continue
				}
				cur.buckets[(ts-startS)/interval] += c
				cur.total += c
			}
			p.mu.Unlock()
		}
		if byProject && cur.total > 0 {
			groups = append(groups, cur)
		}
	}
	if !byProject && (len(groupBy) == 0 || merged.total > 0) {
		groups = append(groups, merged)
	}
	slices.SortFunc(groups, func(a, b *series) int { return cmpString(a.projectID, b.projectID) })

	b := []byte(`{"start":"`)
	b = appendDate(b, startS)
	b = append(b, `","end":"`...)
	b = appendDate(b, endS)
	b = append(b, '"')
	if !byProject {
		b = append(b, `,"intervals":[`...)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = appendDate(b, startS+i*interval)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	b = append(b, `,"groups":[`...)
	for i, g := range groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"by":{`...)
		for j, k := range groupBy {
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
				if hourly {
					b = append(b, `"none"`...)
				} else {
					b = append(b, "null"...)
				}
			}
		}
		b = append(b, `},"totals":{`...)
		for j, f := range fields {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
			b = append(b, ':')
			b = strconv.AppendInt(b, g.total, 10)
		}
		b = append(b, '}')
		if !byProject {
			b = append(b, `,"series":{`...)
			for j, f := range fields {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, f)
				b = append(b, ":["...)
				for k, v := range g.buckets {
					if k > 0 {
						b = append(b, ',')
					}
					b = strconv.AppendInt(b, v, 10)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return jsonResp(http.StatusOK, b)
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
