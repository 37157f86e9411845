package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"

	"github.com/secops-collectors/sentry-gcs/internal/events"

	"github.com/secops-collectors/sentry-gcs/internal/engine"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// latency is the simulated duration of one Sentry request (fake clock).
const latency = 250 * time.Millisecond

// meter wraps the simulator: it advances the fake clock by latency per
// project events or Discover request and records, for the project events
// endpoint only, rows per page and whether a short page was the last of its
// window (no rel="next" results).
type meter struct {
	h   http.Handler
	clk *clock.Fake

	mu                  sync.Mutex
	pages, rows         int64
	full, shortLast     int64
	shortMid            int64 // short pages followed by more: must be 0
	events, events429   int64
	firstAt, lastAt     time.Time
	ids                 map[string]int
	perWindow           map[int64]int64 // successful events requests per 60 s window
	rowsPerWindow       map[int64]int64 // rows returned per 60 s window
	newPerWindow        map[int64]int64 // of those, ids returned for the first time (collectIDs)
	discoverPerWindow   map[int64]int64 // Discover requests per 60 s window
	collectIDs          bool
	nextResultsTrueLink *regexp.Regexp
}

func newMeter(h http.Handler, clk *clock.Fake, collectIDs bool) *meter {
	return &meter{h: h, clk: clk, ids: map[string]int{}, collectIDs: collectIDs, perWindow: map[int64]int64{},
		rowsPerWindow: map[int64]int64{}, newPerWindow: map[int64]int64{}, discoverPerWindow: map[int64]int64{},
		nextResultsTrueLink: regexp.MustCompile(`rel="next"; results="true"`)}
}

func (m *meter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/api/0/organizations/") && strings.HasSuffix(p, "/events/"):
		// Discover (the late sweep, the coverage ledger): it takes time
		// too, and has its own rate limit.
		m.clk.Advance(latency)
		m.h.ServeHTTP(w, r)
		m.mu.Lock()
		m.discoverPerWindow[m.clk.Now().Add(-latency).Unix()/60]++
		m.mu.Unlock()
		return
	case !strings.HasSuffix(p, "/events/"):
		m.h.ServeHTTP(w, r)
		return
	}
	m.clk.Advance(latency)
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	body := rec.Body.Bytes()
	_, _ = w.Write(body)

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if m.firstAt.IsZero() {
		m.firstAt = now.Add(-latency)
	}
	m.lastAt = now
	m.events++
	if rec.Code == http.StatusTooManyRequests {
		m.events429++
		return
	}
	if rec.Code != http.StatusOK {
		return
	}
	minute := now.Add(-latency).Unix() / 60
	m.perWindow[minute]++
	var rows []struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &rows) != nil {
		return
	}
	m.pages++
	m.rows += int64(len(rows))
	m.rowsPerWindow[minute] += int64(len(rows))
	more := m.nextResultsTrueLink.MatchString(rec.Header().Get("Link"))
	switch {
	case len(rows) == 100:
		m.full++
	case more:
		m.shortMid++
	default:
		m.shortLast++
	}
	if m.collectIDs {
		for _, r := range rows {
			if m.ids[r.ID]++; m.ids[r.ID] == 1 {
				m.newPerWindow[minute]++
			}
		}
	}
}

// drainWorld is a simulator at the real limits with a backlog, behind a meter.
type drainWorld struct {
	clk   *clock.Fake
	sim   *sentrysim.Server
	meter *meter
	url   string
	truth map[string]bool
}

func newDrainWorld(tb testing.TB, projects, backlog int, collectIDs bool) *drainWorld {
	tb.Helper()
	clk := clock.NewFake(t0)
	sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: 11}) // real limits: events 60/60 s, 1 in flight
	sim.Populate(sentrysim.Scenario{Projects: projects, Backlog: backlog, BacklogSpan: 20 * time.Hour})
	clk.Advance(5 * time.Minute)
	m := newMeter(sim, clk, collectIDs)
	srv := httptest.NewServer(m)
	tb.Cleanup(srv.Close)
	truth := map[string]bool{}
	for _, ids := range sim.GroundTruth() {
		for id := range ids {
			truth[id] = true
		}
	}
	return &drainWorld{clk: clk, sim: sim, meter: m, url: srv.URL, truth: truth}
}

// drainResult are the figures of one drain.
type drainResult struct {
	requests, rateLimited int64
	pages, fullPages      int64
	shortLast, shortMid   int64
	rows                  int64
	written               int
	elapsed               time.Duration
	runs                  int
	windows               int64 // 60 s windows from the first request's to the last's
	completeOK            int64 // successful requests in all windows but the last
	underfilled           int64 // of those, windows (not the last) with < 60 requests
}

func (d *drainWorld) result() drainResult {
	m := d.meter
	m.mu.Lock()
	defer m.mu.Unlock()
	r := drainResult{requests: m.events, rateLimited: m.events429, pages: m.pages, fullPages: m.full,
		shortLast: m.shortLast, shortMid: m.shortMid, rows: m.rows, elapsed: m.lastAt.Sub(m.firstAt)}
	if !m.firstAt.IsZero() {
		first, last := m.firstAt.Unix()/60, m.lastAt.Add(-latency).Unix()/60
		r.windows = last - first + 1
		for w := first; w < last; w++ {
			r.completeOK += m.perWindow[w]
			if m.perWindow[w] < 60 {
				r.underfilled++
			}
		}
	}
	return r
}

