package sentry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// Endpoint groups: each has its own limiter per token.
const (
	groupEvents  = "project-events"
	groupDefault = "default"
)

const (
	// initialConcurrency before Sentry's headers say otherwise. Project events
	// allow one request in flight per caller; the SaaS default group 25.
	initialEventsConcurrency  = 1
	initialDefaultConcurrency = 25
	maxConcurrency            = 64
	// maxResetWait caps a wait derived from X-Sentry-Rate-Limit-Reset, in case
	// the header or the clocks are off. Sentry's windows are at most a few
	// minutes long; a reset hours ahead (or at 1e11 s) is wrong and must not
	// block a token's endpoint group for the life of the process. The cap
	// applies to the reset as stored, so every wait derived from it is capped.
	maxResetWait = 5 * time.Minute
	// resetJitter is the random delay added after a reset so that callers
	// sharing a budget do not all fire at the window's first instant.
	resetJitterMin = 50 * time.Millisecond
	resetJitterMax = 750 * time.Millisecond
)

// Limiters is a process-wide registry of rate limiters, one per (token
// fingerprint, endpoint group). Share one between every Client of a process
// so that all goroutines using a token pace together. Safe for concurrent use.
type Limiters struct {
	mu sync.Mutex
	m  map[limiterKey]*limiter
}

type limiterKey struct {
	token [sha256.Size]byte
	group string
}

// NewLimiters returns an empty registry.
func NewLimiters() *Limiters { return &Limiters{m: make(map[limiterKey]*limiter)} }

func (ls *Limiters) get(tokenHash [sha256.Size]byte, group string) *limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	k := limiterKey{tokenHash, group}
	l := ls.m[k]
	if l == nil {
		capacity := initialDefaultConcurrency
		if group == groupEvents {
			capacity = initialEventsConcurrency
		}
		l = &limiter{
			name:      group + "/" + hex.EncodeToString(tokenHash[:4]),
			capacity:  capacity,
			remaining: -1,
			changed:   make(chan struct{}),
		}
		ls.m[k] = l
	}
	return l
}

// limiter paces requests of one token to one endpoint group from Sentry's
// X-Sentry-Rate-Limit-* headers. Without headers (self-hosted) it only bounds
// concurrency.
type limiter struct {
	name string

	mu        sync.Mutex
	capacity  int  // concurrent requests allowed once a response was seen
	learned   bool // a response arrived: until then only one request probes the limits
	inFlight  int
	limit     int       // X-Sentry-Rate-Limit-Limit, 0 unknown
	remaining int       // requests left in the current window; -1 unknown
	reset     time.Time // start of the next window (zero unknown)
	// blockedUntil: no request may start before this (Remaining hit 0, or a 429).
	blockedUntil time.Time
	sleeping     bool          // one goroutine sleeps for blockedUntil; the others wait on changed
	changed      chan struct{} // closed and replaced on every state change
}

// broadcastLocked wakes every waiter. l.mu must be held.
func (l *limiter) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// acquire waits for a free concurrency slot and for the window to allow a
// request, all waits through clk and bounded by ctx. It returns how long it
// waited on the clock.
func (l *limiter) acquire(ctx context.Context, clk clock.Clock) (time.Duration, error) {
	var waited time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return waited, err
		}
		l.mu.Lock()
		now := clk.Now()
		if !l.reset.IsZero() && !now.Before(l.reset) && l.remaining == 0 {
			// The window rolled over: unknown budget until the next response.
			l.remaining = -1
		}
		if now.Before(l.blockedUntil) {
			if l.sleeping {
				ch := l.changed
				l.mu.Unlock()
				select {
				case <-ch:
				case <-ctx.Done():
					return waited, ctx.Err()
				}
				continue
			}
			d := l.blockedUntil.Sub(now)
			l.sleeping = true
			l.mu.Unlock()
			err := clk.Sleep(ctx, d)
			waited += d
			l.mu.Lock()
			l.sleeping = false
			l.broadcastLocked()
			l.mu.Unlock()
			if err != nil {
				return waited, err
			}
			continue
		}
		capacity := l.capacity
		if !l.learned {
			capacity = 1
		}
		if l.inFlight >= capacity {
			ch := l.changed
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return waited, ctx.Err()
			}
			continue
		}
		if l.remaining == 0 && now.Before(l.reset) {
			// Our own reservations used the budget up; wait for the reset.
			l.blockedUntil = capReset(l.reset, now).Add(resetJitter())
			l.mu.Unlock()
			continue
		}
		l.inFlight++
		if l.remaining > 0 {
			l.remaining--
		}
		l.mu.Unlock()
		return waited, nil
	}
}

