package sentrysim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The organisation events endpoint, Discover:
// GET /api/0/organizations/{org}/events/ (OrganizationEventsEndpoint in
// src/sentry/api/endpoints/organization_events.py, on
// OrganizationEventsV2EndpointBase in src/sentry/api/bases/organization_events.py).
// The simulator serves dataset=errors (and the default dataset=discover,
// which over error events answers the same rows): a table of the fields
// asked for, one row per event, or one per group when the fields include
// aggregate functions. It works in this order, as Sentry does:
//
//  1. scope event:read; more than MAX_FIELDS (20) fields is a 400;
//  2. the date range (get_date_range_from_params: start/end or statsPeriod,
//     else the last 90 days; a statsPeriod over an hour is quantised as
//     quantize_date_params does); its InvalidParams are 400s;
//  3. the projects (get_projects: the member projects without a project
//     parameter, project=-1 every accessible one); none at all answers 200
//     {"data": [], "meta": {"tips": {...}}} without a Link header (NoProjects);
//     more than one without the organisation's global-views feature is
//     "You cannot view events from multiple projects.";
//  4. dataset, then per_page and cursor (GenericOffsetPaginator: an offset
//     cursor, results="true" only when a further row exists);
//  5. the query builder (errors.query): no field is "No columns selected";
//     the query (see discover_search.go); the range is cut to the retention
//     (outside_retention_with_modified_start; a range entirely older is
//     "Invalid date range. Please try a more recent date range."); the fields;
//     the sort (sort=, else orderby=; "-" for descending; each must be a
//     selected column: "Cannot sort by a field that is not selected.").
//
// Rows are the visible events (received, stored, within the retention) with
// timestamp >= start and timestamp < end (Snuba's whole seconds). Without
// aggregates the builder adds "id", and "project.name" unless "project.id" is
// selected (auto_fields). Rows equal on every sort key come in no particular
// order, and that order changes from one request to the next as it may in
// ClickHouse: offset paging over such ties can skip or repeat rows, so a
// caller that pages must end its sort with a unique key (id).

// maxDiscoverFields is MAX_FIELDS (src/sentry/utils/snuba.py).
const maxDiscoverFields = 20

// discoverDatasets are the dataset labels the simulator serves; Sentry's
// get_dataset knows more (transactions, spans, …), which it does not
// simulate.
var discoverDatasets = map[string]bool{"errors": true, "discover": true}

// noProjectsBody is the answer to NoProjects in OrganizationEventsEndpoint.get.
const noProjectsBody = `{"data":[],"meta":{"tips":{"query":"Need at least one valid project to query."}}}`

// handleDiscover serves GET /api/0/organizations/{org}/events/.
func (s *Server) handleDiscover(rq *request) response {
	if e := s.orgCheck(rq, "event:read"); e != nil {
		return *e
	}
	dq, e := s.parseDiscover(rq)
	if e != nil {
		return *e
	}
	rows := s.discoverRows(dq.ps, dq.start, dq.end, rq.now, dq.cond)
	page, hasMore := discoverPage(discoverTable(dq.cols, rows), dq.order, dq.offset, dq.limit)
	resp := jsonResp(http.StatusOK, renderDiscover(page, dq.cols, dq.dataset))
	prev, next := genericOffsetCursors(dq.offset, dq.limit, hasMore)
	resp.header = http.Header{"Link": {s.discoverLinkHeader(rq.r, prev, next)}}
	return resp
}

// discoverQuery is a validated Discover query.
type discoverQuery struct {
	fields        []string
	start, end    time.Time
	ps            []*project
	dataset       string
	limit, offset int64
	cond          *searchNode // nil: no condition
	cols          []dcolumn
	order         []sortKey
}

