// Package engine is the exactly-once mechanism that every stream of the
// collector shares. A source (events, issues, audit log, backfill) knows
// Sentry: what to read next, how a page becomes records with ids, what its
// state document holds. The engine knows everything else:
//
//   - a run: its budget and deadline (the tighter of the budget and the
//     caller's context), the soft stop (SIGTERM), and the lease that keeps
//     two runs off the same state;
//   - reading: a page request bounded so that what was read can still be
//     written and committed (Fetch), and a turn that reads pages into one
//     batch and writes it (Turn);
//   - writing: write-once objects whose names are a function of committed
//     state, Create with a does-not-exist precondition, recovery of an
//     object found under the current name (read back, absorb its ids,
//     advance), and the compare-and-swap commit (Write, Doc);
//   - the run summary, logged once per run;
//   - what every source's constructor checks first (Env.CheckSource), and
//     the reading loop of a source whose state is one document (Passes).
//
// DESIGN.md next to this file explains why each piece is there.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// Objects is where data objects go: write-once Create, and Read to read an
// object back. sink.GCS, sink.Dir and sink.Memory implement it.
type Objects interface {
	// Create stores data under name unless the name exists; an identical
	// existing object is success, a different one an error wrapping
	// sink.ErrExists.
	Create(ctx context.Context, name string, data []byte, contentType string) error
	// Read returns the object's bytes and generation, or an error wrapping
	// sink.ErrNotFound.
	Read(ctx context.Context, name string) ([]byte, int64, error)
}

// Counters reads the Sentry client's cumulative request counters (requests
// sent, 429 answers); the summary reports their change over the run.
// sentry.Client.RequestCounts is one.
type Counters func() (requests, rateLimited int64)

// Config configures one run.
type Config struct {
	// Stream names the run in its summary and logs (events, issues, audit,
	// backfill).
	Stream string
	// Data receives the data objects; State holds state documents and
	// leases. They may be the same store.
	Data  Objects
	State state.Objects
	// Budget bounds the run (see Run.Remaining); required.
	Budget time.Duration
	// Clock defaults to clock.Real{}.
	Clock clock.Clock
	// RunID identifies the run in logs, state documents and as the lease
	// owner; default random.
	RunID string
	// Stop, when closed, asks the run to stop softly: no new page request
	// is started, one in flight is cut, and what was read is written and
	// committed (the server closes it on SIGTERM).
	Stop <-chan struct{}
	// LeaseKey is the state key of the run's lease; "" runs without one
	// (only a caller that holds its own lock may do that).
	LeaseKey string
	// NoLease runs without taking LeaseKey. Correctness never rests on the
	// lease (every state change is a compare-and-swap); tests of concurrent
	// writers set it to check exactly that.
	NoLease bool
	// Counters, when set, reads the Sentry client's request counters.
	Counters Counters
	// RecordsKey, when set, also logs the records written under this key
	// (the events stream's "events_written", which a metric reads).
	RecordsKey string
}

// Tuning constants.
const (
	// MaxPagesPerObject bounds how many pages go into one data object.
	MaxPagesPerObject = 10
	// MaxObjectBytes closes a batch once it reaches this size.
	MaxObjectBytes = 8 << 20
	// MinSafetyMargin is the least time kept in reserve before the
	// deadline: no page request or write starts with less left.
	MinSafetyMargin = 3 * time.Second
)

// Errors a run uses to steer its caller.
var (
	// ErrStop ends a turn early without an error: the budget is reached or
	// a soft stop was requested. What was read is committed.
	ErrStop = errors.New("stop")
	// ErrStopped is the cause of a page request cut by the soft stop.
	ErrStopped = errors.New("stop requested")
	// ErrBudgetExhausted is wrapped when the budget ran out while a request
	// was in flight.
	ErrBudgetExhausted = errors.New("run budget exhausted")
)

// Run is one bounded run of a stream.
type Run struct {
	cfg      Config
	clock    clock.Clock
	start    time.Time
	deadline time.Time
	requests int64 // the client's counters at the start
	limited  int64

	lease *keeper

	mu       sync.Mutex
	maxPage  time.Duration // longest page request seen
	maxWrite time.Duration // longest write + commit seen
	sum      Summary
}

// Start begins a run: the deadline is the tighter of the budget and ctx's
// deadline.
func Start(ctx context.Context, cfg Config) *Run {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.RunID == "" {
		cfg.RunID = NewRunID()
	}
	start := cfg.Clock.Now()
	r := &Run{
		cfg:      cfg,
		clock:    cfg.Clock,
		start:    start,
		deadline: start.Add(cfg.Budget),
		sum:      Summary{RunID: cfg.RunID, Stream: cfg.Stream, recordsKey: cfg.RecordsKey},
	}
	if dl, ok := ctx.Deadline(); ok {
		// The caller's deadline is on the real clock: honour it when it
		// is tighter than the budget.
		if rem := time.Until(dl); rem < cfg.Budget {
			r.deadline = start.Add(rem)
		}
	}
	if cfg.Counters != nil {
		r.requests, r.limited = cfg.Counters()
	}
	return r
}

// NewRunID returns a random run id.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is the run's id (the lease owner).
func (r *Run) ID() string { return r.cfg.RunID }

