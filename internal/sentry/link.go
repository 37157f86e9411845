package sentry

import (
	"net/url"
	"strings"
)

// link is one entry of an RFC 8288 Link header, reduced to what Sentry uses.
// Parameter names are matched case-insensitively; the first occurrence wins.
type link struct {
	URL     string
	Rel     string // raw rel value, may be a space-separated list
	Results string // "true" / "false" as sent; "" when absent
	Cursor  string // the cursor="…" attribute, unescaped; "" when absent
	// HasCursor distinguishes cursor="" from a missing attribute.
	HasCursor bool
}

// hasRel reports whether the link's rel list contains name (case-insensitive).
func (l link) hasRel(name string) bool {
	for r := range strings.FieldsSeq(l.Rel) {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// parseLink parses one or more Link header values, e.g. Sentry's
//
//	<https://sentry.io/api/0/…/?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <…>; rel="next"; …
//
// It never panics and never fails: malformed parts are skipped up to the next
// comma that is outside <…> and quotes. Commas and semicolons inside the URI
// or inside quoted values are data, backslash escapes in quoted values are
// undone, and whitespace around every token is ignored.
func parseLink(values ...string) []link {
	var out []link
	for _, h := range values {
		out = parseLinkValue(h, out)
	}
	return out
}

func parseLinkValue(h string, out []link) []link {
	i := 0
	for {
		// Skip separators between link-values.
		for i < len(h) && (isLWS(h[i]) || h[i] == ',') {
			i++
		}
		if i >= len(h) {
			return out
		}
		if h[i] != '<' {
			i = skipToComma(h, i)
			continue
		}
		end := strings.IndexByte(h[i+1:], '>')
		if end < 0 {
			return out // unterminated URI: nothing usable follows
		}
		l := link{URL: h[i+1 : i+1+end]}
		i += end + 2
		var seen uint8 // bit set of params already taken (first occurrence wins)
	params:
		for {
			i = skipLWS(h, i)
			if i >= len(h) || h[i] == ',' {
				break
			}
			if h[i] != ';' {
				i = skipToComma(h, i)
				break
			}
			name, val, next, ok := readParam(h, i+1)
			i = next
			if !ok {
				return appendLink(out, l) // unterminated quoted string
			}
			// After a parameter only whitespace, ';', ',' or the end may follow.
			if i < len(h) && !isLWS(h[i]) && h[i] != ';' && h[i] != ',' {
				i = skipToComma(h, i)
				if name != "" {
					l, _ = setParam(l, seen, name, val)
				}
				break params
			}
			if name == "" {
				continue
			}
			l, seen = setParam(l, seen, name, val)
		}
		out = appendLink(out, l)
	}
}

func appendLink(out []link, l link) []link { return append(out, l) }

func setParam(l link, seen uint8, name, val string) (link, uint8) {
	switch {
	case strings.EqualFold(name, "rel"):
		if seen&1 == 0 {
			l.Rel = val
		}
		seen |= 1
	case strings.EqualFold(name, "results"):
		if seen&2 == 0 {
			l.Results = val
		}
		seen |= 2
	case strings.EqualFold(name, "cursor"):
		if seen&4 == 0 {
			l.Cursor, l.HasCursor = val, true
		}
		seen |= 4
	}
	return l, seen
}

// readQuoted reads a quoted-string starting at h[i] == '"'. It returns the
// unescaped content, the index after the closing quote, and false when the
// string is unterminated.
func readQuoted(h string, i int) (string, int, bool) {
	i++ // opening quote
	start := i
	// Fast path: no escapes.
	for i < len(h) && h[i] != '"' && h[i] != '\\' {
		i++
	}
	if i < len(h) && h[i] == '"' {
		return h[start:i], i + 1, true
	}
	var b strings.Builder
	b.WriteString(h[start:i])
	for i < len(h) {
		switch c := h[i]; c {
		case '"':
			return b.String(), i + 1, true
		case '\\':
			if i+1 < len(h) {
				b.WriteByte(h[i+1])
				i += 2
				continue
			}
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), i, false
}

// skipToComma returns the index of the next ',' at or after i that is not
// inside a quoted string, or len(h).
func skipToComma(h string, i int) int {
	for i < len(h) {
		switch h[i] {
		case ',':
			return i
		case '"':
			_, i, _ = readQuoted(h, i)
		default:
			i++
		}
	}
	return i
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// formatLink renders links canonically; parseLink(formatLink(ls)) == ls for
// any ls produced by parseLink. Used by tests and the fuzz target.
func formatLink(ls []link) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("<" + l.URL + ">")
		if l.Rel != "" {
			b.WriteString(`; rel=` + quote(l.Rel))
		}
		if l.Results != "" {
			b.WriteString(`; results=` + quote(l.Results))
		}
		if l.HasCursor {
			b.WriteString(`; cursor=` + quote(l.Cursor))
		}
	}
	return b.String()
}

func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// nextPage extracts the pagination state from Link header values: the cursor
// attribute of rel="next", and whether it has results. The end is reached
// only when rel="next" says results="false" (or is absent). A next link with
// results="true" but no cursor attribute falls back to the cursor query
// parameter of its URI (taken verbatim, never built); if that is missing too,
// ok is false so the caller can fail instead of stopping silently.
// hasNextLink reports whether the Link values include a rel="next" link.
func hasNextLink(values []string) bool {
	for _, l := range parseLink(values...) {
		if l.hasRel("next") {
			return true
		}
	}
	return false
}

func nextPage(values []string) (cursor string, hasNext, ok bool) {
	for _, l := range parseLink(values...) {
		if !l.hasRel("next") {
			continue
		}
		cursor = l.Cursor
		hasNext = strings.EqualFold(l.Results, "true")
		if !l.HasCursor || cursor == "" {
			if _, q, found := strings.Cut(l.URL, "?"); found {
				if v, err := url.ParseQuery(q); err == nil {
					cursor = v.Get("cursor")
				}
			}
		}
		if hasNext && cursor == "" {
			return "", false, false
		}
		return cursor, hasNext, true
	}
	return "", false, true
}

// readParam reads a link-param at h[i:], just after its ';': a token name,
// and after '=' a value (a token, or a quoted string). It returns where the
// parameter ends; ok is false for an unterminated quoted string.
func readParam(h string, i int) (name, val string, next int, ok bool) {
	i = skipLWS(h, i)
	ns := i
	for i < len(h) && isTokenChar(h[i]) {
		i++
	}
	name = h[ns:i]
	i = skipLWS(h, i)
	if i >= len(h) || h[i] != '=' {
		return name, "", i, true
	}
	i = skipLWS(h, i+1)
	if i < len(h) && h[i] == '"' {
		val, i, ok = readQuoted(h, i)
		return name, val, i, ok
	}
	vs := i
	for i < len(h) && !isLWS(h[i]) && h[i] != ';' && h[i] != ',' {
		i++
	}
	return name, h[vs:i], i, true
}

// skipLWS skips linear whitespace from h[i:].
func skipLWS(h string, i int) int {
	for i < len(h) && isLWS(h[i]) {
		i++
	}
	return i
}
