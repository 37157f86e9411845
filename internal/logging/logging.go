// Package logging builds log/slog loggers that write JSON in the shape Cloud
// Logging understands (severity, message, source location, trace), or text
// for a person at a terminal, bounds every line they write (Bounded), and
// carries a logger in a context.Context.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"
)

// Keys that Cloud Logging lifts out of a structured log line.
const (
	KeySeverity       = "severity"
	KeyMessage        = "message"
	KeySourceLocation = "logging.googleapis.com/sourceLocation"
	KeyTrace          = "logging.googleapis.com/trace"
	KeySpanID         = "logging.googleapis.com/spanId"
	KeyTraceSampled   = "logging.googleapis.com/trace_sampled"
)

// Options configure New.
type Options struct {
	// Level is the minimum level written; the zero value is INFO.
	Level slog.Leveler
	// AddSource adds the caller's file, line and function as
	// logging.googleapis.com/sourceLocation.
	AddSource bool
}

// New returns a logger writing one JSON object per line to w, with Cloud
// Logging's keys: "severity" (DEBUG, INFO, WARNING, ERROR, CRITICAL),
// "message", "time" and "logging.googleapis.com/sourceLocation". Its lines
// are bounded (see Bounded).
func New(w io.Writer, opts Options) *slog.Logger {
	return slog.New(NewHandler(w, opts))
}

// NewHandler returns the slog.Handler behind New.
func NewHandler(w io.Writer, opts Options) slog.Handler {
	return Bounded(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       opts.Level,
		AddSource:   opts.AddSource,
		ReplaceAttr: cloudLoggingAttr,
	}))
}

// NewText returns a logger writing key=value text lines to w, for a person
// at a terminal. Its lines are bounded as New's, and a float attribute whose
// key ends in "_seconds" (duration_seconds, backoff_seconds) is written as a
// duration, "backoff_seconds=1.419s", where the JSON lines keep the number of
// seconds that queries compare.
func NewText(w io.Writer, opts Options) *slog.Logger {
	return slog.New(Bounded(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       opts.Level,
		AddSource:   opts.AddSource,
		ReplaceAttr: secondsAsDuration,
	})))
}

// secondsAsDuration writes a float "…_seconds" attribute as a duration
// rounded to three decimals of its unit (1.419s, 12.346ms); values a
// duration cannot hold (NaN, ±Inf, beyond 292 years) stay numbers.
func secondsAsDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindFloat64 || !strings.HasSuffix(a.Key, "_seconds") {
		return a
	}
	f := a.Value.Float64()
	if math.IsNaN(f) || math.Abs(f) >= float64(math.MaxInt64)/float64(time.Second) {
		return a
	}
	d := time.Duration(math.Round(f * float64(time.Second)))
	switch abs := max(d, -d); {
	case abs >= time.Second:
		d = d.Round(time.Millisecond)
	case abs >= time.Millisecond:
		d = d.Round(time.Microsecond)
	}
	return slog.String(a.Key, d.String())
}

// NewFromLevel is New with the level given as a string, as in LOG_LEVEL
// ("debug", "info", "warn" or "error"; "warning" is accepted too).
func NewFromLevel(w io.Writer, level string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return New(w, Options{Level: l, AddSource: true}), nil
}

// ParseLevel parses "debug", "info", "warn" (or "warning") and "error",
// case-insensitively. An empty string is INFO.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("invalid log level %q (want debug, info, warn or error)", s)
	}
}

// Severity maps a slog level to a Cloud Logging severity.
func Severity(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l < slog.LevelError+4:
		return "ERROR"
	default:
		return "CRITICAL"
	}
}

// cloudLoggingAttr renames slog's built-in keys to Cloud Logging's. Only
// top-level attributes are renamed: a user attribute "level" inside a group
// keeps its name.
func cloudLoggingAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(KeySeverity, Severity(l))
		}
		a.Key = KeySeverity
	case slog.MessageKey:
		a.Key = KeyMessage
	case slog.SourceKey:
		a.Key = KeySourceLocation
	}
	return a
}

type contextKey struct{}

// WithLogger returns a copy of ctx carrying logger.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, contextKey{}, logger)
}

// FromContext returns the logger carried by ctx, or slog.Default() when there
// is none.
func FromContext(ctx context.Context) *slog.Logger {
	if l, ok := FromContextOK(ctx); ok {
		return l
	}
	return slog.Default()
}

// FromContextOK returns the logger carried by ctx and true, or nil and false
// when there is none, for code that has a better fallback than
// slog.Default().
func FromContextOK(ctx context.Context) (*slog.Logger, bool) {
	l, ok := ctx.Value(contextKey{}).(*slog.Logger)
	return l, ok && l != nil
}
