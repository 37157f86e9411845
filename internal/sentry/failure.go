package sentry

import (
	"net/http"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// FailureKind classifies the error for failure.Classify: an answer that a
// retry cannot change (a rejected token, a missing scope, an unknown
// organisation or project, a refused query) is a configuration problem;
// 429, 5xx and the like are transient.
func (e *APIError) FailureKind() failure.Kind {
	if IsPermanent(e) {
		return failure.KindConfig
	}
	return failure.KindTransient
}

// AuthFailure reports a rejected token (401) or a missing scope or access
// (403): the authentication alert counts these.
func (e *APIError) AuthFailure() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// FailureKind: an answer of an unexpected shape is neither a configuration
// problem nor expected to pass; it needs a look.
func (e *ShapeError) FailureKind() failure.Kind { return failure.KindUnexpected }

// FailureKind: a query rejected before sending is a bug in the caller.
func (e *QueryError) FailureKind() failure.Kind { return failure.KindUnexpected }

// FailureKind: a truncated or non-JSON body is retried, and still transient
// when the retries run out.
func (e *bodyError) FailureKind() failure.Kind { return failure.KindTransient }

var (
	_ failure.Classifier = (*APIError)(nil)
	_ failure.Classifier = (*ShapeError)(nil)
	_ failure.Classifier = (*QueryError)(nil)
	_ failure.Classifier = (*bodyError)(nil)
)

// FailureKind: a page larger than the cap stays larger however often it is
// asked for; it needs an operator (a larger cap, or a look at the project).
func (e *BodyTooLargeError) FailureKind() failure.Kind { return failure.KindConfig }

var _ failure.Classifier = (*BodyTooLargeError)(nil)
