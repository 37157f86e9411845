package sentrysim

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Discover's query parameter: Sentry's search syntax
// (src/sentry/api/event_search.py, event_search_grammar and SearchVisitor),
// for the subset of keys the simulator knows. What it does like Sentry:
//
//   - key:value, !key:value, key:[a, b] (IN), !key:[a, b], has:key,
//     !has:key, quoted values, free text (a case-insensitive match on the
//     message), AND, OR (AND binds tighter) and parentheses, with
//     resolve_boolean_conditions' errors for a dangling operator;
//   - date keys (timestamp, error.received: SearchConfig.date_keys) take
//     >=, >, <=, < and = with an ISO 8601 date (a "+hh:mm" offset is
//     dropped and the time taken as UTC, as parse_datetime_string does), a
//     bare date (that whole day) or datetime (five minutes either side, as
//     parse_datetime_value), or a relative -24h/+24h; anything else is
//     "<key>: Invalid date: …";
//   - numeric keys (project.id, project_id, issue.id) take comparisons and
//     lists, with k/m/b suffixes; anything else is "<key>: Invalid number: …";
//   - every other key is a text key: only = and != (another operator is
//     pushed back into the value, so error.received as a text key never
//     matches a date comparison); * is a wildcard (case-insensitive); a name
//     Sentry does not know is a tag, which simulated events do not have: it
//     is "" (key:"" and !key:x match, has:key does not).
//
// Aggregate filters (count():>5), "is:" and the project: slug filter are not
// simulated (400 saying so).

// searchFilter is one parsed key:value filter (a SearchFilter).
type searchFilter struct {
	key  string
	op   string // =, !=, >, >=, <, <=, IN, NOT IN
	kind byte   // 'd' date, 'n' numeric, 't' text
	date int64  // unix nanos, for dates
	nums []float64
	strs []string // text values, as given
	res  []*regexp.Regexp
	tag  bool // a name the deployment does not know: a tag, "" here
}

// compile prepares the patterns of a text filter's values with a wildcard
// (res[i] is nil for a plain value). The message filter matches anywhere in
// the message; other keys match the whole value.
func (f *searchFilter) compile() *searchFilter {
	f.res = make([]*regexp.Regexp, len(f.strs))
	for i, v := range f.strs {
		if hasWildcard(v) {
			f.res[i] = translateWildcard(v, f.key != "message")
		}
	}
	return f
}

// searchNode is a parsed query: a filter, or an AND/OR of nodes.
type searchNode struct {
	f    *searchFilter
	or   bool
	kids []*searchNode
}

// searchTerm is an element of a term list: a filter, "AND"/"OR", or a
// parenthesised term list.
type searchTerm struct {
	f     *searchFilter
	op    string
	paren []searchTerm
}

// searchError is an InvalidSearchQuery: a 400 with its message.
type searchError struct{ msg string }

func (e *searchError) Error() string { return e.msg }

func searchErrf(format string, args ...any) *searchError {
	return &searchError{msg: fmt.Sprintf(format, args...)}
}

// discoverKeys describes how the simulated deployment treats a search key.
type discoverKeys struct {
	noReceived    bool // error.received refused (Invalid key for this search)
	receivedIsTag bool // error.received unknown: a tag, as any unknown name
}

func (k discoverKeys) isDate(key string) bool {
	return key == "timestamp" || (key == "error.received" && !k.receivedIsTag)
}

// isTag reports a name the deployment does not know: Sentry resolves it to
// tags[name] (get_snuba_column_name), which simulated events do not have.
func (k discoverKeys) isTag(key string) bool {
	if key == "error.received" {
		return k.receivedIsTag
	}
	if m := tagKeyRE.FindString(key); len(m) == len(key) && m != "" {
		return true
	}
	_, known := discoverColumns[key]
	return !known
}

func isNumericKey(key string) bool {
	switch key {
	case "project.id", "project_id", "issue.id":
		return true
	}
	return false
}

type searchParser struct {
	q    string
	pos  int
	now  time.Time
	keys discoverKeys
}

// parseSearch parses query into a condition tree; nil means no condition.
func parseSearch(query string, now time.Time, keys discoverKeys) (*searchNode, error) {
	// Django decodes the query string as UTF-8, replacing invalid bytes.
	p := &searchParser{q: strings.ToValidUTF8(query, "\uFFFD"), now: now, keys: keys}
	terms, err := p.terms(false)
	if err != nil {
		return nil, err
	}
	if len(terms) == 0 {
		return nil, nil
	}
	return buildBoolean(terms)
}

// errUnclosed is an unmatched "(" found inside a parenthesised group; the
// top level reports it where the group began.
var errUnclosed = &searchError{msg: "unclosed parenthesis"}

// parseError is parse_search_query's message for an IncompleteParseError
// at byte offset pos: the grammar matched the terms before pos and no term
// at pos.
func (p *searchParser) parseError(pos int) error {
	idx := pos + 1 // e.column(), used as an index
	lo, hi := max(0, idx-5), min(len(p.q), idx+5)
	idx = min(idx, len(p.q))
	return searchErrf("Parse error at '%s%s' (column %d). This is commonly caused by unmatched parentheses. Enclose any text in double quotes.",
		p.q[lo:idx], p.q[idx:hi], pos+1)
}

