package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"
)

// pathBackfill is the backfill resource.
const pathBackfill = "/backfill"

// Backfiller records, reports and advances durable backfill jobs. *app
// implements it.
type Backfiller interface {
	CreateBackfill(ctx context.Context, spec backfill.Spec) (backfill.Job, error)
	GetBackfill(ctx context.Context, id string) (backfill.Job, error)
	RunBackfill(ctx context.Context, id string) (backfill.Result, error)
}

// backfillRequest is the body of POST /backfill.
type backfillRequest struct {
	// Projects is a list of ids or slugs, or the string "all"; omitted
	// means all.
	Projects json.RawMessage `json:"projects"`
	Start    string          `json:"start"`
	End      string          `json:"end"`
	Streams  []string        `json:"streams"`
}

// backfillAccepted is the 202 answer.
type backfillAccepted struct {
	JobID     string `json:"job_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
	MessageID string `json:"message_id"`
}

// backfillProgress is the answer of GET /backfill/{id}.
type backfillProgress struct {
	JobID             string             `json:"job_id"`
	Status            string             `json:"status"`
	Start             time.Time          `json:"start"`
	End               time.Time          `json:"end"`
	CreatedAt         time.Time          `json:"created_at"`
	CreatedBy         string             `json:"created_by,omitempty"`
	UpdatedAt         time.Time          `json:"updated_at,omitzero"`
	WindowsDone       int                `json:"windows_done"`
	WindowsTotal      int                `json:"windows_total"`
	EventsWritten     int                `json:"events_written"`
	DuplicatesSkipped int                `json:"duplicates_skipped"`
	Errors            []string           `json:"errors"`
	Projects          []backfill.Project `json:"projects"`
}

func progressOf(j backfill.Job) backfillProgress {
	wd, wt, ev, dups := j.Totals()
	p := backfillProgress{
		JobID: j.ID, Status: j.Status, Start: j.Start, End: j.End, CreatedAt: j.CreatedAt, CreatedBy: j.CreatedBy,
		UpdatedAt: j.UpdatedAt, WindowsDone: wd, WindowsTotal: wt, EventsWritten: ev, DuplicatesSkipped: dups,
		Errors: j.Errors, Projects: slices.Clone(j.Projects),
	}
	if p.Errors == nil {
		p.Errors = []string{}
	}
	for i := range p.Projects {
		p.Projects[i].Window = nil // internal cursor state
	}
	return p
}

// requireInvoker verifies the caller of /backfill: a Google ID token for
// the service's audience whose email is in BACKFILL_INVOKERS (401 missing or
// invalid, 403 not listed). With push authentication disabled (local mode)
// everything passes; with no invokers configured nobody does.
func (s *Server) requireInvoker(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.opts.AuthDisabled {
			return next(c)
		}
		if s.opts.BackfillVerifier == nil {
			return echo.NewHTTPError(http.StatusForbidden, "backfill is not enabled: BACKFILL_INVOKERS lists nobody")
		}
		if err := verifyCaller(c, s.opts.BackfillVerifier, "caller is not allowed to backfill"); err != nil {
			return err
		}
		return next(c)
	}
}

// errBadRequest marks a request the caller must correct: 400, never a
// "configuration error" (the service's configuration is fine).
var errBadRequest = errors.New("bad request")

// maxEchoed bounds each value of a request that an error quotes back (a
// time, a Content-Type, a field name): the error is the 400 answer and goes
// on the request's log lines, and the request may be anyone's.
const maxEchoed = 64

// parseBackfillRequest decodes and checks the request body's syntax: an
// application/json body holding exactly one JSON object.
func parseBackfillRequest(c echo.Context) (backfill.Spec, error) {
	if mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return backfill.Spec{}, fmt.Errorf("%w: the body must be sent as Content-Type: application/json, got %q", errBadRequest,
			logging.Clip(c.Request().Header.Get(echo.HeaderContentType), maxEchoed))
	}
	var body backfillRequest
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		// encoding/json quotes an unknown field's name, whatever its length.
		return backfill.Spec{}, fmt.Errorf("%w: the body must be a JSON object {\"projects\", \"start\", \"end\", \"streams\"}: %s", errBadRequest,
			logging.Clip(err.Error(), 4*maxEchoed))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return backfill.Spec{}, fmt.Errorf("%w: the body must hold one JSON object and nothing after it", errBadRequest)
	}
	var spec backfill.Spec
	var err error
	if spec.Start, err = time.Parse(time.RFC3339, body.Start); err != nil {
		return spec, fmt.Errorf("%w: start must be an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", errBadRequest, logging.Clip(body.Start, maxEchoed))
	}
	if spec.End, err = time.Parse(time.RFC3339, body.End); err != nil {
		return spec, fmt.Errorf("%w: end must be an RFC 3339 time such as 2026-01-08T00:00:00Z, got %q", errBadRequest, logging.Clip(body.End, maxEchoed))
	}
	if raw := strings.TrimSpace(string(body.Projects)); raw != "" && raw != "null" {
		var all string
		if json.Unmarshal(body.Projects, &all) == nil {
			if all != "all" {
				return spec, fmt.Errorf(`%w: projects must be "all" or a list of project ids or slugs, got %q`, errBadRequest, logging.Clip(all, maxEchoed))
			}
		} else if err := json.Unmarshal(body.Projects, &spec.Projects); err != nil || len(spec.Projects) == 0 {
			return spec, fmt.Errorf(`%w: projects must be "all" or a non-empty list of project ids or slugs`, errBadRequest)
		}
	}
	spec.Streams = body.Streams
	return spec, nil
}

// handleCreateBackfill answers POST /backfill: 202 with the job id once the
// job is recorded and its first message published (idempotent: the same
// request while its job is pending or running answers that job and publishes
// its message again, which its leases make harmless); 400 for invalid input;
// 503 when PUBSUB_TOPIC is not configured (the work runs through push
// deliveries; locally, use `server backfill`) or Sentry, storage or Pub/Sub
// failed.
func (s *Server) handleCreateBackfill(c echo.Context) error {
	spec, err := parseBackfillRequest(c)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error()).SetInternal(err)
	}
	if s.opts.Publisher == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable,
			"backfill through the service needs PUBSUB_TOPIC (the work runs through push deliveries); run `server backfill` locally instead")
	}
	if email, ok := c.Get("caller").(string); ok {
		spec.CreatedBy = email
	}
	ctx := c.Request().Context()
	job, err := s.opts.Backfill.CreateBackfill(ctx, spec)
	switch {
	case errors.Is(err, backfill.ErrInvalid):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error()).SetInternal(err)
	case err != nil:
		return runFailure("creating the backfill job", err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.PublishTimeout)
	msgID, err := s.opts.Publisher.Publish(pctx, pubsub.Work{Kind: pubsub.KindBackfill, JobID: job.ID, Hop: 1})
	cancel()
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable,
			fmt.Sprintf("backfill job %s was recorded but could not be started; retry the same request: it returns this job (no second job is created) and starts it", job.ID)).
			SetInternal(fmt.Errorf("failed to publish the backfill message: %w", err))
	}
	logging.FromContext(ctx).InfoContext(ctx, "backfill job accepted", "job_id", job.ID, "message_id", msgID,
		"start", job.Start, "end", job.End, "projects", len(job.Projects))
	return c.JSON(http.StatusAccepted, backfillAccepted{
		JobID: job.ID, Status: job.Status, StatusURL: pathBackfill + "/" + job.ID, MessageID: msgID,
	})
}

// handleGetBackfill answers GET /backfill/{id} with the job's progress.
func (s *Server) handleGetBackfill(c echo.Context) error {
	job, err := s.opts.Backfill.GetBackfill(c.Request().Context(), c.Param("id"))
	switch {
	case errors.Is(err, backfill.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "no such backfill job").SetInternal(err)
	case err != nil:
		return runFailure("reading the backfill job", err)
	}
	return c.JSON(http.StatusOK, progressOf(job))
}

// handleBackfillPush runs a backfill message's job within the request's
// budget, and publishes the same message again (hop + 1) when work remains,
// as for the stream: 200 done / lease held / continued; 400 unknown job
// (poison); 500 configuration error; 503 transient or continuation not
// published.
func (s *Server) handleBackfillPush(c echo.Context, push *pubsub.Push) error {
	ctx := c.Request().Context()
	logger := logging.FromContext(ctx).With("job_id", push.Work.JobID)
	ctx = logging.WithLogger(ctx, logger)
	if s.opts.Backfill == nil {
		return echo.NewHTTPError(http.StatusNotImplemented, "backfill is not available in this service")
	}
	res, err := s.runBackfill(ctx, push.Work.JobID)
	if err != nil {
		if errors.Is(err, backfill.ErrNotFound) {
			return echo.NewHTTPError(http.StatusBadRequest, "unknown backfill job").SetInternal(err)
		}
		return runFailure("backfill", err)
	}
	sum := res.Summary
	next := pubsub.Work{Kind: pubsub.KindBackfill, JobID: push.Work.JobID, Stream: push.Work.Stream, Hop: push.Work.Hop + 1}
	resp, err := s.settle(ctx, push, sum.LeaseHeld, sum.WorkRemaining, next,
		"run `server backfill -job "+push.Work.JobID+"` or publish the backfill message again to resume")
	logger.InfoContext(ctx, "backfill push handled", "outcome", resp.Outcome, "status", res.Job.Status,
		"events_written", sum.Records, "work_remaining", sum.WorkRemaining)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// runBackfill runs the job under the request's deadline, detached from the
// caller's cancellation and cancelled StopGrace after Drain (as run).
func (s *Server) runBackfill(ctx context.Context, id string) (backfill.Result, error) {
	var res backfill.Result
	err := s.detached(ctx, func(runCtx context.Context) error {
		var err error
		res, err = s.opts.Backfill.RunBackfill(runCtx, id)
		return err
	})
	if err == nil && !res.Summary.LeaseHeld && s.drainCtx.Err() != nil && res.Job.Status != backfill.Done {
		res.Summary.WorkRemaining = true
	}
	return res, err
}
