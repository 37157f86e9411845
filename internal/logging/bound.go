package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"unicode/utf8"
)

// Cloud Logging drops a log entry larger than 256 KB, and much of what is
// logged comes from outside: Sentry's answers, request headers and bodies,
// command-line flags. Errors built from such input clip it where they quote
// it (Clip); Bounded is the last line of defence for everything else.
const (
	// MaxValueLen bounds the message and each string value of a record, in
	// bytes before escaping.
	MaxValueLen = 8 << 10
	// MaxRecordLen bounds the message and the string values of a record
	// together, attributes added with Logger.With included. JSON and text
	// escaping at most sextuple a byte (a control character becomes
	// \u00XX), so a line stays under 100 KiB plus its keys and numbers
	// whatever the input, and near 16 KiB for printable text.
	MaxRecordLen = 16 << 10
	// minValueLen is what a string keeps once the record's budget is spent,
	// so that the message and each value still say what they are about. The
	// number of attributes is the code's, not the input's.
	minValueLen = 64
	// MaxClipMark is the most Clip adds to the bytes it keeps.
	MaxClipMark = len("…(cut from  bytes)") + 19
)

// Clip returns s when it is at most n bytes long; else its first n bytes
// (fewer when the n-th byte is inside a character) followed by a mark that
// says it was cut and from how many bytes: Clip("abcdef", 3) is
// "abc…(cut from 6 bytes)".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(cut from " + strconv.Itoa(len(s)) + " bytes)"
}

// Limits are the bounds Bounded keeps to, in bytes before escaping.
type Limits struct {
	// Value bounds the message and each string value.
	Value int
	// Record bounds the message and the string values of a record
	// together, attributes added with Logger.With included.
	Record int
}

// DefaultLimits are Bounded's: MaxValueLen and MaxRecordLen.
var DefaultLimits = Limits{Value: MaxValueLen, Record: MaxRecordLen}

// Bounded returns a handler that passes every record on to h with its
// message and string values clipped (see Clip) to MaxValueLen bytes each and
// MaxRecordLen together; once that is spent, each further string keeps 64
// bytes and lists and maps stop with a count of the elements left out. A
// string value is a string, an error (its Error()) or a fmt.Stringer (its
// String()), in a group, a []string, a map[string]string, a []any or a
// map[string]any at any depth; log/slog resolves LogValuers first. Other
// values pass unchanged: their size is the code's.
func Bounded(h slog.Handler) slog.Handler { return BoundedBy(h, DefaultLimits) }

// BoundedBy is Bounded with other limits, for lines that should stay
// shorter still. Bounding a handler that Bounded or BoundedBy returned keeps
// the tighter of each limit (the same handler when nothing is tighter).
func BoundedBy(h slog.Handler, l Limits) slog.Handler {
	b, ok := h.(*boundedHandler)
	if !ok {
		return &boundedHandler{inner: h, limits: l, budget: l.Record}
	}
	l = Limits{Value: min(l.Value, b.limits.Value), Record: min(l.Record, b.limits.Record)}
	if l == b.limits {
		return b
	}
	// What the attributes added with WithAttrs took stays spent.
	return &boundedHandler{inner: b.inner, limits: l, budget: max(b.budget-(b.limits.Record-l.Record), 0)}
}

type boundedHandler struct {
	inner  slog.Handler
	limits Limits
	// budget is what a record's strings may take: limits.Record less what
	// the attributes added with WithAttrs took.
	budget int
}

func (h *boundedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *boundedHandler) Handle(ctx context.Context, r slog.Record) error {
	b := bounder{left: h.budget, each: h.limits.Value}
	out := slog.NewRecord(r.Time, r.Level, b.clip(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(b.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *boundedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	b := bounder{left: h.budget, each: h.limits.Value}
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = b.attr(a)
	}
	return &boundedHandler{inner: h.inner.WithAttrs(out), limits: h.limits, budget: max(b.left, 0)}
}

func (h *boundedHandler) WithGroup(name string) slog.Handler {
	return &boundedHandler{inner: h.inner.WithGroup(name), limits: h.limits, budget: h.budget}
}

// bounder clips the strings of one record to each bytes each, spending
// its budget.
type bounder struct{ left, each int }

// clip cuts s to what the budget allows and spends it.
func (b *bounder) clip(s string) string {
	s = Clip(s, min(max(min(b.each, b.left), minValueLen), b.each))
	b.left -= len(s)
	return s
}

func (b *bounder) attr(a slog.Attr) slog.Attr {
	a.Value = b.value(a.Value)
	return a
}

func (b *bounder) value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(b.clip(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			out[i] = b.attr(a)
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
		return slog.AnyValue(b.any(v.Any()))
	}
	return v
}

// any clips x when it is a string, an error, a fmt.Stringer or a list or
// map of them (slog-echo logs its error as a map[string]any); anything else
// is returned as it is.
func (b *bounder) any(x any) any {
	switch x := x.(type) {
	case string:
		return b.clip(x)
	case error, fmt.Stringer:
		// fmt prints "<nil>" for a nil pointer and reports a panic in
		// Error or String instead of passing it on.
		return b.clip(fmt.Sprint(x))
	case []string:
		return boundList(b, x, b.clip, asString)
	case map[string]string:
		return boundDict(b, x, b.clip, asString)
	case []any:
		return boundList(b, x, b.any, asAny)
	case map[string]any:
		return boundDict(b, x, b.any, asAny)
	}
	return x
}

// boundList clips the elements of l with clip; once the budget is spent, a
// last element (made by note) counts those left out. Each element also
// spends the 3 bytes that quote and separate it in JSON, so that a list of
// many empty strings is bounded too.
func boundList[T any](b *bounder, l []T, clip func(T) T, note func(string) T) []T {
	out := make([]T, 0, len(l))
	for i, x := range l {
		if b.left <= 0 {
			return append(out, note("…("+strconv.Itoa(len(l)-i)+" more)"))
		}
		out = append(out, clip(x))
		b.left -= len(`"",`)
	}
	return out
}

// boundDict clips the keys of m and its values with clip; once the budget
// is spent, the key "…" (its value made by note) counts the entries left
// out. Each entry also spends the 6 bytes that quote and separate it in JSON.
func boundDict[T any](b *bounder, m map[string]T, clip func(T) T, note func(string) T) map[string]T {
	out := make(map[string]T, len(m))
	n := 0
	for k, x := range m {
		if b.left <= 0 {
			out["…"] = note(strconv.Itoa(len(m)-n) + " more")
			break
		}
		out[b.clip(k)] = clip(x)
		b.left -= len(`"":"",`)
		n++
	}
	return out
}

func asString(s string) string { return s }
func asAny(s string) any       { return s }
