package sentrysim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Scenario describes generated data. Populate spreads Backlog events over
// [now−BacklogSpan, now) and Arrivals over [now, now+ArrivalSpan) by event
// timestamp. Each event becomes visible a few seconds after it was received;
// a LateFraction of them is received (and so becomes visible) up to MaxLate
// after its timestamp, like offline clients.
//
// A LateSentFraction of the events (backlog and arrivals alike) is
// late-sent instead: cached by an SDK and sent long after it happened. For
// such an event the instant drawn in the span is its receipt (it is
// received, and visible a few seconds later, as any other event), and its
// timestamp is L before that, L drawn log-uniformly in [LateSentMin,
// LateSentMax]. Relay keeps such a timestamp as long as it is within the
// retention (see EventSpec.Timestamp), so a window on the timestamp that
// has already been read never sees these events: only a search by received
// time (Discover's error.received) or stats_v2 (which counts by received
// time) does.
//
// Everything is drawn from Config.Seed. The late-sent draws come from a
// stream of their own: with LateSentFraction zero nothing is drawn and the
// events are exactly those of a scenario without the knobs, and with it set
// the other events are unchanged (same ids, projects, issues, times); only
// the late-sent ones get an older timestamp.
type Scenario struct {
	Projects     int           // new projects to create; 0 uses the existing ones
	Backlog      int           // events in the past
	BacklogSpan  time.Duration // default 6h
	Arrivals     int           // events in the future ("live")
	ArrivalSpan  time.Duration // default 1h
	LateFraction float64       // share of late events, 0..1
	MaxLate      time.Duration // default 10m

	LateSentFraction float64       // share of late-sent events, 0..1
	LateSentMin      time.Duration // default 5m
	LateSentMax      time.Duration // default 72h; raised to LateSentMin when below it
}

var projectWords = []string{"web-frontend", "checkout-api", "payments", "mobile-ios", "mobile-android", "auth-service", "search", "notifications", "billing-worker", "admin-portal", "inventory", "reports", "gateway", "recommendations", "media-upload", "scheduler"}

// Populate generates projects, issues, events and audit log entries,
// reproducibly from Config.Seed (and the number of earlier Populate calls).
func (s *Server) Populate(sc Scenario) {
	sc = sc.withDefaults()
	rng, lateSent, ps := s.populateProjects(sc)
	if len(ps) == 0 {
		return
	}
	now := s.clock.Now()
	s.populateIssues(ps, rng)
	s.populateEvents(ps, sc, rng, lateSent, now)
	s.populateAuditLog(sc, rng, now)
}

// withDefaults gives the zero spans and delays their defaults.
func (sc Scenario) withDefaults() Scenario {
	if sc.BacklogSpan <= 0 {
		sc.BacklogSpan = 6 * time.Hour
	}
	if sc.ArrivalSpan <= 0 {
		sc.ArrivalSpan = time.Hour
	}
	if sc.MaxLate <= 0 {
		sc.MaxLate = 10 * time.Minute
	}
	if sc.LateSentMin <= 0 {
		sc.LateSentMin = 5 * time.Minute
	}
	if sc.LateSentMax <= 0 {
		sc.LateSentMax = 72 * time.Hour
	}
	sc.LateSentMax = max(sc.LateSentMax, sc.LateSentMin)
	return sc
}

// populateProjects starts this Populate call's random streams (the
// late-sent one only when sc has late-sent events), creates sc.Projects
// projects, and returns the live projects.
func (s *Server) populateProjects(sc Scenario) (rng, lateSent *rand.Rand, live []*project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.popCount++
	rng = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x5ce7a000+uint64(s.popCount)))
	if sc.LateSentFraction > 0 {
		lateSent = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x1a7e5e00+uint64(s.popCount)))
	}
	for range sc.Projects {
		w := projectWords[rng.IntN(len(projectWords))]
		slug := w
		for n := 2; ; n++ {
			if _, taken := s.bySlug[slug]; !taken {
				break
			}
			slug = w + "-" + strconv.Itoa(n)
		}
		s.addProjectLocked(slug, titleCase(slug), platforms[rng.IntN(len(platforms))])
	}
	for _, p := range s.projects {
		if p.live {
			live = append(live, p)
		}
	}
	return rng, lateSent, live
}

// populateIssues gives each project 3–8 groups from its platform's
// templates (with variants), most unresolved.
func (s *Server) populateIssues(ps []*project, rng *rand.Rand) {
	for _, p := range ps {
		p.mu.Lock()
		pool := templatesByPlatform[p.platform]
		want := 3 + rng.IntN(6)
		for len(p.groups) < want {
			t := pool[rng.IntN(len(pool))]
			if k := len(p.groups); k >= len(pool) {
				t.value += fmt.Sprintf(" (variant %d)", k)
			}
			status := "unresolved"
			switch x := rng.Float64(); {
			case x < 0.12:
				status = "resolved"
			case x < 0.17:
				status = "ignored"
			}
			lvl := uint8(1)
			switch x := rng.Float64(); {
			case x < 0.1:
				lvl = 0
			case x < 0.25:
				lvl = 2
			}
			key := t.title() + "#" + strconv.Itoa(len(p.groups))
			p.groupBy[key] = s.newGroupLocked(p, t, lvl, status)
		}
		p.mu.Unlock()
	}
}

