package sentrysim

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter implements Sentry's RatelimitMiddleware: a fixed-window counter
// (windows aligned to epoch multiples of the window, rejected requests count
// too, as with Redis INCR) and a concurrency counter of in-flight requests,
// keyed per token and endpoint group.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	window   int64 // window index
	count    int
	inFlight int
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

type limitResult struct {
	limited    bool
	concurrent bool // limited by concurrency rather than the window
	limit      Limit
	remaining  int
	reset      int64 // epoch seconds of the next window
	concRemain int
	release    func()
}

func (l *limiter) acquire(key string, lim Limit, now time.Time) limitResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{}
		l.buckets[key] = b
	}
	w := int64(lim.Window)
	idx := floorDiv(now.UnixNano(), w)
	if b.window != idx {
		b.window, b.count = idx, 0
	}
	b.count++
	resetNanos := (idx + 1) * w
	res := limitResult{limit: lim, reset: (resetNanos + int64(time.Second) - 1) / int64(time.Second), release: func() {}}
	if b.count > lim.Limit {
		res.limited = true
		res.remaining = 0
		res.concRemain = max(lim.Concurrent-b.inFlight, 0)
		return res
	}
	res.remaining = lim.Limit - b.count
	if b.inFlight >= lim.Concurrent {
		res.limited, res.concurrent = true, true
		res.concRemain = max(lim.Concurrent-b.inFlight, 0)
		return res
	}
	b.inFlight++
	res.concRemain = lim.Concurrent - b.inFlight
	var once sync.Once
	res.release = func() {
		once.Do(func() {
			l.mu.Lock()
			b.inFlight--
			l.mu.Unlock()
		})
	}
	return res
}

func (r limitResult) setHeaders(h http.Header) {
	h.Set("X-Sentry-Rate-Limit-Limit", strconv.Itoa(r.limit.Limit))
	h.Set("X-Sentry-Rate-Limit-Remaining", strconv.Itoa(r.remaining))
	h.Set("X-Sentry-Rate-Limit-Reset", strconv.FormatInt(r.reset, 10))
	h.Set("X-Sentry-Rate-Limit-ConcurrentLimit", strconv.Itoa(r.limit.Concurrent))
	h.Set("X-Sentry-Rate-Limit-ConcurrentRemaining", strconv.Itoa(r.concRemain))
}

func (r limitResult) body() []byte {
	if r.concurrent {
		return jsonDetail(fmt.Sprintf("You are attempting to go above the allowed concurrency for this endpoint. Concurrency limit is %d", r.limit.Concurrent))
	}
	return jsonDetail(fmt.Sprintf("You are attempting to use this endpoint too frequently. Limit is %d requests in %d seconds", r.limit.Limit, int64(r.limit.Window/time.Second)))
}
