package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// ErrLeaseHeld is returned by Acquire when another owner holds an unexpired
// lease; the error message names the holder and the expiry.
var ErrLeaseHeld = errors.New("lease held by another owner")

// ErrLeaseLost is returned by Renew, Release and Check when the lease is no
// longer ours: another owner took it over (after it expired), or it expired.
var ErrLeaseLost = errors.New("lease lost")

// maxAcquireAttempts bounds Acquire's retries after losing a race to write
// the lease document.
const maxAcquireAttempts = 5

// leaseRecord is the lease document.
type leaseRecord struct {
	Owner      string     `json:"owner"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AcquiredAt time.Time  `json:"acquired_at"`
	RenewedAt  *time.Time `json:"renewed_at,omitempty"`
	ReleasedAt *time.Time `json:"released_at,omitempty"`
}

// free reports whether the record lets owner take the lease at now.
func (r *leaseRecord) free(owner string, now time.Time) bool {
	return r.ReleasedAt != nil || r.Owner == owner || !now.Before(r.ExpiresAt)
}

// Leases hands out leases: documents naming an owner and an expiry, taken
// and renewed by compare-and-swap. A lease keeps two runs off the same work;
// a crashed holder's lease simply expires. Expiry is judged by the injected
// clock, so holders should renew well before the TTL runs out, and the state
// they guard must itself be updated by compare-and-swap (Doc), which stays
// safe even if two holders ever overlap because of clock skew.
type Leases struct {
	objs  Objects
	clock clock.Clock
}

// NewLeases returns Leases over objs; a nil clk means the wall clock.
func NewLeases(objs Objects, clk clock.Clock) *Leases {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Leases{objs: objs, clock: clk}
}

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	// Key is the lease document's key; Owner the holder's identity.
	Key   string
	Owner string

	leases *Leases
	mu     sync.Mutex
	rec    leaseRecord
	gen    int64 // 0 once released
}

// Expiry returns the time the lease expires unless renewed.
func (l *Lease) Expiry() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.ExpiresAt
}

// AcquiredAt returns the time the lease was acquired.
func (l *Lease) AcquiredAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.AcquiredAt
}

// read returns the lease document at key (nil if absent) and its generation.
func (m *Leases) read(ctx context.Context, key string) (*leaseRecord, int64, error) {
	raw, gen, err := m.objs.Read(ctx, key)
	if errors.Is(err, sink.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read lease %s: %w", key, err)
	}
	var rec leaseRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		// A corrupt lease must not block its stream forever: treat it as
		// expired (a zero record is free), so that Acquire takes it over by
		// compare-and-swap on this generation.
		logging.FromContext(ctx).ErrorContext(ctx, "lease document cannot be decoded; treating it as expired and taking it over",
			"lease", key, "generation", gen, "error", err)
		return &leaseRecord{}, gen, nil
	}
	return &rec, gen, nil
}

func (m *Leases) write(ctx context.Context, key string, rec *leaseRecord, ifGeneration int64) (int64, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("failed to encode lease %s: %w", key, err)
	}
	return m.objs.Write(ctx, key, raw, ContentType, ifGeneration) //nolint:wrapcheck // callers wrap
}

// HeldError is returned by Acquire when another owner holds the lease; it
// wraps ErrLeaseHeld and says who holds it and until when.
type HeldError struct {
	Key   string
	Owner string
	Until time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("failed to acquire lease %s: %v: held by %q until %s",
		e.Key, ErrLeaseHeld, e.Owner, e.Until.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrLeaseHeld) true.
func (e *HeldError) Unwrap() error { return ErrLeaseHeld }

func heldError(key string, rec *leaseRecord) error {
	return &HeldError{Key: key, Owner: rec.Owner, Until: rec.ExpiresAt}
}

// Acquire takes the lease at key for owner for ttl. It succeeds when there
// is no lease, when the lease was released or has expired, or when owner
// already holds it (the lease is then taken afresh); the takeover is a
// compare-and-swap, so of several contenders exactly one wins. If another
// owner holds an unexpired lease, the error wraps ErrLeaseHeld.
func (m *Leases) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (*Lease, error) {
	if owner == "" {
		return nil, fmt.Errorf("failed to acquire lease %s: empty owner", key)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("failed to acquire lease %s: ttl must be positive, got %s", key, ttl)
	}
	for range maxAcquireAttempts {
		cur, gen, err := m.read(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("failed to acquire lease: %w", err)
		}
		now := m.clock.Now()
		if cur != nil && !cur.free(owner, now) {
			return nil, heldError(key, cur)
		}
		rec := leaseRecord{Owner: owner, AcquiredAt: now, ExpiresAt: now.Add(ttl)}
		newGen, err := m.write(ctx, key, &rec, gen)
		if errors.Is(err, sink.ErrPrecondition) {
			continue // someone else wrote it first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("failed to acquire lease %s: %w", key, err)
		}
		return &Lease{Key: key, Owner: owner, leases: m, rec: rec, gen: newGen}, nil
	}
	return nil, fmt.Errorf("failed to acquire lease %s after %d attempts: %w", key, maxAcquireAttempts, ErrConflict)
}

// lostError describes who has the lease now, as far as can be told.
func (l *Lease) lostError(ctx context.Context, op string) error {
	cur, _, err := l.leases.read(ctx, l.Key)
	switch {
	case err != nil:
		return fmt.Errorf("failed to %s lease %s: %w (and %w)", op, l.Key, ErrLeaseLost, err)
	case cur == nil:
		return fmt.Errorf("failed to %s lease %s: %w: it was deleted", op, l.Key, ErrLeaseLost)
	case cur.ReleasedAt != nil:
		return fmt.Errorf("failed to %s lease %s: %w: released by %q", op, l.Key, ErrLeaseLost, cur.Owner)
	default:
		return fmt.Errorf("failed to %s lease %s: %w: now held by %q until %s",
			op, l.Key, ErrLeaseLost, cur.Owner, cur.ExpiresAt.UTC().Format(time.RFC3339))
	}
}

// Renew extends the lease to ttl from now, provided nobody else took it
// since it was acquired or last renewed (compare-and-swap); otherwise the
// error wraps ErrLeaseLost. A lease that expired but was not taken over is
// renewed.
func (l *Lease) Renew(ctx context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("failed to renew lease %s: ttl must be positive, got %s", l.Key, ttl)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen == 0 {
		return fmt.Errorf("failed to renew lease %s: %w: already released", l.Key, ErrLeaseLost)
	}
	now := l.leases.clock.Now()
	rec := l.rec
	rec.ExpiresAt = now.Add(ttl)
	rec.RenewedAt = &now
	gen, err := l.leases.write(ctx, l.Key, &rec, l.gen)
	if errors.Is(err, sink.ErrPrecondition) {
		return l.lostError(ctx, "renew")
	}
	if err != nil {
		return fmt.Errorf("failed to renew lease %s: %w", l.Key, err)
	}
	l.rec, l.gen = rec, gen
	return nil
}

// Release gives the lease up by marking the document released
// (compare-and-swap), so the next Acquire succeeds at once. If someone else
// took the lease meanwhile, their lease is left alone and the error wraps
// ErrLeaseLost. Releasing twice is a no-op.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen == 0 {
		return nil
	}
	now := l.leases.clock.Now()
	rec := l.rec
	rec.ExpiresAt = now
	rec.ReleasedAt = &now
	_, err := l.leases.write(ctx, l.Key, &rec, l.gen)
	if errors.Is(err, sink.ErrPrecondition) {
		return l.lostError(ctx, "release")
	}
	if err != nil {
		return fmt.Errorf("failed to release lease %s: %w", l.Key, err)
	}
	l.rec, l.gen = rec, 0
	return nil
}

// Check confirms the lease is still ours: the document is unchanged since we
// last wrote it and has not expired by the clock. Otherwise the error wraps
// ErrLeaseLost (an expired lease counts as lost even if nobody took it yet,
// since anyone may take it at any moment; Renew may still recover it).
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen == 0 {
		return fmt.Errorf("failed to check lease %s: %w: released", l.Key, ErrLeaseLost)
	}
	_, gen, err := l.leases.objs.Read(ctx, l.Key)
	if errors.Is(err, sink.ErrNotFound) || (err == nil && gen != l.gen) {
		return l.lostError(ctx, "check")
	}
	if err != nil {
		return fmt.Errorf("failed to check lease %s: %w", l.Key, err)
	}
	if now := l.leases.clock.Now(); !now.Before(l.rec.ExpiresAt) {
		return fmt.Errorf("failed to check lease %s: %w: expired at %s", l.Key, ErrLeaseLost,
			l.rec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}
