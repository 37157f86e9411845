package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNew_cloudLoggingShape(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name         string
		level        slog.Level
		wantSeverity string
	}{
		{name: "debug", level: slog.LevelDebug, wantSeverity: "DEBUG"},
		{name: "info", level: slog.LevelInfo, wantSeverity: "INFO"},
		{name: "warn_is_warning", level: slog.LevelWarn, wantSeverity: "WARNING"},
		{name: "error", level: slog.LevelError, wantSeverity: "ERROR"},
		{name: "above_error_is_critical", level: slog.LevelError + 4, wantSeverity: "CRITICAL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := New(&buf, Options{Level: slog.LevelDebug, AddSource: true})
			logger.Log(t.Context(), tc.level, "hello world", "request_id", "r1", slog.Group("g", "level", "kept"))

			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("failed to parse log line %q: %v", buf.String(), err)
			}
			if got, want := got["severity"], tc.wantSeverity; got != want {
				t.Errorf("severity: got %v, want %v", got, want)
			}
			if got, want := got["message"], "hello world"; got != want {
				t.Errorf("message: got %v, want %v", got, want)
			}
			for _, k := range []string{"level", "msg", "source"} {
				if _, ok := got[k]; ok {
					t.Errorf("key %q should have been renamed: %v", k, got)
				}
			}
			src, ok := got[KeySourceLocation].(map[string]any)
			if !ok {
				t.Fatalf("no %s in %v", KeySourceLocation, got)
			}
			if file, _ := src["file"].(string); !strings.HasSuffix(file, "logging_test.go") {
				t.Errorf("source file: got %q", file)
			}
			if _, ok := src["line"].(float64); !ok {
				t.Errorf("source line missing: %v", src)
			}
			if diff := cmp.Diff(map[string]any{"level": "kept"}, got["g"]); diff != "" {
				t.Errorf("grouped attribute was renamed (-want +got):\n%s", diff)
			}
			if _, ok := got["time"]; !ok {
				t.Errorf("time missing: %v", got)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		in      string
		want    slog.Level
		wantErr string
	}{
		{name: "debug", in: "debug", want: slog.LevelDebug},
		{name: "info", in: "info", want: slog.LevelInfo},
		{name: "empty_is_info", in: "", want: slog.LevelInfo},
		{name: "warn", in: "warn", want: slog.LevelWarn},
		{name: "warning_alias", in: "WARNING", want: slog.LevelWarn},
		{name: "error_upper", in: " ERROR ", want: slog.LevelError},
		{name: "unknown", in: "verbose", wantErr: `invalid log level "verbose"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLevel(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewFromLevel_filters(t *testing.T) {
	t.Parallel()

	var buf bytes.Buffer
	logger, err := NewFromLevel(&buf, "warn")
	if err != nil {
		t.Fatal(err)
	}
	logger.InfoContext(t.Context(), "dropped")
	logger.WarnContext(t.Context(), "kept")
	if got, want := strings.Count(buf.String(), "\n"), 1; got != want {
		t.Fatalf("got %d lines, want %d: %s", got, want, buf.String())
	}
	if !strings.Contains(buf.String(), `"severity":"WARNING"`) {
		t.Errorf("got %s", buf.String())
	}
	if _, err := NewFromLevel(&buf, "loud"); err == nil {
		t.Error("NewFromLevel accepted an invalid level")
	}
}

func TestContext(t *testing.T) {
	t.Parallel()

	if got := FromContext(t.Context()); got != slog.Default() {
		t.Errorf("empty context: got %p, want slog.Default()", got)
	}
	logger := TestLogger(t)
	ctx := WithLogger(t.Context(), logger)
	if got := FromContext(ctx); got != logger {
		t.Errorf("got %p, want %p", got, logger)
	}
	FromContext(ctx).InfoContext(ctx, "through t.Log", "key", "value")
	if got, ok := FromContextOK(ctx); !ok || got != logger {
		t.Errorf("FromContextOK got %p, %v, want %p, true", got, ok, logger)
	}
	if got, ok := FromContextOK(t.Context()); ok || got != nil {
		t.Errorf("FromContextOK of an empty context got %p, %v, want nil, false", got, ok)
	}
}

func TestTraceAttrs(t *testing.T) {
	t.Parallel()

	const trace = "105445aa7843bc8bf206b12000100000"
	cases := []struct {
		name        string
		project     string
		cloudTrace  string
		traceparent string
		want        map[string]any
	}{
		{
			name:       "cloud_trace_full",
			project:    "p1",
			cloudTrace: trace + "/1;o=1",
			want: map[string]any{
				KeyTrace:        "projects/p1/traces/" + trace,
				KeySpanID:       "0000000000000001",
				KeyTraceSampled: true,
			},
		},
		{
			name:       "cloud_trace_only_id",
			project:    "p1",
			cloudTrace: strings.ToUpper(trace),
			want:       map[string]any{KeyTrace: "projects/p1/traces/" + trace},
		},
		{
			name:       "cloud_trace_not_sampled",
			project:    "p1",
			cloudTrace: trace + "/18446744073709551615;o=0",
			want: map[string]any{
				KeyTrace:  "projects/p1/traces/" + trace,
				KeySpanID: "ffffffffffffffff",
			},
		},
		{
			name:        "traceparent_fallback",
			project:     "p1",
			traceparent: "00-" + trace + "-00f067aa0ba902b7-01",
			want: map[string]any{
				KeyTrace:        "projects/p1/traces/" + trace,
				KeySpanID:       "00f067aa0ba902b7",
				KeyTraceSampled: true,
			},
		},
		{name: "no_project", cloudTrace: trace + "/1;o=1"},
		{name: "no_header", project: "p1"},
		{name: "short_trace", project: "p1", cloudTrace: "abc/1"},
		{name: "non_hex_trace", project: "p1", cloudTrace: strings.Repeat("z", 32)},
		{name: "zero_traceparent", project: "p1", traceparent: "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got map[string]any
			for _, a := range TraceAttrs(tc.project, tc.cloudTrace, tc.traceparent) {
				if got == nil {
					got = map[string]any{}
				}
				got[a.Key] = a.Value.Any()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewText_secondsAsDurations(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name     string
		args     []any
		wantText string // a substring of the text line
		wantJSON string // a substring of the JSON line, if any
	}{
		{name: "backoff", args: []any{"backoff_seconds", 1.418977699}, wantText: " backoff_seconds=1.419s", wantJSON: `"backoff_seconds":1.418977699`},
		{name: "minutes", args: []any{"duration_seconds", 83.4567}, wantText: " duration_seconds=1m23.457s", wantJSON: `"duration_seconds":83.4567`},
		{name: "milliseconds", args: []any{"duration_seconds", 0.0123456}, wantText: " duration_seconds=12.346ms", wantJSON: `"duration_seconds":0.0123456`},
		{name: "zero", args: []any{"lag_seconds", 0.0}, wantText: " lag_seconds=0s", wantJSON: `"lag_seconds":0`},
		{name: "negative", args: []any{"lag_seconds", -2.5}, wantText: " lag_seconds=-2.5s", wantJSON: `"lag_seconds":-2.5`},
		{name: "in_a_group", args: []any{slog.Group("summary", slog.Float64("duration_seconds", 2))}, wantText: " summary.duration_seconds=2s", wantJSON: `"summary":{"duration_seconds":2}`},
		{name: "integer_kept", args: []any{"timeout_seconds", 30}, wantText: " timeout_seconds=30", wantJSON: `"timeout_seconds":30`},
		{name: "other_float_kept", args: []any{"ratio", 0.5}, wantText: " ratio=0.5", wantJSON: `"ratio":0.5`},
		{name: "too_long_for_a_duration_kept", args: []any{"age_seconds", 1e300}, wantText: " age_seconds=1e+300", wantJSON: `"age_seconds":1e+300`},
		{name: "infinity_kept", args: []any{"wait_seconds", math.Inf(1)}, wantText: " wait_seconds=+Inf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var text, js bytes.Buffer
			NewText(&text, Options{}).Info("m", tc.args...)
			New(&js, Options{}).Info("m", tc.args...)
			if !strings.Contains(text.String(), tc.wantText) {
				t.Errorf("text line %q lacks %q", text.String(), tc.wantText)
			}
			if tc.wantJSON != "" && !strings.Contains(js.String(), tc.wantJSON) {
				t.Errorf("JSON line %q lacks %q", js.String(), tc.wantJSON)
			}
		})
	}
}
