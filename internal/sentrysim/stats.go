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
	wanted, e := s.projectFilter(q, rq.scopes)
	if e != nil {
		return *e
	}
	byProject := slices.Contains(groupBy, "project")
	s.mu.RLock()
	var ps []*project
	for _, p := range s.projects {
		if p.live && (wanted == nil || wanted[p.idStr]) {
			ps = append(ps, p)
		}
	}
	s.mu.RUnlock()
	if byProject && len(ps) == 0 {
		return badRequest("No projects available")
	}

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

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
