package sentry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrRateLimited is wrapped by the error returned when the attempts or the
// caller's context ran out while Sentry kept answering 429.
var ErrRateLimited = errors.New("sentry rate limit exceeded")

// APIError is a non-2xx answer from Sentry (or a 3xx that was not followed).
// It never carries the token, the Authorization header or the response body
// beyond Sentry's "detail".
type APIError struct {
	StatusCode int
	// Endpoint is the method and path template, e.g.
	// "GET /api/0/projects/{org}/{project}/events/".
	Endpoint string
	// Path is the concrete request path (no query string), e.g.
	// "/api/0/projects/acme/backend/events/".
	Path string
	// Detail is Sentry's "detail" (a string, or the object's message), or a
	// short description of a body that was not Sentry JSON.
	Detail string
	// Code is detail.code when detail is an object (e.g. "sso-required").
	Code string
	// Location is the Location header of a 3xx (a renamed project).
	Location string
	// NewSlug is the new project slug reported with a 302 for a renamed
	// project, when Sentry gives it.
	NewSlug string
	// Scope is the token scope the endpoint requires (e.g. "project:read").
	Scope string
}

// Error renders the status, the endpoint, Sentry's detail and, for
// configuration errors, a hint naming what to check.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("sentry: ")
	switch {
	case e.Endpoint != "" && e.Path != "":
		method, _, _ := strings.Cut(e.Endpoint, " ")
		b.WriteString(method + " " + e.Path)
	case e.Endpoint != "":
		b.WriteString(e.Endpoint)
	default:
		b.WriteString("request")
	}
	fmt.Fprintf(&b, ": %d", e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Code != "" {
		b.WriteString(" (code " + e.Code + ")")
	}
	if h := e.hint(); h != "" {
		b.WriteString(" [hint: " + h + "]")
	}
	return b.String()
}

func (e *APIError) hint() string {
	switch {
	case e.StatusCode >= 300 && e.StatusCode < 400:
		if e.NewSlug != "" {
			return "the project was renamed to " + quoteHint(e.NewSlug) + "; address projects by numeric id"
		}
		if e.Location != "" {
			return "redirected to " + e.Location + "; not followed"
		}
		return "redirect not followed"
	case e.StatusCode == http.StatusUnauthorized:
		switch e.Code {
		case "sso-required", "2fa-required":
			return "the token's user must satisfy the organization's SSO/2FA policy; use an internal-integration token"
		}
		return "the token is missing, invalid, expired or revoked; check SENTRY_AUTH_TOKEN"
	case e.StatusCode == http.StatusForbidden:
		if e.Scope != "" {
			return "the token needs scope " + e.Scope + " and access to this organization/project (org auth tokens sntrys_ cannot read it)"
		}
		return "the token lacks the scope or access this endpoint needs"
	case e.StatusCode == http.StatusNotFound:
		return "check the organization and project (slug or id) and the base URL (region host, self-hosted root)"
	case e.StatusCode == http.StatusTooManyRequests:
		return "rate limited"
	}
	return ""
}

func quoteHint(s string) string { return `"` + s + `"` }

// IsPermanent reports whether err is a configuration or request error that a
// retry cannot fix: 3xx (renamed project), 400 (except "Query timeout…"), 401,
// 403, 404 and the other 4xx except 408 and 429; also answers whose JSON has
// an unexpected shape, answers larger than the body limit, and invalid
// queries rejected before sending.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return !retryableStatus(ae.StatusCode, ae.Detail) && ae.StatusCode >= 300 && ae.StatusCode < 500
	}
	var se *ShapeError
	if errors.As(err, &se) {
		return true
	}
	var tl *BodyTooLargeError
	if errors.As(err, &tl) {
		return true
	}
	var qe *QueryError
	return errors.As(err, &qe)
}

// retryableStatus reports whether a non-2xx status is worth retrying.
func retryableStatus(code int, detail string) bool {
	switch {
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return true
	case code >= 500:
		return true
	case code == http.StatusBadRequest:
		return strings.HasPrefix(detail, "Query timeout")
	}
	return false
}

// ShapeError is a 2xx answer that is valid JSON but not of the expected shape
// (for example an object where a list of rows was expected). It is permanent.
type ShapeError struct {
	Endpoint string
	Msg      string
}

func (e *ShapeError) Error() string {
	return "sentry: " + e.Endpoint + ": unexpected response: " + e.Msg
}

// BodyTooLargeError is an answer whose body exceeds the client's limit
// (Options.MaxBodyBytes). It is permanent: the same request returns the same
// page, and reading it whole could exhaust the container's memory. Nothing
// of the body is used, so nothing is silently truncated.
type BodyTooLargeError struct {
	// Endpoint is the method and path template; Path the concrete path.
	Endpoint string
	Path     string
	// StatusCode is the answer's HTTP status.
	StatusCode int
	// Limit is the limit in bytes.
	Limit int64
}

func (e *BodyTooLargeError) Error() string {
	method, _, _ := strings.Cut(e.Endpoint, " ")
	return fmt.Sprintf("sentry: %s %s: response body (HTTP %d) exceeds the %s limit; not retried: the same request "+
		"returns the same body", method, e.Path, e.StatusCode, formatBytes(e.Limit))
}

// formatBytes renders n as whole MiB or KiB when exact, else in bytes.
func formatBytes(n int64) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// QueryError is an invalid query rejected before anything was sent.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return "sentry: invalid query: " + e.Msg }

// bodyError is a 2xx answer whose body is truncated or not JSON. It is
// transient: retried.
type bodyError struct {
	endpoint string
	err      error
}

func (e *bodyError) Error() string {
	return "sentry: " + e.endpoint + ": malformed response body: " + e.err.Error()
}

func (e *bodyError) Unwrap() error { return e.err }
