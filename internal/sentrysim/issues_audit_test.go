package sentrysim

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIssueChangesAreRenderedAndSnapshotted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	p := h.s.AddProject("web", "Web")
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-time.Minute), Message: "KeyError: a"})
	issues := h.s.Issues()
	if len(issues) != 1 {
		t.Fatalf("Issues() = %+v, want one issue", issues)
	}
	id := issues[0].ID
	h.s.SetIssueStatus(id, "resolved")
	h.s.SetIssueLevel(id, "warning")
	h.s.SetIssueAssignee(id, "42")
	h.s.AddEvent(p.ID, EventSpec{Timestamp: t0.Add(-30 * time.Second), Message: "KeyError: a"})

	want := IssueInfo{ID: id, ProjectID: p.ID, Status: "resolved", Level: "warning", Priority: "medium", Count: 2,
		FirstSeen: t0.Add(-time.Minute).Truncate(time.Second), LastSeen: t0.Add(-30 * time.Second).Truncate(time.Second), Assignee: "42"}
	if diff := cmp.Diff([]IssueInfo{want}, h.s.Issues()); diff != "" {
		t.Errorf("Issues() (-want +got):\n%s", diff)
	}
	r := h.get(t, "tok", "/api/0/organizations/acme/issues/?query=")
	var rows []struct {
		ID, Status, Level, Count string
		AssignedTo               *struct{ Type, ID string }
	}
	if err := json.Unmarshal(r.body, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("rows %s: %v", r.body, err)
	}
	got := rows[0]
	if got.Status != "resolved" || got.Level != "warning" || got.Count != "2" || got.AssignedTo == nil || got.AssignedTo.Type != "user" || got.AssignedTo.ID != "42" {
		t.Errorf("rendered issue %s", r.body)
	}
	h.s.SetIssueAssignee(id, "")
	r = h.get(t, "tok", "/api/0/organizations/acme/issues/?query=level:warning")
	if err := json.Unmarshal(r.body, &rows); err != nil || len(rows) != 1 || rows[0].AssignedTo != nil {
		t.Errorf("after unassigning, filtered by the new level: %s", r.body)
	}
}

func TestAuditLogIDsFollowVisibility(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	a := h.s.AddAuditLog(AuditSpec{Event: "member.invite", At: t0.Add(-time.Hour)})
	b := h.s.AddAuditLog(AuditSpec{Event: "org.edit", At: t0.Add(-time.Minute), VisibleAt: t0.Add(time.Minute)})
	if diff := cmp.Diff([]string{a}, h.s.AuditLogIDs()); diff != "" {
		t.Errorf("before the late entry is visible (-want +got):\n%s", diff)
	}
	h.clock.Advance(2 * time.Minute)
	if diff := cmp.Diff([]string{b, a}, h.s.AuditLogIDs()); diff != "" {
		t.Errorf("after (-want +got):\n%s", diff)
	}
}
