package sentry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

var eventKeys = []string{"id", "projectID", "dateCreated"}

// decodeEvents splits a project-events page into rows. Each Event.Raw is a
// sub-slice of body (its exact bytes); only id, projectID and dateCreated are
// decoded. capHint pre-sizes the result (the requested page size). A row
// without a string id or with an unreadable dateCreated is returned with an
// empty ID or a zero DateCreated rather than failing the page: callers count
// such rows as invalid and skip them (one bad row must not block a project).
func decodeEvents(body []byte, capHint int) ([]Event, error) {
	if capHint <= 0 || capHint > 100 {
		capHint = 100
	}
	events := make([]Event, 0, capHint)
	var lastPID []byte
	var lastPIDStr string
	err := scanRows(body, eventKeys, func(row []byte, v [][]byte) error {
		id, _ := jsonString(v[0]) // "" when missing or not a string: invalid row
		var ok bool
		// Rows of one page share the project id: reuse the string.
		var pid string
		if lastPID != nil && bytes.Equal(v[1], lastPID) {
			pid = lastPIDStr
		} else {
			if pid, ok = jsonString(v[1]); !ok {
				return fmt.Errorf("%w: event %s has an invalid \"projectID\"", errShape, id)
			}
			lastPID, lastPIDStr = v[1], pid
		}
		created, err := jsonTime(v[2])
		if err != nil {
			created = time.Time{} // invalid row
		}
		events = append(events, Event{ID: id, ProjectID: pid, DateCreated: created, Raw: json.RawMessage(row)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

var projectKeys = []string{"id", "slug", "name"}

func decodeProjects(body []byte) ([]Project, error) {
	var out []Project
	err := scanRows(body, projectKeys, func(row []byte, v [][]byte) error {
		id, ok1 := jsonString(v[0])
		slug, ok2 := jsonString(v[1])
		name, ok3 := jsonString(v[2])
		if !ok1 || !ok2 || !ok3 || id == "" {
			return fmt.Errorf("%w: project row %d lacks a string id, slug or name", errShape, len(out))
		}
		out = append(out, Project{ID: id, Slug: slug, Name: name, Raw: json.RawMessage(row)})
		return nil
	})
	return out, err
}

var issueKeys = []string{"id", "project", "status", "level", "count", "firstSeen", "lastSeen"}

// decodeIssues splits an issues page into rows. As for events, a row without
// a string id or with an unreadable firstSeen or lastSeen is returned with an
// empty ID or a zero time rather than failing the page: callers count such
// rows as invalid and skip them (one bad row must not block the stream).
func decodeIssues(body []byte) ([]Issue, error) {
	var out []Issue
	err := scanRows(body, issueKeys, func(row []byte, v [][]byte) error {
		var is Issue
		var ok bool
		is.ID, _ = jsonString(v[0]) // "" when missing or not a string: invalid row
		if len(v[1]) > 0 && v[1][0] == '{' {
			pv, err := objectMembers(v[1], []string{"id"})
			if err != nil {
				return fmt.Errorf("issue %s project: %w", is.ID, err)
			}
			if is.ProjectID, ok = jsonString(pv[0]); !ok {
				return fmt.Errorf("%w: issue %s has an invalid project.id", errShape, is.ID)
			}
		}
		for k, dst := range []*string{&is.Status, &is.Level, &is.Count} {
			if *dst, ok = jsonString(v[2+k]); !ok {
				return fmt.Errorf("%w: issue %s has an invalid %q", errShape, is.ID, issueKeys[2+k])
			}
		}
		var err error
		if is.FirstSeen, err = jsonTime(v[5]); err != nil {
			is.FirstSeen = time.Time{} // invalid row
		}
		if is.LastSeen, err = jsonTime(v[6]); err != nil {
			is.LastSeen = time.Time{} // invalid row
		}
		is.Raw = json.RawMessage(row)
		out = append(out, is)
		return nil
	})
	return out, err
}

var auditKeys = []string{"id", "event", "dateCreated"}

// decodeAuditLogs accepts the current {"rows": [...], "options": [...]} shape
// and the older bare list. As for events, a row without a string id or with
// an unreadable dateCreated is returned with an empty ID or a zero
// DateCreated rather than failing the page: callers count such rows as
// invalid and skip them.
func decodeAuditLogs(body []byte) ([]AuditLogEntry, error) {
	rows := body
	if i := firstNonSpace(body); i < len(body) && body[i] == '{' {
		v, err := objectMembers(body, []string{"rows"})
		if err != nil {
			return nil, err
		}
		if v[0] == nil {
			return nil, fmt.Errorf("%w: audit-log object has no \"rows\"", errShape)
		}
		rows = v[0]
	}
	var out []AuditLogEntry
	err := scanRows(rows, auditKeys, func(row []byte, v [][]byte) error {
		var e AuditLogEntry
		var ok bool
		e.ID, _ = jsonString(v[0]) // "" when missing or not a string: invalid row
		if e.Event, ok = jsonString(v[1]); !ok {
			return fmt.Errorf("%w: audit-log entry %s has an invalid \"event\"", errShape, e.ID)
		}
		var err error
		if e.DateCreated, err = jsonTime(v[2]); err != nil {
			e.DateCreated = time.Time{} // invalid row
		}
		e.Raw = json.RawMessage(row)
		out = append(out, e)
		return nil
	})
	return out, err
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if !isLWS(c) {
			return i
		}
	}
	return len(b)
}

// orgJSON is the part of GET /api/0/organizations/{org}/ the client reads.
type orgJSON struct {
	ID    json.RawMessage `json:"id"`
	Slug  string          `json:"slug"`
	Name  string          `json:"name"`
	Links struct {
		RegionURL string `json:"regionUrl"`
	} `json:"links"`
}

func decodeOrganization(body []byte) (*Organization, error) {
	if err := validJSON(body); err != nil {
		return nil, err
	}
	var o orgJSON
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, fmt.Errorf("%w: %v", errShape, err)
	}
	id, ok := jsonString(o.ID)
	if !ok || id == "" {
		return nil, fmt.Errorf("%w: organization has no \"id\"", errShape)
	}
	raw := body
	if bytes.ContainsAny(body, " \t\r\n") {
		var b bytes.Buffer
		if err := json.Compact(&b, body); err != nil {
			return nil, fmt.Errorf("%w: %v", errSyntax, err)
		}
		raw = b.Bytes()
	}
	return &Organization{ID: id, Slug: o.Slug, Name: o.Name, RegionURL: o.Links.RegionURL, Raw: json.RawMessage(raw)}, nil
}

// statsJSON is the stats_v2 response. "intervals" and "series" are absent
// when grouping by project.
type statsJSON struct {
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Intervals []string `json:"intervals"`
	Groups    []struct {
		By     map[string]json.RawMessage `json:"by"`
		Totals map[string]json.Number     `json:"totals"`
		Series map[string][]json.Number   `json:"series"`
	} `json:"groups"`
}

const statsField = "sum(quantity)"

func decodeStats(body []byte) (*Stats, error) {
	if err := validJSON(body); err != nil {
		return nil, err
	}
	var sj statsJSON
	if err := json.Unmarshal(body, &sj); err != nil {
		return nil, fmt.Errorf("%w: %v", errShape, err)
	}
	parse := func(s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: stats time %q", errShape, s)
		}
		return t.UTC(), nil
	}
	var st Stats
	var err error
	if st.Start, err = parse(sj.Start); err != nil {
		return nil, err
	}
	if st.End, err = parse(sj.End); err != nil {
		return nil, err
	}
	for _, s := range sj.Intervals {
		t, err := parse(s)
		if err != nil {
			return nil, err
		}
		st.Intervals = append(st.Intervals, t)
	}
	for gi, g := range sj.Groups {
		var ss StatsSeries
		if p, ok := g.By["project"]; ok {
			if ss.ProjectID, ok = jsonString(p); !ok {
				return nil, fmt.Errorf("%w: stats group %d has an invalid by.project", errShape, gi)
			}
		}
		if n, ok := g.Totals[statsField]; ok {
			if ss.Total, err = numberToInt(n); err != nil {
				return nil, fmt.Errorf("stats group %d total: %w", gi, err)
			}
		}
		for _, n := range g.Series[statsField] {
			v, err := numberToInt(n)
			if err != nil {
				return nil, fmt.Errorf("stats group %d series: %w", gi, err)
			}
			ss.Buckets = append(ss.Buckets, v)
		}
		st.Groups = append(st.Groups, ss)
	}
	return &st, nil
}

func numberToInt(n json.Number) (int64, error) {
	if v, err := n.Int64(); err == nil {
		return v, nil
	}
	f, err := n.Float64()
	if err != nil {
		return 0, fmt.Errorf("%w: invalid number %q", errShape, n)
	}
	return int64(f), nil
}
