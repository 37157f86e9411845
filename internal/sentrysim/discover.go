package sentrysim

import (
	"cmp"
	"hash/fnv"
	"net/http"
	"net/url"
	"regexp"
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

// realDiscoverFunctions are Discover functions the simulator does not
// compute, so that it can say so instead of calling them invalid.
var realDiscoverFunctions = map[string]bool{
	"any": true, "apdex": true, "array_join": true, "avg": true, "count_if": true, "count_miserable": true,
	"count_web_vitals": true, "epm": true, "eps": true, "failure_count": true, "failure_rate": true,
	"last_seen": true, "latest_event": true, "max": true, "min": true, "p50": true, "p75": true, "p90": true,
	"p95": true, "p99": true, "p100": true, "percentile": true, "sum": true, "user_misery": true,
}

// dval is one cell of a Discover row.
type dval struct {
	kind byte // 's' string, 'i' integer, 'd' date (unix seconds in n)
	s    string
	n    int64
}

func compareDval(a, b dval) int {
	if a.kind == 's' {
		return strings.Compare(a.s, b.s)
	}
	return cmp.Compare(a.n, b.n)
}

func (v dval) appendJSON(b []byte) []byte {
	switch v.kind {
	case 'i':
		return strconv.AppendInt(b, v.n, 10)
	case 'd':
		// Snuba's DateTime: whole seconds, "+00:00".
		b = append(b, '"')
		b = time.Unix(v.n, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05+00:00")
		return append(b, '"')
	}
	return appendJSONString(b, v.s)
}

// drow is an event as Discover sees it.
type drow struct {
	e    event
	g    *group
	pid  int64
	slug string
	plat string
}

// dcolumn is a selected column: a field, or an aggregate function.
type dcolumn struct {
	name string // as asked for: the key in rows and meta
	typ  string // meta.fields type
	agg  string // "", "count" or "count_unique"
	get  func(*drow) dval
}

// discoverColumn resolves a field as the query builder's resolve_column
// does: a function, a known column or alias, or else a tag (which the
// simulated events do not have: ""). Names with other characters than
// VALID_FIELD_PATTERN allows are refused.
func (s *Server) discoverColumn(name string, keys discoverKeys) (dcolumn, *searchError) {
	if m := functionRE.FindStringSubmatch(name); m != nil {
		fn, args := strings.TrimSpace(m[1]), strings.TrimSpace(m[2])
		switch {
		case fn == "count":
			return dcolumn{name: name, typ: "integer", agg: "count"}, nil
		case fn == "count_unique":
			if args == "" || strings.Contains(args, ",") {
				return dcolumn{}, searchErrf("sentrysim: count_unique takes exactly one column")
			}
			arg, err := s.discoverColumn(args, keys)
			if err != nil {
				return dcolumn{}, err
			}
			if arg.agg != "" {
				return dcolumn{}, searchErrf("sentrysim: count_unique takes a column, not %s", args)
			}
			return dcolumn{name: name, typ: "integer", agg: "count_unique", get: arg.get}, nil
		case realDiscoverFunctions[fn]:
			return dcolumn{}, searchErrf("sentrysim does not simulate %s()", fn)
		}
		return dcolumn{}, searchErrf("%s is not a valid function", fn)
	}
	field := name
	if m := tagKeyRE.FindStringSubmatch(name); m != nil && len(m[0]) == len(name) {
		return dcolumn{name: name, typ: "string", get: emptyTag}, nil
	}
	if !validFieldRE.MatchString(field) {
		return dcolumn{}, searchErrf("Invalid characters in field %s", field)
	}
	if name == "error.received" {
		switch {
		case keys.noReceived:
			return dcolumn{}, searchErrf("Invalid key for this search: %s", name)
		case keys.receivedIsTag:
			return dcolumn{name: name, typ: "string", get: emptyTag}, nil
		}
	}
	if c, ok := discoverColumns[name]; ok {
		c.name = name
		return c, nil
	}
	return dcolumn{name: name, typ: "string", get: emptyTag}, nil
}

var (
	// functionRE is FUNCTION_PATTERN, roughly: name(arguments).
	functionRE = regexp.MustCompile(`^([^()]+)\((.*)\)$`)
	// validFieldRE is VALID_FIELD_PATTERN.
	validFieldRE = regexp.MustCompile(`^[a-zA-Z0-9_.:-]*$`)
)

func emptyTag(*drow) dval { return dval{kind: 's'} }

func (r *drow) message() string {
	if r.e.msg != "" {
		return r.e.msg
	}
	return r.g.tpl.title()
}

// discoverColumns are the columns and aliases the simulator knows, with
// the JSON types meta.fields gives them (get_json_meta_type).
var discoverColumns = map[string]dcolumn{
	"id":             {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: hexID(r.e.id)} }},
	"project.id":     {typ: "integer", get: func(r *drow) dval { return dval{kind: 'i', n: r.pid} }},
	"project_id":     {typ: "integer", get: func(r *drow) dval { return dval{kind: 'i', n: r.pid} }},
	"project":        {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: r.slug} }},
	"project.name":   {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: r.slug} }},
	"timestamp":      {typ: "date", get: func(r *drow) dval { return dval{kind: 'd', n: r.e.ts} }},
	"error.received": {typ: "date", get: func(r *drow) dval { return dval{kind: 'd', n: r.e.receivedSec()} }},
	"title":          {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: r.g.tpl.title()} }},
	"message":        {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: r.message()} }},
	"level":          {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: levels[r.e.level]} }},
	"issue.id":       {typ: "integer", get: func(r *drow) dval { return dval{kind: 'i', n: r.g.id} }},
	"issue":          {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: r.g.shortID} }},
	"event.type":     {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: "error"} }},
	"platform":       {typ: "string", get: func(r *drow) dval { return dval{kind: 's', s: r.plat} }},
}