// drainCollector drains the backlog with the collector, runs back to back
// (as continuation messages chain them) with the default 7-minute budget,
// lag and overlap.
func drainCollector(tb testing.TB, d *drainWorld) drainResult {
	tb.Helper()
	cfg := loadConfig(tb, nil)
	cl, err := sentry.New(sentry.Options{BaseURL: d.url, Token: "tok", Clock: d.clk})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := sink.NewDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	written, runs := 0, 0
	c, err := events.New(events.Options{
		Org: "acme", DataPrefix: "sentry/events/", StatePrefix: "sentry/state/",
		MaxPagesPerProject: -1, Lag: cfg.CollectLag, Overlap: cfg.CollectOverlap,
	}, cl, engine.Env{Data: store, State: store, Clock: d.clk, Counters: cl.RequestCounts})
	if err != nil {
		tb.Fatal(err)
	}
	for {
		s, err := c.Run(collecttest.Quiet(context.Background()), cfg.RunBudget)
		if err != nil {
			tb.Fatal(err)
		}
		runs++
		written += s.Records
		if !s.WorkRemaining {
			break
		}
		if runs > 100 {
			tb.Fatal("no end to the drain")
		}
	}
	r := d.result()
	r.written, r.runs = written, runs
	return r
}

// naiveRun is the reference function's request pattern (see
// internal/events/reference_test.go): list the projects, then per project
// fetch the newest page and follow rel="next" while results="true", one
// request at a time, without pacing, without looking at the status (a 429's
// body has no Link header, which ends that project's walk). No page cap, so
// that it tries to drain the whole backlog in one run.
func naiveRun(ctx context.Context, base string) error {
	next := regexp.MustCompile(`<([^>]*)>; rel="next"; results="true"`)
	get := func(u string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("Link"), nil
	}
	var slugs []string
	for u := base + "/api/0/organizations/acme/projects/"; u != ""; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ps []struct {
			Slug string `json:"slug"`
		}
		_ = json.NewDecoder(bytes.NewReader(body)).Decode(&ps)
		for _, p := range ps {
			slugs = append(slugs, p.Slug)
		}
		u = ""
		if m := next.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			u = m[1]
		}
	}
	for _, slug := range slugs {
		u := base + "/api/0/projects/acme/" + slug + "/events/"
		for u != "" {
			link, err := get(u)
			if err != nil {
				return err
			}
			u = ""
			if m := next.FindStringSubmatch(link); m != nil {
				u = m[1]
			}
		}
	}
	return nil
}

// BenchmarkBacklogDrain drains a backlog at Sentry's real limits for project
// events (60 requests per 60 s, one in flight), on a fake clock shared by the
// simulator and the client (no real waiting; every request takes 250 ms of
// fake time). It reports the achieved request rate over the allowed one, the
// share of requests answered 429, rows per page and short pages, for the
// collector and for the naive sequential pattern, on identical data.
//
//	go test ./internal/bench -run '^$' -bench BacklogDrain -benchtime 1x
func BenchmarkBacklogDrain(b *testing.B) {
	const projects, backlog = 8, 100_000
	b.Run("collector", func(b *testing.B) {
		for range b.N {
			d := newDrainWorld(b, projects, backlog, false)
			r := drainCollector(b, d)
			if r.written != len(d.truth) {
				b.Fatalf("collected %d events, want %d", r.written, len(d.truth))
			}
			reportDrain(b, r)
			if r.shortMid != 0 {
				b.Errorf("%d short pages that were not the last of their window", r.shortMid)
			}
		}
	})
	b.Run("naive", func(b *testing.B) {
		for range b.N {
			d := newDrainWorld(b, projects, backlog, true)
			if err := naiveRun(context.Background(), d.url); err != nil {
				b.Fatal(err)
			}
			r := d.result()
			d.meter.mu.Lock()
			got, dups := 0, 0
			for id, n := range d.meter.ids {
				if d.truth[id] {
					got++
				}
				dups += n - 1
			}
			d.meter.mu.Unlock()
			r.written = got
			reportDrain(b, r)
			b.ReportMetric(float64(len(d.truth)-got), "events_lost")
			b.ReportMetric(float64(dups), "events_duplicated")
		}
	})
}

func reportDrain(b *testing.B, r drainResult) {
	b.ReportMetric(float64(r.requests), "requests")
	b.ReportMetric(float64(r.rateLimited), "429s")
	if r.requests > 0 {
		b.ReportMetric(100*float64(r.rateLimited)/float64(r.requests), "429_%")
	}
	// Allowed: 60 requests in each fixed 60 s window (aligned to the
	// minute, as Sentry's) from the first request's window to the last's.
	// The last window is partial when the backlog runs out in it: the
	// headline ratio is over the complete windows before it, the _all
	// ratio counts the last one as if it were allowed in full.
	if r.windows > 1 {
		b.ReportMetric(float64(r.completeOK)/float64(60*(r.windows-1)), "achieved/allowed")
	}
	if r.windows > 0 {
		b.ReportMetric(float64(r.requests-r.rateLimited)/float64(60*r.windows), "achieved/allowed_all")
		b.ReportMetric(float64(r.underfilled), "underfilled_windows")
	}
	if r.pages > 0 {
		b.ReportMetric(float64(r.rows)/float64(r.pages), "rows/page")
	}
	b.ReportMetric(float64(r.shortLast), "short_last_pages")
	b.ReportMetric(float64(r.written), "events")
	b.ReportMetric(r.elapsed.Minutes(), "fake_minutes")
	b.ReportMetric(float64(r.runs), "runs")
}
