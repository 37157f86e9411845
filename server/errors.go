package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// statusClientClosedRequest is logged when the caller went away.
const statusClientClosedRequest = 499

// classifyHTTPError returns the status, the public message and the internal
// cause of a handler error. Only *echo.HTTPError messages are public; any
// other error is a 500 with a generic message.
func classifyHTTPError(err error) (code int, public string, internal error) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		public = http.StatusText(code)
		if m, ok := he.Message.(string); ok && m != "" {
			public = m
		}
		return code, public, he.Internal
	}
	if errors.Is(err, context.Canceled) {
		return statusClientClosedRequest, "client closed request", err
	}
	return http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError), err
}

// handleError is the one error handler: it logs the internal cause once
// (ERROR for 5xx, WARNING for 4xx; 4xx without a cause are left to the
// request log) and answers {"error": public message}. It does nothing when
// the response is already committed (slog-echo and errorResponder may pass
// the same error on).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, public, internal := classifyHTTPError(err)
	ctx := c.Request().Context()
	logger := logging.FromContext(ctx)
	switch {
	case code >= http.StatusInternalServerError:
		logger.ErrorContext(ctx, "request failed", "status", code, "error", internal)
	case internal != nil:
		logger.WarnContext(ctx, "request rejected", "status", code, "error", internal)
	}
	if code == statusClientClosedRequest {
		c.Response().WriteHeader(code)
		return
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(code)
	} else {
		werr = c.JSON(code, map[string]string{"error": public})
	}
	if werr != nil {
		logger.WarnContext(ctx, "failed to write error response", "error", werr, slog.Int("status", code))
	}
}