// rateHeaders are the parsed X-Sentry-Rate-Limit-* headers of one response.
type rateHeaders struct {
	present       bool
	limit         int
	remaining     int // -1 absent
	reset         time.Time
	concurrent    int // 0 absent
	concurrentRem int // -1 absent
}

func parseRateHeaders(h http.Header) rateHeaders {
	rh := rateHeaders{remaining: -1, concurrentRem: -1}
	atoi := func(name string) (int, bool) {
		v := h.Get(name)
		if v == "" {
			return 0, false
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	if n, ok := atoi("X-Sentry-Rate-Limit-Limit"); ok {
		rh.limit, rh.present = n, true
	}
	if n, ok := atoi("X-Sentry-Rate-Limit-Remaining"); ok {
		rh.remaining, rh.present = n, true
	}
	if v := h.Get("X-Sentry-Rate-Limit-Reset"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 1e12 {
			sec := int64(f)
			rh.reset = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
			rh.present = true
		}
	}
	if n, ok := atoi("X-Sentry-Rate-Limit-ConcurrentLimit"); ok && n > 0 {
		rh.concurrent, rh.present = n, true
	}
	if n, ok := atoi("X-Sentry-Rate-Limit-ConcurrentRemaining"); ok {
		rh.concurrentRem, rh.present = n, true
	}
	return rh
}

// release frees the slot taken by acquire and learns from the response's
// headers. status is the HTTP status. A 429 for the window (not for
// concurrency) blocks the limiter until Reset + jitter.
func (l *limiter) release(clk clock.Clock, status int, rh rateHeaders, concurrency429 bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.broadcastLocked()
	l.inFlight--
	l.learned = true
	if !rh.present {
		return
	}
	now := clk.Now()
	if rh.concurrent > 0 {
		l.capacity = min(rh.concurrent, maxConcurrency)
	}
	if rh.limit > 0 {
		l.limit = rh.limit
	}
	// Every later wait derives from the stored reset: cap it once here.
	reset := capReset(rh.reset, now)
	if rh.remaining >= 0 && !reset.IsZero() {
		// Requests still in flight may not be counted by Sentry yet.
		rem := max(0, rh.remaining-l.inFlight)
		switch {
		case reset.After(l.reset):
			l.reset, l.remaining = reset, rem // a newer window
		case reset.Equal(l.reset):
			if l.remaining < 0 || rem < l.remaining {
				l.remaining = rem
			}
		}
		// Older windows (reordered responses) teach nothing.
	}
	if status == http.StatusTooManyRequests && !concurrency429 {
		l.remaining = 0
		if reset.After(now) && reset.After(l.reset) {
			l.reset = reset
		}
		if reset.After(now) {
			l.blockUntilLocked(reset.Add(resetJitter()))
		}
		return
	}
	if l.remaining == 0 && l.reset.After(now) {
		l.blockUntilLocked(capReset(l.reset, now).Add(resetJitter()))
	}
}

// blockUntilLocked extends blockedUntil to until. l.mu must be held.
func (l *limiter) blockUntilLocked(until time.Time) {
	if until.After(l.blockedUntil) {
		l.blockedUntil = until
	}
}

// capReset returns reset, but no later than maxResetWait minus the largest
// jitter from now, so that a wait until the reset plus jitter stays within
// maxResetWait. The zero time stays zero (no reset known).
func capReset(reset, now time.Time) time.Time {
	const maxWait = maxResetWait - resetJitterMax
	if reset.IsZero() || reset.Sub(now) <= maxWait {
		return reset
	}
	return now.Add(maxWait)
}

// releaseNoResponse frees a slot after a transport error.
func (l *limiter) releaseNoResponse() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	l.broadcastLocked()
}

func resetJitter() time.Duration {
	return resetJitterMin + rand.N(resetJitterMax-resetJitterMin)
}
