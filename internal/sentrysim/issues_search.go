package sentrysim

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The issue search query of the issues endpoint: the subset of Sentry's
// issue search syntax that a collector uses, as predicates on issue rows.

// issueFilter is a parsed issue search query: every term must match.
type issueFilter struct {
	terms []issueTerm
}

type issueTerm struct {
	neg   bool
	match func(r *issueRow) bool
}

func (f issueFilter) match(r *issueRow) bool {
	for _, t := range f.terms {
		if t.match(r) == t.neg {
			return false
		}
	}
	return true
}

var (
	issueStatuses   = []string{"unresolved", "resolved", "ignored", "archived"}
	issueSubstatus  = []string{"ongoing", "escalating", "regressed", "new", "archived_until_escalating", "archived_until_condition_met", "archived_forever"}
	issueAssignment = []string{"assigned", "unassigned"}
)

// parseIssueQuery parses the subset of Sentry's issue search syntax
// (src/sentry/api/issue_search.py) that a collector uses: is:<status,
// substatus or assignment>, level:, issue.priority:, assigned:<user id or
// email>, lastSeen: and firstSeen:/age: (relative -24h / +24h, or
// >, >=, <, <= with an ISO date), timesSeen: (with the same operators),
// list values [a, b], a leading ! to negate, and free text (a substring of
// the title). lastSeen and timesSeen describe the events of the window, as
// the snuba search aggregates them; firstSeen is the issue's own. Any other
// key is an error: the simulator does not pretend to filter on tags.
func parseIssueQuery(q string, now time.Time) (f issueFilter, errMsg string) {
	toks, bad := splitQuery(q)
	if bad != "" {
		return f, bad
	}
	for _, tok := range toks {
		neg := strings.HasPrefix(tok, "!")
		body := strings.TrimPrefix(tok, "!")
		key, value, ok := strings.Cut(body, ":")
		if !ok || key == "" || strings.HasPrefix(body, `"`) {
			text := strings.ToLower(strings.Trim(body, `"`))
			f.terms = append(f.terms, issueTerm{neg: neg, match: func(r *issueRow) bool {
				return strings.Contains(strings.ToLower(r.g.tpl.title()), text)
			}})
			continue
		}
		values := listValues(value)
		var m func(r *issueRow) bool
		switch key {
		case "is":
			var ms []func(r *issueRow) bool
			for _, v := range values {
				switch {
				case slices.Contains(issueStatuses, v):
					st := v
					if st == "archived" {
						st = "ignored"
					}
					ms = append(ms, func(r *issueRow) bool { return r.status == st })
				case slices.Contains(issueSubstatus, v):
					ms = append(ms, func(r *issueRow) bool { return r.substatus == v })
				case v == "assigned":
					ms = append(ms, func(r *issueRow) bool { return r.assignee != "" })
				case v == "unassigned":
					ms = append(ms, func(r *issueRow) bool { return r.assignee == "" })
				default:
					valid := slices.Concat(issueStatuses, issueSubstatus, issueAssignment)
					slices.Sort(valid)
					return f, `Invalid value for "is" search, valid values are ['` + strings.Join(valid, "', '") + `']`
				}
			}
			m = anyOf(ms)
		case "level":
			m = func(r *issueRow) bool { return slices.Contains(values, levels[r.level]) }
		case "issue.priority":
			m = func(r *issueRow) bool { return slices.Contains(values, r.priority) }
		case "assigned":
			m = func(r *issueRow) bool {
				return r.assignee != "" && (slices.Contains(values, r.assignee) || slices.Contains(values, "user"+r.assignee+"@example.com"))
			}
		case "lastSeen":
			c, bad := parseDateFilter(value, now)
			if bad != "" {
				return f, bad
			}
			m = func(r *issueRow) bool { return c(r.win.last * 1000) }
		case "firstSeen", "age":
			c, bad := parseDateFilter(value, now)
			if bad != "" {
				return f, bad
			}
			m = func(r *issueRow) bool { return c(r.lifeFirst*1000 + int64(r.lifeFirstMs)) }
		case "timesSeen":
			c, bad := parseNumberFilter(value)
			if bad != "" {
				return f, bad
			}
			m = func(r *issueRow) bool { return c(r.win.count) }
		default:
			return f, "sentrysim does not simulate the search key " + strconv.Quote(key)
		}
		f.terms = append(f.terms, issueTerm{neg: neg, match: m})
	}
	return f, ""
}

func anyOf(ms []func(r *issueRow) bool) func(r *issueRow) bool {
	return func(r *issueRow) bool {
		for _, m := range ms {
			if m(r) {
				return true
			}
		}
		return false
	}
}

// splitQuery splits a search query on white space outside quotes and
// brackets (so `issue.priority:[high, medium]` is one term).
func splitQuery(q string) (toks []string, errMsg string) {
	var out []string
	var b strings.Builder
	inQuote, depth := false, 0
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	for _, c := range q {
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case unicode.IsSpace(c) && depth == 0:
			flush()
			continue
		}
		b.WriteRune(c)
	}
	if inQuote {
		return nil, "unterminated quote"
	}
	flush()
	return out, ""
}

// listValues splits "[a, b]" into its values; any other value is a list
// of one.
func listValues(v string) []string {
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		return []string{strings.Trim(v, `"`)}
	}
	var out []string
	for _, x := range strings.Split(v[1:len(v)-1], ",") {
		if x = strings.Trim(strings.TrimSpace(x), `"`); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parseDateFilter returns a predicate on unix milliseconds. "-24h" means
// within the last 24 hours (>= now-24h), "+24h" older than that
// (<= now-24h); an operator and an ISO date or datetime compare with that
// instant; a bare date is that whole UTC day.
func parseDateFilter(v string, now time.Time) (match func(ms int64) bool, errMsg string) {
	if len(v) > 1 && (v[0] == '-' || v[0] == '+') {
		d, ok := parseStatsPeriod(v[1:])
		if !ok {
			return nil, "Invalid date: " + v
		}
		at := now.Add(-d).UnixMilli()
		if v[0] == '-' {
			return func(ms int64) bool { return ms >= at }, ""
		}
		return func(ms int64) bool { return ms <= at }, ""
	}
	op, rest := cutOperator(v)
	t, ok := parseDateTime(rest)
	if !ok {
		return nil, "Invalid date: " + v
	}
	at := t.UnixMilli()
	if op == "" {
		if len(rest) != len("2006-01-02") {
			return nil, "Invalid date: " + v + " (use an operator with a datetime)"
		}
		to := t.Add(24 * time.Hour).UnixMilli()
		return func(ms int64) bool { return ms >= at && ms < to }, ""
	}
	return compareOp(op, at), ""
}

func parseNumberFilter(v string) (match func(n int64) bool, errMsg string) {
	op, rest := cutOperator(v)
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return nil, "Invalid number: " + v
	}
	if op == "" {
		op = "="
	}
	return compareOp(op, n), ""
}

func cutOperator(v string) (op, rest string) {
	for _, o := range []string{">=", "<=", ">", "<", "="} {
		if strings.HasPrefix(v, o) {
			return o, v[len(o):]
		}
	}
	return "", v
}

func compareOp(op string, x int64) func(int64) bool {
	switch op {
	case ">=":
		return func(n int64) bool { return n >= x }
	case "<=":
		return func(n int64) bool { return n <= x }
	case ">":
		return func(n int64) bool { return n > x }
	case "<":
		return func(n int64) bool { return n < x }
	}
	return func(n int64) bool { return n == x }
}
