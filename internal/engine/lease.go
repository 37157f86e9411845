package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// Lease timing. The lease only keeps runs from wasting work on each other:
// correctness rests on the compare-and-swap of every state document. So the
// lease can be short: a run that dies (kill -9, an instance taken away)
// blocks its stream for at most LeaseTTL. A live run renews it every
// leaseRenewEvery in the background (a page request may wait a minute for
// Sentry's rate-limit window) and before every write and commit.
const (
	LeaseTTL        = 30 * time.Second
	leaseRenewEvery = 10 * time.Second
	leaseOpTimeout  = 10 * time.Second
)

// keeper holds one lease and keeps it alive.
type keeper struct {
	lease *state.Lease
	clock interface{ Now() time.Time }

	mu      sync.Mutex
	renewAt time.Time // by the run's clock
	lost    error
	subs    []*keeper
	stop    context.CancelFunc
	done    chan struct{}
}

// acquire takes the lease at key for r. Another owner's unexpired lease is
// an error wrapping state.ErrLeaseHeld (a *state.HeldError); a storage
// failure is transient.
func acquire(ctx context.Context, r *Run, key string) (*keeper, error) {
	l, err := state.NewLeases(r.cfg.State, r.clock).Acquire(ctx, key, r.cfg.RunID, LeaseTTL)
	if errors.Is(err, state.ErrLeaseHeld) {
		return nil, err
	}
	if err != nil {
		return nil, failure.Transient(fmt.Errorf("failed to acquire the lease %s: %w", key, err))
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	k := &keeper{lease: l, clock: r.clock, renewAt: r.clock.Now().Add(leaseRenewEvery), stop: stop, done: make(chan struct{})}
	if _, wall := r.clock.(clock.Real); wall {
		go k.background(bg)
	} else {
		// On another clock (a test's fake clock) time moves only with
		// the run's own activity, where keep renews: renewing on the
		// wall clock as well would add storage operations at moments
		// that depend on the machine's speed.
		close(k.done)
	}
	return k, nil
}

// background renews the lease on the wall clock until released, so that a
// long wait inside one request does not let it expire.
func (k *keeper) background(ctx context.Context) {
	defer close(k.done)
	t := time.NewTicker(leaseRenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, leaseOpTimeout)
			err := k.renew(rctx)
			cancel()
			if err != nil && !errors.Is(err, state.ErrLeaseLost) && ctx.Err() == nil {
				logging.FromContext(ctx).WarnContext(ctx, "failed to renew the lease; retrying", "lease", k.lease.Key, "error", err)
			}
		}
	}
}

// renew extends the lease (and its sub-leases); a lost lease is remembered.
func (k *keeper) renew(ctx context.Context) error {
	k.mu.Lock()
	if k.lost != nil {
		err := k.lost
		k.mu.Unlock()
		return err
	}
	subs := append([]*keeper(nil), k.subs...)
	k.mu.Unlock()
	for _, l := range append([]*keeper{k}, subs...) {
		if err := l.lease.Renew(ctx, LeaseTTL); err != nil {
			if errors.Is(err, state.ErrLeaseLost) {
				k.mu.Lock()
				k.lost = fmt.Errorf("failed to keep the lease %s, stopping: %w", l.lease.Key, err)
				k.mu.Unlock()
				return k.lost
			}
			return fmt.Errorf("failed to renew the lease %s: %w", l.lease.Key, err)
		}
	}
	k.mu.Lock()
	k.renewAt = k.clock.Now().Add(leaseRenewEvery)
	k.mu.Unlock()
	return nil
}

// keep renews the lease when due by the run's clock; it fails once the lease
// is lost, and every write must stop then.
func (k *keeper) keep(ctx context.Context) error {
	k.mu.Lock()
	lost, due := k.lost, !k.clock.Now().Before(k.renewAt)
	k.mu.Unlock()
	if lost != nil {
		return lost
	}
	if !due {
		return nil
	}
	return k.renew(ctx)
}

func (k *keeper) add(sub *keeper) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.subs = append(k.subs, sub)
}

func (k *keeper) remove(sub *keeper) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, s := range k.subs {
		if s == sub {
			k.subs = append(k.subs[:i], k.subs[i+1:]...)
			return
		}
	}
}

// release stops the renewals and gives the lease up.
func (k *keeper) release(ctx context.Context) {
	k.stop()
	<-k.done
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseOpTimeout)
	defer cancel()
	if err := k.lease.Release(rctx); err != nil && !errors.Is(err, state.ErrLeaseLost) {
		logging.FromContext(ctx).WarnContext(ctx, "failed to release the lease", "lease", k.lease.Key, "error", err)
	}
}
