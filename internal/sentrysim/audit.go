package sentrysim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// The audit log: entries a test adds (AddAuditLog) and the organisation
// audit-logs endpoint that lists them.

// AuditSpec describes an audit log entry to add.
type AuditSpec struct {
	// Event is the api name, e.g. "member.invite".
	Event string
	// At is the entry's datetime (microsecond resolution).
	At time.Time
	// VisibleAt is when the entry can be listed (outbox delay); zero means At.
	VisibleAt time.Time
	// ActorID and ActorName describe who did it; defaults are generated.
	ActorID   int64
	ActorName string
	Note      string
}

// auditEntry is one audit log row.
type auditEntry struct {
	id        int64
	at        int64 // unix micros
	visibleAt int64 // unix nanos
	event     string
	actorID   int64
	actorName string
	note      string
}

// auditCmp orders entries newest first (datetime, then id).
func auditCmp(a, b auditEntry) int {
	if c := cmp.Compare(b.at, a.at); c != 0 {
		return c
	}
	return cmp.Compare(b.id, a.id)
}

// AuditLogIDs returns the ids of the audit-log entries visible now.
func (s *Server) AuditLogIDs() []string {
	now := s.clock.Now().UnixNano()
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	var out []string
	for _, a := range s.audit {
		if a.visibleAt <= now {
			out = append(out, strconv.FormatInt(a.id, 10))
		}
	}
	return out
}

// AddAuditLog adds an audit log entry and returns its id.
func (s *Server) AddAuditLog(a AuditSpec) string {
	if a.VisibleAt.IsZero() {
		a.VisibleAt = a.At
	}
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	s.auditSeq++
	id := 880000 + s.auditSeq
	if a.ActorID == 0 {
		a.ActorID = 10000 + s.auditSeq%7
	}
	if a.ActorName == "" {
		a.ActorName = fmt.Sprintf("user%d@example.com", a.ActorID)
	}
	s.audit = append(s.audit, auditEntry{
		id:        id,
		at:        a.At.UnixMicro(),
		visibleAt: a.VisibleAt.UnixNano(),
		event:     a.Event,
		actorID:   a.ActorID,
		actorName: a.ActorName,
		note:      a.Note,
	})
	slices.SortStableFunc(s.audit, func(x, y auditEntry) int { return auditCmp(x, y) })
	return strconv.FormatInt(id, 10)
}

var auditEventNames = []string{
	"alertrule.add", "alertrule.edit", "alertrule.remove", "api-key.add", "api-key.edit", "api-key.remove",
	"integration.add", "integration.edit", "integration.remove", "internal-integration.add-token",
	"internal-integration.create", "internal-integration.disable", "internal-integration.remove-token",
	"issue.delete", "member.accept-invite", "member.add", "member.edit", "member.invite", "member.join-team",
	"member.leave-team", "member.pending", "member.reinvite", "member.remove", "org-auth-token.create",
	"org-auth-token.remove", "org.create", "org.edit", "org.remove", "org.restore", "project.create",
	"project.edit", "project.remove", "projectkey.add", "projectkey.edit", "projectkey.remove",
	"rule.add", "rule.edit", "rule.remove", "sso-identity.link", "sso.disable", "sso.edit", "sso.enable",
	"team.create", "team.edit", "team.remove",
}

// handleAuditLogs serves GET /api/0/organizations/{org}/audit-logs/
// (DateTimePaginator newest first; scope org:write).
func (s *Server) handleAuditLogs(rq *request) response {
	if e := s.orgCheck(rq, "org:write"); e != nil {
		return *e
	}
	q := rq.q
	var actor int64 = -1
	if raw, ok := last(q, "actor"); ok && raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return jsonResp(http.StatusBadRequest, []byte(`{"actor":["A valid integer is required."]}`))
		}
		if n > 2147483647 {
			return jsonResp(http.StatusBadRequest, []byte(`{"actor":["Ensure this value is less than or equal to 2147483647."]}`))
		}
		actor = n
	}
	evName, _ := last(q, "event")
	limit, e := perPage(q)
	if e != nil {
		return *e
	}
	cur, e := cursorParam(q)
	if e != nil {
		return *e
	}
	now := rq.now.UnixNano()
	s.auditMu.Lock()
	entries := make([]auditEntry, 0, len(s.audit))
	for _, a := range s.audit {
		if a.visibleAt > now || (evName != "" && a.event != evName) || (actor >= 0 && a.actorID != actor) {
			continue
		}
		entries = append(entries, a)
	}
	s.auditMu.Unlock()
	items := make([]keysetItem, len(entries))
	for i, a := range entries {
		items[i] = keysetItem{micros: a.at, idx: i}
	}
	page, prev, next := keysetPage(items, limit, cur)
	b := []byte(`{"rows":[`)
	for i, it := range page {
		if i > 0 {
			b = append(b, ',')
		}
		a := entries[it.idx]
		b = append(b, `{"id":"`...)
		b = strconv.AppendInt(b, a.id, 10)
		b = append(b, `","actor":{"id":"`...)
		b = strconv.AppendInt(b, a.actorID, 10)
		b = append(b, `","name":`...)
		b = appendJSONString(b, a.actorName)
		b = append(b, `,"email":`...)
		b = appendJSONString(b, a.actorName)
		b = append(b, `,"isActive":true,"has2fa":true},"event":`...)
		b = appendJSONString(b, a.event)
		b = append(b, `,"ipAddress":"192.0.2.`...)
		b = strconv.AppendInt(b, a.actorID%250+1, 10)
		b = append(b, `","note":`...)
		b = appendJSONString(b, a.note)
		b = append(b, `,"targetObject":`...)
		b = strconv.AppendInt(b, 4000+a.id%97, 10)
		b = append(b, `,"targetUser":null,"data":{},"dateCreated":"`...)
		b = time.UnixMicro(a.at).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
		b = append(b, `"}`...)
	}
	b = append(b, `],"options":[`...)
	for i, n := range auditEventNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	b = append(b, "]}"...)
	resp := jsonResp(http.StatusOK, b)
	resp.header = http.Header{"Link": {s.linkHeader(rq.r, prev, next)}}
	return resp
}
