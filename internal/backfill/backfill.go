// Package backfill runs ad-hoc, durable jobs that read a past range
// [Start, End) of some projects' events again and write, exactly once, the
// events the bucket does not hold yet. A job is a source on the engine
// (internal/engine) like the streams, reading slices of each project with the
// events stream's own window reader, and it keeps the same guarantees:
//
//   - Write-once objects named from committed state, in the stream's layout:
//     <data>YYYY/MM/DD/HH/<org>-<project>-bf<job>-<epoch>-<seq>.ndjson, where
//     epoch is the end of the slice being read (so an event of time t lies in
//     a backfill object whose epoch is in (t, t + Slice]).
//   - One job document, <state>backfill/<job>.json, saved by
//     compare-and-swap; a lease per job; bounded runs that report whether
//     work remains.
//   - De-duplication against the bucket (scan.go): before a project's slice
//     [a, b) is read from Sentry, the objects that can hold its events are
//     read, and their ids with dateCreated in [a, b) are skipped. A project's
//     backfill lease, held while a slice is scanned, read and written, keeps
//     two jobs over the same project from de-duplicating against a bucket the
//     other has not written yet.
//   - No race with the live stream: the part of [Start, End) that the stream
//     still reads is left to it (events.Stream.HandOff), and the job records
//     where it was clipped.
//
// DESIGN.md next to this file explains each rule.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Job statuses.
const (
	Pending = "pending"
	Running = "running"
	Done    = "done"
	Failed  = "failed"
)

// Limits and defaults.
const (
	// SentryRetention is how far back Sentry keeps events.
	SentryRetention = 90 * 24 * time.Hour
	// DefaultSlice is the length of the sub-windows a job reads (and
	// de-duplicates) one at a time.
	DefaultSlice = 6 * time.Hour
	// jobVersion is the format version of the job document.
	jobVersion = 1
	// maxConflictsPerRun bounds compare-and-swap conflicts in one run.
	maxConflictsPerRun = 20
	// maxGenerations bounds how many finished jobs with the same spec
	// Create walks past.
	maxGenerations = 1000
	// maxListed bounds the unknown projects an error message names.
	maxListed = 20
	// maxQuoted bounds each name an error quotes from a request (a project
	// id or slug, a stream, a job id): real ones are shorter (Sentry's
	// slugs have at most 50 characters), and the request may be anyone's
	// or anything, so that the error, the answer and the log lines
	// carrying them stay short.
	maxQuoted = 64
)

// ErrInvalid marks a request that cannot be accepted (bad range, unknown
// project): the caller must correct it (HTTP 400, exit code 2); retrying the
// same request cannot help.
var ErrInvalid = failure.Permanent(errors.New("invalid backfill request"))

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("backfill job not found")

// Spec is a backfill request.
type Spec struct {
	// Start and End bound the range [Start, End).
	Start, End time.Time
	// Projects are ids or slugs; empty means all (up to the stream's
	// maximum).
	Projects []string
	// Streams; empty means ["events"], the only one supported.
	Streams []string
	// CreatedBy records who asked (an email, "cli").
	CreatedBy string
}

