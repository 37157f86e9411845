// Package sentrysim is a simulated Sentry web API that behaves like the real
// one, as read from Sentry's own source: the organisation, project list,
// project events, organisation issues, Discover (organisation events), audit
// log and stats_v2 endpoints
// with their paginators (offset, page-number, keyset and sequence) and Link
// headers, their parameter validation and error bodies, per-caller rate
// limits with Sentry's headers and 429s, token kinds and project
// membership, event retention, events that become visible late, events
// sent late (cached offline, with an old timestamp: Scenario's
// LateSentFraction), and injectable faults. It knows its own ground truth
// (which events are visible now: GroundTruth; which were received in a
// range or hour: ReceivedIn, ReceivedHours), so tests can check that a
// collector lost and duplicated nothing.
//
// Where a behaviour is subtle, the code and its tests name the Sentry source
// it mirrors (for example src/sentry/api/bases/organization.py,
// get_projects).
//
// The simulator is an http.Handler; Start runs it on a local port for
// end-to-end runs and the demo. All methods are safe for concurrent use.
package sentrysim

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	// Org is the organisation slug; default "acme".
	Org string
	// OrgID is the numeric organisation id; default "1000001". URLs accept
	// either the slug or the id.
	OrgID string
	// Tokens maps bearer tokens to their scopes; each is an internal
	// integration's token (member of every project). When Tokens and
	// TokenInfo are both empty, any non-empty token is an internal
	// integration with every scope.
	Tokens map[string][]string
	// TokenInfo describes tokens with a kind and, for user tokens, their
	// member projects. An entry here wins over one in Tokens. Server.SetToken
	// adds tokens later (when projects exist).
	TokenInfo map[string]TokenInfo
	// Clock drives visibility, rate-limit windows and date parameters;
	// default clock.Real{}.
	Clock clock.Clock
	// Seed makes scenarios, generated ids and fault injection reproducible.
	Seed int64
	// RateLimits configures the API rate limiter; zero values take the real
	// SaaS numbers.
	RateLimits RateLimitConfig
	// Faults injects failures into requests (see SetFaults).
	Faults Faults
	// IgnoreDateRange behaves like self-hosted Sentry from before 2025-08:
	// start, end and statsPeriod on project events are ignored.
	IgnoreDateRange bool
	// SelfHosted disables the rate limiter entirely: no headers, no 429.
	SelfHosted bool
	// RegionURL is returned as links.regionUrl by the organisation endpoint;
	// default: the base URL the request came in on.
	RegionURL string
	// URLPrefix is the base of the URLs in Link headers (Sentry's
	// system.url-prefix); default: the base URL the request came in on.
	URLPrefix string
	// OutcomeDelay is how long after an event is visible (and received) its
	// accepted outcome is counted by stats_v2; default 5s, negative means none.
	OutcomeDelay time.Duration
	// Retention is the organisation's event retention (90 days on most
	// plans, 30 on some); default 90 days, negative means unlimited. Events
	// with a timestamp older than now−Retention are gone from every
	// endpoint and from the ground truth.
	Retention time.Duration
	// MissingSeenStats is the share of issues, chosen reproducibly from Seed
	// and the issue id, for which the issues endpoint's windowed seen-stats
	// query returns no row: their top-level count is "0", userCount 0,
	// firstSeen and lastSeen null. Default 0; see also
	// Server.SetIssueSeenStatsMissing.
	MissingSeenStats float64
	// NoGlobalViews removes the organisation's global-views feature (the
	// organisation endpoint no longer lists it): Discover then answers 400
	// "You cannot view events from multiple projects." to a query that
	// covers more than one project (project=-1 or several project
	// parameters, or no project parameter with several member projects),
	// as get_snuba_params does. Query one project at a time instead.
	NoGlobalViews bool
	// DiscoverNoReceived makes Discover refuse error.received as a field,
	// a sort key or a search key, with 400 "Invalid key for this search:
	// error.received" (event_search's refusal of a key outside the
	// search's allowed keys): a deployment whose search schema lacks it.
	DiscoverNoReceived bool
	// DiscoverReceivedAsTag makes Discover treat error.received as a name
	// it does not know. Sentry then does not refuse it: an unknown name is
	// a tag (get_snuba_column_name), so the field comes back as "" with
	// meta type "string" (not "date"), and error.received:>=… is a text
	// filter that matches nothing (an operator on a text key is pushed
	// into the value). Only the meta type tells.
	DiscoverReceivedAsTag bool
}

