package sentry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// This file holds a small validating JSON scanner. It splits a page body into
// its rows without copying them (each row is a sub-slice of the body, so the
// exact bytes Sentry sent are kept) and picks a few top-level fields of each
// row on the way, in one pass. It accepts exactly what encoding/json's Valid
// accepts (checked by FuzzScanValue), so a truncated or non-JSON body is
// detected before any row is handed out.

const maxDepth = 10000

// errSyntax is wrapped by every scanner error.
var errSyntax = errors.New("invalid JSON")

// errMalformed is a 2xx answer that cannot be trusted (a missing
// pagination Link header): retried like errSyntax.
var errMalformed = errors.New("malformed response")

// errShape is a valid JSON document of an unexpected shape.
var errShape = errors.New("unexpected JSON shape")

type scanner struct {
	d     []byte
	ws    bool // insignificant whitespace seen inside the current value
	depth int
}

func (s *scanner) fail(i int, what string) error {
	if i >= len(s.d) {
		return fmt.Errorf("%w: unexpected end of input (truncated body?) at offset %d", errSyntax, i)
	}
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, i)
}

func (s *scanner) skipWS(i int) int {
	j := i
	for j < len(s.d) {
		switch s.d[j] {
		case ' ', '\t', '\n', '\r':
			j++
			continue
		}
		break
	}
	if j != i {
		s.ws = true
	}
	return j
}