// Job is the durable job document.
type Job struct {
	Version   int       `json:"version"`
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Streams   []string  `json:"streams"`
	Status    string    `json:"status"`
	Projects  []Project `json:"projects"`
	Errors    []string  `json:"errors,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Project is one project's progress in a job.
type Project struct {
	ID   string `json:"id"`
	Slug string `json:"slug,omitempty"`
	// End is the effective end: the job's End, or the clip point.
	End time.Time `json:"end"`
	// ClippedFrom is set when [ClippedFrom, job End) is left to the live
	// stream.
	ClippedFrom time.Time `json:"clipped_from,omitzero"`
	// Cursor is the start of the next slice.
	Cursor time.Time `json:"cursor"`
	// Window is the slice in progress (cursor and frontier as in the
	// stream).
	Window *events.Window `json:"window,omitempty"`
	// NextSeq and NextEpoch name the next data object.
	engine.Sequence
	// StreamPred is the project's last stream object with an epoch before
	// hour(Cursor); PredResolved once it has been looked for (scan.go).
	StreamPred   string `json:"stream_pred,omitempty"`
	PredResolved bool   `json:"pred_resolved,omitempty"`

	WindowsDone  int    `json:"windows_done"`
	WindowsTotal int    `json:"windows_total"`
	Done         bool   `json:"done"`
	Error        string `json:"error,omitempty"`
	// Failing is set when the project's last attempt failed transiently
	// (it is served after the others, and retried).
	Failing           bool `json:"failing,omitempty"`
	EventsWritten     int  `json:"events_written"`
	DuplicatesSkipped int  `json:"duplicates_skipped"`
	Pages             int  `json:"pages"`
	Objects           int  `json:"objects"`
}

// Totals sums the projects' counters.
func (j *Job) Totals() (windowsDone, windowsTotal, events, dups int) {
	for _, p := range j.Projects {
		windowsDone += p.WindowsDone
		windowsTotal += p.WindowsTotal
		events += p.EventsWritten
		dups += p.DuplicatesSkipped
	}
	return
}

// Result is the outcome of one Run.
type Result struct {
	// Summary is the run's summary (logged as its "run summary").
	Summary engine.Summary
	// Job is the job document at the end of the run.
	Job Job
}

// Lister lists object names under a prefix: the bucket as the scan needs
// it.
type Lister = events.Lister

// Jobs creates, reads and runs the backfill jobs of the events stream.
type Jobs struct {
	stream *events.Stream
	opts   events.Options
	env    engine.Env
	bucket Lister
}

// New returns the jobs of stream; bucket is the data store, listed for
// de-duplication.
func New(stream *events.Stream, bucket Lister) (*Jobs, error) {
	if stream == nil || bucket == nil {
		return nil, fmt.Errorf("%w: backfill needs the events stream and a data store that can list objects", failure.ErrConfig)
	}
	return &Jobs{stream: stream, opts: stream.Options(), env: stream.Env(), bucket: bucket}, nil
}

func (j *Jobs) key(id string) string { return j.opts.StatePrefix + "backfill/" + id + ".json" }
func (j *Jobs) leaseKey(id string) string {
	return j.opts.StatePrefix + "backfill/" + id + ".lease.json"
}

// projectLeaseKey is the lease a run holds on a project while it scans, reads
// and writes one of its slices: the stream's, which its late lane holds too.
func (j *Jobs) projectLeaseKey(projectID string) string { return j.stream.ProjectLeaseKey(projectID) }

// slice is the length of a job's sub-windows: at most the stream's maximum
// window, which the bucket scan's bounds rely on.
func (j *Jobs) slice() time.Duration { return min(DefaultSlice, j.opts.MaxWindow) }

func (j *Jobs) countSlices(start, end time.Time) int {
	if !end.After(start) {
		return 0
	}
	s := j.slice()
	return int((end.Sub(start) + s - 1) / s)
}

// validJobID accepts the ids Create makes (and the push message's job_id
// syntax).
func validJobID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// load reads job id; an unknown id wraps ErrNotFound.
func (j *Jobs) load(ctx context.Context, id string) (*engine.Doc[Job], error) {
	if !validJobID(id) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, quoted(id))
	}
	doc, err := engine.LoadDoc[Job](ctx, j.env.State, j.key(id), nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read backfill job %s: %w", id, err)
	}
	if !doc.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, quoted(id))
	}
	if doc.V.Version != jobVersion {
		return nil, fmt.Errorf("failed to read backfill job %s: unsupported version %d", id, doc.V.Version)
	}
	return doc, nil
}

// Get returns the job document. It needs no Sentry access.
func (j *Jobs) Get(ctx context.Context, id string) (Job, error) {
	doc, err := j.load(ctx, id)
	if err != nil {
		return Job{}, err
	}
	return doc.V, nil
}

// listed joins names for an error message, at most maxListed of them, each
// quoted and clipped to maxQuoted bytes.
func listed(names []string) string {
	n := min(len(names), maxListed)
	q := make([]string, n)
	for i, name := range names[:n] {
		q[i] = quoted(name)
	}
	out := strings.Join(q, ", ")
	if len(names) > n {
		out += fmt.Sprintf(" and %d more", len(names)-n)
	}
	return out
}

// quoted is name clipped to maxQuoted bytes, in Go quotes.
func quoted(name string) string { return strconv.Quote(logging.Clip(name, maxQuoted)) }

// summaryAttrs are the job's fields in its run summary.
func summaryAttrs(job Job, scanned int) []slog.Attr {
	wd, wt, _, _ := job.Totals()
	return []slog.Attr{
		slog.String("job_id", job.ID), slog.String("status", job.Status),
		slog.Int("windows_done", wd), slog.Int("windows_total", wt),
		slog.Int("objects_scanned", scanned),
	}
}