// populateEvents draws the backlog, then the arrivals, each into the
// project traffic picks, and adds them to the projects as pending events.
func (s *Server) populateEvents(ps []*project, sc Scenario, rng, lateSent *rand.Rand, now time.Time) {
	t := newTraffic(len(ps), rng)
	batches := make([][]event, len(ps))
	add := func(ts time.Time) {
		pi := t.pick()
		batches[pi] = append(batches[pi], s.scenarioEvent(ps[pi], ts, sc, rng, lateSent))
	}
	for range sc.Backlog {
		add(now.Add(-time.Duration(rng.Int64N(int64(sc.BacklogSpan))) - time.Nanosecond))
	}
	for range sc.Arrivals {
		add(now.Add(time.Duration(rng.Int64N(int64(sc.ArrivalSpan)))))
	}
	for i, p := range ps {
		p.mu.Lock()
		for _, e := range batches[i] {
			if e.level == 255 {
				e.level = p.groups[e.group].level
			}
			p.addPendingLocked(e, s.cfg.OutcomeDelay)
		}
		p.mu.Unlock()
	}
}

// traffic is skewed: a few hot projects, a long tail. Project order[i] has
// weight 1/(i+1)^0.8.
type traffic struct {
	rng     *rand.Rand
	weights []float64 // cumulative
	total   float64
	order   []int
}

func newTraffic(n int, rng *rand.Rand) *traffic {
	t := &traffic{rng: rng, weights: make([]float64, n)}
	for i := range t.weights {
		t.total += 1 / math.Pow(float64(i+1), 0.8)
		t.weights[i] = t.total
	}
	t.order = rng.Perm(n)
	return t
}

// pick draws the index of a project.
func (t *traffic) pick() int {
	x := t.rng.Float64() * t.total
	i, _ := slices.BinarySearch(t.weights, x)
	return t.order[min(i, len(t.order)-1)]
}

// scenarioEvent draws an event of p at ts: its issue (skewed towards the
// first ones), its receipt (up to MaxLate later for a LateFraction of
// events, else within a second), its visibility (0.5–5 s after receipt)
// and, for a LateSentFraction of events, an older timestamp. Its level
// (255) is filled in from its issue when it is added.
func (s *Server) scenarioEvent(p *project, ts time.Time, sc Scenario, rng, lateSent *rand.Rand) event {
	g := int32(math.Min(float64(len(p.groups)-1), math.Floor(math.Abs(rng.NormFloat64())*float64(len(p.groups))/2.5)))
	ts = ts.Truncate(time.Millisecond)
	var recv time.Time
	if rng.Float64() < sc.LateFraction {
		recv = ts.Add(time.Second + time.Duration(rng.Int64N(int64(sc.MaxLate))))
	} else {
		recv = ts.Add(time.Duration(rng.Int64N(int64(time.Second))))
	}
	vis := recv.Add(500*time.Millisecond + time.Duration(rng.Int64N(int64(4500*time.Millisecond))))
	if lateSent != nil && lateSent.Float64() < sc.LateSentFraction {
		ts = recv.Add(-logUniform(lateSent, sc.LateSentMin, sc.LateSentMax)).Truncate(time.Millisecond)
	}
	ts = relayTimestamp(ts, recv, s.cfg.Retention)
	return event{
		id:        randID(rng),
		ts:        ts.Unix(),
		ms:        uint16(ts.Nanosecond() / int(time.Millisecond)),
		visibleAt: vis.UnixNano(),
		received:  recv.UnixNano(),
		group:     g,
		level:     255, // group's level
		seq:       rng.Uint32(),
	}
}

// populateAuditLog adds a steady trickle of audit log entries over the
// backlog span.
func (s *Server) populateAuditLog(sc Scenario, rng *rand.Rand, now time.Time) {
	nAudit := max(10, sc.Projects)
	for range nAudit {
		at := now.Add(-time.Duration(rng.Int64N(int64(sc.BacklogSpan)))).Truncate(time.Microsecond)
		ev := auditEventNames[rng.IntN(len(auditEventNames))]
		s.AddAuditLog(AuditSpec{Event: ev, At: at, ActorID: 10000 + rng.Int64N(7), Note: "edited " + ev})
	}
}

// logUniform draws a duration in [lo, hi] whose logarithm is uniform:
// as many late-sent events minutes late as hours or days late.
func logUniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	f := math.Exp(math.Log(float64(lo)) + r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo))))
	return min(max(time.Duration(f), lo), hi)
}

func titleCase(slug string) string {
	b := []byte(slug)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '-'
		if c == '-' {
			b[i] = ' '
		}
	}
	return string(b)
}

// Running is a Server listening on a local port.
type Running struct {
	*Server
	url string
	hs  *http.Server
	ln  net.Listener
}

// Start runs a new Server on 127.0.0.1 at a free port.
func Start(cfg Config) (*Running, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	s := New(cfg)
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	r := &Running{Server: s, url: "http://" + ln.Addr().String(), hs: hs, ln: ln}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed; requests will fail visibly
		}
	}()
	return r, nil
}

// URL is the base URL, e.g. "http://127.0.0.1:41234" (no /api/0).
func (r *Running) URL() string { return r.url }

// Close stops the listener and closes every connection (hung requests end).
func (r *Running) Close() error {
	if err := r.hs.Close(); err != nil {
		return fmt.Errorf("failed to close simulator: %w", err)
	}
	return nil
}
