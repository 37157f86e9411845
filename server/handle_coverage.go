package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/secops-collectors/sentry-gcs/internal/coverage"
)

// pathCoverage is the coverage ledger's report.
const pathCoverage = "/coverage"

// defaultCoverageSince is how far back a report goes without since.
const defaultCoverageSince = 24 * time.Hour

// Coverager reads the coverage ledger. *app implements it.
type Coverager interface {
	Coverage(ctx context.Context, since time.Time, projects []string) (*coverage.Report, error)
}

// parseSince reads a report's start: a duration back from now ("24h",
// "90m") or an RFC 3339 time; "" is the default.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now.Add(-defaultCoverageSince), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since must be a positive duration such as 24h or an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", s)
}

// handleCoverage serves GET /coverage?since=24h&projects=a,b: the ledger's
// rows and verdict as JSON (200 whatever the verdict: read "ok").
func (s *Server) handleCoverage(c echo.Context) error {
	since, err := parseSince(c.QueryParam("since"), time.Now().UTC())
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error()).SetInternal(fmt.Errorf("%w: %w", errBadRequest, err))
	}
	var projects []string
	if p := strings.TrimSpace(c.QueryParam("projects")); p != "" {
		projects = splitList(p)
	}
	rep, err := s.opts.Coverage.Coverage(c.Request().Context(), since, projects)
	if err != nil {
		return runFailure("reading the coverage ledger", err)
	}
	return c.JSON(http.StatusOK, rep)
}
