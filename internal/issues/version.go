package issues

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
)

// issueRow is what versioning reads of an issue row. Dates are kept raw and
// parsed only where they are used, so that a null (a missing seen-stats row)
// is told apart from a date that cannot be read.
type issueRow struct {
	ID         string          `json:"id"`
	Status     string          `json:"status"`
	Substatus  string          `json:"substatus"` // null: ""
	Level      string          `json:"level"`
	Priority   string          `json:"priority"` // absent on older servers: ""
	AssignedTo json.RawMessage `json:"assignedTo"`
	// Count and LastSeen describe only the events of the request's window
	// when it has start/end or statsPeriod: read only when the row has no
	// "lifetime".
	Count    json.RawMessage `json:"count"`
	LastSeen json.RawMessage `json:"lastSeen"`
	// Lifetime holds the issue's own numbers, whatever the window.
	Lifetime *struct {
		Count     json.RawMessage `json:"count"`
		FirstSeen json.RawMessage `json:"firstSeen"`
		LastSeen  json.RawMessage `json:"lastSeen"`
	} `json:"lifetime"`
}

// Parse reads an issue row (from Sentry, or a line read back from a data
// object) into a record: the issue id, the fingerprint of its version, and
// the unix second of its lifetime lastSeen (0: unknown). The same function
// serves both, so a recovered object yields exactly the versions written.
//
// The version is a 64-bit fingerprint of what an issue's change is: status,
// substatus, level, priority, assignee (type and id), and the lifetime
// count, firstSeen and lastSeen. Not the row's top-level count, userCount,
// firstSeen and lastSeen: when the request has a window (start/end, as every
// request of this stream does), Sentry computes them over the events inside
// the window only, so two overlapping windows give an unchanged issue two
// different top-level values, and a fingerprint on them would write it again
// on every pass. Not lifetime.userCount either: Sentry counts it over the
// events it still retains, so it falls as old events expire while nothing
// happened to the issue, and it rises only with a new event, which raises
// lifetime.count anyway. Fields that depend on who reads (hasSeen,
// isBookmarked, isSubscribed), on the request (stats, filtered) or change
// only with events (title, culprit, metadata, isUnhandled) are not part of
// it either: each record is a snapshot, and they are written when they
// change together with the fields above.
//
// lastSeen may be null (Sentry's seen-stats query had no row for the issue).
// The version then fingerprints an empty lastSeen: the lifetime count still
// tells a new event, and when the lastSeen comes back the issue is written
// once more with it (one extra version, never a missed one). Its time is
// unknown (0), and the lane files it under the time it is written, which is
// never earlier than the issue's real lastSeen, so pruning keeps its mark at
// least as long as it is needed (see marks.prune).
//
// A row without "lifetime" (a server that does not send it) is versioned on
// its top-level count and lastSeen, the only ones it has: with a windowed
// request an unchanged issue may then be written again (a spurious version),
// but a change is never missed.
func Parse(raw []byte) (engine.Record, error) {
	var row issueRow
	if err := json.Unmarshal(raw, &row); err != nil {
		return engine.Record{}, fmt.Errorf("failed to decode issue: %w", err)
	}
	if !engine.ValidID(row.ID) {
		return engine.Record{}, errors.New("failed to decode issue: no valid id")
	}
	count, first, last := row.Count, json.RawMessage(nil), row.LastSeen
	if lt := row.Lifetime; lt != nil {
		count, first, last = lt.Count, lt.FirstSeen, lt.LastSeen
	}
	firstSeen, ok1 := parseDate(first)
	lastSeen, ok2 := parseDate(last)
	if !ok1 || !ok2 {
		return engine.Record{}, errors.New("failed to decode issue: unreadable firstSeen or lastSeen")
	}
	h := sha256.New()
	for _, part := range []string{
		row.Status, row.Substatus, row.Level, row.Priority, assigneeKey(row.AssignedTo),
		strings.Trim(string(bytes.TrimSpace(count)), `"`), dateKey(firstSeen), dateKey(lastSeen),
	} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	rec := engine.Record{ID: row.ID, Version: hex.EncodeToString(h.Sum(nil)[:8]), Raw: raw}
	if !lastSeen.IsZero() {
		rec.Time = lastSeen.Unix()
	}
	return rec, nil
}

// parseDate reads a JSON date: absent or null is the zero time, a string is
// an RFC 3339 date; anything else is not ok.
func parseDate(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, true
	}
	var t time.Time
	if err := json.Unmarshal(raw, &t); err != nil {
		return time.Time{}, false
	}
	return t, true
}

// dateKey renders a date for the fingerprint ("" for none).
func dateKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// assigneeKey identifies an assignee ({"type":"user","id":"1",…} or a team)
// by type and id, so that a renamed user is not a new version.
func assigneeKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var a struct {
		Type string `json:"type"`
		ID   any    `json:"id"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.ID == nil {
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
		return string(raw)
	}
	return fmt.Sprintf("%s:%v", a.Type, a.ID)
}
