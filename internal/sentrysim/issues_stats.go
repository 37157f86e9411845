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
		rollup = autoRollup(end.Sub(start).Seconds())
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

// autoRollups are the rollups "auto" takes for a range of a day or more,
// smallest first, each with the number of segments it may make: the first
// that covers the range is taken (12 hours may make 35).
var autoRollups = []struct{ segments, rollup float64 }{
	{29, 3600}, {29, 7200}, {29, 10800}, {29, 21600}, {35, 43200}, {29, 86400},
}

// autoRollup is the rollup of "auto" for a range of total seconds: under a
// day, the range over 29 segments; then the first of autoRollups that
// covers it; beyond those, whole days, about 29 segments of them.
func autoRollup(total float64) int64 {
	const segments = 29
	r := float64(int64(total/(segments*86400)+0.5)) * 86400
	if total < 86400 {
		r = total / segments
	} else {
		for _, c := range autoRollups {
			if total < c.segments*c.rollup {
				r = c.rollup
				break
			}
		}
	}
	return max(int64(r), 1)
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