// noProjectsBody is the answer to NoProjects in OrganizationEventsEndpoint.get.
const noProjectsBody = `{"data":[],"meta":{"tips":{"query":"Need at least one valid project to query."}}}`

// handleDiscover serves GET /api/0/organizations/{org}/events/.
func (s *Server) handleDiscover(rq *request) response {
	if e := s.orgCheck(rq, "event:read"); e != nil {
		return *e
	}
	q := rq.q
	fields := q["field"]
	if len(fields) > maxDiscoverFields {
		return badRequest("You can view up to 20 fields at a time. Please delete some and try again.")
	}
	start, end, _, msg := dateRange(q, rq.now, false, 90*24*time.Hour)
	if msg != "" {
		return badRequest(msg)
	}
	if _, rel := last(q, "statsPeriod"); rel {
		start, end = s.quantizeDates(start, end)
	}
	ps, e := s.getProjects(rq, q["project"])
	if e != nil {
		return *e
	}
	if len(ps) == 0 {
		return jsonResp(http.StatusOK, []byte(noProjectsBody))
	}
	if s.cfg.NoGlobalViews && len(ps) > 1 {
		return badRequest("You cannot view events from multiple projects.")
	}
	dataset, ok := last(q, "dataset")
	if !ok {
		dataset = "discover"
	}
	if !discoverDatasets[dataset] {
		return badRequest("sentrysim does not simulate dataset=" + dataset)
	}
	limit, e := perPage(q)
	if e != nil {
		return *e
	}
	cur, e := cursorParam(q)
	if e != nil {
		return *e
	}
	var offset int64
	if cur != nil {
		offset = cur.offset
	}
	if offset < 0 {
		// snuba_sdk refuses a negative Offset, outside handle_query_errors.
		return internalError(s.newEventID())
	}

	// errors.query → ErrorsQueryBuilder.
	if len(fields) == 0 {
		return badRequest("No columns selected")
	}
	keys := discoverKeys{noReceived: s.cfg.DiscoverNoReceived, receivedIsTag: s.cfg.DiscoverReceivedAsTag}
	query, _ := last(q, "query")
	cond, err := parseSearch(query, rq.now, keys)
	if err != nil {
		return badRequest(err.Error())
	}
	if s.cfg.Retention > 0 {
		if edge := rq.now.Add(-s.cfg.Retention); edge.After(start) {
			start = edge
		}
		if start.After(end) {
			return badRequest("Invalid date range. Please try a more recent date range.")
		}
	}
	cols, serr := s.discoverSelect(fields, keys)
	if serr != nil {
		return badRequest(serr.Error())
	}
	orderby := q["sort"]
	if len(orderby) == 0 {
		orderby = q["orderby"]
	}
	order, serr := s.discoverOrder(orderby, cols, keys)
	if serr != nil {
		return badRequest(serr.Error())
	}

	rows := s.discoverRows(ps, start, end, rq.now, cond)
	table := discoverTable(cols, rows)
	sortTable(table, order, offset)
	lo, hi := clampRange(offset, offset+limit+1, len(table))
	page := table[lo:hi]
	hasMore := int64(len(page)) == limit+1
	if hasMore {
		page = page[:limit]
	}

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
	b = append(b, "}}"...)
	resp := jsonResp(http.StatusOK, b)
	prev := intCursor(0, max(0, offset-limit), true, offset > 0)
	next := intCursor(0, max(0, offset+limit), false, hasMore)
	resp.header = http.Header{"Link": {s.discoverLinkHeader(rq.r, prev, next)}}
	return resp
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

// discoverTable evaluates the columns over the rows: one output row per
// event, or, with aggregates, one per distinct combination of the other
// columns (all rows in one group when there are none, so an empty range
// still counts 0).
func discoverTable(cols []dcolumn, rows []drow) [][]dval {
	aggregates := slices.ContainsFunc(cols, func(c dcolumn) bool { return c.agg != "" })
	if !aggregates {
		out := make([][]dval, len(rows))
		for i := range rows {
			vals := make([]dval, len(cols))
			for j, c := range cols {
				vals[j] = c.get(&rows[i])
			}
			out[i] = vals
		}
		return out
	}
	type groupAcc struct {
		vals    []dval
		count   int64
		uniques []map[dval]bool
	}
	var order []string
	groups := map[string]*groupAcc{}
	grouped := slices.ContainsFunc(cols, func(c dcolumn) bool { return c.agg == "" })
	if !grouped {
		groups[""] = &groupAcc{vals: make([]dval, len(cols)), uniques: make([]map[dval]bool, len(cols))}
		order = append(order, "")
	}
	var key []byte
	for i := range rows {
		r := &rows[i]
		key = key[:0]
		for _, c := range cols {
			if c.agg == "" {
				key = c.get(r).appendJSON(key)
				key = append(key, 0)
			}
		}
		g := groups[string(key)]
		if g == nil {
			g = &groupAcc{vals: make([]dval, len(cols)), uniques: make([]map[dval]bool, len(cols))}
			for j, c := range cols {
				if c.agg == "" {
					g.vals[j] = c.get(r)
				}
			}
			groups[string(key)] = g
			order = append(order, string(key))
		}
		g.count++
		for j, c := range cols {
			if c.agg == "count_unique" {
				if g.uniques[j] == nil {
					g.uniques[j] = map[dval]bool{}
				}
				g.uniques[j][c.get(r)] = true
			}
		}
	}
	out := make([][]dval, 0, len(order))
	for _, k := range order {
		g := groups[k]
		for j, c := range cols {
			switch c.agg {
			case "count":
				g.vals[j] = dval{kind: 'i', n: g.count}
			case "count_unique":
				g.vals[j] = dval{kind: 'i', n: int64(len(g.uniques[j]))}
			}
		}
		out = append(out, g.vals)
	}
	return out
}

// sortTable orders the table by the sort keys. Rows equal on every key are
// ordered by a hash of their cells and of the page offset: an arbitrary
// order that differs between the requests of one walk, as ClickHouse's may.
func sortTable(table [][]dval, order []sortKey, offset int64) {
	type tied struct {
		vals []dval
		tie  uint64
	}
	rs := make([]tied, len(table))
	var b []byte
	for i, r := range table {
		b = b[:0]
		for _, v := range r {
			b = v.appendJSON(b)
		}
		b = strconv.AppendInt(b, offset, 10)
		h := fnv.New64a()
		_, _ = h.Write(b)
		rs[i] = tied{r, h.Sum64()}
	}
	slices.SortStableFunc(rs, func(a, b tied) int {
		for _, k := range order {
			c := compareDval(a.vals[k.col], b.vals[k.col])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.tie, b.tie)
	})
	for i := range rs {
		table[i] = rs[i].vals
	}
}

// match evaluates the condition tree on an event.
func (n *searchNode) match(r *drow) bool {
	if n.f != nil {
		return n.f.match(r)
	}
	if n.or {
		return slices.ContainsFunc(n.kids, func(k *searchNode) bool { return k.match(r) })
	}
	for _, k := range n.kids {
		if !k.match(r) {
			return false
		}
	}
	return true
}

func (f *searchFilter) match(r *drow) bool {
	switch f.kind {
	case 'd':
		var sec int64
		if f.key == "timestamp" {
			sec = r.e.ts
		} else {
			sec = r.e.receivedSec()
		}
		return opHolds(cmp.Compare(sec*int64(time.Second), f.date), f.op)
	case 'n':
		var v float64
		if f.key == "issue.id" {
			v = float64(r.g.id)
		} else {
			v = float64(r.pid)
		}
		switch f.op {
		case "IN":
			return slices.Contains(f.nums, v)
		case "NOT IN":
			return !slices.Contains(f.nums, v)
		}
		return opHolds(cmp.Compare(v, f.nums[0]), f.op)
	}
	var text string // a tag the simulated events do not have is ""
	switch {
	case f.tag:
	case f.key == "message":
		return f.matchMessage(r.message())
	default:
		v := discoverColumns[f.key].get(r)
		if v.kind == 's' {
			text = v.s
		} else {
			text = string(v.appendJSON(nil))
		}
	}
	in := false
	for i, p := range f.strs {
		if re := f.res[i]; re != nil {
			in = re.MatchString(text)
		} else {
			in = text == p
		}
		if in {
			break
		}
	}
	if f.op == "!=" || f.op == "NOT IN" {
		return !in
	}
	return in
}

// matchMessage is the message filter converter: a case-insensitive
// substring (positionCaseInsensitive), or an unanchored case-insensitive
// pattern with a wildcard; "" tests emptiness.
func (f *searchFilter) matchMessage(msg string) bool {
	in := false
	for i, p := range f.strs {
		switch {
		case p == "":
			in = msg == ""
		case f.res[i] != nil:
			in = f.res[i].MatchString(msg)
		default:
			in = strings.Contains(strings.ToLower(msg), strings.ToLower(p))
		}
		if in {
			break
		}
	}
	if f.op == "!=" || f.op == "NOT IN" {
		return !in
	}
	return in
}

func opHolds(c int, op string) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	}
	return false
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

