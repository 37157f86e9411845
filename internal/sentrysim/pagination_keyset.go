package sentrysim

import "math"

// The keyset paginator of the audit log: BasePaginator.get_result with
// DateTimePaginator keys, and sentry.utils.cursors.build_cursor.

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

// key is DateTimePaginator.get_item_key of the row.
func (it keysetItem) key(forPrev bool) float64 { return dateTimeKey(it.micros, forPrev) }

// buildCursor is sentry.utils.cursors.build_cursor with is_desc=True.
func buildCursor(results []keysetItem, limit int64, cur cursor) ([]keysetItem, cursor, cursor) {
	next := buildNextValues(results, limit, cur)
	prev := buildPrevValues(results, limit, cur)
	switch {
	case cur.isPrev && prev.hasResults:
		results = results[1:]
	case !cur.isPrev:
		if int64(len(results)) > limit {
			results = results[:max(limit, 0)]
		}
	}
	return results, prev, next
}

// buildNextValues is build_cursor's _build_next_values: the next cursor.
func buildNextValues(results []keysetItem, limit int64, cur cursor) cursor {
	n := int64(len(results))
	var nextValue float64
	var nextOffset int64
	var hasNext bool
	nextFloat := cur.floatValue
	value := cur.value
	offset := cur.offset
	if value == 0 && n > 0 {
		value = results[0].key(false)
		nextFloat = false
	}
	switch {
	case cur.isPrev:
		nextValue, nextOffset, hasNext = value, 0, true
	case n == 0:
		nextValue, nextOffset, hasNext = value, offset, false
	default:
		hasNext = n > limit
		nv := results[n-1].key(false)
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
				if results[i].key(false) <= nv {
					nextOffset++
				} else {
					break
				}
			}
		}
	}
	return cursor{value: nextValue, floatValue: nextFloat && nextValue != 0, offset: nextOffset, hasResults: hasNext}
}

// buildPrevValues is build_cursor's _build_prev_values: the previous
// cursor.
func buildPrevValues(results []keysetItem, limit int64, cur cursor) cursor {
	n := int64(len(results))
	var prevValue float64
	var prevOffset int64
	var hasPrev bool
	prevFloat := false
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
		prevValue = results[first].key(true)
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
				if results[i].key(true) >= prevValue {
					prevOffset++
				} else {
					break
				}
			}
		}
	}
	return cursor{value: prevValue, floatValue: prevFloat && prevValue != 0, offset: prevOffset, isPrev: true, hasResults: hasPrev}
}