// Now is the run's clock.
func (r *Run) Now() time.Time { return r.clock.Now() }

// Clock is the run's clock.
func (r *Run) Clock() clock.Clock { return r.clock }

// Summary gives access to the run's summary while it runs; sources add their
// counts to it. Not safe for concurrent use.
func (r *Run) Summary() *Summary { return &r.sum }

// Remaining is the time left before the deadline.
func (r *Run) Remaining() time.Duration { return r.deadline.Sub(r.clock.Now()) }

// StopRequested reports whether the soft stop was given.
func (r *Run) StopRequested() bool {
	if r.cfg.Stop == nil {
		return false
	}
	select {
	case <-r.cfg.Stop:
		return true
	default:
		return false
	}
}

// writeReserve is the time kept to write and commit a batch.
func (r *Run) writeReserve() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return MinSafetyMargin + 2*r.maxWrite
}

// pageReserve is the time needed to start a page request.
func (r *Run) pageReserve() time.Duration {
	r.mu.Lock()
	mp := r.maxPage
	r.mu.Unlock()
	return r.writeReserve() + mp
}

// CanRead reports whether a page request may start: enough budget is left to
// read a page and still write and commit, and no soft stop was requested.
func (r *Run) CanRead() bool {
	return r.Remaining() >= r.pageReserve() && !r.StopRequested()
}

// Leased runs fn holding the run's lease. When another run holds it, fn does
// not run, the summary says so (LeaseHeld, with the holder and its expiry)
// and the result is nil.
func (r *Run) Leased(ctx context.Context, fn func() error) error {
	if r.cfg.LeaseKey == "" || r.cfg.NoLease {
		return fn()
	}
	k, err := acquire(ctx, r, r.cfg.LeaseKey)
	var held *state.HeldError
	switch {
	case errors.As(err, &held):
		r.sum.LeaseHeld = true
		r.sum.LeaseHolder, r.sum.LeaseUntil = held.Owner, held.Until
		return nil
	case err != nil:
		return err
	}
	r.lease = k
	defer func() {
		k.release(ctx)
		r.lease = nil
	}()
	return fn()
}

// WithLease runs fn while holding the lease at key as well as the run's own
// (renewed with it). It returns an error wrapping state.ErrLeaseHeld, without
// running fn, when another run holds key.
func (r *Run) WithLease(ctx context.Context, key string, fn func() error) error {
	if r.cfg.NoLease {
		return fn()
	}
	k, err := acquire(ctx, r, key)
	if err != nil {
		return err
	}
	if r.lease != nil {
		r.lease.add(k)
		defer r.lease.remove(k)
	}
	defer k.release(ctx)
	return fn()
}

// keepLease renews the run's leases when due; a lost lease stops all
// writing.
func (r *Run) keepLease(ctx context.Context) error {
	if r.lease == nil {
		return nil
	}
	return r.lease.keep(ctx)
}

// Finish completes the summary and logs it once ("run summary", ERROR with
// the error when err is not nil). It returns the summary.
func (r *Run) Finish(ctx context.Context, err error) Summary {
	r.sum.Duration = r.clock.Now().Sub(r.start)
	if r.cfg.Counters != nil {
		req, lim := r.cfg.Counters()
		r.sum.Requests, r.sum.RateLimited = req-r.requests, lim-r.limited
	}
	r.sum.log(ctx, err)
	return r.sum
}

// Do runs one run of cfg: fn under the lease, then Finish. It returns the
// summary and fn's error.
func Do(ctx context.Context, cfg Config, fn func(r *Run) error) (Summary, error) {
	r := Start(ctx, cfg)
	err := r.Leased(ctx, func() error { return fn(r) })
	return r.Finish(ctx, err), err
}

// Env is what a source needs from its surroundings to start runs: the
// stores, the clock, the soft stop. The server builds one per process (with
// its drain signal); tests build their own.
type Env struct {
	Data  Objects
	State state.Objects
	Clock clock.Clock
	// Stop is the soft stop of every run (see Config.Stop).
	Stop <-chan struct{}
	// RunID fixes the id of every run (tests); "" gives each run a random
	// one, which is what production needs: the run id is the lease owner,
	// and two runs must never share it.
	RunID string
	// NoLease: see Config.NoLease.
	NoLease bool
	// Counters: see Config.Counters.
	Counters Counters
}

// Check reports an Env that cannot run anything.
func (e Env) Check() error {
	if e.Data == nil || e.State == nil {
		return fmt.Errorf("%w: a data store and a state store are required", failure.ErrConfig)
	}
	return nil
}

// Config is the configuration of one run of stream under the lease at
// leaseKey, bounded by budget.
func (e Env) Config(stream, leaseKey string, budget time.Duration) Config {
	return Config{
		Stream: stream, Data: e.Data, State: e.State, Budget: budget, Clock: e.Clock,
		RunID: e.RunID, Stop: e.Stop, LeaseKey: leaseKey, NoLease: e.NoLease, Counters: e.Counters,
	}
}

// Now is the Env's clock's time (the wall clock when none is set).
func (e Env) Now() time.Time {
	if e.Clock == nil {
		return time.Now()
	}
	return e.Clock.Now()
}