// RateLimitConfig configures the fixed-window and concurrency limits.
type RateLimitConfig struct {
	// Disabled turns the limiter off (no headers, no 429), like
	// SENTRY_RATELIMITER_ENABLED=False.
	Disabled bool
	// Events applies to project events; default 60 per 60 s, concurrency 1.
	Events Limit
	// Stats applies to stats_v2, which has its own limits
	// (organization_stats_v2.py: RateLimit(limit=20, window=1), with the
	// default concurrent limit); default 20 per 1 s, concurrency 25.
	Stats Limit
	// Discover applies to the organisation events endpoint (Discover),
	// which has its own limits (organization_events.py, rate_limits:
	// LEGACY_RATE_LIMIT, limit=30, window=1, concurrent_limit=15); default
	// 30 per 1 s, concurrency 15.
	Discover Limit
	// Default applies to every other endpoint; default 40 per 1 s,
	// concurrency 25.
	Default Limit
}

// Limit is one rate limit: Limit requests per fixed Window (aligned to epoch
// multiples of Window), and at most Concurrent requests in flight.
type Limit struct {
	Limit      int
	Window     time.Duration
	Concurrent int
}

// Faults are per-request failure probabilities. One uniform draw from the
// seeded fault RNG decides, per request, which fault (if any) applies.
type Faults struct {
	P5xx          float64 // 500 {"detail":"Internal Error","errorId":…}
	P502HTML      float64 // 502 with an HTML page, from the "load balancer"
	PTruncated    float64 // 200 whose JSON body is cut short
	PHang         float64 // the request blocks (holding its concurrency slot)
	PQueryTimeout float64 // 400 "Query timeout…" on events, issues and stats
	// HangFor bounds a hang on the REAL clock; the request is then served
	// normally. A hang also ends when the request context is done.
	// Default 30s.
	HangFor time.Duration
}

// RequestStats counts requests served.
type RequestStats struct {
	Total       int64
	ByStatus    map[int]int64
	ByGroup     map[string]int64 // GroupEvents, GroupStats, GroupDiscover, GroupDefault, "other"
	RateLimited int64
	Faults      int64
	InFlight    int64
}

// Rate-limit endpoint groups. Each endpoint with its own limits in Sentry
// (rate_limits on the view) is a group: its budget is separate, per caller,
// from every other group's.
const (
	GroupEvents   = "project-events"
	GroupStats    = "stats-v2"
	GroupDiscover = "discover"
	GroupDefault  = "default"
)

