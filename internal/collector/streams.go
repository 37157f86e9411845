package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Stream names. Each stream has its own data prefix, its own state under
// <StatePrefix><stream>/ and its own lease.
const (
	StreamEvents = "events"
	StreamIssues = "issues"
	StreamAudit  = "audit"
)

// StreamNames lists the streams in the order a run serves them: the cheap
// single-document streams first, so that what they leave of their fair share
// of the budget goes to the events stream.
var StreamNames = []string{StreamAudit, StreamIssues, StreamEvents}

// Stream is one stream of a multi-stream run. *Collector (events),
// *IssuesCollector and *AuditCollector implement it.
type Stream interface {
	// Name is StreamEvents, StreamIssues or StreamAudit.
	Name() string
	// RunBudget runs one pass bounded by budget instead of Options.Budget.
	RunBudget(ctx context.Context, budget time.Duration) (Summary, error)
}

var (
	_ Stream = (*Collector)(nil)
	_ Stream = (*IssuesCollector)(nil)
	_ Stream = (*AuditCollector)(nil)
)

// Name implements Stream.
func (c *Collector) Name() string { return StreamEvents }

// RunBudget implements Stream: Run with the given budget.
func (c *Collector) RunBudget(ctx context.Context, budget time.Duration) (Summary, error) {
	cc := *c
	cc.opts.Budget = budget
	return cc.Run(ctx)
}

// StreamsResult is the outcome of RunStreams.
type StreamsResult struct {
	// Summaries has one entry per stream run, in run order.
	Summaries []Summary
	// Errors maps a stream that failed to its error.
	Errors map[string]error
	// Remaining lists the streams that have work left (a backlog, or a
	// transient failure): the caller should run them again soon.
	Remaining []string
	// AllLeaseHeld is set when every stream's lease was held by another run.
	AllLeaseHeld bool
}

// ConfigErrors returns the streams that failed with a configuration error
// (a missing scope, a rejected token), which a retry cannot fix.
func (r StreamsResult) ConfigErrors() map[string]error {
	out := make(map[string]error)
	for name, err := range r.Errors {
		if isConfigError(err) {
			out[name] = err
		}
	}
	return out
}

// isConfigError reports an error that a retry cannot fix.
func isConfigError(err error) bool {
	return IsConfig(err) || (sentry.IsPermanent(err) && !IsTransient(err))
}

// RunStreams runs the given streams one after the other within one budget:
// each gets a fair share of what is left (remaining ÷ streams left), so time
// a stream does not use passes to the next. A configuration error (a missing
// scope, a rejected token) stops only its stream; the others go on. The
// error is nil when every stream did what it could or failed with a
// configuration error while another succeeded (the failure is in
// StreamsResult.Errors and logged with error_kind=sentry_auth); it is
// transient (IsTransient) when a stream failed transiently, and a
// configuration error when every stream failed with one.
func RunStreams(ctx context.Context, clk clock.Clock, budget time.Duration, streams []Stream, logger *slog.Logger) (StreamsResult, error) {
	if clk == nil {
		clk = clock.Real{}
	}
	if logger == nil {
		logger = slog.Default()
	}
	res := StreamsResult{Errors: make(map[string]error)}
	if len(streams) == 0 {
		return res, fmt.Errorf("%w: no stream selected", ErrConfig)
	}
	deadline := clk.Now().Add(budget)
	var transientErrs, sentryErrs, configErrs []error
	held := 0
	for i, s := range streams {
		share := deadline.Sub(clk.Now()) / time.Duration(len(streams)-i)
		if share <= minSafetyMargin || stopRequested(s) {
			res.Remaining = append(res.Remaining, s.Name())
			continue
		}
		sum, err := s.RunBudget(ctx, share)
		if sum.Stream == "" {
			sum.Stream = s.Name()
		}
		res.Summaries = append(res.Summaries, sum)
		if sum.LeaseHeld {
			held++
		}
		switch {
		case err == nil:
			if sum.WorkRemaining {
				res.Remaining = append(res.Remaining, s.Name())
			}
		case isConfigError(err):
			res.Errors[s.Name()] = err
			configErrs = append(configErrs, fmt.Errorf("%s stream: %w", s.Name(), err))
			attrs := []any{"stream", s.Name(), "error", err}
			if isSentryAuth(err) {
				attrs = append(attrs, "error_kind", ErrorKindSentryAuth)
			}
			logger.ErrorContext(ctx, "stream failed with a configuration error; the other streams go on", attrs...)
		case isSentryFailure(err):
			// Sentry failing for this stream (after the client's retries):
			// the stream's failure for this run; the others go on, and it
			// is run again with the continuation.
			res.Errors[s.Name()] = err
			res.Remaining = append(res.Remaining, s.Name())
			sentryErrs = append(sentryErrs, fmt.Errorf("%s stream: %w", s.Name(), err))
			logger.WarnContext(ctx, "stream failed on a Sentry error; the other streams go on", "stream", s.Name(), "error", err)
		default:
			res.Errors[s.Name()] = err
			res.Remaining = append(res.Remaining, s.Name())
			transientErrs = append(transientErrs, fmt.Errorf("%s stream: %w", s.Name(), err))
		}
	}
	res.AllLeaseHeld = held == len(streams)
	switch {
	case len(transientErrs) > 0:
		// Storage or lease failures: the run as a whole failed.
		return res, transient(errors.Join(append(append(transientErrs, sentryErrs...), configErrs...)...))
	case len(sentryErrs) > 0 && len(sentryErrs)+len(configErrs) == len(streams):
		// Every stream failed, at least one transiently.
		return res, transient(errors.Join(append(sentryErrs, configErrs...)...))
	case len(configErrs) == len(streams):
		return res, errors.Join(configErrs...)
	}
	return res, nil
}

