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
