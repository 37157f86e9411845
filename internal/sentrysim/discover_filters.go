package sentrysim

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// From key:value to filters: the date, numeric and text filters of
// src/sentry/api/event_search.py, the values they take, and the boolean
// structure of the terms.

// negate is handle_negation's OPERATOR_NEGATION_MAP.
func negate(op string) string {
	switch op {
	case "=":
		return "!="
	case "<=":
		return ">"
	case ">=":
		return "<"
	case ">":
		return "<="
	case "<":
		return ">="
	case "IN":
		return "NOT IN"
	}
	return "!="
}

// pyListRepr renders a list of strings as Python's repr does.
func pyListRepr(vs []string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = pyRepr(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// negatedIf is op, or its negation for a filter negated with "!".
func negatedIf(op string, negated bool) string {
	if negated {
		return negate(op)
	}
	return op
}

// classify turns a key, operator and value into a filter, as the grammar's
// date, numeric and text filters and _handle_basic_filter do.
func (p *searchParser) classify(key string, negated bool, op, raw string, list []string, quoted bool) ([]*searchFilter, error) {
	if p.keys.isDate(key) && !negated && list == nil && !quoted {
		if fs, err := p.dateFilter(key, op, raw); fs != nil || err != nil {
			return fs, err
		}
	}
	if isNumericKey(key) && !quoted {
		if fs := numericFilter(key, negated, op, raw, list); fs != nil {
			return fs, nil
		}
	}
	return p.textFilter(key, negated, op, raw, list, quoted)
}

// dateFilter is the grammar's date_filter (an operator and an ISO date),
// specific_date_filter (a bare date or datetime: a range around it) and
// rel_date_filter (-24h/+24h). It returns nil and no error when raw is
// none of these.
func (p *searchParser) dateFilter(key, op, raw string) ([]*searchFilter, error) {
	switch {
	case op != "" && isoDateRE.MatchString(raw):
		t, err := parseSearchDate(raw)
		if err != nil {
			return nil, err
		}
		return []*searchFilter{{key: key, op: op, kind: 'd', date: t.UnixNano()}}, nil
	case op == "" && isoDateRE.MatchString(raw):
		lo, hi, err := parseSearchDateValue(raw)
		if err != nil {
			return nil, err
		}
		return []*searchFilter{{key: key, op: ">=", kind: 'd', date: lo.UnixNano()}, {key: key, op: "<", kind: 'd', date: hi.UnixNano()}}, nil
	case op == "" && relDateRE.MatchString(raw):
		n, _ := strconv.ParseInt(raw[1:len(raw)-1], 10, 64)
		unit := map[byte]time.Duration{'w': 7 * 24 * time.Hour, 'd': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute}[raw[len(raw)-1]]
		t := p.now.Add(-time.Duration(n) * unit)
		if raw[0] == '-' {
			return []*searchFilter{{key: key, op: ">=", kind: 'd', date: t.UnixNano()}}, nil
		}
		return []*searchFilter{{key: key, op: "<=", kind: 'd', date: t.UnixNano()}}, nil
	}
	return nil, nil
}

// numericFilter is the grammar's numeric_filter (a number with an
// optional k, m or b multiplier) and numeric_in_filter (a list of them).
// It returns nil when a value is not a number.
func numericFilter(key string, negated bool, op, raw string, list []string) []*searchFilter {
	if list != nil {
		nums := make([]float64, 0, len(list))
		for _, v := range list {
			n, ok := parseNumeric(v)
			if !ok {
				return nil
			}
			nums = append(nums, n)
		}
		return []*searchFilter{{key: key, op: negatedIf("IN", negated), kind: 'n', nums: nums}}
	}
	n, ok := parseNumeric(raw)
	if !ok {
		return nil
	}
	if op == "" {
		op = "="
	}
	return []*searchFilter{{key: key, op: negatedIf(op, negated), kind: 'n', nums: []float64{n}}}
}

// textFilter is text_filter / text_in_filter, then _handle_basic_filter.
// A text filter takes only = and !=: another operator is pushed back into
// the value.
func (p *searchParser) textFilter(key string, negated bool, op, raw string, list []string, quoted bool) ([]*searchFilter, error) {
	if list != nil {
		if err := p.basicCheck(key, pyListRepr(list)); err != nil {
			return nil, err
		}
		return []*searchFilter{p.newTextFilter(key, negatedIf("IN", negated), list)}, nil
	}
	if raw == "" && !quoted {
		if p.keys.isDate(key) || isNumericKey(key) {
			return nil, p.basicCheck(key, "")
		}
		return nil, searchErrf("Empty string after '%s:'", key)
	}
	o := op
	if o == "" {
		o = "="
	}
	if o != "=" && o != "!=" {
		raw, o = o+raw, "="
	}
	if err := p.basicCheck(key, raw); err != nil {
		return nil, err
	}
	return []*searchFilter{p.newTextFilter(key, negatedIf(o, negated), []string{raw})}, nil
}

// newTextFilter is a text filter on key; a name the deployment does not
// know is a tag.
func (p *searchParser) newTextFilter(key, op string, values []string) *searchFilter {
	return (&searchFilter{key: key, op: op, kind: 't', strs: values, tag: p.keys.isTag(key)}).compile()
}

// basicCheck is _handle_basic_filter: a date or numeric key that reaches a
// text filter had a value of the wrong format.
func (p *searchParser) basicCheck(key, raw string) error {
	switch {
	case p.keys.isDate(key):
		return searchErrf("%s: Invalid date: %s. Expected +/-duration (e.g. +1h) or ISO 8601-like (e.g. %s).", key, raw, pyNowExample(p.now))
	case isNumericKey(key):
		return searchErrf("%s: Invalid number: %s. Expected number then optional k, m, or b suffix (e.g. 500k).", key, raw)
	}
	return nil
}

// pyNowExample is datetime.now().isoformat()[:-4], the example in
// _handle_basic_filter's invalid-date message (the server runs in UTC).
func pyNowExample(now time.Time) string {
	now = now.UTC()
	s := now.Format("2006-01-02T15:04:05")
	if us := now.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s[:len(s)-4]
}

// parseNumeric is parse_numeric_value: a number with an optional k, m or b
// multiplier.
func parseNumeric(v string) (float64, bool) {
	if !numericValRE.MatchString(v) {
		return 0, false
	}
	mult := 1.0
	switch v[len(v)-1] {
	case 'k', 'K':
		mult, v = 1e3, v[:len(v)-1]
	case 'm', 'M':
		mult, v = 1e6, v[:len(v)-1]
	case 'b', 'B':
		mult, v = 1e9, v[:len(v)-1]
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f * mult, true
}

// parseSearchDate is parse_datetime_string (src/sentry/search/utils.py):
// "Z" and a "+hh:mm" offset are dropped (the time is taken as UTC), a
// "-hh:mm" offset goes through fromisoformat and is converted.
func parseSearchDate(v string) (time.Time, error) {
	s := strings.TrimSuffix(v, "Z")
	if len(s) >= 6 && s[len(s)-6] == '+' {
		s = s[:len(s)-6]
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999-07:00", s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, searchErrf("%s is not a valid ISO8601 date query", s)
}

// parseSearchDateValue is parse_datetime_value: a date means that whole
// day, a datetime five minutes either side of it.
func parseSearchDateValue(v string) (lo, hi time.Time, err error) {
	s := strings.TrimSuffix(v, "Z")
	if len(s) == 10 {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return lo, hi, searchErrf("%s is not a valid ISO8601 date query", s)
		}
		return t, t.Add(24 * time.Hour), nil
	}
	t, err := parseSearchDate(v)
	if err != nil {
		return lo, hi, err
	}
	return t.Add(-5 * time.Minute), t.Add(5 * time.Minute), nil
}

// buildBoolean is resolve_boolean_conditions: AND binds tighter than OR,
// and an operator needs a condition on both sides.
func buildBoolean(terms []searchTerm) (*searchNode, error) {
	if len(terms) == 1 && terms[0].op == "" {
		if terms[0].paren != nil {
			return buildBoolean(terms[0].paren)
		}
		return &searchNode{f: terms[0].f}, nil
	}
	var prev *searchTerm
	var kept []searchTerm
	for i := range terms {
		t := &terms[i]
		switch {
		case prev != nil && prev.op != "" && t.op != "":
			return nil, searchErrf("Missing condition in between two condition operators: '%s %s'", prev.op, t.op)
		case prev == nil && t.op != "":
			return nil, searchErrf("Condition is missing on the left side of '%s' operator", t.op)
		}
		if t.op != "AND" {
			kept = append(kept, *t)
		}
		prev = t
	}
	if prev != nil && prev.op != "" {
		return nil, searchErrf("Condition is missing on the right side of '%s' operator", prev.op)
	}
	for i, t := range kept {
		if t.op == "OR" {
			l, err := buildBoolean(kept[:i])
			if err != nil {
				return nil, err
			}
			r, err := buildBoolean(kept[i+1:])
			if err != nil {
				return nil, err
			}
			return &searchNode{or: true, kids: []*searchNode{l, r}}, nil
		}
	}
	n := &searchNode{}
	for _, t := range kept {
		k, err := buildBoolean([]searchTerm{t})
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, k)
	}
	return n, nil
}

// translateWildcard is translate_wildcard: a value with * becomes a
// regular expression, matched case-insensitively (match(col, '(?i)…') in
// the query builder), anchored at both ends unless it is for the message
// filter (message_filter_converter strips the anchors).
func translateWildcard(pat string, anchored bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)")
	if anchored {
		b.WriteByte('^')
	}
	rs := []rune(strings.ToValidUTF8(pat, "\uFFFD"))
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '\\' && i+1 < len(rs):
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		case c == '*':
			b.WriteString(".*")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if anchored {
		b.WriteByte('$')
	}
	return regexp.MustCompile(b.String())
}

// hasWildcard reports an unescaped * (WILDCARD_CHARS).
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*':
			return true
		}
	}
	return false
}