// stopRequested reports whether s was asked to stop softly (StopSignal).
func stopRequested(s Stream) bool {
	type stopper interface{ stopRequested() bool }
	st, ok := s.(stopper)
	return ok && st.stopRequested()
}

// ParseStreams parses a list of stream names (as in STREAMS), ignoring
// blanks and duplicates, and returns them in run order (StreamNames).
func ParseStreams(names []string) ([]string, error) {
	want := make(map[string]bool)
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		switch n {
		case StreamEvents, StreamIssues, StreamAudit:
			want[n] = true
		default:
			return nil, fmt.Errorf("%w: unknown stream %q (known: events, issues, audit)", ErrConfig, n)
		}
	}
	var out []string
	for _, n := range StreamNames {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// docRun is the shared machinery of the single-document streams (issues,
// audit): a run (lease, budget, summary) over one state document updated by
// compare-and-swap, and write-once data objects named from it.
type docRun struct {
	*run
	stream string
	key    string // the state document
	gen    int64  // its generation (0: does not exist)
}

// leased runs fn holding the stream's lease; when another run holds it,
// fn does not run and the summary says so.
func (d *docRun) leased(ctx context.Context, fn func() error) error {
	release, held, err := d.acquireLease(ctx, d.stream)
	if err != nil {
		return err
	}
	if !held {
		d.sum.LeaseHeld = true
		return nil
	}
	defer release()
	return fn()
}

// newDocRun prepares a run of the named stream of c with the given budget.
func newDocRun(ctx context.Context, c *Collector, stream string, budget time.Duration) *docRun {
	start := c.clock.Now()
	r := &run{
		c:        c,
		start:    start,
		deadline: start.Add(budget),
		leaseKey: c.opts.StatePrefix + stream + "/lease.json",
		leaseTTL: leaseTTL(budget),
		sum:      Summary{RunID: c.opts.RunID, Stream: stream},
	}
	if dl, ok := ctx.Deadline(); ok {
		if rem := time.Until(dl); rem < budget {
			r.deadline = start.Add(rem)
		}
	}
	return &docRun{run: r, stream: stream, key: c.opts.StatePrefix + stream + "/state.json"}
}

// load reads the state document into v; found is false when it does not
// exist yet (v is left as is).
func (d *docRun) load(ctx context.Context, v any) (found bool, err error) {
	data, gen, err := d.c.state.Read(ctx, d.key)
	if errors.Is(err, sink.ErrNotFound) {
		d.gen = 0
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read the %s state %s: %w", d.stream, d.key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("failed to decode the %s state %s: %w", d.stream, d.key, err)
	}
	d.gen = gen
	return true, nil
}

// save writes v by compare-and-swap on the loaded generation. A lost swap
// returns errConflict: the caller must reload and drop what it holds.
func (d *docRun) save(ctx context.Context, v any) error {
	if err := d.keepLease(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("failed to encode the %s state: %w", d.stream, err)
	}
	gen, err := d.c.state.Write(ctx, d.key, data, contentTypeJSON, d.gen)
	if errors.Is(err, sink.ErrPrecondition) {
		d.c.log.InfoContext(ctx, "state changed concurrently; reloading", "stream", d.stream)
		d.sum.Conflicts++
		return errConflict
	}
	if err != nil {
		return fmt.Errorf("failed to write the %s state: %w", d.stream, err)
	}
	d.gen = gen
	return nil
}

// finishLog logs the run summary of a single-document stream.
func (d *docRun) finishLog(ctx context.Context, err error) {
	d.sum.Duration = d.c.clock.Now().Sub(d.start)
	level := slog.LevelInfo
	attrs := []any{"stream", d.stream}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, "error", err)
		if isSentryAuth(err) {
			attrs = append(attrs, "error_kind", ErrorKindSentryAuth)
			d.sum.AuthErrors++
		}
	}
	d.c.log.Log(ctx, level, "run summary", append([]any{"summary", d.sum}, attrs...)...)
}

// streamAPIError turns a Sentry error of a single-document stream into the
// run's error: permanent ones (401, 403, 404, 400) are configuration errors
// with a hint, others transient.
func streamAPIError(stream, what, hint string, err error) error {
	if sentry.IsPermanent(err) {
		return fmt.Errorf("%w: %s stream: failed to read %s: %s: %w", ErrConfig, stream, what, hint, err)
	}
	return transient(markSentry(fmt.Errorf("%s stream: failed to read %s: %w", stream, what, err)))
}

// writeObject creates a write-once data object; exists reports that the name
// was taken by different content (an object of an interrupted run).
func (d *docRun) writeObject(ctx context.Context, name string, data []byte) (exists bool, err error) {
	if err := d.keepLease(ctx); err != nil {
		return false, err
	}
	t0 := d.c.clock.Now()
	err = d.c.data.Create(ctx, name, data, ContentTypeNDJSON)
	d.maxWrite = max(d.maxWrite, d.c.clock.Now().Sub(t0))
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, sink.ErrExists):
		return true, nil
	default:
		return false, fmt.Errorf("failed to write data object %s: %w", name, err)
	}
}

// compactLine appends raw to buf as one NDJSON line (compacted when it spans
// lines).
func compactLine(buf *bytes.Buffer, raw json.RawMessage) {
	if bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 {
		n := buf.Len()
		if err := json.Compact(buf, raw); err == nil {
			buf.WriteByte('\n')
			return
		}
		buf.Truncate(n)
	}
	buf.Write(raw)
	buf.WriteByte('\n')
}

func (ic *IssuesCollector) stopRequested() bool { return ic.c.stopRequested() }
func (ac *AuditCollector) stopRequested() bool  { return ac.c.stopRequested() }
