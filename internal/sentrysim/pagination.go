package sentrysim

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// cursor mirrors sentry.utils.cursors.Cursor: "{value}:{offset}:{is_prev}".
type cursor struct {
	value      float64
	floatValue bool // value was given with a '.', printed as a Python float
	offset     int64
	isPrev     bool
	hasResults bool
}

func intCursor(v, offset int64, isPrev, has bool) cursor {
	return cursor{value: float64(v), offset: offset, isPrev: isPrev, hasResults: has}
}

// parseCursor follows Cursor.from_string: exactly three parts, value int
// (float if it contains '.'), offset and is_prev ints.
func parseCursor(s string) (cursor, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return cursor{}, false
	}
	var c cursor
	v := strings.TrimSpace(parts[0])
	if strings.Contains(v, ".") {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return cursor{}, false
		}
		c.value, c.floatValue = f, true
	} else {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cursor{}, false
		}
		c.value = float64(i)
	}
	off, err := strconv.ParseInt(strings.TrimSpace(parts[1]), 10, 64)
	if err != nil {
		return cursor{}, false
	}
	p, err := strconv.ParseInt(strings.TrimSpace(parts[2]), 10, 64)
	if err != nil {
		return cursor{}, false
	}
	c.offset, c.isPrev = off, p != 0
	return c, true
}

func (c cursor) String() string {
	var v string
	if c.floatValue {
		v = strconv.FormatFloat(c.value, 'f', -1, 64)
		if !strings.ContainsAny(v, ".e") {
			v += ".0"
		}
	} else {
		v = strconv.FormatInt(int64(c.value), 10)
	}
	p := "0"
	if c.isPrev {
		p = "1"
	}
	return v + ":" + strconv.FormatInt(c.offset, 10) + ":" + p
}

// linkHeader builds the Link header as Endpoint.add_cursor_headers does:
// both rel="previous" and rel="next", on the URL prefix, with the request's
// query string minus cursor.
func (s *Server) linkHeader(r *http.Request, prev, next cursor) string {
	base := s.cfg.URLPrefix
	if base == "" {
		base = requestBase(r)
	}
	base = strings.TrimRight(base, "/") + r.URL.EscapedPath() + "?" + queryWithoutCursor(r.URL.RawQuery)
	return cursorLink(base, "previous", prev) + ", " + cursorLink(base, "next", next)
}

func cursorLink(base, name string, c cursor) string {
	has := "false"
	if c.hasResults {
		has = "true"
	}
	cs := c.String()
	return "<" + base + "&cursor=" + cs + `>; rel="` + name + `"; results="` + has + `"; cursor="` + cs + `"`
}

func queryWithoutCursor(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	out := parts[:0]
	for _, p := range parts {
		if p == "" {
			continue
		}
		k, _, _ := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == "cursor" {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
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

// offsetPage implements OffsetPaginator.get_result over n rows: cursor value
// is the page size, offset the page number. It returns the row range and
// the cursors, or a BadPaginationError message.
func offsetPage(n int, limit int64, c *cursor) (lo, hi int, prev, next cursor, errMsg string) {
	cur := cursor{}
	if c != nil {
		cur = *c
	}
	limit = min(limit, 100)
	page := cur.offset
	value := int64(cur.value)
	offset := page * value
	size := value
	if size == 0 {
		size = limit
	}
	stop := offset + size + 1
	if offset < 0 {
		return 0, 0, cursor{}, cursor{}, "Pagination offset cannot be negative"
	}
	a, b := clampRange(offset, stop, n)
	// results = list(queryset[offset:stop]); if cursor.value != limit:
	// results = results[-(limit + 1):]
	if value != limit && int64(b-a) > limit+1 {
		a = b - int(limit+1)
	}
	hasNext := int64(b-a) > limit
	if int64(b-a) > limit {
		b = a + int(max(limit, 0))
	}
	return a, b, intCursor(limit, page-1, true, page > 0), intCursor(limit, page+1, false, hasNext), ""
}

// genericOffsetParams reads per_page and cursor as GenericOffsetPaginator
// does: the cursor's offset counts rows. A negative offset is a 500:
// snuba_sdk refuses a negative Offset, outside handle_query_errors.
func (s *Server) genericOffsetParams(q url.Values) (limit, offset int64, e *response) {
	limit, e = perPage(q)
	if e != nil {
		return 0, 0, e
	}
	cur, e := cursorParam(q)
	if e != nil {
		return 0, 0, e
	}
	if cur != nil {
		offset = cur.offset
	}
	if offset < 0 {
		resp := internalError(s.newEventID())
		return 0, 0, &resp
	}
	return limit, offset, nil
}

// genericOffsetCursors are GenericOffsetPaginator's cursors for the page at
// offset: a previous page while offset > 0, a next one while a further row
// exists.
func genericOffsetCursors(offset, limit int64, hasMore bool) (prev, next cursor) {
	return intCursor(0, max(0, offset-limit), true, offset > 0), intCursor(0, max(0, offset+limit), false, hasMore)
}

func clampRange(lo, hi int64, n int) (int, int) {
	lo = max(0, min(lo, int64(n)))
	hi = max(lo, min(hi, int64(n)))
	return int(lo), int(hi)
}

// seqItem is a row of a SequencePaginator: a score and a value, sorted by
// (score, id) descending.
type seqItem struct {
	score int64
	id    int64
	idx   int
}

// sequencePage implements SequencePaginator.get_result with reverse=True
// over items sorted descending.
func sequencePage(items []seqItem, limit int64, c *cursor) (page []seqItem, prev, next cursor) {
	limit = min(limit, 100)
	cur := cursor{}
	if c != nil {
		cur = *c
	}
	n := int64(len(items))
	// reverse_bisect_left: first i in [0, hi) with scores[i] <= x.
	search := func(x float64, hi int64) int64 {
		hi = min(hi, n)
		lo := int64(0)
		for lo < hi {
			mid := (lo + hi) / 2
			if float64(items[mid].score) > x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return lo
	}
	var position int64
	if cur.value == 0 {
		if cur.isPrev {
			position = n
		}
	} else {
		position = search(cur.value, n)
	}
	position += cur.offset
	var lo, hi int64
	if cur.isPrev {
		hi = min(position, n)
		lo = max(hi-limit, 0)
	} else {
		lo = max(position, 0)
		hi = min(lo+limit, n)
	}
	if n > 0 {
		ps := items[min(lo, n-1)].score
		prev = intCursor(ps, lo-search(float64(ps), lo), true, lo > 0)
		ns := items[min(hi, n-1)].score
		next = intCursor(ns, hi-search(float64(ns), hi), false, hi < n)
	} else {
		prev = intCursor(0, 0, true, false)
		next = intCursor(0, 0, false, false)
	}
	a, b := clampRange(lo, hi, int(n))
	return items[a:b], prev, next
}
