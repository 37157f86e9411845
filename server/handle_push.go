package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/failure"

	"github.com/labstack/echo/v4"
	slogecho "github.com/samber/slog-echo"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"
)

// Outcomes of a push delivery, in the response body and the log.
const (
	outcomeDone        = "done"           // caught up: nothing left
	outcomeLeaseHeld   = "lease_held"     // another run is collecting
	outcomeContinued   = "continued"      // backlog left, continuation published
	outcomeNextTick    = "next_tick"      // backlog left, continues at the next tick
	outcomeTooManyHops = "too_many_hops"  // loop guard: continues at the next tick
	outcomeNoContinue  = "publish_failed" // could not publish the continuation (503)
)

// pushResponse is the body of a 2xx answer to a push. Pub/Sub ignores it;
// operators and tests read it.
type pushResponse struct {
	Outcome        string `json:"outcome"`
	MessageID      string `json:"message_id"`
	ContinuationID string `json:"continuation_id,omitempty"`
}

// handlePush answers a Pub/Sub push delivery:
//
//	200  done, nothing to do, or another run holds the lease (ack)
//	200  backlog left and a continuation published (ack)
//	400  malformed envelope or message (poison: retried, then dead-lettered)
//	413  body too large (poison)
//	401/403 from requireToken
//	503  transient failure, or the continuation could not be published
//	500  configuration error (retrying cannot help; stays visible)
//	     backfill messages: see handleBackfillPush
//
// When work remains, the continuation is published BEFORE answering 2xx. If
// publishing fails the answer is 503: Pub/Sub then redelivers this message,
// and that redelivery continues the backlog just as the continuation would
// have. Answering 2xx instead would be loss-free too (the state is durable)
// but would silently slow a backlog down to the tick rate, and a lasting
// publish failure (say, a missing roles/pubsub.publisher) would never show;
// with 503 it shows as failed deliveries and, at last, in the dead-letter
// topic.
func (s *Server) handlePush(c echo.Context) error {
	req := c.Request()
	push, err := pubsub.Decode(req.Body, req.Header, s.opts.MaxBodyBytes)
	if err != nil {
		var he *echo.HTTPError
		switch {
		case errors.As(err, &he): // the body-limit middleware's 413
			return he
		case errors.Is(err, pubsub.ErrTooLarge):
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "push request body too large").SetInternal(err)
		case errors.Is(err, pubsub.ErrMalformed):
			return echo.NewHTTPError(http.StatusBadRequest, err.Error()).SetInternal(err)
		default:
			return echo.NewHTTPError(http.StatusBadRequest, "failed to read push request").SetInternal(err)
		}
	}

	ctx := req.Context()
	logger := logging.FromContext(ctx).With("message_id", push.Message.ID)
	ctx = logging.WithLogger(ctx, logger)
	c.SetRequest(req.WithContext(ctx))
	slogecho.AddCustomAttributes(c, slog.String("message_id", push.Message.ID))

	logger.InfoContext(ctx, "push received",
		"kind", string(push.Work.Kind),
		"stream", push.Work.Stream,
		"hop", push.Work.Hop,
		"delivery_attempt", push.DeliveryAttempt,
		"subscription", push.Subscription,
		"wrapped", push.Wrapped,
		"publish_time", push.Message.PublishTime)

	if push.Work.Kind == pubsub.KindBackfill {
		return s.handleBackfillPush(c, push)
	}

	stream := ""
	if push.Work.Kind == pubsub.KindContinue {
		stream = push.Work.Stream
	}
	result, err := s.run(ctx, stream)
	if err != nil {
		return runFailure("collection", err)
	}

	next := pubsub.Continue(pubsub.DefaultStream, push.Work)
	if push.Work.Stream != "" {
		next.Stream = push.Work.Stream
	}
	if result.Continue != "" {
		next.Stream = result.Continue
	}
	resp, err := s.settle(ctx, push, result.LeaseHeld, result.WorkRemaining, next,
		"the backlog continues at the next tick")
	s.logOutcome(ctx, resp.Outcome, result)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// settle decides the answer to a push whose run returned without error: ack