// parseDiscover reads the request in Sentry's order, steps 1 to 4 above,
// then builds the query (step 5). It returns the answer itself when that
// is decided before the query runs: an error, or NoProjects' empty answer.
func (s *Server) parseDiscover(rq *request) (*discoverQuery, *response) {
	q := rq.q
	dq := &discoverQuery{fields: q["field"]}
	if len(dq.fields) > maxDiscoverFields {
		resp := badRequest("You can view up to 20 fields at a time. Please delete some and try again.")
		return nil, &resp
	}
	var msg string
	dq.start, dq.end, _, msg = dateRange(q, rq.now, false, 90*24*time.Hour)
	if msg != "" {
		resp := badRequest(msg)
		return nil, &resp
	}
	if _, rel := last(q, "statsPeriod"); rel {
		dq.start, dq.end = s.quantizeDates(dq.start, dq.end)
	}
	var e *response
	if dq.ps, e = s.getProjects(rq, q["project"]); e != nil {
		return nil, e
	}
	if len(dq.ps) == 0 {
		resp := jsonResp(http.StatusOK, []byte(noProjectsBody))
		return nil, &resp
	}
	if s.cfg.NoGlobalViews && len(dq.ps) > 1 {
		resp := badRequest("You cannot view events from multiple projects.")
		return nil, &resp
	}
	var ok bool
	if dq.dataset, ok = last(q, "dataset"); !ok {
		dq.dataset = "discover"
	}
	if !discoverDatasets[dq.dataset] {
		resp := badRequest("sentrysim does not simulate dataset=" + dq.dataset)
		return nil, &resp
	}
	if dq.limit, dq.offset, e = s.genericOffsetParams(q); e != nil {
		return nil, e
	}
	if e = s.buildDiscoverQuery(rq, dq); e != nil {
		return nil, e
	}
	return dq, nil
}

// buildDiscoverQuery is errors.query's ErrorsQueryBuilder: the fields, the
// search query, the range cut to the retention, the columns and the sort.
func (s *Server) buildDiscoverQuery(rq *request, dq *discoverQuery) *response {
	if len(dq.fields) == 0 {
		resp := badRequest("No columns selected")
		return &resp
	}
	keys := discoverKeys{noReceived: s.cfg.DiscoverNoReceived, receivedIsTag: s.cfg.DiscoverReceivedAsTag}
	query, _ := last(rq.q, "query")
	var err error
	if dq.cond, err = parseSearch(query, rq.now, keys); err != nil {
		resp := badRequest(err.Error())
		return &resp
	}
	if s.cfg.Retention > 0 {
		if edge := rq.now.Add(-s.cfg.Retention); edge.After(dq.start) {
			dq.start = edge
		}
		if dq.start.After(dq.end) {
			resp := badRequest("Invalid date range. Please try a more recent date range.")
			return &resp
		}
	}
	var serr *searchError
	if dq.cols, serr = s.discoverSelect(dq.fields, keys); serr != nil {
		resp := badRequest(serr.Error())
		return &resp
	}
	orderby := rq.q["sort"]
	if len(orderby) == 0 {
		orderby = rq.q["orderby"]
	}
	if dq.order, serr = s.discoverOrder(orderby, dq.cols, keys); serr != nil {
		resp := badRequest(serr.Error())
		return &resp
	}
	return nil
}

// discoverPage sorts the table and cuts the page at offset: at most limit
// rows, and whether a further row exists.
func discoverPage(table [][]dval, order []sortKey, offset, limit int64) ([][]dval, bool) {
	sortTable(table, order, offset)
	lo, hi := clampRange(offset, offset+limit+1, len(table))
	page := table[lo:hi]
	hasMore := int64(len(page)) == limit+1
	if hasMore {
		page = page[:limit]
	}
	return page, hasMore
}

// renderDiscover renders the page: "data", one object per row, and
// "meta" with the columns' types.
func renderDiscover(page [][]dval, cols []dcolumn, dataset string) []byte {
	b := make([]byte, 0, 64+len(page)*40*len(cols))
	b = append(b, `{"data":[`...)
	for i, r := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for j, c := range cols {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c.name)
			b = append(b, ':')
			b = r[j].appendJSON(b)
		}
		b = append(b, '}')
	}
	b = append(b, `],"meta":{"fields":{`...)
	for j, c := range cols {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.name)
		b = append(b, ':')
		b = appendJSONString(b, c.typ)
	}
	b = append(b, `},"units":{`...)
	for j, c := range cols {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.name)
		b = append(b, ":null"...)
	}
	b = append(b, `},"isMetricsData":false,"isMetricsExtractedData":false,"tips":{"query":null,"columns":null},"datasetReason":"unchanged","dataset":`...)
	b = appendJSONString(b, dataset)
	return append(b, "}}"...)
}

