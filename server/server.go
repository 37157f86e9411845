package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"
)

// RunResult is what the HTTP layer needs to know about one collection run.
type RunResult struct {
	// WorkRemaining is set when the run stopped with a backlog left (budget
	// or page caps): the service publishes a continuation message.
	WorkRemaining bool
	// LeaseHeld is set when another run holds the lease and nothing was
	// done; the delivery is acknowledged (the holder continues the work).
	LeaseHeld bool
	// Continue names the stream the continuation message carries when work
	// remains ("all" for several); "" keeps the message's own stream (or
	// the default).
	Continue string
}

// Collector runs one bounded collection pass of the named stream ("" for a
// tick: every selected stream). It returns a nil error when it did what it
// could within ctx's deadline, progress durably committed; its errors are
// classified by failure.Classify. *app implements it.
type Collector interface {
	RunStreams(ctx context.Context, stream string) (RunResult, error)
}

// Drainer may be implemented by a Collector: Drain is called once when the
// process receives SIGTERM, and in-flight runs should stop starting work,
// commit what they have and return (with WorkRemaining) within a few
// seconds. Without it, in-flight runs are cancelled StopGrace after SIGTERM.
type Drainer interface {
	Drain()
}

// Verifier checks a request's Authorization header. Errors wrap
// auth.ErrMissingToken or auth.ErrInvalidToken (401), auth.ErrForbidden
// (403) or auth.ErrUnavailable (503). *auth.Verifier implements it.
type Verifier interface {
	Verify(ctx context.Context, authorization string) (*auth.Identity, error)
}

var _ Verifier = (*auth.Verifier)(nil)

// Publisher publishes work to the trigger topic. *pubsub.Publisher
// implements it.
type Publisher interface {
	Publish(ctx context.Context, w pubsub.Work) (string, error)
}

var _ Publisher = (*pubsub.Publisher)(nil)

// Defaults for serverOptions.
const (
	defaultRunTimeout     = 8 * time.Minute
	defaultPublishTimeout = 10 * time.Second
	defaultStopGrace      = 6 * time.Second
	defaultMaxHops        = 1000
)

// serverOptions configure newServer.
type serverOptions struct {
	// Collector runs collection (required).
	Collector Collector
	// Verifier checks push tokens. Nil only with AuthDisabled set.
	Verifier     Verifier
	AuthDisabled bool
	// Publisher publishes continuation messages; nil means none is
	// configured and a backlog waits for the next tick.
	Publisher Publisher
	// Backfill serves /backfill and backfill messages (nil: 501 for
	// backfill messages, no /backfill routes). BackfillVerifier checks
	// /backfill callers (BACKFILL_INVOKERS); nil with auth enabled: 403.
	Backfill         Backfiller
	BackfillVerifier Verifier
	// Coverage serves GET /coverage, to the callers /backfill admits (nil:
	// no route).
	Coverage Coverager
	// Logger is the base logger (default slog.Default()); the server
	// bounds its lines (logging.Bounded), as they carry what callers send.
	Logger *slog.Logger
	// ProjectID qualifies trace ids in logs; empty omits the trace.
	ProjectID string
	// RunTimeout is each push request's deadline for the run.
	RunTimeout time.Duration
	// PublishTimeout bounds publishing a continuation.
	PublishTimeout time.Duration
	// StopGrace is how long in-flight runs may go on after Drain before
	// they are cancelled, leaving time to answer before SIGKILL.
	StopGrace time.Duration
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// MaxHops stops continuation chains longer than this (a loop guard;
	// ticks still continue the work).
	MaxHops int
}

// Server is the HTTP service: Pub/Sub push and health.
type Server struct {
	opts serverOptions
	echo *echo.Echo

	drainCtx  context.Context
	drain     context.CancelFunc
	drainOnce sync.Once
}

// newServer builds the server without starting it.
func newServer(opts serverOptions) (*Server, error) {
	if opts.Collector == nil {
		return nil, errors.New("server needs a collector")
	}
	if opts.Verifier == nil && !opts.AuthDisabled {
		return nil, errors.New("server needs a token verifier unless push authentication is explicitly disabled")
	}
	if opts.Verifier != nil && opts.AuthDisabled {
		return nil, errors.New("server got a token verifier and push authentication disabled")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// Every line of a request, the request log line and handleError's
	// included, descends from this logger.
	opts.Logger = slog.New(logging.Bounded(opts.Logger.Handler()))
	if opts.RunTimeout <= 0 {
		opts.RunTimeout = defaultRunTimeout
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = defaultPublishTimeout
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = defaultStopGrace
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = pubsub.DefaultMaxBodyBytes
	}
	if opts.MaxHops <= 0 {
		opts.MaxHops = defaultMaxHops
	}
	s := &Server{opts: opts}
	s.drainCtx, s.drain = context.WithCancel(context.Background())
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// The client address is only logged, never used for a decision; take
	// the peer address and ignore X-Forwarded-For / X-Real-IP, which a
	// caller can spoof (GO-2026-6872, GO-2026-6875).
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	s.echo = e
	s.routes(e)
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Drain tells in-flight runs that the process is shutting down: a Collector
// that implements Drainer is asked to stop and commit, and runs still going
// StopGrace later are cancelled. Safe to call more than once.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		if d, ok := s.opts.Collector.(Drainer); ok {
			d.Drain()
		}
		s.drain()
	})
}

// Close releases the server's resources (it does not close the Publisher).
func (s *Server) Close() error {
	s.Drain()
	if err := s.echo.Close(); err != nil {
		return fmt.Errorf("failed to close echo: %w", err)
	}
	return nil
}