// discoverLinkHeader is build_cursor_link of OrganizationEventsV2EndpointBase:
// unlike the other endpoints it keeps every value of every parameter (the
// repeated field), re-encoded with urllib's quote, keys in first-seen order.
func (s *Server) discoverLinkHeader(r *http.Request, prev, next cursor) string {
	base := s.cfg.URLPrefix
	if base == "" {
		base = requestBase(r)
	}
	base = strings.TrimRight(base, "/") + pyQuote(r.URL.Path) + "?" + pyQueryString(r.URL.RawQuery)
	return cursorLink(base, "previous", prev) + ", " + cursorLink(base, "next", next)
}

// pyQueryString renders request.GET.lists() minus cursor as
// "k=v&k=v2&…", each part quoted.
func pyQueryString(raw string) string {
	var keys []string
	vals := map[string][]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k == "cursor" {
			continue
		}
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = append(vals[k], v)
	}
	var parts []string
	for _, k := range keys {
		for _, v := range vals[k] {
			parts = append(parts, pyQuote(k)+"="+pyQuote(v))
		}
	}
	return strings.Join(parts, "&")
}

// pyQuote is urllib.parse.quote(s) (safe "/"): every byte but letters,
// digits, "_.-~" and "/" is %XX.
func pyQuote(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("_.-~/", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&15])
		}
	}
	return b.String()
}
