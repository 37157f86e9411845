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
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
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

// Project is a project as created by AddProject.
type Project struct {
	ID   string // numeric
	Slug string
	Name string
}

// EventSpec describes an event to add.
type EventSpec struct {
	// ID is the 32-hex event id; generated when empty.
	ID string
	// Timestamp is the event's own time (the SDK's): filtered and sorted at
	// second resolution (Snuba's timestamp), rendered in dateCreated with
	// its milliseconds (timestamp_ms) when they are not zero. Relay keeps
	// it unless it is more than 60 s after ReceivedAt or older than
	// ReceivedAt − Config.Retention; then it becomes ReceivedAt, as
	// normalize_timestamps does (relay-event-normalization), so
	// received − retention ≤ timestamp ≤ received + 60 s always holds.
	Timestamp time.Time
	// VisibleAt is when the event becomes listable (once ingestion has
	// stored it); zero means ReceivedAt when that is set, else Timestamp.
	// It must not be before ReceivedAt.
	VisibleAt time.Time
	// ReceivedAt is when Relay received it: Snuba's received column (whole
	// seconds; Discover's error.received) and the time basis of stats_v2's
	// accepted outcome. Zero means VisibleAt. An event cached offline by an
	// SDK and sent hours or days later has a ReceivedAt long after its
	// Timestamp (a late-sent event).
	ReceivedAt time.Time
	// Message groups events into issues (same message, same issue); a
	// message "Type: value" gives metadata type and value.
	Message string
	// Level is fatal, error (default), warning, info or debug.
	Level string
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

// AddProject creates a live project and returns it.
func (s *Server) AddProject(slug, name string) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addProjectLocked(slug, name, platforms[int(s.projectSeq)%len(platforms)])
}

func (s *Server) addProjectLocked(slug, name, platform string) Project {
	s.projectSeq++
	id := 4506000000000000 + s.projectSeq*7919
	p := &project{
		id:       id,
		idStr:    strconv.FormatInt(id, 10),
		slug:     slug,
		name:     name,
		platform: platform,
		live:     true,
		created:  s.clock.Now().UTC().Add(-time.Duration(400-s.projectSeq%300) * 24 * time.Hour).Truncate(time.Second),
		nextDue:  maxInt64,
		nextOut:  maxInt64,
		minutes:  map[int64]int64{},
		groupBy:  map[string]*group{},
	}
	s.projects = append(s.projects, p)
	s.byID[p.idStr] = p
	s.bySlug[slug] = p
	delete(s.redirects, slug)
	return Project{ID: p.idStr, Slug: slug, Name: name}
}

// RenameProject gives a project a new slug. Requests that use an old slug
// are answered with 302 and the new location.
func (s *Server) RenameProject(id, newSlug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byID[id]
	if p == nil {
		panic(fmt.Sprintf("sentrysim: RenameProject: unknown project %q", id))
	}
	if p.slug == newSlug {
		return
	}
	delete(s.bySlug, p.slug)
	s.redirects[p.slug] = p
	p.slug = newSlug
	s.bySlug[newSlug] = p
	delete(s.redirects, newSlug)
}

// DeleteProject marks a project as pending deletion: it disappears from the
// project list and its endpoints answer 404.
func (s *Server) DeleteProject(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.byID[id]; p != nil {
		p.live = false
	}
}

