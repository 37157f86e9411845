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
