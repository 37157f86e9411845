// Package sink stores objects: write-once data objects and small state
// documents updated by compare-and-swap on a generation number. Two backends
// share one API: GCS (Cloud Storage through cloud.google.com/go/storage) and
// Dir (a local directory with the same layout as the bucket, the default when
// no bucket is configured).
//
// Every backend offers:
//
//	Create(ctx, name, data, contentType) error
//	Read(ctx, name) (data, generation, error)
//	Write(ctx, name, data, contentType, ifGeneration) (newGeneration, error)
//	List(ctx, prefix) ([]string, error)
//	Delete(ctx, name, ifGeneration) error
//
// Create has a does-not-exist precondition and is meant for data objects
// that are never rewritten. Because uploads are retried (the precondition
// makes a retry idempotent), a retried Create whose first attempt did land
// sees its own object: Create then reads the object back and returns nil when
// the stored bytes are identical to data, and ErrExists otherwise. So a
// retried write of the same content is recognised, never duplicated, and a
// different object under the same name is never overwritten.
//
// Write is a compare-and-swap: ifGeneration 0 means the object must not
// exist, any other value must equal the current generation; a mismatch is
// ErrPrecondition. Generations of one name never repeat, even across a
// Delete and a re-create, so a stale generation can never match again.
package sink

import (
	"errors"
)

// ContentTypeNDJSON is the content type of data objects.
const ContentTypeNDJSON = "application/x-ndjson"

// ErrExists is returned by Create when an object with different content
// already exists under the name.
var ErrExists = errors.New("object already exists")

// ErrNotFound is returned when the object does not exist.
var ErrNotFound = errors.New("object not found")

// ErrPrecondition is returned by Write and Delete when the object's current
// generation is not the expected one (a lost compare-and-swap).
var ErrPrecondition = errors.New("generation precondition failed")

// transientError marks an error that may succeed if the operation is tried
// again later: 408, 429 and 5xx responses, network failures, timeouts.
type transientError struct{ err error }

func (e *transientError) Error() string { return "transient: " + e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// markTransient wraps err so that IsTransient reports true.
func markTransient(err error) error {
	if err == nil || IsTransient(err) {
		return err
	}
	return &transientError{err: err}
}

// IsTransient reports whether err (or an error it wraps) is a transient
// storage failure, such as a 503 or 429 from Cloud Storage or a network
// error, as opposed to a precondition failure, a missing object or a
// permanent error (permission denied, bad request). Callers report transient
// failures as "try again later".
func IsTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}
