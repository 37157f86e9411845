package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	slogecho "github.com/samber/slog-echo"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// recoverer turns a panic into an error (with the stack) for errorResponder
// and the error handler, which log it once.
func (s *Server) recoverer() echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll:     true,
		DisableErrorHandler: true,
		LogErrorFunc: func(_ echo.Context, err error, stack []byte) error {
			return fmt.Errorf("panic: %w\n%s", err, stack)
		},
	})
}

// maxRequestIDLen bounds a caller's X-Request-Id: UUIDs, Cloud Run's and
// most proxies' ids are shorter.
const maxRequestIDLen = 64

// requestID keeps a caller's X-Request-Id when it is short and plain (see
// plainRequestID), else replaces it with a generated one, and echoes it in
// the response. The id goes on every log line of the request and the caller
// needs no authentication, so an unchecked one could make each line as long
// as the header limit allows, or smuggle quotes and control characters.
func (s *Server) requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			id := req.Header.Get(echo.HeaderXRequestID)
			if !plainRequestID(id) {
				id = rand.Text()
				// The request logger reads the request's header first.
				req.Header.Set(echo.HeaderXRequestID, id)
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			return next(c)
		}
	}
}

// plainRequestID reports whether id is 1 to maxRequestIDLen characters of
// [A-Za-z0-9._:-].
func plainRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// contextLogger puts a logger carrying the request id and the Cloud Trace
// attributes (from X-Cloud-Trace-Context or traceparent) in the request's
// context; handlers add the Pub/Sub message id. The same attributes go on
// the request log line.
func (s *Server) contextLogger(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		attrs := logging.TraceAttrs(s.opts.ProjectID, req.Header.Get("X-Cloud-Trace-Context"), req.Header.Get("Traceparent"))
		for _, a := range attrs {
			slogecho.AddCustomAttributes(c, a)
		}
		args := make([]any, 0, len(attrs)+1)
		if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" {
			args = append(args, slog.String("request_id", id))
		}
		for _, a := range attrs {
			args = append(args, a)
		}
		logger := s.opts.Logger.With(args...)
		c.SetRequest(req.WithContext(logging.WithLogger(req.Context(), logger)))
		return next(c)
	}
}

func init() {
	// slog-echo's request id key is "id"; use the same snake_case key as
	// every other line of the request.
	slogecho.RequestIDKey = "request_id"
}

// requestLineLimits bound the request log line tighter than the server's
// other lines: it is written for every request, authenticated or not, and a
// kilobyte of a path or a header says enough.
var requestLineLimits = logging.Limits{Value: 1 << 10, Record: 6 << 10}

// requestLogger writes one line per request through slog-echo. That line
// carries the caller's path (twice, with the route's parameters), query,
// User-Agent and Referer, all unchecked and unauthenticated, so it is
// bounded by requestLineLimits.
func (s *Server) requestLogger() echo.MiddlewareFunc {
	logger := slog.New(logging.BoundedBy(s.opts.Logger.Handler(), requestLineLimits))
	return slogecho.NewWithConfig(logger, slogecho.Config{
		DefaultLevel:     slog.LevelInfo,
		ClientErrorLevel: slog.LevelWarn,
		ServerErrorLevel: slog.LevelError,
		WithRequestID:    true,
		WithUserAgent:    true,
	})
}

// errorResponder answers a handler's error through handleError (which logs
// the cause once and sends only the public message), then returns a bare
// HTTPError with the status and public message, so that the request log
// shows the final status without repeating the internal cause.
func (s *Server) errorResponder(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil {
			return nil
		}
		s.handleError(err, c)
		code, msg, _ := classifyHTTPError(err)
		return echo.NewHTTPError(code, msg)
	}
}

// bodyLimit rejects bodies larger than MaxBodyBytes with 413.
func (s *Server) bodyLimit() echo.MiddlewareFunc {
	return middleware.BodyLimit(strconv.FormatInt(s.opts.MaxBodyBytes, 10) + "B")
}

// requireToken verifies the push OIDC token before the body is read: 401 for
// a missing or invalid token, 403 for an identity that is not allowed, 503
// when the token cannot be checked. With
// authentication disabled (local mode) it lets everything through.
func (s *Server) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	if s.opts.Verifier == nil {
		return next
	}
	return func(c echo.Context) error {
		if err := verifyCaller(c, s.opts.Verifier, "caller is not allowed"); err != nil {
			return err
		}
		return next(c)
	}
}

// verifyCaller checks the request's bearer token with v: 401 (with
// WWW-Authenticate) for a missing or invalid token, 403 with forbidden for a
// valid token of an identity v does not allow, and 503 when the token could
// not be checked (Google's certificates unreachable: Pub/Sub retries, and the
// log points at connectivity, not at the caller). On success the caller's
// email goes into the request's logger and the context (key "caller").
func verifyCaller(c echo.Context, v Verifier, forbidden string) error {
	req := c.Request()
	id, err := v.Verify(req.Context(), req.Header.Get(echo.HeaderAuthorization))
	switch {
	case errors.Is(err, auth.ErrForbidden):
		return echo.NewHTTPError(http.StatusForbidden, forbidden).SetInternal(err)
	case errors.Is(err, auth.ErrUnavailable):
		return echo.NewHTTPError(http.StatusServiceUnavailable, "token verification unavailable, retry later").SetInternal(err)
	case err != nil:
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
		if errors.Is(err, auth.ErrMissingToken) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, "Bearer")
		}
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or invalid bearer token").SetInternal(err)
	}
	ctx := req.Context()
	c.Set("caller", id.Email)
	logger := logging.FromContext(ctx).With("caller", id.Email)
	c.SetRequest(req.WithContext(logging.WithLogger(ctx, logger)))
	return nil
}