// value skips the JSON value starting at d[i] (no leading whitespace) and
// returns the index just after it.
func (s *scanner) value(i int) (int, error) {
	if i >= len(s.d) {
		return i, s.fail(i, "")
	}
	switch c := s.d[i]; {
	case c == '"':
		return s.str(i)
	case c == '{':
		return s.object(i, nil, nil)
	case c == '[':
		return s.array(i)
	case c == 't':
		return s.lit(i, "true")
	case c == 'f':
		return s.lit(i, "false")
	case c == 'n':
		return s.lit(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(i)
	}
	return i, s.fail(i, "invalid character "+strconv.QuoteRune(rune(s.d[i])))
}

func (s *scanner) lit(i int, want string) (int, error) {
	if len(s.d)-i < len(want) {
		if string(s.d[i:]) == want[:len(s.d)-i] {
			return i, s.fail(len(s.d), "")
		}
		return i, s.fail(i, "invalid literal")
	}
	if string(s.d[i:i+len(want)]) != want {
		return i, s.fail(i, "invalid literal")
	}
	return i + len(want), nil
}

func (s *scanner) number(i int) (int, error) {
	d := s.d
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return i, s.fail(i, "")
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return i, s.fail(i, "invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, s.fail(i, "invalid number")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, s.fail(i, "invalid number")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	return i, nil
}

// strSafe marks bytes that need no attention inside a string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) str(i int) (int, error) {
	d := s.d
	i++ // opening quote
	for {
		// Eight bytes at a time while none is '"', '\\' or a control byte.
		for i+8 <= len(d) {
			w := binary.LittleEndian.Uint64(d[i:])
			if hasZeroByte(w^0x2222222222222222)|hasZeroByte(w^0x5c5c5c5c5c5c5c5c)|hasLessByte(w, 0x20) != 0 {
				break
			}
			i += 8
		}
		for i < len(d) && strSafe[d[i]] {
			i++
		}
		if i >= len(d) {
			return i, s.fail(i, "")
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
			if i >= len(d) {
				return i, s.fail(i, "")
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for k := 0; k < 4; k++ {
					if i >= len(d) {
						return i, s.fail(i, "")
					}
					if !isHex(d[i]) {
						return i, s.fail(i, "invalid \\u escape")
					}
					i++
				}
			default:
				return i, s.fail(i, "invalid escape")
			}
		default:
			return i, s.fail(i, "control character in string")
		}
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZeroByte is non-zero when some byte of w is 0 (it may also flag a 0x01
// byte above a zero byte: callers then re-check bytewise).
func hasZeroByte(w uint64) uint64 { return (w - lsb) & ^w & msb }

// hasLessByte is non-zero when some byte of w is < n (n <= 128).
func hasLessByte(w uint64, n uint64) uint64 { return (w - lsb*n) & ^w & msb }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) array(i int) (int, error) {
	if s.depth++; s.depth > maxDepth {
		return i, s.fail(i, "nesting too deep")
	}
	defer func() { s.depth-- }()
	i = s.skipWS(i + 1)
	if i < len(s.d) && s.d[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(i); err != nil {
			return i, err
		}
		i = s.skipWS(i)
		if i >= len(s.d) {
			return i, s.fail(i, "")
		}
		switch s.d[i] {
		case ',':
			i = s.skipWS(i + 1)
		case ']':
			return i + 1, nil
		default:
			return i, s.fail(i, "expected ',' or ']'")
		}
	}
}

// object skips the object at d[i]. When keys is non-nil, the raw value of each
// top-level member whose key equals keys[k] is stored in vals[k] (first
// occurrence wins; encoding/json takes the last, but Sentry never repeats keys).
func (s *scanner) object(i int, keys []string, vals [][]byte) (int, error) {
	if s.depth++; s.depth > maxDepth {
		return i, s.fail(i, "nesting too deep")
	}
	defer func() { s.depth-- }()
	i = s.skipWS(i + 1)
	if i < len(s.d) && s.d[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(s.d) {
			return i, s.fail(i, "")
		}
		if s.d[i] != '"' {
			return i, s.fail(i, "expected string key")
		}
		ks := i
		var err error
		if i, err = s.str(i); err != nil {
			return i, err
		}
		key := s.d[ks+1 : i-1]
		i = s.skipWS(i)
		if i >= len(s.d) {
			return i, s.fail(i, "")
		}
		if s.d[i] != ':' {
			return i, s.fail(i, "expected ':'")
		}
		i = s.skipWS(i + 1)
		vs := i
		if i, err = s.value(i); err != nil {
			return i, err
		}
		if keys != nil {
			for k, want := range keys {
				if vals[k] == nil && keyEqual(key, want) {
					vals[k] = s.d[vs:i:i]
					break
				}
			}
		}
		i = s.skipWS(i)
		if i >= len(s.d) {
			return i, s.fail(i, "")
		}
		switch s.d[i] {
		case ',':
			i = s.skipWS(i + 1)
		case '}':
			return i + 1, nil
		default:
			return i, s.fail(i, "expected ',' or '}'")
		}
	}
}

// keyEqual compares a raw (still escaped) JSON key with want.
func keyEqual(raw []byte, want string) bool {
	if len(raw) == len(want) && string(raw) == want {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	u, ok := unquoteBytes(raw)
	return ok && u == want
}

// unquoteBytes decodes the content of a JSON string (without its quotes).
func unquoteBytes(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), true
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	var out string
	if err := json.Unmarshal(q, &out); err != nil {
		return "", false
	}
	return out, true
}

// scanRows validates body as a JSON array of objects and calls emit for each
// row with its exact bytes (a capacity-limited sub-slice of body, or a
// compacted copy when the row contains insignificant whitespace) and the raw
// values of the requested top-level keys (nil when absent). vals is reused
// between rows.
func scanRows(body []byte, keys []string, emit func(row []byte, vals [][]byte) error) error {
	s := scanner{d: body}
	vals := make([][]byte, len(keys))
	i := s.skipWS(0)
	if i >= len(body) {
		return s.fail(i, "")
	}
	if body[i] != '[' {
		// Validate first so that a truncated object is reported as such.
		if _, err := s.value(i); err != nil {
			return err
		}
		return fmt.Errorf("%w: expected a JSON array, got %s", errShape, kindOf(body[i]))
	}
	s.depth = 1
	i = s.skipWS(i + 1)
	if i < len(body) && body[i] == ']' {
		return s.end(i + 1)
	}
	for {
		if i >= len(body) {
			return s.fail(i, "")
		}
		if body[i] != '{' {
			if _, err := s.value(i); err != nil {
				return err
			}
			return fmt.Errorf("%w: expected rows to be objects, got %s", errShape, kindOf(body[i]))
		}
		clear(vals)
		start := i
		s.ws = false
		var err error
		if i, err = s.object(i, keys, vals); err != nil {
			return err
		}
		row := body[start:i:i]
		if s.ws {
			var b bytes.Buffer
			b.Grow(len(row))
			if err := json.Compact(&b, row); err != nil {
				return fmt.Errorf("%w: %v", errSyntax, err)
			}
			// The compacted copy replaces the value slices, which pointed into
			// the whitespace-laden original; re-extract them from the copy.
			row = b.Bytes()
			rs := scanner{d: row}
			clear(vals)
			if _, err := rs.object(0, keys, vals); err != nil {
				return err
			}
		}
		i = s.skipWS(i)
		if i >= len(body) {
			return s.fail(i, "")
		}
		switch body[i] {
		case ',':
			i = s.skipWS(i + 1)
		case ']':
			// Validate the tail before handing out the last row, so that a
			// body with trailing garbage yields no rows at all.
			if err := s.end(i + 1); err != nil {
				return err
			}
			return emit(row, vals)
		default:
			return s.fail(i, "expected ',' or ']'")
		}
		if err := emit(row, vals); err != nil {
			return err
		}
	}
}

func (s *scanner) end(i int) error {
	i = s.skipWS(i)
	if i != len(s.d) {
		return s.fail(i, "trailing data after JSON value")
	}
	return nil
}

func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// validJSON reports whether d is one valid JSON value (with optional
// surrounding whitespace), like encoding/json.Valid.
func validJSON(d []byte) error {
	s := scanner{d: d}
	i := s.skipWS(0)
	i, err := s.value(i)
	if err != nil {
		return err
	}
	return s.end(i)
}

// objectMembers extracts top-level members of the JSON object d (already
// validated or not; invalid input yields an error).
func objectMembers(d []byte, keys []string) ([][]byte, error) {
	s := scanner{d: d}
	i := s.skipWS(0)
	if i >= len(d) {
		return nil, s.fail(i, "")
	}
	vals := make([][]byte, len(keys))
	if d[i] != '{' {
		if _, err := s.value(i); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: expected a JSON object, got %s", errShape, kindOf(d[i]))
	}
	i, err := s.object(i, keys, vals)
	if err != nil {
		return nil, err
	}
	if err := s.end(i); err != nil {
		return nil, err
	}
	return vals, nil
}

// jsonString converts a raw JSON value to a string: strings are unquoted,
// numbers are kept as written (Sentry sends some ids as numbers), null and
// absent give "". ok is false for other kinds.
func jsonString(v []byte) (string, bool) {
	if len(v) == 0 {
		return "", true
	}
	switch c := v[0]; {
	case c == '"':
		return unquoteBytes(v[1 : len(v)-1])
	case c == '-' || (c >= '0' && c <= '9'):
		return string(v), true
	case c == 'n':
		return "", true
	}
	return "", false
}

// jsonTime parses a raw JSON string holding an RFC 3339 timestamp; null and
// absent give the zero time. The result is in UTC.
func jsonTime(v []byte) (time.Time, error) {
	if len(v) == 0 || v[0] == 'n' {
		return time.Time{}, nil
	}
	if v[0] != '"' || len(v) < 2 {
		return time.Time{}, fmt.Errorf("%w: timestamp is not a string", errShape)
	}
	s := v[1 : len(v)-1]
	if t, ok := fastRFC3339(s); ok {
		return t, nil
	}
	str, ok := unquoteBytes(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: invalid timestamp string", errShape)
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		// Naive timestamps are UTC in Sentry.
		if t2, err2 := time.Parse("2006-01-02T15:04:05.999999999", str); err2 == nil {
			return t2.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("%w: invalid timestamp %q", errShape, str)
	}
	return t.UTC(), nil
}

// fastRFC3339 parses "YYYY-MM-DDTHH:MM:SSZ" and "YYYY-MM-DDTHH:MM:SS.fffffffffZ"
// without allocating. Anything else returns ok=false.
func fastRFC3339(s []byte) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(s[0:4])
	mo, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	h, ok4 := num(s[11:13])
	mi, ok5 := num(s[14:16])
	se, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	ns := 0
	switch rest := s[19 : len(s)-1]; {
	case len(rest) == 0:
	case rest[0] == '.' && len(rest) >= 2 && len(rest) <= 10:
		f, ok := num(rest[1:])
		if !ok {
			return time.Time{}, false
		}
		for k := len(rest) - 1; k < 9; k++ {
			f *= 10
		}
		ns = f
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, ns, time.UTC)
	if t.Day() != d { // e.g. Feb 30 normalised: reject, let time.Parse report it
		return time.Time{}, false
	}
	return t, true
}
