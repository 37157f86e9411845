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

func clampRange(lo, hi int64, n int) (int, int) {
	lo = max(0, min(lo, int64(n)))
	hi = max(lo, min(hi, int64(n)))
	return int(lo), int(hi)
}

// keysetItem is a row of a BasePaginator-style (keyset) query.
type keysetItem struct {
	micros int64 // sort key in microseconds (audit datetime)
	idx    int
}

// dateTimeKey is DateTimePaginator.get_item_key for a descending paginator:
// milliseconds, ceil for next cursors, floor for prev cursors.
func dateTimeKey(micros int64, forPrev bool) float64 {
	ms := float64(micros) / 1000
	if forPrev {
		return math.Floor(ms)
	}
	return math.Ceil(ms)
}

// keysetPage implements BasePaginator.get_result (desc=True) with
// DateTimePaginator keys over rows sorted newest first (by micros, then
// id). It returns the rows of the page (indexes into rows) and the cursors.
func keysetPage(rows []keysetItem, limit int64, c *cursor) (page []keysetItem, prev, next cursor) {
	cur := cursor{}
	if c != nil {
		cur = *c
	}
	limit = min(limit, 100)
	// build_queryset: desc and is_prev => ascending, key >= value.
	var q []keysetItem
	asc := cur.isPrev
	if asc {
		for i := len(rows) - 1; i >= 0; i-- {
			if cur.value == 0 || float64(rows[i].micros) >= cur.value*1000 {
				q = append(q, rows[i])
			}
		}
	} else {
		for _, r := range rows {
			if cur.value == 0 || float64(r.micros) <= cur.value*1000 {
				q = append(q, r)
			}
		}
	}
	extra := int64(1)
	if cur.isPrev && cur.value != 0 {
		extra++
	}
	offset := cur.offset
	a, b := clampRange(offset, offset+limit+extra, len(q))
	results := append([]keysetItem(nil), q[a:b]...)
	if cur.isPrev && cur.value != 0 {
		if len(results) > 0 && dateTimeKey(results[0].micros, true) == cur.value {
			results = results[1:]
		} else if int64(len(results)) == offset+limit+extra {
			results = results[:len(results)-1]
		}
	}
	if cur.isPrev {
		for i, j := 0, len(results)-1; i < j; i, j = i+1, j-1 {
			results[i], results[j] = results[j], results[i]
		}
	}
	return buildCursor(results, limit, cur)
}

// buildCursor is sentry.utils.cursors.build_cursor with is_desc=True.
func buildCursor(results []keysetItem, limit int64, cur cursor) ([]keysetItem, cursor, cursor) {
	key := func(it keysetItem, forPrev bool) float64 { return dateTimeKey(it.micros, forPrev) }
	n := int64(len(results))

	// _build_next_values
	var nextValue float64
	var nextOffset int64
	var hasNext bool
	nextFloat := cur.floatValue
	{
		value := cur.value
		offset := cur.offset
		if value == 0 && n > 0 {
			value = key(results[0], false)
			nextFloat = false
		}
		switch {
		case cur.isPrev:
			nextValue, nextOffset, hasNext = value, 0, true
		case n == 0:
			nextValue, nextOffset, hasNext = value, offset, false
		default:
			hasNext = n > limit
			nv := key(results[n-1], false)
			nextFloat = false
			if nv == value {
				nextValue, nextOffset = nv, offset+limit
			} else {
				nextValue = nv
				i := n - 1
				if hasNext {
					i--
				}
				for ; i >= 0; i-- {
					if key(results[i], false) <= nv {
						nextOffset++
					} else {
						break
					}
				}
			}
		}
	}

	// _build_prev_values
	var prevValue float64
	var prevOffset int64
	var hasPrev bool
	prevFloat := false
	{
		value := cur.value
		offset := cur.offset
		if cur.isPrev {
			hasPrev = n > limit
		} else {
			hasPrev = value != 0 || offset != 0
		}
		first := 0
		if cur.isPrev && hasPrev {
			first = 1
		}
		if n > 0 {
			prevValue = key(results[first], true)
		}
		prevOffset = 0
		if cur.isPrev {
			prevOffset = offset
		}
		if cur.isPrev && n > 0 {
			if prevValue == value {
				prevOffset = offset + limit
				prevFloat = cur.floatValue
			} else {
				prevOffset = 0
				i := 0
				if hasPrev {
					i++
				}
				i++
				for ; i < len(results); i++ {
					if key(results[i], true) >= prevValue {
						prevOffset++
					} else {
						break
					}
				}
			}
		}
	}

	switch {
	case cur.isPrev && hasPrev:
		results = results[1:]
	case !cur.isPrev:
		if int64(len(results)) > limit {
			results = results[:max(limit, 0)]
		}
	}
	next := cursor{value: nextValue, floatValue: nextFloat && nextValue != 0, offset: nextOffset, hasResults: hasNext}
	prev := cursor{value: prevValue, floatValue: prevFloat && prevValue != 0, offset: prevOffset, isPrev: true, hasResults: hasPrev}
	return results, prev, next
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
