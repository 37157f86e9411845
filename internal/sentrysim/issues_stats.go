package sentrysim

import (
	"slices"
	"time"
)

// The "stats" series of the issues endpoint's rows: the buckets
// groupStatsPeriod asks for, and the events of the page's issues in them.

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
