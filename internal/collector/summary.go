package collector

import (
	"log/slog"
	"time"
)

// Summary describes one run. It is returned by Run and logged as one
// structured "run summary" line.
type Summary struct {
	RunID string
	// Stream is the stream the run collected: events, issues or audit.
	Stream string
	// Records counts the records written by the issues and audit streams
	// (issue versions, audit-log entries); the events stream counts
	// EventsWritten.
	Records int
	// AuthErrors counts Sentry 401/403 answers that stopped a project (events)
	// or the whole stream (issues, audit) in this run: a configuration error
	// (missing scope, rejected token), logged with error_kind=sentry_auth.
	AuthErrors int
	// Projects is the number of projects considered (after MaxProjects).
	Projects int
	// ProjectsTruncated is set when the organisation has more projects than
	// MaxProjects: the others are not collected.
	ProjectsTruncated bool
	// ProjectsCompleted counts projects with no window in progress at the
	// end of the run (caught up to now − Lag at the time of their window).
	ProjectsCompleted int
	// ProjectsFailed counts projects skipped for this run because of an
	// error (Failures says which and why).
	ProjectsFailed int
	Failures       []ProjectFailure
	// Pages counts event pages read; EventsWritten events stored;
	// DuplicatesSkipped rows skipped as already stored; Objects data objects
	// written; ObjectsRecovered objects found written but not yet recorded
	// (left by an interrupted or concurrent run) and absorbed.
	Pages             int
	EventsWritten     int
	DuplicatesSkipped int
	Objects           int
	ObjectsRecovered  int
	// InvalidRows counts rows without an id or date, never written.
	InvalidRows int
	// Conflicts counts lost compare-and-swaps on checkpoints (another
	// writer advanced the state; the run reloaded it and went on).
	Conflicts int
	// Requests and RateLimited are the Sentry client's counters over the
	// run (zero when the client does not count).
	Requests    int64
	RateLimited int64
	Duration    time.Duration
	// LagBehindNow is how far the least advanced project's watermark is
	// behind now at the end of the run.
	LagBehindNow time.Duration
	// WorkRemaining is set when a project has a window in progress or was
	// not reached: the caller should run again soon.
	WorkRemaining bool
	// LeaseHeld is set when another run holds the lease; nothing was done.
	LeaseHeld bool
	// ProjectsSkipped counts projects not read because stats_v2 showed
	// nothing received since their watermark; StatsRequests counts the
	// stats_v2 requests, and StatsFallback is set when they failed and
	// every project was read (idle.go).
	ProjectsSkipped int
	StatsRequests   int
	StatsFallback   bool
}

// ProjectFailure is a project skipped for a run.
type ProjectFailure struct {
	ProjectID string
	Slug      string
	Error     string
}

// LogValue renders the summary with snake_case keys.
func (s Summary) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("run_id", s.RunID),
		slog.String("stream", s.Stream),
		slog.Int("projects", s.Projects),
		slog.Int("projects_completed", s.ProjectsCompleted),
		slog.Int("projects_failed", s.ProjectsFailed),
		slog.Int("pages", s.Pages),
		slog.Int("events_written", s.EventsWritten),
		slog.Int("duplicates_skipped", s.DuplicatesSkipped),
		slog.Int("objects", s.Objects),
		slog.Int("objects_recovered", s.ObjectsRecovered),
		slog.Int64("requests", s.Requests),
		slog.Int64("rate_limited", s.RateLimited),
		slog.Float64("duration_seconds", s.Duration.Seconds()),
		slog.Float64("lag_seconds", s.LagBehindNow.Seconds()),
		slog.Bool("work_remaining", s.WorkRemaining),
		slog.Bool("lease_held", s.LeaseHeld),
	}
	if s.Stream == StreamIssues || s.Stream == StreamAudit {
		attrs = append(attrs, slog.Int("records_written", s.Records))
	}
	if s.AuthErrors > 0 {
		attrs = append(attrs, slog.Int("auth_errors", s.AuthErrors))
	}
	if s.ProjectsTruncated {
		attrs = append(attrs, slog.Bool("projects_truncated", true))
	}
	if s.InvalidRows > 0 {
		attrs = append(attrs, slog.Int("invalid_rows", s.InvalidRows))
	}
	if s.Conflicts > 0 {
		attrs = append(attrs, slog.Int("conflicts", s.Conflicts))
	}
	if s.StatsRequests > 0 {
		attrs = append(attrs, slog.Int("projects_skipped", s.ProjectsSkipped),
			slog.Int("stats_requests", s.StatsRequests), slog.Bool("stats_fallback", s.StatsFallback))
	}
	if len(s.Failures) > 0 {
		fs := make([]string, len(s.Failures))
		for i, f := range s.Failures {
			fs[i] = f.ProjectID + " (" + f.Slug + "): " + f.Error
		}
		attrs = append(attrs, slog.Any("failures", fs))
	}
	return slog.GroupValue(attrs...)
}
