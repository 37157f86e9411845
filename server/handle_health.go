package main

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/secops-collectors/sentry-gcs/internal/buildinfo"
)

// healthResponse is GET /health's body.
type healthResponse struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// handleHealth answers GET /health with the build's version and commit.
func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, healthResponse{Status: "ok", Version: buildinfo.Version, Commit: buildinfo.Commit})
}
