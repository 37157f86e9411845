package sentrysim

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The organisation's projects and their events, as a test sets them up.

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
	slices.SortFunc(out, func(a, b Project) int { return cmp.Compare(a.Slug, b.Slug) })
	return out
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