// when done or when another run holds the lease; when work remains, publish
// next (a continuation) first, and answer 503 if that fails so that Pub/Sub
// redelivers this message, which continues the work just the same. fallback
// says, in logs, how the work goes on when it cannot be continued.
func (s *Server) settle(ctx context.Context, push *pubsub.Push, leaseHeld, workRemaining bool, next pubsub.Work, fallback string) (pushResponse, error) {
	logger := logging.FromContext(ctx)
	resp := pushResponse{MessageID: push.Message.ID}
	switch {
	case leaseHeld:
		resp.Outcome = outcomeLeaseHeld
	case !workRemaining:
		resp.Outcome = outcomeDone
	case s.opts.Publisher == nil:
		resp.Outcome = outcomeNextTick
		logger.WarnContext(ctx, "work remains but no PUBSUB_TOPIC is configured: "+fallback)
	case push.Work.Hop >= s.opts.MaxHops:
		resp.Outcome = outcomeTooManyHops
		logger.ErrorContext(ctx, "continuation chain too long, not continuing: "+fallback,
			"hop", push.Work.Hop, "max_hops", s.opts.MaxHops)
	default:
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.PublishTimeout)
		id, err := s.opts.Publisher.Publish(pctx, next)
		cancel()
		if err != nil {
			resp.Outcome = outcomeNoContinue
			return resp, echo.NewHTTPError(http.StatusServiceUnavailable, "failed to schedule the continuation; retry later").
				SetInternal(fmt.Errorf("work remains and the continuation could not be published, answering 503 so that Pub/Sub redelivers: %w", err))
		}
		resp.Outcome = outcomeContinued
		resp.ContinuationID = id
		logger.InfoContext(ctx, "continuation published", "continuation_id", id, "next_hop", next.Hop)
	}
	return resp, nil
}

func (s *Server) logOutcome(ctx context.Context, outcome string, r RunResult) {
	// The collector logs the run summary itself (message "run summary").
	logging.FromContext(ctx).InfoContext(ctx, "push handled",
		"outcome", outcome, "work_remaining", r.WorkRemaining, "lease_held", r.LeaseHeld, "continue_stream", r.Continue)
}

// run runs the collector under the request's deadline (see detached): the
// named stream, or every selected stream for "" (a tick).
func (s *Server) run(ctx context.Context, stream string) (RunResult, error) {
	start := time.Now()
	var res RunResult
	err := s.detached(ctx, func(runCtx context.Context) error {
		var err error
		res, err = s.opts.Collector.RunStreams(runCtx, stream)
		return err
	})
	if err == nil && !res.LeaseHeld && s.drainCtx.Err() != nil {
		// Shutting down: whatever the collector reports, make sure the
		// work goes on promptly on another instance (a continuation that
		// finds nothing to do costs one cheap run).
		res.WorkRemaining = true
	}
	logging.FromContext(ctx).DebugContext(ctx, "run returned", "elapsed", time.Since(start).String(), "failed", err != nil)
	return res, err
}

// detached runs fn under the request's run deadline. The run is detached
// from the caller's cancellation (a push that times out on Pub/Sub's side
// must not abort a run in the middle of a write; the deadline bounds it) and
// is cancelled StopGrace after Drain (SIGTERM) if it has not returned by
// then, so that the request can still be answered before SIGKILL.
func (s *Server) detached(ctx context.Context, fn func(context.Context) error) error {
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RunTimeout)
	defer cancel()
	stop := context.AfterFunc(s.drainCtx, func() {
		t := time.NewTimer(s.opts.StopGrace)
		defer t.Stop()
		select {
		case <-t.C:
			logging.FromContext(ctx).WarnContext(ctx, "shutting down: cancelling the run that did not stop in time",
				"stop_grace", s.opts.StopGrace.String())
			cancel()
		case <-runCtx.Done():
		}
	})
	defer stop()
	return fn(runCtx)
}

// runFailure answers a failed run. The status comes from the one classifier
// the CLI's exit codes come from too (failure.Classify): a configuration
// error answers 500 (retrying cannot help, and acknowledging would hide it:
// it stays visible as failed deliveries and, at last, in the dead-letter
// topic); a transient one 503 (Pub/Sub retries with backoff; progress is
// committed); anything else 500.
func runFailure(what string, err error) *echo.HTTPError {
	switch failure.Classify(err) {
	case failure.KindConfig:
		return echo.NewHTTPError(http.StatusInternalServerError, what+" failed: configuration error").
			SetInternal(fmt.Errorf("configuration error, fix it and the next delivery resumes: %w", err))
	case failure.KindTransient:
		return echo.NewHTTPError(http.StatusServiceUnavailable, what+" failed temporarily; retry later").
			SetInternal(fmt.Errorf("transient failure, progress is committed and a redelivery resumes: %w", err))
	}
	return echo.NewHTTPError(http.StatusInternalServerError, what+" failed").
		SetInternal(fmt.Errorf("unexpected failure, progress is committed: %w", err))
}
