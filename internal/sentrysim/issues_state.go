package sentrysim

import (
	"cmp"
	"slices"
	"time"
)

// Issue state a test sets without events (status, substatus, priority,
// level, assignee, missing seen stats), and the issues that exist now.

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
	slices.SortFunc(out, func(a, b IssueInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
