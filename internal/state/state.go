// Package state keeps the collector's state (checkpoints such as watermarks
// and recent event ids, and leases) as small JSON documents in object
// storage, outside the data prefix. Every change is a compare-and-swap on
// the object's generation, so concurrent runs never lose each other's
// updates: a writer working from a stale copy gets ErrConflict and must
// reload.
//
// The package works on any store with the Objects methods; internal/sink
// provides Cloud Storage and local-directory implementations.
package state

import (
	"context"
	"errors"
	"strings"
)

// Objects is the part of a sink this package needs.
type Objects interface {
	// Read returns the object's content and generation, or an error
	// wrapping sink.ErrNotFound.
	Read(ctx context.Context, name string) ([]byte, int64, error)
	// Write stores data if the object's generation is ifGeneration (0: it
	// must not exist) and returns the new generation, or an error wrapping
	// sink.ErrPrecondition.
	Write(ctx context.Context, name string, data []byte, contentType string, ifGeneration int64) (int64, error)
	// Delete removes the object if its generation is ifGeneration.
	Delete(ctx context.Context, name string, ifGeneration int64) error
}

// ContentType is the content type of state documents.
const ContentType = "application/json"

// ErrUndecodable is wrapped when a stored document is not valid JSON of the
// expected shape: a storage read succeeded, but the document needs an
// operator (or a rebuild), not a retry.
var ErrUndecodable = errors.New("state document cannot be decoded")

// ErrConflict is returned when a document changed since it was loaded (its
// generation no longer matches).
var ErrConflict = errors.New("state changed concurrently")

// Key joins a state prefix and parts with "/", ignoring empty parts and
// leading or trailing slashes, so that Key("sentry/state/", "lease", "events")
// is "sentry/state/lease/events". The result never starts with "/".
func Key(prefix string, parts ...string) string {
	segs := make([]string, 0, len(parts)+1)
	for _, p := range append([]string{prefix}, parts...) {
		if p = strings.Trim(p, "/"); p != "" {
			segs = append(segs, p)
		}
	}
	return strings.Join(segs, "/")
}

// Inside reports whether the data and state prefixes overlap: the state
// prefix lies inside the data prefix (a feed reading the data prefix would
// ingest or delete the state), or the data prefix lies inside the state
// prefix. Prefixes are compared as folders: leading slashes are ignored and a
// missing trailing slash is added, so "sentry/events" and "sentry/events/"
// are the same prefix, and "sentry/events-state/" is not inside either. An
// empty prefix is the whole bucket and overlaps everything.
func Inside(dataPrefix, statePrefix string) bool {
	d, s := folder(dataPrefix), folder(statePrefix)
	return strings.HasPrefix(s, d) || strings.HasPrefix(d, s)
}

func folder(p string) string {
	p = strings.TrimLeft(p, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}
