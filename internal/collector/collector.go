// Package collector runs the selected streams of one organisation (audit
// log, issues, events) one after the other within one budget. Each stream
// gets a fair share of what is left, so the time a cheap stream does not use
// passes to the next, and one stream's failure does not stop the others. The
// streams themselves are sources on the engine (internal/engine,
// internal/events, internal/issues, internal/audit).
package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/audit"
	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/coverage"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/issues"
)

// Stream is one stream of a run. *events.Stream, *issues.Stream and
// *audit.Stream implement it.
type Stream interface {
	// Name is the stream's name (events, issues, audit).
	Name() string
	// Run runs one pass bounded by budget; it logs its own summary.
	Run(ctx context.Context, budget time.Duration) (engine.Summary, error)
}

var (
	_ Stream = (*events.Stream)(nil)
	_ Stream = (*issues.Stream)(nil)
	_ Stream = (*audit.Stream)(nil)
	_ Stream = (*coverage.Ledger)(nil)
)

// runOrder ranks the streams: the cheap ones first (the single-document
// streams, and the coverage ledger, which reads counts from Sentry's
// Discover and stats budgets), so that what they leave of their fair share
// goes to the events stream.
var runOrder = []string{audit.Name, issues.Name, coverage.Name, events.Name}

// Order returns names in run order (names it does not know go last, in the
// order given).
func Order(names []string) []string {
	out := slices.Clone(names)
	rank := func(n string) int {
		if i := slices.Index(runOrder, n); i >= 0 {
			return i
		}
		return len(runOrder)
	}
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

// Result is the outcome of Run.
type Result struct {
	// Summaries has one entry per stream run, in run order.
	Summaries []engine.Summary
	// Errors maps a stream that failed to its error.
	Errors map[string]error
	// Remaining lists the streams that have work left (a backlog, or a
	// transient failure): the caller should run them again soon.
	Remaining []string
	// AllLeaseHeld is set when every stream's lease was held by another
	// run: nothing was done.
	AllLeaseHeld bool
}

// Run runs streams in the given order within budget: each gets a fair share
// of what is left (remaining ÷ streams left). A stream's failure is logged
// once, in its own run summary. A configuration error (a missing scope, a
// rejected token) or a Sentry failure stops only its stream; the error is
// nil when every stream did what it could or failed that way while another
// succeeded (the failures are in Result.Errors, and a stream Sentry failed
// is in Remaining). It is transient when a stream failed on storage or its
// lease, or when every stream failed and one of them transiently; it is a
// configuration error when every stream failed with one.
func Run(ctx context.Context, clk clock.Clock, budget time.Duration, streams []Stream, stop func() bool) (Result, error) {
	if clk == nil {
		clk = clock.Real{}
	}
	res := Result{Errors: make(map[string]error)}
	if len(streams) == 0 {
		return res, fmt.Errorf("%w: no stream selected", failure.ErrConfig)
	}
	deadline := clk.Now().Add(budget)
	var runErrs, readErrs, configErrs []error
	held := 0
	for i, s := range streams {
		share := deadline.Sub(clk.Now()) / time.Duration(len(streams)-i)
		if share <= engine.MinSafetyMargin || (stop != nil && stop()) {
			res.Remaining = append(res.Remaining, s.Name())
			continue
		}
		sum, err := s.Run(ctx, share)
		if sum.Stream == "" {
			sum.Stream = s.Name()
		}
		res.Summaries = append(res.Summaries, sum)
		if sum.LeaseHeld {
			held++
		}
		if err == nil {
			if sum.WorkRemaining {
				res.Remaining = append(res.Remaining, s.Name())
			}
			continue
		}
		res.Errors[s.Name()] = err
		named := fmt.Errorf("%s stream: %w", s.Name(), err)
		switch {
		case failure.IsConfig(err):
			configErrs = append(configErrs, named)
		case engine.IsReadError(err):
			// Sentry failing for this stream after the client's retries:
			// the stream's failure for this run; it runs again with the
			// continuation.
			res.Remaining = append(res.Remaining, s.Name())
			readErrs = append(readErrs, named)
		default:
			res.Remaining = append(res.Remaining, s.Name())
			runErrs = append(runErrs, named)
		}
	}
	res.AllLeaseHeld = held == len(streams)
	switch {
	case len(runErrs) > 0:
		// Storage or lease failures: the run as a whole failed.
		return res, failure.Transient(errors.Join(append(append(runErrs, readErrs...), configErrs...)...))
	case len(readErrs) > 0 && len(readErrs)+len(configErrs) == len(streams):
		// Every stream failed, at least one transiently.
		return res, failure.Transient(errors.Join(append(readErrs, configErrs...)...))
	case len(configErrs) == len(streams):
		return res, failure.Permanent(errors.Join(configErrs...))
	}
	return res, nil
}
