package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClip(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "short_kept", in: "abc", n: 3, want: "abc"},
		{name: "empty_kept", in: "", n: 0, want: ""},
		{name: "ascii_cut", in: "abcdef", n: 3, want: "abc…(cut from 6 bytes)"},
		{name: "cut_inside_a_character_backs_off", in: "aéé", n: 2, want: "a…(cut from 5 bytes)"},
		{name: "cut_after_a_character", in: "aéé", n: 3, want: "aé…(cut from 5 bytes)"},
		{name: "zero_keeps_only_the_mark", in: "abc", n: 0, want: "…(cut from 3 bytes)"},
		{name: "negative_is_zero", in: "abc", n: -5, want: "…(cut from 3 bytes)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Clip(tc.in, tc.n); got != tc.want {
				t.Errorf("Clip(%q, %d) got %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
	if got := len(Clip(strings.Repeat("x", 1<<20), 10)); got > 10+MaxClipMark {
		t.Errorf("Clip added %d bytes, more than MaxClipMark %d", got-10, MaxClipMark)
	}
}

// stringer is a fmt.Stringer whose String is s (a nil one panics).
type stringer struct{ s string }

func (s *stringer) String() string { return s.s }

// logOne writes one record through a bounded JSON logger (the service's) and
// returns the line and its attributes.
func logOne(t *testing.T, with []any, msg string, args ...any) (string, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	New(&buf, Options{}).With(with...).Info(msg, args...)
	line := strings.TrimSuffix(buf.String(), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("more than one line: %.500q", line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("line does not parse: %v: %.500q", err, line)
	}
	delete(got, "time")
	return line, got
}

func TestBounded(t *testing.T) {
	t.Parallel()

	big := strings.Repeat("A", 2<<20)
	cut := func(n int) string { return Clip(big, n) }
	quarter := strings.Repeat("q", 4<<10)
	// rest is what a second huge value keeps after a first one.
	rest := Clip(big, MaxRecordLen-len(cut(MaxValueLen)))
	cases := []struct {
		name string
		with []any
		msg  string
		args []any
		want map[string]any
	}{
		{
			name: "short_values_unchanged",
			with: []any{"request_id", "r1"},
			msg:  "hello",
			args: []any{"n", 3, "s", "short", "err", errors.New("boom"), slog.Group("g", "k", "v"), "list", []string{"a", "b"},
				"seconds", 1.5, "who", &stringer{"me"}},
			want: map[string]any{"severity": "INFO", "message": "hello", "request_id": "r1", "n": 3.0, "s": "short", "err": "boom",
				"g": map[string]any{"k": "v"}, "list": []any{"a", "b"}, "seconds": 1.5, "who": "me"},
		},
		{
			name: "message",
			msg:  big,
			want: map[string]any{"severity": "INFO", "message": cut(MaxValueLen)},
		},
		{
			name: "string",
			msg:  "m", args: []any{"s", big},
			want: map[string]any{"severity": "INFO", "message": "m", "s": cut(MaxValueLen)},
		},
		{
			name: "error",
			msg:  "m", args: []any{"error", errors.New(big)},
			want: map[string]any{"severity": "INFO", "message": "m", "error": cut(MaxValueLen)},
		},
		{
			name: "stringer_and_nil_stringer",
			msg:  "m", args: []any{"s", &stringer{big}, "nil", (*stringer)(nil)},
			want: map[string]any{"severity": "INFO", "message": "m", "s": cut(MaxValueLen), "nil": "<nil>"},
		},
		{
			name: "group_in_group",
			msg:  "m", args: []any{slog.Group("a", slog.Group("b", "s", big))},
			want: map[string]any{"severity": "INFO", "message": "m", "a": map[string]any{"b": map[string]any{"s": cut(MaxValueLen)}}},
		},
		{
			name: "with_attribute",
			with: []any{"s", big},
			msg:  "m",
			want: map[string]any{"severity": "INFO", "message": "m", "s": cut(MaxValueLen)},
		},
		{
			name: "record_budget_then_64_bytes_each",
			msg:  "m", args: []any{"a", quarter, "b", quarter, "c", quarter, "d", quarter, "e", quarter},
			want: map[string]any{"severity": "INFO", "message": "m", "a": quarter, "b": quarter, "c": quarter,
				"d": Clip(quarter, 4<<10-1), "e": Clip(quarter, 64)},
		},
		{
			name: "with_attributes_spend_the_budget",
			with: []any{"a", big, "b", big},
			msg:  "message kept to 64 bytes " + strings.Repeat("m", 100),
			want: map[string]any{"severity": "INFO", "message": Clip("message kept to 64 bytes "+strings.Repeat("m", 100), 64),
				"a": cut(MaxValueLen), "b": rest},
		},
		{
			name: "list_stops_with_a_count",
			msg:  "", args: []any{"l", []string{big, big, big, "x", "y"}},
			want: map[string]any{"severity": "INFO", "message": "", "l": []any{cut(MaxValueLen), Clip(big, MaxRecordLen-len(cut(MaxValueLen))-len(`"",`)), "…(3 more)"}},
		},
		{
			name: "map",
			msg:  "", args: []any{"m", map[string]string{"k": big}},
			want: map[string]any{"severity": "INFO", "message": "", "m": map[string]any{"k": cut(MaxValueLen)}},
		},
		{
			// slog-echo's error attribute.
			name: "map_of_any",
			msg:  "", args: []any{"error", map[string]any{"code": 400, "message": big, "internal": nil}},
			want: map[string]any{"severity": "INFO", "message": "", "error": map[string]any{"code": 400.0, "message": cut(MaxValueLen), "internal": nil}},
		},
		{
			name: "list_of_any",
			msg:  "", args: []any{"l", []any{1, errors.New(big), []string{"x"}}},
			want: map[string]any{"severity": "INFO", "message": "", "l": []any{1.0, cut(MaxValueLen), []any{"x"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, got := logOne(t, tc.with, tc.msg, tc.args...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("record (-want +got):\n%.3000s", diff)
			}
		})
	}
}

// TestBounded_longestLine logs hostile records (every byte escaped, many
// values, long lists and maps) through both of the program's loggers: no
// line may reach 100 KiB, far under Cloud Logging's 256 KB.
func TestBounded_longestLine(t *testing.T) {
	t.Parallel()

	ctl := strings.Repeat("\x01", 1<<20) // \u0001 in JSON: 6 bytes each
	bad := strings.Repeat("\xff", 1<<20) // invalid UTF-8: \ufffd
	long := strings.Repeat("A", 300<<10) // printable
	many := make([]string, 100000)       // empty strings
	dict := map[string]string{}
	for i := range 100000 {
		dict[strings.Repeat("k", i%100)+strconv.Itoa(i)] = ""
	}
	records := []struct {
		name string
		msg  string
		args []any
	}{
		{name: "control_characters", msg: ctl, args: []any{"a", ctl, "b", errors.New(ctl), slog.Group("g", "c", ctl, "d", ctl)}},
		{name: "invalid_utf8", msg: bad, args: []any{"a", bad, "b", bad}},
		{name: "printable", msg: long, args: []any{"a", long, "b", long, "c", long}},
		{name: "lists_and_maps", msg: "m", args: []any{"l", many, "m", dict}},
	}
	loggers := []struct {
		name string
		new  func(*bytes.Buffer) *slog.Logger
	}{
		{name: "json", new: func(b *bytes.Buffer) *slog.Logger { return New(b, Options{AddSource: true}) }},
		{name: "text", new: func(b *bytes.Buffer) *slog.Logger { return NewText(b, Options{}) }},
	}
	for _, l := range loggers {
		for _, r := range records {
			t.Run(l.name+"/"+r.name, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				l.new(&buf).With("w", long).Info(r.msg, r.args...)
				if n := buf.Len(); n >= 100<<10 {
					t.Errorf("line is %d bytes, want under 100 KiB", n)
				}
				t.Logf("%d bytes", buf.Len())
			})
		}
	}
}

func TestBoundedBy(t *testing.T) {
	t.Parallel()

	big := strings.Repeat("A", 2<<20)
	tight := Limits{Value: 1 << 10, Record: 4 << 10}
	cases := []struct {
		name string
		new  func(*bytes.Buffer) *slog.Logger
		args []any
		want map[string]any
	}{
		{
			name: "tighter_limits",
			new:  func(b *bytes.Buffer) *slog.Logger { return slog.New(BoundedBy(slog.NewJSONHandler(b, nil), tight)) },
			args: []any{"a", big, "b", big, "c", big, "d", big, "e", big},
			want: map[string]any{"level": "INFO", "msg": "m", "a": Clip(big, 1<<10), "b": Clip(big, 1<<10), "c": Clip(big, 1<<10),
				"d": Clip(big, 4<<10-1-3*len(Clip(big, 1<<10))), "e": Clip(big, 64)},
		},
		{
			// The request logger of the server: its logger, bounded by
			// default, then tighter for the request line.
			name: "tighter_over_default_keeps_what_with_spent",
			new: func(b *bytes.Buffer) *slog.Logger {
				l := slog.New(Bounded(slog.NewJSONHandler(b, nil))).With("w", strings.Repeat("w", 3<<10))
				return slog.New(BoundedBy(l.Handler(), tight))
			},
			args: []any{"a", big, "b", big},
			want: map[string]any{"level": "INFO", "msg": "m", "w": strings.Repeat("w", 3<<10),
				"a": Clip(big, 4<<10-3<<10-1), "b": Clip(big, 64)},
		},
		{
			name: "looser_over_default_keeps_the_default",
			new: func(b *bytes.Buffer) *slog.Logger {
				return slog.New(BoundedBy(Bounded(slog.NewJSONHandler(b, nil)), Limits{Value: 1 << 20, Record: 1 << 20}))
			},
			args: []any{"a", big},
			want: map[string]any{"level": "INFO", "msg": "m", "a": Clip(big, MaxValueLen)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tc.new(&buf).Info("m", tc.args...)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("line does not parse: %v", err)
			}
			delete(got, "time")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("record (-want +got):\n%.3000s", diff)
			}
		})
	}
}

func TestBounded_idempotent(t *testing.T) {
	t.Parallel()

	h := Bounded(slog.DiscardHandler)
	if got := Bounded(h); got != h {
		t.Errorf("Bounded(Bounded(h)) got %v, want the same handler %v", got, h)
	}
	if got := BoundedBy(h, DefaultLimits); got != h {
		t.Errorf("BoundedBy(Bounded(h), DefaultLimits) got %v, want the same handler %v", got, h)
	}
}