// Server is the simulated Sentry. It is an http.Handler.
type Server struct {
	cfg   Config
	clock clock.Clock
	mux   *http.ServeMux

	mu         sync.RWMutex
	projects   []*project // creation order
	byID       map[string]*project
	bySlug     map[string]*project
	redirects  map[string]*project // old slug → project
	projectSeq int64
	groupSeq   atomic.Int64
	eventSeq   atomic.Uint32
	popCount   int

	auditMu  sync.Mutex
	audit    []auditEntry
	auditSeq int64

	idMu  sync.Mutex
	idRNG *rand.Rand

	faultMu  sync.Mutex
	faults   Faults
	faultRNG *rand.Rand

	limiter *limiter

	tokMu    sync.RWMutex
	tokens   map[string]TokenInfo
	openAuth bool // no token configured: any token is an internal integration

	statsMu  sync.Mutex
	reqStats RequestStats
	inFlight atomic.Int64

	orgCreated time.Time
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Org == "" {
		cfg.Org = "acme"
	}
	if cfg.OrgID == "" {
		cfg.OrgID = "1000001"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.OutcomeDelay == 0 {
		cfg.OutcomeDelay = 5 * time.Second
	} else if cfg.OutcomeDelay < 0 {
		cfg.OutcomeDelay = 0
	}
	rl := cfg.RateLimits
	if rl.Events.Limit == 0 {
		rl.Events = Limit{Limit: 60, Window: 60 * time.Second, Concurrent: 1}
	}
	if rl.Stats.Limit == 0 {
		rl.Stats = Limit{Limit: 20, Window: time.Second, Concurrent: 25}
	}
	if rl.Discover.Limit == 0 {
		rl.Discover = Limit{Limit: 30, Window: time.Second, Concurrent: 15}
	}
	if rl.Default.Limit == 0 {
		rl.Default = Limit{Limit: 40, Window: time.Second, Concurrent: 25}
	}
	for _, l := range []*Limit{&rl.Events, &rl.Stats, &rl.Discover, &rl.Default} {
		if l.Window <= 0 {
			l.Window = time.Second
		}
	}
	cfg.RateLimits = rl
	if cfg.Retention == 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
	seed := uint64(cfg.Seed)
	s := &Server{
		cfg:        cfg,
		clock:      cfg.Clock,
		byID:       map[string]*project{},
		bySlug:     map[string]*project{},
		redirects:  map[string]*project{},
		idRNG:      rand.New(rand.NewPCG(seed, 0x1d5)),
		faultRNG:   rand.New(rand.NewPCG(seed, 0xfa17)),
		faults:     normFaults(cfg.Faults),
		limiter:    newLimiter(),
		orgCreated: time.Date(2019, 3, 14, 9, 26, 53, 0, time.UTC),
		tokens:     map[string]TokenInfo{},
		openAuth:   len(cfg.Tokens) == 0 && len(cfg.TokenInfo) == 0,
	}
	for tok, scopes := range cfg.Tokens {
		if scopes == nil {
			scopes = []string{}
		}
		s.tokens[tok] = TokenInfo{Kind: TokenInternalIntegration, Scopes: slices.Clone(scopes)}
	}
	for tok, ti := range cfg.TokenInfo {
		ti.Scopes, ti.Projects = slices.Clone(ti.Scopes), slices.Clone(ti.Projects)
		s.tokens[tok] = ti
	}
	s.reqStats = RequestStats{ByStatus: map[int]int64{}, ByGroup: map[string]int64{}}
	s.routes()
	return s
}

func normFaults(f Faults) Faults {
	if f.HangFor <= 0 {
		f.HangFor = 30 * time.Second
	}
	return f
}

// SetFaults replaces the fault probabilities.
func (s *Server) SetFaults(f Faults) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = normFaults(f)
}

// Org returns the organisation slug.
func (s *Server) Org() string { return s.cfg.Org }

func (s *Server) newEventID() [16]byte {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return randID(s.idRNG)
}

func randID(r *rand.Rand) [16]byte {
	var id [16]byte
	a, b := r.Uint64(), r.Uint64()
	for i := range 8 {
		id[i] = byte(a >> (8 * i))
		id[8+i] = byte(b >> (8 * i))
	}
	return id
}

// retentionEdge returns the oldest event timestamp (unix seconds) still
// retained at now; ok is false when retention is unlimited (edge is then
// the smallest int64).
func (s *Server) retentionEdge(now time.Time) (edge int64, ok bool) {
	if s.cfg.Retention < 0 {
		return -maxInt64 - 1, false
	}
	return ceilSec(now.Add(-s.cfg.Retention)), true
}

// RequestStats returns a snapshot of the request counters.
func (s *Server) RequestStats() RequestStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := s.reqStats
	out.ByStatus = maps(s.reqStats.ByStatus)
	out.ByGroup = maps(s.reqStats.ByGroup)
	out.InFlight = s.inFlight.Load()
	return out
}

func maps[K comparable](m map[K]int64) map[K]int64 {
	out := make(map[K]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Server) countRequest(group string, status int, limited, fault bool) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.reqStats.Total++
	s.reqStats.ByStatus[status]++
	s.reqStats.ByGroup[group]++
	if limited {
		s.reqStats.RateLimited++
	}
	if fault {
		s.reqStats.Faults++
	}
}

const maxInt64 = int64(^uint64(0) >> 1)
