package sentrysim

import (
	"cmp"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Discover's table: the columns a field resolves to, the rows of events
// that match the query, grouping for aggregates, and the order of the rows.

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
