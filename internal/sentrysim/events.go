package sentrysim

import (
	"net/http"
	"strings"
	"time"
)

// The project events endpoint, GET /api/0/projects/{org}/{project}/events/
// (ProjectEventsEndpoint, src/sentry/api/endpoints/project_events.py).

// handleEvents serves GET /api/0/projects/{org}/{project}/events/
// (GenericOffsetPaginator; scope project:read).
func (s *Server) handleEvents(rq *request) response {
	p, e := s.resolveProject(rq, "project:read")
	if e != nil {
		return *e
	}
	eq, e := s.parseEventsQuery(rq)
	if e != nil {
		return *e
	}
	rows := selectEvents(p, eq, rq.now)
	s.mu.RLock()
	pid, platform := p.idStr, p.platform
	s.mu.RUnlock()

	hasMore := int64(len(rows)) == eq.limit+1
	if hasMore {
		rows = rows[:eq.limit]
	}
	resp := jsonResp(http.StatusOK, renderEvents(rows, pid, platform, eq.full))
	prev, next := genericOffsetCursors(eq.offset, eq.limit, hasMore)
	resp.header = http.Header{"Link": {s.linkHeader(rq.r, prev, next)}}
	return resp
}

// eventsQuery is a validated project events query.
type eventsQuery struct {
	start, end    time.Time
	limit, offset int64
	full          bool   // EventSerializer rows, at most 10 a page
	query         string // lower case; "" matches every event
}

// parseEventsQuery reads the date range, the page, full and query, and
// applies the retention to the range.
func (s *Server) parseEventsQuery(rq *request) (eventsQuery, *response) {
	var eq eventsQuery
	// Without a range, snuba.py's _prepare_start_end queries from 2008 to
	// now + 1 s (so future-dated events are not listed yet).
	eq.start, eq.end = time.Date(2008, 5, 8, 0, 0, 0, 0, time.UTC), rq.now.Add(time.Second)
	if !s.cfg.IgnoreDateRange {
		st, en, ok, msg := dateRange(rq.q, rq.now, true, 0)
		if msg != "" {
			resp := badRequest("Invalid date range parameters provided")
			return eq, &resp
		}
		if ok {
			eq.start, eq.end = st, en
		}
	}
	var e *response
	if eq.limit, eq.offset, e = s.genericOffsetParams(rq.q); e != nil {
		return eq, e
	}
	fullV, _ := last(rq.q, "full")
	eq.full = fullV == "1" || fullV == "true"
	if eq.full {
		eq.limit = min(eq.limit, 10)
	}
	query, _ := last(rq.q, "query")
	eq.query = strings.ToLower(query)
	// outside_retention_with_modified_start (src/sentry/utils/dates.py):
	// start moves up to now − retention, and a window that ends before that
	// raises QueryOutsideRetentionError ("Invalid date range. Please try a
	// more recent date range."), which this endpoint does not catch (no
	// handle_query_errors): a 500.
	if s.cfg.Retention > 0 {
		if edge := rq.now.Add(-s.cfg.Retention); edge.After(eq.start) {
			eq.start = edge
		}
		if eq.start.After(eq.end) {
			resp := internalError(s.newEventID())
			return eq, &resp
		}
	}
	return eq, nil
}

// selectEvents returns, newest first, up to limit+1 of p's visible events
// in [start, end) that match the query (a substring of the message, or of
// the title when there is none), after skipping offset of them.
func selectEvents(p *project, eq eventsQuery, now time.Time) []rowCtx {
	rows := make([]rowCtx, 0, eq.limit+1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.promoteLocked(now.UnixNano())
	lo, hi := p.window(ceilSec(eq.start), ceilSec(eq.end))
	if eq.query == "" {
		for i := int64(hi) - 1 - eq.offset; i >= int64(lo) && int64(len(rows)) <= eq.limit; i-- {
			ev := p.visible[i]
			rows = append(rows, rowCtx{e: ev, g: p.groups[ev.group]})
		}
		return rows
	}
	skip := eq.offset
	for i := hi - 1; i >= lo && int64(len(rows)) <= eq.limit; i-- {
		ev := p.visible[i]
		g := p.groups[ev.group]
		msg := ev.msg
		if msg == "" {
			msg = g.tpl.title()
		}
		if !strings.Contains(strings.ToLower(msg), eq.query) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		rows = append(rows, rowCtx{e: ev, g: g})
	}
	return rows
}

// renderEvents renders the rows as a JSON array.
func renderEvents(rows []rowCtx, pid, platform string, full bool) []byte {
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
	return append(b, ']')
}
