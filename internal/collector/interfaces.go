package collector

import (
	"context"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// SentryAPI is the part of the Sentry client the events stream uses.
// *sentry.Client implements it.
type SentryAPI interface {
	ListProjects(ctx context.Context, org, cursor string) (sentry.Page[sentry.Project], error)
	ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error)
}

// metricsSource is implemented by clients that count their requests
// (*sentry.Client does); the run summary reports the delta over the run.
type metricsSource interface {
	Metrics() sentry.Metrics
}

// Objects is the storage the collector writes to: write-once data objects
// (Create) and compare-and-swap state documents (Read, Write). sink.GCS and
// sink.Dir implement it. Errors follow the sink package: sink.ErrExists,
// sink.ErrNotFound, sink.ErrPrecondition, and sink.IsTransient.
type Objects interface {
	// Create stores data under name unless the name exists; an identical
	// existing object is success, a different one an error wrapping
	// sink.ErrExists.
	Create(ctx context.Context, name string, data []byte, contentType string) error
	// Read returns the object's bytes and generation, or sink.ErrNotFound.
	Read(ctx context.Context, name string) ([]byte, int64, error)
	// Write replaces name if its generation is ifGeneration (0: must not
	// exist), else fails with sink.ErrPrecondition.
	Write(ctx context.Context, name string, data []byte, contentType string, ifGeneration int64) (int64, error)
}

// Leaser keeps two runs off the same stream. The default implementation
// (see lease.go) stores the lease as a JSON document in the state store.
type Leaser interface {
	// Acquire takes the lease for owner for ttl, failing with an error
	// wrapping ErrLeaseHeld while another owner's lease is unexpired.
	Acquire(ctx context.Context, key, owner string, ttl time.Duration) error
	// Renew extends owner's lease; it fails with an error wrapping
	// ErrLeaseHeld (or ErrLeaseLost) when owner no longer holds it.
	Renew(ctx context.Context, key, owner string, ttl time.Duration) error
	// Release gives the lease up if owner still holds it.
	Release(ctx context.Context, key, owner string) error
}

// countRequests runs fn and adds to sum the requests and 429 answers api made
// meanwhile, when api counts them (metricsSource).
func countRequests(api any, sum *Summary, fn func() error) error {
	ms, ok := api.(metricsSource)
	if !ok {
		return fn()
	}
	before := ms.Metrics()
	err := fn()
	after := ms.Metrics()
	sum.Requests = after.Requests - before.Requests
	sum.RateLimited = after.RateLimited - before.RateLimited
	return err
}