// discoverSelect is resolve_select: the fields once each, in order, then
// auto_fields' "id" (when there is no aggregate) and "project.name" (when
// id is selected and project.id is not).
func (s *Server) discoverSelect(fields []string, keys discoverKeys) ([]dcolumn, *searchError) {
	var cols []dcolumn
	seen := map[string]bool{}
	aggregates := false
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		c, err := s.discoverColumn(f, keys)
		if err != nil {
			return nil, err
		}
		aggregates = aggregates || c.agg != ""
		cols = append(cols, c)
	}
	if !aggregates && !seen["id"] {
		c, _ := s.discoverColumn("id", keys)
		cols, seen["id"] = append(cols, c), true
	}
	if seen["id"] && !seen["project.id"] && !seen["project.name"] {
		c, _ := s.discoverColumn("project.name", keys)
		cols = append(cols, c)
	}
	return cols, nil
}

// sortKey is one resolved sort column.
type sortKey struct {
	col  int
	desc bool
}

// discoverOrder is resolve_orderby: every sort key must name a selected
// column (after resolving, so an invalid name fails as a field would).
func (s *Server) discoverOrder(orderby []string, cols []dcolumn, keys discoverKeys) ([]sortKey, *searchError) {
	var out []sortKey
	for _, o := range orderby {
		bare := strings.TrimLeft(o, "-")
		if _, err := s.discoverColumn(bare, keys); err != nil {
			return nil, err
		}
		i := slices.IndexFunc(cols, func(c dcolumn) bool { return c.name == bare })
		if i < 0 {
			return nil, searchErrf("Cannot sort by a field that is not selected.")
		}
		out = append(out, sortKey{col: i, desc: strings.HasPrefix(o, "-")})
	}
	return out, nil
}

// discoverRows collects the events of ps that Discover sees: visible now,
// within the retention, timestamp in [start, end), matching cond.
func (s *Server) discoverRows(ps []*project, start, end, now time.Time, cond *searchNode) []drow {
	type meta struct {
		pid        int64
		slug, plat string
	}
	s.mu.RLock()
	metas := make([]meta, len(ps))
	for i, p := range ps {
		metas[i] = meta{p.id, p.slug, p.platform}
	}
	s.mu.RUnlock()
	edge, _ := s.retentionEdge(now)
	var rows []drow
	for i, p := range ps {
		p.mu.Lock()
		p.promoteLocked(now.UnixNano())
		lo, hi := p.window(max(ceilSec(start), edge), ceilSec(end))
		for _, e := range p.visible[lo:hi] {
			r := drow{e: e, g: p.groups[e.group], pid: metas[i].pid, slug: metas[i].slug, plat: metas[i].plat}
			if cond == nil || cond.match(&r) {
				rows = append(rows, r)
			}
		}
		p.mu.Unlock()
	}
	return rows
}

// quantizeDates is quantize_date_params for a statsPeriod range over an
// hour: snuba.quantize_time with the organisation id as key, start rounded
// down and end up, to the minute (to 15 minutes from 30 days on).
func (s *Server) quantizeDates(start, end time.Time) (time.Time, time.Time) {
	d := end.Sub(start)
	if d <= time.Hour {
		return start, end
	}
	round := int64(60)
	if d >= 30*24*time.Hour {
		round = 15 * 60
	}
	key, _ := strconv.ParseInt(s.cfg.OrgID, 10, 64)
	return quantizeTime(start, key, round, false), quantizeTime(end, key, round, true)
}

// quantizeTime is snuba.quantize_time (src/sentry/utils/snuba.py).
func quantizeTime(t time.Time, keyHash, duration int64, up bool) time.Time {
	t = t.UTC()
	jitter := keyHash % duration
	pastHour := int64(t.Minute()*60 + t.Second())
	floor := pastHour/duration*duration + jitter
	if floor > pastHour {
		floor -= duration
	}
	if up {
		floor += duration
	}
	return t.Truncate(time.Hour).Add(time.Duration(floor) * time.Second)
}
