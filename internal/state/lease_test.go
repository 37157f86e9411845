package state

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestLeases(t *testing.T) {
	t.Parallel()

	const key = "sentry/state/lease/events"
	cases := []struct {
		name string
		run  func(t *testing.T, m *Leases, clk *clock.Fake)
	}{
		{name: "held_by_other_owner", run: func(t *testing.T, m *Leases, clk *clock.Fake) {
			ctx := t.Context()
			a, err := m.Acquire(ctx, key, "run-a", time.Minute)
			if err != nil {
				t.Fatalf("Acquire(a): %v", err)
			}
			if got, want := a.Expiry(), t0.Add(time.Minute); !got.Equal(want) {
				t.Errorf("Expiry = %v, want %v", got, want)
			}
			clk.Advance(59 * time.Second)
			_, err = m.Acquire(ctx, key, "run-b", time.Minute)
			if !errors.Is(err, ErrLeaseHeld) {
				t.Fatalf("Acquire(b) = %v, want ErrLeaseHeld", err)
			}
			for _, s := range []string{`"run-a"`, "2026-03-04T05:07:07Z"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
			if err := a.Check(ctx); err != nil {
				t.Errorf("Check(a) = %v", err)
			}
		}},
		{name: "same_owner_reacquires", run: func(t *testing.T, m *Leases, clk *clock.Fake) {
			ctx := t.Context()
			if _, err := m.Acquire(ctx, key, "run-a", time.Minute); err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			clk.Advance(10 * time.Second)
			a2, err := m.Acquire(ctx, key, "run-a", time.Minute)
			if err != nil {
				t.Fatalf("second Acquire by the same owner: %v", err)
			}
			if err := a2.Check(ctx); err != nil {
				t.Errorf("Check = %v", err)
			}
		}},
		{name: "expired_lease_taken_over", run: func(t *testing.T, m *Leases, clk *clock.Fake) {
			ctx := t.Context()
			a, err := m.Acquire(ctx, key, "run-a", time.Minute)
			if err != nil {
				t.Fatalf("Acquire(a): %v", err)
			}
			clk.Advance(time.Minute) // expiry is exclusive
			if err := a.Check(ctx); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Check(expired) = %v, want ErrLeaseLost", err)
			}
			b, err := m.Acquire(ctx, key, "run-b", time.Minute)
			if err != nil {
				t.Fatalf("Acquire(b) after expiry: %v", err)
			}
			for _, op := range []struct {
				name string
				f    func() error
			}{
				{"release", func() error { return a.Release(ctx) }},
				{"check", func() error { return a.Check(ctx) }},
				{"renew", func() error { return a.Renew(ctx, time.Minute) }},
			} {
				err := op.f()
				if !errors.Is(err, ErrLeaseLost) {
					t.Errorf("%s by the old holder = %v, want ErrLeaseLost", op.name, err)
				} else if !strings.Contains(err.Error(), `now held by "run-b"`) {
					t.Errorf("%s error %q does not name the new holder", op.name, err)
				}
			}
			// The old holder's release did not free b's lease.
			if err := b.Check(ctx); err != nil {
				t.Errorf("Check(b) = %v", err)
			}
			if _, err := m.Acquire(ctx, key, "run-c", time.Minute); !errors.Is(err, ErrLeaseHeld) {
				t.Errorf("Acquire(c) = %v, want ErrLeaseHeld", err)
			}
		}},
		{name: "renew_extends", run: func(t *testing.T, m *Leases, clk *clock.Fake) {
			ctx := t.Context()
			a, err := m.Acquire(ctx, key, "run-a", time.Minute)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			clk.Advance(50 * time.Second)
			if err := a.Renew(ctx, time.Minute); err != nil {
				t.Fatalf("Renew: %v", err)
			}
			clk.Advance(50 * time.Second) // past the first expiry
			if _, err := m.Acquire(ctx, key, "run-b", time.Minute); !errors.Is(err, ErrLeaseHeld) {
				t.Errorf("Acquire(b) after renewal = %v, want ErrLeaseHeld", err)
			}
			if err := a.Check(ctx); err != nil {
				t.Errorf("Check = %v", err)
			}
			if got, want := a.Expiry(), t0.Add(110*time.Second); !got.Equal(want) {
				t.Errorf("Expiry = %v, want %v", got, want)
			}
		}},
		{name: "expired_but_untaken_renews", run: func(t *testing.T, m *Leases, clk *clock.Fake) {
			ctx := t.Context()
			a, err := m.Acquire(ctx, key, "run-a", time.Minute)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			clk.Advance(2 * time.Minute)
			if err := a.Renew(ctx, time.Minute); err != nil {
				t.Fatalf("Renew: %v", err)
			}
			if err := a.Check(ctx); err != nil {
				t.Errorf("Check = %v", err)
			}
		}},
		{name: "release_frees_at_once", run: func(t *testing.T, m *Leases, _ *clock.Fake) {
			ctx := t.Context()
			a, err := m.Acquire(ctx, key, "run-a", time.Hour)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			if err := a.Release(ctx); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if err := a.Release(ctx); err != nil {
				t.Errorf("second Release = %v, want nil", err)
			}
			if err := a.Check(ctx); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Check after Release = %v, want ErrLeaseLost", err)
			}
			if err := a.Renew(ctx, time.Hour); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Renew after Release = %v, want ErrLeaseLost", err)
			}
			if _, err := m.Acquire(ctx, key, "run-b", time.Hour); err != nil {
				t.Errorf("Acquire(b) after release: %v", err)
			}
		}},
		{name: "bad_arguments", run: func(t *testing.T, m *Leases, _ *clock.Fake) {
			if _, err := m.Acquire(t.Context(), key, "", time.Minute); err == nil {
				t.Errorf("Acquire with empty owner succeeded")
			}
			if _, err := m.Acquire(t.Context(), key, "a", 0); err == nil {
				t.Errorf("Acquire with zero ttl succeeded")
			}
		}},
		{name: "racing_acquirers_one_wins", run: func(t *testing.T, m *Leases, _ *clock.Fake) {
			ctx := t.Context()
			const rounds, contenders = 10, 4
			for round := range rounds {
				k := key + "-" + strconv.Itoa(round)
				var (
					wg      sync.WaitGroup
					winners = make([]*Lease, contenders)
					errs    = make([]error, contenders)
				)
				for i := range contenders {
					wg.Go(func() {
						winners[i], errs[i] = m.Acquire(ctx, k, "run-"+strconv.Itoa(i), time.Minute)
					})
				}
				wg.Wait()
				won := 0
				for i, err := range errs {
					switch {
					case err == nil:
						won++
						if err := winners[i].Check(ctx); err != nil {
							t.Errorf("round %d: winner %d Check = %v", round, i, err)
						}
					case !errors.Is(err, ErrLeaseHeld):
						t.Errorf("round %d: contender %d: %v, want ErrLeaseHeld", round, i, err)
					}
				}
				if won != 1 {
					t.Errorf("round %d: %d winners, want exactly 1", round, won)
				}
			}
		}},
	}
	for _, b := range backends() {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				clk := clock.NewFake(t0)
				tc.run(t, NewLeases(b.new(t), clk), clk)
			})
		}
	}
}

// TestLeaseCorruptDocumentIsTakenOver: an undecodable lease document must
// not block its stream forever; it counts as expired and is taken over by
// compare-and-swap (a concurrent rewrite of it still wins).
func TestLeaseCorruptDocumentIsTakenOver(t *testing.T) {
	t.Parallel()

	objs := backends()[0].new(t)
	if _, err := objs.Write(t.Context(), "l", []byte("garbage"), ContentType, 0); err != nil {
		t.Fatalf("Write: %v", err)
	}
	m := NewLeases(objs, clock.NewFake(t0))
	l, err := m.Acquire(t.Context(), "l", "a", time.Minute)
	if err != nil {
		t.Fatalf("Acquire over a corrupt lease = %v, want it taken over", err)
	}
	if err := l.Check(t.Context()); err != nil {
		t.Errorf("Check = %v", err)
	}
	if _, err := m.Acquire(t.Context(), "l", "b", time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("Acquire by another owner = %v, want ErrLeaseHeld", err)
	}
}
