package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Summary describes one run. Run.Finish logs it as one structured
// "run summary" line; the log-based metrics read its keys.
type Summary struct {
	RunID  string
	Stream string

	// Pages counts pages read; Records rows written; Duplicates rows
	// skipped as stored already; Objects data objects written;
	// ObjectsRecovered objects found written but not yet recorded (left by
	// an interrupted or concurrent run) and absorbed; InvalidRows rows
	// without a usable id or date, never written; Conflicts lost
	// compare-and-swaps (another writer advanced the state).
	Pages            int
	Records          int
	Duplicates       int
	Objects          int
	ObjectsRecovered int
	InvalidRows      int
	Conflicts        int

	// Requests and RateLimited are the Sentry client's requests and 429
	// answers during the run.
	Requests    int64
	RateLimited int64

	Duration time.Duration
	// Lag is how far the collected data ends behind now at the end of the
	// run (the least advanced unit's watermark).
	Lag time.Duration

	// WorkRemaining is set when the run stopped with work left: run again
	// soon.
	WorkRemaining bool
	// LeaseHeld is set when another run held the lease: nothing was done.
	// LeaseHolder and LeaseUntil say who and until when.
	LeaseHeld   bool
	LeaseHolder string
	LeaseUntil  time.Time

	// AuthErrors counts Sentry 401/403 answers that stopped a unit or the
	// run.
	AuthErrors int

	// Projects, when set, counts what happened to each project of a
	// per-project stream.
	Projects *ProjectCounts

	// Extra are source-specific fields, logged after the common ones.
	Extra []slog.Attr

	recordsKey string
}

// ProjectCounts summarises a per-project stream's run.
type ProjectCounts struct {
	// Considered is the number of projects considered; Truncated is set
	// when the organisation has more than the maximum.
	Considered int
	Truncated  bool
	// Completed counts projects caught up at the end of the run; Skipped
	// projects not read because nothing was received for them; Failed
	// projects skipped after an error (Failures says which and why).
	Completed int
	Skipped   int
	Failed    int
	Failures  []ProjectFailure
	// StatsRequests counts the stats_v2 requests of idle detection;
	// StatsFallback is set when they failed and every project was read.
	StatsRequests int
	StatsFallback bool
}

// ProjectFailure is a project skipped for a run.
type ProjectFailure struct {
	ProjectID string
	Slug      string
	Error     string
}

// maxLoggedFailures bounds the failures a summary line lists, so that an
// organisation with many failing projects cannot produce an oversized line.
const maxLoggedFailures = 20

// LogValue renders the summary with snake_case keys.
func (s Summary) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("run_id", s.RunID),
		slog.String("stream", s.Stream),
		slog.Int("pages", s.Pages),
		slog.Int("records_written", s.Records),
	}
	if s.recordsKey != "" {
		attrs = append(attrs, slog.Int(s.recordsKey, s.Records))
	}
	attrs = append(attrs,
		slog.Int("duplicates_skipped", s.Duplicates),
		slog.Int("objects", s.Objects),
		slog.Int("objects_recovered", s.ObjectsRecovered),
		slog.Int64("requests", s.Requests),
		slog.Int64("rate_limited", s.RateLimited),
		slog.Float64("duration_seconds", s.Duration.Seconds()),
		slog.Float64("lag_seconds", s.Lag.Seconds()),
		slog.Bool("work_remaining", s.WorkRemaining),
		slog.Bool("lease_held", s.LeaseHeld),
	)
	if s.LeaseHeld {
		attrs = append(attrs, slog.String("lease_holder", s.LeaseHolder), slog.Time("lease_until", s.LeaseUntil.UTC()))
	}
	if s.AuthErrors > 0 {
		attrs = append(attrs, slog.Int("auth_errors", s.AuthErrors))
	}
	if s.InvalidRows > 0 {
		attrs = append(attrs, slog.Int("invalid_rows", s.InvalidRows))
	}
	if s.Conflicts > 0 {
		attrs = append(attrs, slog.Int("conflicts", s.Conflicts))
	}
	if p := s.Projects; p != nil {
		attrs = append(attrs,
			slog.Int("projects", p.Considered),
			slog.Int("projects_completed", p.Completed),
			slog.Int("projects_failed", p.Failed),
			slog.Int("projects_skipped", p.Skipped))
		if p.Truncated {
			attrs = append(attrs, slog.Bool("projects_truncated", true))
		}
		if p.StatsRequests > 0 {
			attrs = append(attrs, slog.Int("stats_requests", p.StatsRequests), slog.Bool("stats_fallback", p.StatsFallback))
		}
		if len(p.Failures) > 0 {
			n := min(len(p.Failures), maxLoggedFailures)
			fs := make([]string, n)
			for i, f := range p.Failures[:n] {
				fs[i] = f.ProjectID + " (" + f.Slug + "): " + f.Error
			}
			attrs = append(attrs, slog.Any("failures", fs))
			if len(p.Failures) > n {
				attrs = append(attrs, slog.Int("failures_not_listed", len(p.Failures)-n))
			}
		}
	}
	attrs = append(attrs, s.Extra...)
	return slog.GroupValue(attrs...)
}

// log writes the summary once: INFO for a run that did what it could, ERROR
// (with the error, and error_kind when Sentry rejected the credentials) for
// a failed one. This is the one place a stream's failure is logged.
func (s *Summary) log(ctx context.Context, err error) {
	logger := logging.FromContext(ctx)
	if err == nil {
		logger.InfoContext(ctx, "run summary", "summary", *s, "stream", s.Stream)
		return
	}
	attrs := []any{"summary", *s, "stream", s.Stream, "error", err, "error_class", failure.Classify(err).String()}
	if failure.IsAuth(err) {
		s.AuthErrors++
		attrs[1] = *s
		attrs = append(attrs, "error_kind", failure.ErrorKindAuth)
	}
	logger.ErrorContext(ctx, "run summary", attrs...)
}