// Projects returns the live projects sorted by slug.
func (s *Server) Projects() []Project {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Project
	for _, p := range s.projects {
		if p.live {
			out = append(out, Project{ID: p.idStr, Slug: p.slug, Name: p.name})
		}
	}
	slices.SortFunc(out, func(a, b Project) int { return cmpString(a.Slug, b.Slug) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lookupProject finds a project by numeric id or slug (any status).
func (s *Server) lookupProject(idOrSlug string) *project {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.byID[idOrSlug]; p != nil {
		return p
	}
	return s.bySlug[idOrSlug]
}

// AddEvent adds an event to a project (by id or slug) and returns its id.
// It panics on an unknown project or a malformed id.
func (s *Server) AddEvent(projectID string, e EventSpec) string {
	p := s.lookupProject(projectID)
	if p == nil {
		panic(fmt.Sprintf("sentrysim: AddEvent: unknown project %q", projectID))
	}
	var id [16]byte
	if e.ID != "" {
		var ok bool
		if id, ok = parseHexID(e.ID); !ok {
			panic(fmt.Sprintf("sentrysim: AddEvent: malformed event id %q", e.ID))
		}
	} else {
		id = s.newEventID()
	}
	switch {
	case !e.VisibleAt.IsZero():
	case !e.ReceivedAt.IsZero():
		e.VisibleAt = e.ReceivedAt
	default:
		e.VisibleAt = e.Timestamp
	}
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = e.VisibleAt
	}
	if e.VisibleAt.Before(e.ReceivedAt) {
		panic(fmt.Sprintf("sentrysim: AddEvent: VisibleAt %v is before ReceivedAt %v: Sentry lists an event only after it received it",
			e.VisibleAt, e.ReceivedAt))
	}
	e.Timestamp = relayTimestamp(e.Timestamp, e.ReceivedAt, s.cfg.Retention)
	lvl := levelIndex(e.Level)
	msg := e.Message
	if msg == "" {
		msg = "<unlabeled event>"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groupBy[msg]
	if g == nil {
		g = s.newGroupLocked(p, templateFromMessage(msg, p.platform), lvl, "unresolved")
		p.groupBy[msg] = g
	}
	ev := event{
		id:        id,
		ts:        e.Timestamp.Unix(),
		visibleAt: e.VisibleAt.UnixNano(),
		received:  e.ReceivedAt.UnixNano(),
		msg:       e.Message,
		group:     g.idx,
		level:     lvl,
		ms:        uint16(e.Timestamp.Nanosecond() / int(time.Millisecond)),
		seq:       s.eventSeq.Add(1),
	}
	p.addPendingLocked(ev, s.cfg.OutcomeDelay)
	return hexID(id)
}

// SetIssueStatus sets an issue's status (unresolved, resolved, ignored;
// "archived" is ignored) without an event, and the substatus that goes with
// it: ongoing, archived_forever, or none for resolved. The issues endpoint
// shows the change only in rows of windows in which the issue has events.
func (s *Server) SetIssueStatus(issueID, status string) {
	if status == "archived" {
		status = "ignored"
	}
	s.updateGroup(issueID, func(g *group) { g.status, g.substatus = status, defaultSubstatus(status) })
}

// SetIssueSubstatus sets an issue's substatus (ongoing, escalating,
// regressed, new for unresolved issues; archived_until_escalating,
// archived_until_condition_met, archived_forever for ignored ones; "" for
// none) without an event.
func (s *Server) SetIssueSubstatus(issueID, substatus string) {
	s.updateGroup(issueID, func(g *group) { g.substatus = substatus })
}

// SetIssuePriority sets an issue's priority (high, medium, low) by hand,
// without an event: priorityLockedAt becomes the current time.
func (s *Server) SetIssuePriority(issueID, priority string) {
	at := s.clock.Now().UnixNano()
	s.updateGroup(issueID, func(g *group) { g.priority, g.priorityLockedAt = priority, at })
}

// SetIssueSeenStatsMissing makes the issues endpoint's windowed seen-stats
// query return no row for the issue (or a row again): its rows keep their
// place in the search but show count "0", userCount 0, and null firstSeen
// and lastSeen (src/sentry/api/serializers/models/group.py,
// _parse_seen_stats_results: last_seen.get(item.id)).
func (s *Server) SetIssueSeenStatsMissing(issueID string, missing bool) {
	s.updateGroup(issueID, func(g *group) { g.noSeenStats = missing })
}

// SetIssueLevel sets an issue's level (fatal, error, warning, info, debug).
func (s *Server) SetIssueLevel(issueID, level string) {
	s.updateGroup(issueID, func(g *group) { g.level = levelIndex(level) })
}

// SetIssueAssignee assigns an issue to a user id ("" unassigns it). The
// issue's assignedTo renders as {"type":"user","id":…,"name":…,"email":…}.
func (s *Server) SetIssueAssignee(issueID, userID string) {
	s.updateGroup(issueID, func(g *group) { g.assignee = userID })
}

func (s *Server) updateGroup(issueID string, f func(*group)) {
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	for _, p := range ps {
		p.mu.Lock()
		for _, g := range p.groups {
			if g.idStr == issueID {
				f(g)
			}
		}
		p.mu.Unlock()
	}
}

// IssueInfo is the state of an issue now. Count, FirstSeen and LastSeen
// are lifetime values (the "lifetime" object of an issues row), not the
// window-scoped top-level ones.
type IssueInfo struct {
	ID, ProjectID, Status, Level string
	Substatus, Priority          string
	Count                        int64
	FirstSeen, LastSeen          time.Time // second resolution
	Assignee                     string    // user id; "" unassigned
}

// Issues returns every issue that exists now: with at least one visible
// event, the last one within retention, in a live project; sorted by id.
func (s *Server) Issues() []IssueInfo {
	s.mu.RLock()
	var ps []*project
	for _, p := range s.projects {
		if p.live {
			ps = append(ps, p)
		}
	}
	s.mu.RUnlock()
	now := s.clock.Now()
	edge, _ := s.retentionEdge(now)
	var out []IssueInfo
	for _, p := range ps {
		p.mu.Lock()
		p.promoteLocked(now.UnixNano())
		for _, g := range p.groups {
			if g.count == 0 || g.lastSeen < edge {
				continue
			}
			out = append(out, IssueInfo{ID: g.idStr, ProjectID: p.idStr, Status: g.status, Level: levels[g.level],
				Substatus: g.substatus, Priority: g.priority,
				Count: g.count, FirstSeen: time.Unix(g.firstSeen, 0).UTC(), LastSeen: time.Unix(g.lastSeen, 0).UTC(),
				Assignee: g.assignee})
		}
		p.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b IssueInfo) int { return cmpString(a.ID, b.ID) })
	return out
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

// retainedLocked returns the visible events of p that are within retention at
// now, oldest first. p.mu must be held.
func (s *Server) retainedLocked(p *project, now time.Time) []event {
	p.promoteLocked(now.UnixNano())
	edge, _ := s.retentionEdge(now)
	lo, hi := p.window(edge, maxInt64)
	return p.visible[lo:hi]
}

// Visible returns the ids of the project's events visible now (and within
// retention), newest first (the order of the events endpoint).
func (s *Server) Visible(projectID string) []string {
	p := s.lookupProject(projectID)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	evs := s.retainedLocked(p, s.clock.Now())
	out := make([]string, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, hexID(evs[i].id))
	}
	return out
}

// GroundTruth returns, per project id, the set of event ids visible now
// (events older than the retention are gone). Every project (also deleted
// ones) is present, possibly with an empty set.
func (s *Server) GroundTruth() map[string]map[string]bool {
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	now := s.clock.Now()
	out := make(map[string]map[string]bool, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		evs := s.retainedLocked(p, now)
		set := make(map[string]bool, len(evs))
		for _, e := range evs {
			set[hexID(e.id)] = true
		}
		p.mu.Unlock()
		out[p.idStr] = set
	}
	return out
}

// VisibleCount returns the number of events visible now (and within
// retention) across the org.
func (s *Server) VisibleCount() int {
	s.mu.RLock()
	ps := slices.Clone(s.projects)
	s.mu.RUnlock()
	now := s.clock.Now()
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		n += len(s.retainedLocked(p, now))
		p.mu.Unlock()
	}
	return n
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
