package sentrysim

import (
	"regexp"
	"strings"
)

// A key:value term of Discover's search syntax, as event_search_grammar
// reads it: the key (a name, tags[name] or a quoted name), the operator and
// the value (plain, quoted or a list), and has:key. classify
// (discover_filters.go) then turns them into filters.

var (
	keyRE        = regexp.MustCompile(`^[a-zA-Z0-9_.-]+`)
	tagKeyRE     = regexp.MustCompile(`^tags\[([a-zA-Z0-9_.:-]+)\]`)
	quotedKeyRE  = regexp.MustCompile(`^"([a-zA-Z0-9_.:-]+)"`)
	isoDateRE    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$`)
	relDateRE    = regexp.MustCompile(`^[+-][0-9]+[wdhm]$`)
	numericValRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]*)?([kmbKMB])?$`)
)

// filter parses a key:value filter at p.pos; ok is false (and nothing
// consumed) when there is none.
func (p *searchParser) filter() ([]*searchFilter, bool, error) {
	key, negated, err := p.filterKey()
	if key == "" || err != nil {
		return nil, false, err
	}
	if p.keys.noReceived && key == "error.received" {
		// visit_search_key: a key outside the search's allowed keys.
		return nil, false, searchErrf("Invalid key for this search: %s", key)
	}
	switch key {
	case "has":
		return p.hasFilter(negated)
	case "is":
		return nil, false, searchErrf(`"is:" queries are not supported in this search.`)
	case "project", "project.name":
		return nil, false, searchErrf("sentrysim does not simulate the %s: filter; use project.id", key)
	}
	op := p.filterOperator()
	raw, list, quoted, err := p.filterValue(op)
	if err != nil {
		return nil, false, err
	}
	f, err := p.classify(key, negated, op, raw, list, quoted)
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}

// filterKey consumes [!]key: at p.pos and returns the key, or "" (nothing
// consumed) when there is no key followed by ":" there. An aggregate
// function's filter (count():>5) is refused.
func (p *searchParser) filterKey() (key string, negated bool, err error) {
	start := p.pos
	i := p.pos
	if i < len(p.q) && p.q[i] == '!' {
		negated = true
		i++
	}
	rest := p.q[i:]
	switch {
	case tagKeyRE.MatchString(rest):
		m := tagKeyRE.FindStringSubmatch(rest)
		key, i = m[0], i+len(m[0])
	case quotedKeyRE.MatchString(rest):
		m := quotedKeyRE.FindStringSubmatch(rest)
		key, i = m[1], i+len(m[0])
	case keyRE.MatchString(rest):
		key = keyRE.FindString(rest)
		i += len(key)
		if i < len(p.q) && p.q[i] == '(' {
			if j := strings.IndexByte(p.q[i:], ')'); j >= 0 && i+j+1 < len(p.q) && p.q[i+j+1] == ':' {
				return "", false, searchErrf("sentrysim does not simulate aggregate filters (%s)", p.q[start:i+j+1])
			}
			return "", false, nil
		}
	default:
		return "", false, nil
	}
	if i >= len(p.q) || p.q[i] != ':' {
		return "", false, nil
	}
	p.pos = i + 1
	return key, negated, nil
}

// filterOperator consumes the operator after the key; "" when there is
// none.
func (p *searchParser) filterOperator() string {
	for _, o := range []string{">=", "<=", "!=", ">", "<", "="} {
		if strings.HasPrefix(p.q[p.pos:], o) {
			p.pos += len(o)
			return o
		}
	}
	return ""
}

// filterValue consumes the value: a list (without an operator only), a
// quoted value, or the text up to end_value.
func (p *searchParser) filterValue(op string) (raw string, list []string, quoted bool, err error) {
	switch {
	case op == "" && p.pos < len(p.q) && p.q[p.pos] == '[':
		list, err = p.inList()
		return "", list, false, err
	case p.pos < len(p.q) && p.q[p.pos] == '"':
		s := p.pos
		v, ok := p.quoted()
		if !ok {
			// visit_value: a value that starts with an unescaped quote.
			p.pos = s
			p.skipValue()
			return "", nil, false, searchErrf("Invalid quote at '%s': quotes must enclose text or be escaped.", p.q[s:p.pos])
		}
		return v, nil, true, nil
	default:
		s := p.pos
		p.skipValue()
		return p.q[s:p.pos], nil, false, nil
	}
}

// skipValue moves p.pos to the end of an unquoted value: the next
// parenthesis, tab, newline or space.
func (p *searchParser) skipValue() {
	for p.pos < len(p.q) && strings.IndexByte("()\t\n ", p.q[p.pos]) < 0 {
		p.pos++
	}
}

// inList parses [a, b, "c"] followed by end_value.
func (p *searchParser) inList() ([]string, error) {
	p.pos++ // [
	var out []string
	for {
		p.skipSpaces()
		if p.pos >= len(p.q) {
			return nil, p.parseError(p.pos)
		}
		var v string
		if p.q[p.pos] == '"' {
			s, ok := p.quoted()
			if !ok {
				return nil, p.parseError(p.pos)
			}
			v = s
		} else {
			s := p.pos
			for p.pos < len(p.q) && strings.IndexByte("(), ]", p.q[p.pos]) < 0 {
				p.pos++
			}
			v = p.q[s:p.pos]
		}
		p.skipSpaces()
		if v == "" {
			return nil, searchErrf("Lists should not have empty values")
		}
		out = append(out, v)
		if p.pos < len(p.q) && p.q[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.q) && p.q[p.pos] == ']' && p.atEndValue(p.pos+1) {
			p.pos++
			return out, nil
		}
		return nil, p.parseError(p.pos)
	}
}

func (p *searchParser) hasFilter(negated bool) ([]*searchFilter, bool, error) {
	rest := p.q[p.pos:]
	var key string
	switch {
	case tagKeyRE.MatchString(rest):
		key = tagKeyRE.FindString(rest)
	case keyRE.MatchString(rest):
		key = keyRE.FindString(rest)
	default:
		return nil, false, searchErrf(`Invalid format for "has" search: was expecting a field or tag instead`)
	}
	p.pos += len(key)
	if p.keys.noReceived && key == "error.received" {
		return nil, false, searchErrf("Invalid key for this search: %s", key)
	}
	op := "!="
	if negated {
		op = "="
	}
	return []*searchFilter{p.newTextFilter(key, op, []string{""})}, true, nil
}