func (p *searchParser) skipSpaces() {
	for p.pos < len(p.q) && p.q[p.pos] == ' ' {
		p.pos++
	}
}

// atEndValue is end_value: a tab, newline, space, ")" or the end.
func (p *searchParser) atEndValue(i int) bool {
	return i >= len(p.q) || strings.IndexByte("\t\n )", p.q[i]) >= 0
}

// terms parses a term list up to the end of the query, or up to the ")"
// that closes it when it is inParen.
func (p *searchParser) terms(inParen bool) ([]searchTerm, error) {
	var l termList
	for {
		p.skipSpaces()
		if p.pos >= len(p.q) {
			if inParen {
				return nil, errUnclosed
			}
			return l.done(), nil
		}
		switch c := p.q[p.pos]; {
		case c == ')':
			if !inParen {
				return nil, p.parseError(p.pos)
			}
			p.pos++
			return l.done(), nil
		case c == '(':
			if err := p.parenTerm(&l, inParen); err != nil {
				return nil, err
			}
			continue
		case c == '"':
			if p.quotedTerm(&l) {
				continue
			}
		}
		if op := p.boolOperator(); op != "" {
			l.add(searchTerm{op: op})
			continue
		}
		fs, ok, err := p.filter()
		if err != nil {
			return nil, err
		}
		if ok {
			ts := make([]searchTerm, len(fs))
			for i, f := range fs {
				ts[i] = searchTerm{f: f}
			}
			l.add(ts...)
			continue
		}
		if err := p.freeText(&l, inParen); err != nil {
			return nil, err
		}
	}
}

// termList collects the terms of a term list. Consecutive free-text words
// become one message filter.
type termList struct {
	out  []searchTerm
	free []string
}

// flush ends a run of free-text words.
func (l *termList) flush() {
	if len(l.free) > 0 {
		l.out = append(l.out, searchTerm{f: messageFilter(strings.Join(l.free, " "))})
		l.free = nil
	}
}

// add appends terms after any pending free text.
func (l *termList) add(ts ...searchTerm) {
	l.flush()
	l.out = append(l.out, ts...)
}

// done returns the terms, pending free text included.
func (l *termList) done() []searchTerm {
	l.flush()
	return l.out
}

// messageFilter is the filter of free text: message=text.
func messageFilter(text string) *searchFilter {
	return (&searchFilter{key: "message", op: "=", kind: 't', strs: []string{text}}).compile()
}

// parenTerm parses a parenthesised term list at p.pos. An unclosed "(" is
// reported at the top level, where it began.
func (p *searchParser) parenTerm(l *termList, inParen bool) error {
	start := p.pos
	p.pos++
	kids, err := p.terms(true)
	if err == errUnclosed && !inParen {
		return p.parseError(start)
	}
	if err != nil {
		return err
	}
	if len(kids) == 0 { // "()" is free text (free_parens)
		l.free = append(l.free, p.q[start:p.pos])
		return nil
	}
	l.add(searchTerm{paren: kids})
	return nil
}

// quotedTerm parses a quoted_value at p.pos as a message filter of its own.
// It reports false, consuming nothing, when the quote is not closed.
func (p *searchParser) quotedTerm(l *termList) bool {
	save := p.pos
	if v, ok := p.quoted(); ok {
		l.add(searchTerm{f: messageFilter(v)})
		return true
	}
	p.pos = save // not a quoted_value: an unquoted word
	return false
}

// freeText parses free_text_unquoted: words up to the next filter or
// operator.
func (p *searchParser) freeText(l *termList, inParen bool) error {
	start := p.pos
	for p.pos < len(p.q) && strings.IndexByte("()\n ", p.q[p.pos]) < 0 {
		p.pos++
	}
	if p.pos == start { // a newline: no term matches here
		if inParen {
			return errUnclosed
		}
		return p.parseError(p.pos)
	}
	l.free = append(l.free, p.q[start:p.pos])
	return nil
}

// boolOperator consumes AND or OR (any case) followed by end_value.
func (p *searchParser) boolOperator() string {
	for _, op := range []string{"AND", "OR"} {
		end := p.pos + len(op)
		if end <= len(p.q) && strings.EqualFold(p.q[p.pos:end], op) && p.atEndValue(end) {
			p.pos = end
			return op
		}
	}
	return ""
}

// quoted consumes a quoted_value and returns its text (\" unescaped).
func (p *searchParser) quoted() (string, bool) {
	i := p.pos + 1
	var b strings.Builder
	for i < len(p.q) {
		switch {
		case p.q[i] == '\\' && i+1 < len(p.q) && p.q[i+1] == '"':
			b.WriteByte('"')
			i += 2
		case p.q[i] == '"':
			p.pos = i + 1
			return b.String(), true
		default:
			b.WriteByte(p.q[i])
			i++
		}
	}
	return "", false
}
