package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// leaseDoc is the lease document.
type leaseDoc struct {
	Owner    string    `json:"owner"`
	Expiry   time.Time `json:"expiry"`
	Acquired time.Time `json:"acquired,omitzero"`
}

// objectLeaser keeps leases as JSON documents updated by compare-and-swap.
// The lease is advisory: it keeps runs from wasting work on each other, while
// correctness rests on the checkpoints' compare-and-swap alone.
type objectLeaser struct {
	store Objects
	clock clock.Clock
}

var _ Leaser = (*objectLeaser)(nil)

func (l *objectLeaser) read(ctx context.Context, key string) (*leaseDoc, int64, error) {
	data, gen, err := l.store.Read(ctx, key)
	if errors.Is(err, sink.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read lease %s: %w", key, err)
	}
	var d leaseDoc
	if err := json.Unmarshal(data, &d); err != nil {
		// A corrupt lease must not block the stream forever: treat it
		// as expired and overwrite it by compare-and-swap.
		return &leaseDoc{}, gen, nil
	}
	return &d, gen, nil
}

func (l *objectLeaser) write(ctx context.Context, key string, d leaseDoc, gen int64) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("failed to encode lease: %w", err)
	}
	_, err = l.store.Write(ctx, key, data, contentTypeJSON, gen)
	return err
}

// Acquire takes the lease unless another owner's lease is unexpired.
func (l *objectLeaser) Acquire(ctx context.Context, key, owner string, ttl time.Duration) error {
	d, gen, err := l.read(ctx, key)
	if err != nil {
		return err
	}
	now := l.clock.Now()
	if d != nil && d.Owner != owner && d.Owner != "" && now.Before(d.Expiry) {
		return fmt.Errorf("failed to acquire lease %s: %w (owner %s until %s)", key, ErrLeaseHeld, d.Owner, d.Expiry.UTC().Format(time.RFC3339))
	}
	err = l.write(ctx, key, leaseDoc{Owner: owner, Expiry: now.Add(ttl), Acquired: now}, gen)
	if errors.Is(err, sink.ErrPrecondition) {
		if l.ownedBy(ctx, key, owner) {
			return nil
		}
		return fmt.Errorf("failed to acquire lease %s: %w (taken concurrently)", key, ErrLeaseHeld)
	}
	if err != nil {
		return fmt.Errorf("failed to acquire lease %s: %w", key, err)
	}
	return nil
}

// Renew extends the lease if owner still holds it.
func (l *objectLeaser) Renew(ctx context.Context, key, owner string, ttl time.Duration) error {
	d, gen, err := l.read(ctx, key)
	if err != nil {
		return err
	}
	if d == nil || d.Owner != owner {
		return fmt.Errorf("failed to renew lease %s: %w", key, ErrLeaseLost)
	}
	now := l.clock.Now()
	err = l.write(ctx, key, leaseDoc{Owner: owner, Expiry: now.Add(ttl), Acquired: d.Acquired}, gen)
	if errors.Is(err, sink.ErrPrecondition) {
		if l.ownedBy(ctx, key, owner) {
			return nil
		}
		return fmt.Errorf("failed to renew lease %s: %w", key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("failed to renew lease %s: %w", key, err)
	}
	return nil
}

// ownedBy re-reads the lease after a lost compare-and-swap: a retried write
// whose first attempt landed reports a precondition failure, yet the lease
// is ours.
func (l *objectLeaser) ownedBy(ctx context.Context, key, owner string) bool {
	d, _, err := l.read(ctx, key)
	return err == nil && d != nil && d.Owner == owner && l.clock.Now().Before(d.Expiry)
}

// Release expires the lease if owner still holds it.
func (l *objectLeaser) Release(ctx context.Context, key, owner string) error {
	d, gen, err := l.read(ctx, key)
	if err != nil {
		return err
	}
	if d == nil || d.Owner != owner {
		return nil
	}
	err = l.write(ctx, key, leaseDoc{Owner: "", Expiry: l.clock.Now()}, gen)
	if err != nil && !errors.Is(err, sink.ErrPrecondition) {
		return fmt.Errorf("failed to release lease %s: %w", key, err)
	}
	return nil
}

// noLease is a Leaser that always succeeds (tests of concurrent writers,
// which must stay correct without the lease).
type noLease struct{}

func (noLease) Acquire(context.Context, string, string, time.Duration) error { return nil }
func (noLease) Renew(context.Context, string, string, time.Duration) error   { return nil }
func (noLease) Release(context.Context, string, string) error                { return nil }

// stateLeaser adapts state.Leases (the shared lease implementation) to
// Leaser. It is used when the state store can also delete objects (sink.GCS
// and sink.Dir can); objectLeaser is the fallback for plain stores.
type stateLeaser struct {
	m    *state.Leases
	mu   sync.Mutex
	held map[string]*state.Lease // key + "\x00" + owner → lease
}

var _ Leaser = (*stateLeaser)(nil)

func newStateLeaser(objs state.Objects, clk clock.Clock) *stateLeaser {
	return &stateLeaser{m: state.NewLeases(objs, clk), held: make(map[string]*state.Lease)}
}

func (s *stateLeaser) Acquire(ctx context.Context, key, owner string, ttl time.Duration) error {
	l, err := s.m.Acquire(ctx, key, owner, ttl)
	if errors.Is(err, state.ErrLeaseHeld) {
		return fmt.Errorf("%w: %w", ErrLeaseHeld, err)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.held[key+"\x00"+owner] = l
	s.mu.Unlock()
	return nil
}

func (s *stateLeaser) lease(key, owner string) *state.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[key+"\x00"+owner]
}

func (s *stateLeaser) Renew(ctx context.Context, key, owner string, ttl time.Duration) error {
	l := s.lease(key, owner)
	if l == nil {
		return fmt.Errorf("failed to renew lease %s: %w: not acquired", key, ErrLeaseLost)
	}
	err := l.Renew(ctx, ttl)
	if errors.Is(err, state.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	return err
}

func (s *stateLeaser) Release(ctx context.Context, key, owner string) error {
	l := s.lease(key, owner)
	if l == nil {
		return nil
	}
	s.mu.Lock()
	delete(s.held, key+"\x00"+owner)
	s.mu.Unlock()
	err := l.Release(ctx)
	if errors.Is(err, state.ErrLeaseLost) {
		return nil // someone else has it now: nothing to give up
	}
	return err
}
