package main

import (
	"github.com/labstack/echo/v4"
)

// Paths served.
const (
	pathHealth = "/health" // not /healthz, which Cloud Run reserves
	pathPush   = "/pubsub/push"
)

// routes installs the middleware and the routes.
func (s *Server) routes(e *echo.Echo) {
	// Outermost first: recover from panics, give the request an id,
	// put a request logger in its context, log it once when done, turn
	// handler errors into responses (so the request log sees the final
	// status), and bound the body.
	e.Use(s.recoverer())
	e.Use(s.requestID())
	e.Use(s.contextLogger)
	e.Use(s.requestLogger())
	e.Use(s.errorResponder)
	e.Use(s.recoverer())
	e.Use(s.bodyLimit())

	e.GET(pathHealth, s.handleHealth)
	e.POST(pathPush, s.handlePush, s.requireToken)
	if s.opts.Backfill != nil {
		e.POST(pathBackfill, s.handleCreateBackfill, s.requireInvoker)
		e.GET(pathBackfill+"/:id", s.handleGetBackfill, s.requireInvoker)
	}
	if s.opts.Coverage != nil {
		e.GET(pathCoverage, s.handleCoverage, s.requireInvoker)
	}
}
