package sentry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// This file holds small fake Sentry handlers that answer like the real API:
// Link headers as src/sentry/api/base.py builds them, rate-limit headers as
// the rate-limit middleware sets them, and Sentry's error bodies.

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sentryLink builds a Link header exactly as Sentry does.
func sentryLink(r *http.Request, prev string, prevResults bool, next string, nextResults bool) string {
	q := r.URL.Query()
	q.Del("cursor")
	uri := "https://sentry.io" + r.URL.Path + "?" + q.Encode()
	one := func(name, cursor string, results bool) string {
		return fmt.Sprintf(`<%s&cursor=%s>; rel="%s"; results="%t"; cursor="%s"`, uri, cursor, name, results, cursor)
	}
	return one("previous", prev, prevResults) + ", " + one("next", next, nextResults)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func detail(status int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, status, fmt.Sprintf(`{"detail":%q}`, msg))
	}
}

// fakeEvents serves GET /api/0/projects/{org}/{project}/events/ with
// Sentry's GenericOffsetPaginator semantics over a fixed list of rows.
type fakeEvents struct {
	rows []string // newest first
	// pageSizes, when set, overrides how many rows page k returns (to model
	// post-filtered short pages); results= still says whether more exist.
	pageSizes []int
}

func newFakeEvents(n int, projectID string) *fakeEvents {
	f := &fakeEvents{}
	for i := range n {
		f.rows = append(f.rows, simpleEvent(i, projectID, t0.Add(-time.Duration(i)*time.Second)))
	}
	return f
}

func (f *fakeEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	per := 100
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			detail(400, "Invalid per_page value. Cannot exceed 100.")(w, r)
			return
		}
		per = n
	}
	offset, page := 0, 0
	if c := q.Get("cursor"); c != "" {
		parts := strings.Split(c, ":")
		if len(parts) != 3 {
			detail(400, "Invalid cursor parameter.")(w, r)
			return
		}
		offset, _ = strconv.Atoi(parts[1])
		page, _ = strconv.Atoi(parts[0]) // our own page counter for pageSizes
	}
	n := per
	if page < len(f.pageSizes) {
		n = f.pageSizes[page]
	}
	end := min(offset+n, len(f.rows))
	rows := f.rows[min(offset, len(f.rows)):end]
	more := offset+per < len(f.rows)
	prev := fmt.Sprintf("%d:%d:1", page, max(0, offset-per))
	next := fmt.Sprintf("%d:%d:0", page+1, offset+per)
	if f.pageSizes == nil {
		prev = fmt.Sprintf("0:%d:1", max(0, offset-per))
		next = fmt.Sprintf("0:%d:0", offset+per)
	}
	w.Header().Set("Link", sentryLink(r, prev, offset > 0, next, more))
	writeJSON(w, 200, "["+strings.Join(rows, ",")+"]")
}

// fakeLimit is Sentry's fixed-window limiter with a concurrency limit,
// aligned to epoch multiples of the window, on the shared clock.
type fakeLimit struct {
	clk        clock.Clock
	limit      int
	window     time.Duration
	concurrent int

	mu          sync.Mutex
	bucket      int64
	count       int
	inFlight    int
	maxInFlight int
	n429        int
	requests    int
	reqTimes    []time.Time
}

// wrap puts the limiter in front of h. spin makes each request linger (by
// yielding, not sleeping) so that overlapping requests would be observed.
func (l *fakeLimit) wrap(h http.Handler, spin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := l.clk.Now()
		win := int64(l.window / time.Second)
		l.mu.Lock()
		l.requests++
		l.reqTimes = append(l.reqTimes, now)
		if b := now.Unix() / win; b != l.bucket {
			l.bucket, l.count = b, 0
		}
		reset := (l.bucket + 1) * win
		l.count++
		l.inFlight++
		l.maxInFlight = max(l.maxInFlight, l.inFlight)
		over := l.count > l.limit
		overC := l.concurrent > 0 && l.inFlight > l.concurrent
		if over || overC {
			l.n429++
		}
		rem := max(0, l.limit-l.count)
		crem := max(0, l.concurrent-l.inFlight)
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			l.inFlight--
			l.mu.Unlock()
		}()
		hd := w.Header()
		hd.Set("X-Sentry-Rate-Limit-Limit", strconv.Itoa(l.limit))
		hd.Set("X-Sentry-Rate-Limit-Remaining", strconv.Itoa(rem))
		hd.Set("X-Sentry-Rate-Limit-Reset", strconv.FormatInt(reset, 10))
		if l.concurrent > 0 {
			hd.Set("X-Sentry-Rate-Limit-ConcurrentLimit", strconv.Itoa(l.concurrent))
			hd.Set("X-Sentry-Rate-Limit-ConcurrentRemaining", strconv.Itoa(crem))
		}
		if spin {
			for range 200 {
				runtime.Gosched()
			}
		}
		switch {
		case overC:
			detail(429, fmt.Sprintf("You are attempting to go above the allowed concurrency for this endpoint. Concurrency limit is %d", l.concurrent))(w, r)
		case over:
			detail(429, fmt.Sprintf("You are attempting to use this endpoint too frequently. Limit is %d requests in %d seconds", l.limit, win))(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func (l *fakeLimit) stats() (requests, n429, maxInFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, l.n429, l.maxInFlight
}

// script answers the i-th request with steps[i] (the last step repeats) and
// records what it saw.
type script struct {
	mu    sync.Mutex
	steps []http.HandlerFunc
	reqs  []recorded
}

type recorded struct {
	Path   string
	Query  url.Values
	Header http.Header
}

func newScript(steps ...http.HandlerFunc) *script { return &script{steps: steps} }

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := min(len(s.reqs), len(s.steps)-1)
	s.reqs = append(s.reqs, recorded{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
	step := s.steps[i]
	s.mu.Unlock()
	step(w, r)
}

func (s *script) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

const testToken = "sntryu_0123456789abcdefSECRETSECRETSECRET0123456789abcdef"

func newTestClient(t *testing.T, h http.Handler, clk clock.Clock, mod func(*Options)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	opts := Options{BaseURL: srv.URL, Token: testToken, Clock: clk, HTTPClient: srv.Client()}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv
}
