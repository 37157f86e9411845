// Package failure classifies errors by what the caller should do about them:
// fix the configuration (retrying cannot help), retry later (progress is
// committed), or treat it as unexpected. It is the one classifier behind both
// the CLI's exit codes and the service's HTTP statuses, so the same failure
// gets the same answer wherever it surfaces.
//
// Errors are classified by marks anywhere in their chain: wrapping ErrConfig,
// a Transient mark, or an error type that reports its own Kind (the Sentry
// client's API errors do). The outermost mark wins, so a storage failure that
// happened while handling a Sentry error is classified as the storage
// failure. Unmarked context deadlines and network errors are transient.
package failure

import (
	"context"
	"errors"
	"net"
)

// Kind is the class of an error.
type Kind int

// The kinds of errors.
const (
	// KindNone is the kind of a nil error.
	KindNone Kind = iota
	// KindConfig: a bad token, a missing scope, an unknown organisation or
	// project, an invalid setting or request. Retrying cannot help until
	// someone changes something.
	KindConfig
	// KindTransient: Sentry or Cloud Storage unavailable, rate limited, a
	// deadline or the run's budget reached mid-request. Progress is
	// committed; a later attempt is expected to get past it.
	KindTransient
	// KindUnexpected: anything else (a bug, undecodable state).
	KindUnexpected
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindConfig:
		return "config"
	case KindTransient:
		return "transient"
	}
	return "unexpected"
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("configuration error")

// Classifier is implemented by error types that know their own kind.
type Classifier interface {
	FailureKind() Kind
}

// Classify returns the kind of err (KindNone for nil): the kind of the
// outermost error in its chain that classifies itself (a Transient or
// Permanent mark, a Sentry API error); else KindConfig when it wraps ErrConfig;
// else KindTransient for context deadlines, cancellations and network errors;
// else KindUnexpected.
func Classify(err error) Kind {
	if err == nil {
		return KindNone
	}
	var c Classifier
	if errors.As(err, &c) {
		return c.FailureKind()
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrConfig):
		return KindConfig
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &ne):
		return KindTransient
	}
	return KindUnexpected
}

// IsConfig reports whether err is a configuration error.
func IsConfig(err error) bool { return Classify(err) == KindConfig }

// IsTransient reports whether err is transient.
func IsTransient(err error) bool { return Classify(err) == KindTransient }

// mark gives an error a kind.
type mark struct {
	err  error
	kind Kind
}

func (m *mark) Error() string     { return m.err.Error() }
func (m *mark) Unwrap() error     { return m.err }
func (m *mark) FailureKind() Kind { return m.kind }

// Transient marks err as transient (nil stays nil).
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &mark{err: err, kind: KindTransient}
}

// Permanent marks err as a configuration error without changing its text
// (nil stays nil): retrying cannot help.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &mark{err: err, kind: KindConfig}
}

// ErrorKindAuth is logged as error_kind when Sentry rejected the credentials
// (401) or their scopes (403): the authentication alert counts these lines,
// so each such failure is logged with it exactly once.
const ErrorKindAuth = "sentry_auth"

// authFailure is implemented by errors that report a rejected credential
// (the Sentry client's API errors for 401 and 403).
type authFailure interface {
	AuthFailure() bool
}

// IsAuth reports whether err carries a rejected credential.
func IsAuth(err error) bool {
	var a authFailure
	return errors.As(err, &a) && a.AuthFailure()
}

// Hint adds to a configuration error what to check ("check SENTRY_ORG and
// that the token has the event:read scope"); other errors are returned as
// they are, since the hint would only mislead.
func Hint(err error, hint string) error {
	if !IsConfig(err) {
		return err
	}
	return &hinted{err: err, hint: hint}
}

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + " (" + h.hint + ")" }
func (h *hinted) Unwrap() error { return h.err }
