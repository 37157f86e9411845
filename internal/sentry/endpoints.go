package sentry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// AllProjects, as the only element of IssuesQuery.Projects or
// StatsQuery.Projects, sends project=-1: every project the token can
// access. Without any project, Sentry covers only the projects whose teams
// the token's user is a member of (get_projects in
// src/sentry/api/bases/organization.py), which for a user token may be
// some or none; an internal integration is a member of every project.
const AllProjects = "-1"

// groupStats is the limiter group of stats_v2, which has its own rate
// limit in Sentry (20 requests per second, organization_stats_v2.py) and
// so its own budget, apart from groupDefault. Its concurrent limit is
// Sentry's default one, so the limiter starts it like groupDefault.
const groupStats = "stats-v2"

// Organization is GET /api/0/organizations/{org}/.
type Organization struct {
	ID, Slug, Name string
	RegionURL      string          // links.regionUrl: base URL for region endpoints ("" on self-hosted)
	Raw            json.RawMessage // the response body, compact
}

// Page is one page of a paginated list. HasNext is true exactly when the
// Link header's rel="next" says results="true"; NextCursor is its cursor
// attribute, verbatim (pass it back as the next query's Cursor).
type Page[T any] struct {
	Items      []T
	NextCursor string
	HasNext    bool
}

// Project is a row of GET /api/0/organizations/{org}/projects/.
type Project struct {
	ID, Slug, Name string
	Raw            json.RawMessage
}

// EventsQuery selects a page of GET /api/0/projects/{org}/{project}/events/.
type EventsQuery struct {
	Org, Project string    // Project: numeric id (preferred) or slug
	Start, End   time.Time // both zero => no window; else both set, sent as UTC RFC3339 whole seconds (half-open)
	Cursor       string    // "" for the first page; else the NextCursor of the previous page, verbatim
	PerPage      int       // 1..100; 0 => 100; larger values are clamped to 100
}

// Event is a row of the project events list (the simple serializer).
type Event struct {
	ID          string          // "id" (32 hex)
	ProjectID   string          // "projectID"
	DateCreated time.Time       // "dateCreated" (second resolution, UTC)
	Raw         json.RawMessage // the row's exact bytes from Sentry, compact, never re-encoded
}

// IssuesQuery selects a page of GET /api/0/organizations/{org}/issues/.
type IssuesQuery struct {
	Org        string
	Projects   []string  // numeric ids, or just AllProjects; none => the member projects only (see AllProjects)
	Query      string    // always sent, even "" (Sentry's default would be is:unresolved)
	Start, End time.Time // both zero or both set
	Sort       string    // date (default), new, freq, user, …
	Cursor     string
	Limit      int // 1..100; 0 => 100
}

// Issue is a row of the organisation issues list.
type Issue struct {
	ID, ProjectID, Status, Level, Count string
	FirstSeen, LastSeen                 time.Time
	Raw                                 json.RawMessage
}

// AuditLogQuery selects a page of GET /api/0/organizations/{org}/audit-logs/.
type AuditLogQuery struct {
	Org, Cursor string
	PerPage     int // 1..100; 0 => 100
}

// AuditLogEntry is a row of the audit log.
type AuditLogEntry struct {
	ID, Event   string
	DateCreated time.Time
	Raw         json.RawMessage
}

// StatsQuery selects GET /api/0/organizations/{org}/stats_v2/ with
// field=sum(quantity).
type StatsQuery struct {
	Org            string
	Start, End     time.Time     // both zero (Sentry's default range) or both set
	Interval       time.Duration // 0 => Sentry's default (1h); else a whole number of minutes
	Category       string        // default "error"
	Outcomes       []string      // e.g. "accepted"; none => all outcomes
	Projects       []string      // numeric ids, or just AllProjects; none => every project, but the member projects only with GroupByProject (see AllProjects)
	GroupByProject bool
}

// StatsSeries is one group of a stats_v2 answer.
type StatsSeries struct {
	ProjectID string  // by.project when grouped by project
	Total     int64   // totals["sum(quantity)"]
	Buckets   []int64 // series["sum(quantity)"]; absent when grouped by project
}

// Stats is a stats_v2 answer.
type Stats struct {
	Start, End time.Time
	Intervals  []time.Time // bucket starts; absent when grouped by project
	Groups     []StatsSeries
}

// Organization returns the organisation's details, including the region URL
// to use for region endpoints.
func (c *Client) Organization(ctx context.Context, org string) (*Organization, error) {
	if org == "" {
		return nil, &QueryError{Msg: "organization is required"}
	}
	var out *Organization
	err := c.get(ctx, call{
		group:    groupDefault,
		endpoint: "GET /api/0/organizations/{org}/",
		path:     "/api/0/organizations/" + url.PathEscape(org) + "/",
		scope:    "org:read",
	}, func(body []byte, _ http.Header) error {
		o, err := decodeOrganization(body)
		out = o
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListProjects returns one page of the organisation's projects.
func (c *Client) ListProjects(ctx context.Context, org, cursor string) (Page[Project], error) {
	if org == "" {
		return Page[Project]{}, &QueryError{Msg: "organization is required"}
	}
	q := url.Values{"per_page": {"100"}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p Page[Project]
	err := c.get(ctx, call{
		group:    groupDefault,
		endpoint: "GET /api/0/organizations/{org}/projects/",
		path:     "/api/0/organizations/" + url.PathEscape(org) + "/projects/",
		query:    q,
		scope:    "org:read",
	}, func(body []byte, h http.Header) error {
		items, err := decodeProjects(body)
		if err != nil {
			return err
		}
		p = Page[Project]{Items: items}
		return pageLinks(h, body, cursor, &p.NextCursor, &p.HasNext)
	})
	return p, err
}

// ListEvents returns one page of a project's error events, newest first.
func (c *Client) ListEvents(ctx context.Context, q EventsQuery) (Page[Event], error) {
	if q.Org == "" || q.Project == "" {
		return Page[Event]{}, &QueryError{Msg: "organization and project are required"}
	}
	v := url.Values{}
	per := clampPerPage(q.PerPage)
	v.Set("per_page", strconv.Itoa(per))
	if err := setWindow(v, q.Start, q.End); err != nil {
		return Page[Event]{}, err
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var p Page[Event]
	err := c.get(ctx, call{
		group:    groupEvents,
		endpoint: "GET /api/0/projects/{org}/{project}/events/",
		path:     "/api/0/projects/" + url.PathEscape(q.Org) + "/" + url.PathEscape(q.Project) + "/events/",
		query:    v,
		scope:    "project:read",
	}, func(body []byte, h http.Header) error {
		items, err := decodeEvents(body, per)
		if err != nil {
			return err
		}
		p = Page[Event]{Items: items}
		return pageLinks(h, body, q.Cursor, &p.NextCursor, &p.HasNext)
	})
	return p, err
}

// ListIssues returns one page of the organisation's issues.
func (c *Client) ListIssues(ctx context.Context, q IssuesQuery) (Page[Issue], error) {
	if q.Org == "" {
		return Page[Issue]{}, &QueryError{Msg: "organization is required"}
	}
	v := url.Values{}
	v.Set("limit", strconv.Itoa(clampPerPage(q.Limit)))
	v.Set("query", q.Query) // explicit, even when empty
	for _, p := range q.Projects {
		v.Add("project", p)
	}
	if err := setWindow(v, q.Start, q.End); err != nil {
		return Page[Issue]{}, err
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var p Page[Issue]
	err := c.get(ctx, call{
		group:    groupDefault,
		endpoint: "GET /api/0/organizations/{org}/issues/",
		path:     "/api/0/organizations/" + url.PathEscape(q.Org) + "/issues/",
		query:    v,
		scope:    "event:read",
	}, func(body []byte, h http.Header) error {
		items, err := decodeIssues(body)
		if err != nil {
			return err
		}
		p = Page[Issue]{Items: items}
		return pageLinks(h, body, q.Cursor, &p.NextCursor, &p.HasNext)
	})
	return p, err
}

// ListAuditLogs returns one page of the organisation's audit log, newest
// first. It is a control-silo endpoint: call it on sentry.io, not a region
// host.
func (c *Client) ListAuditLogs(ctx context.Context, q AuditLogQuery) (Page[AuditLogEntry], error) {
	if q.Org == "" {
		return Page[AuditLogEntry]{}, &QueryError{Msg: "organization is required"}
	}
	v := url.Values{}
	v.Set("per_page", strconv.Itoa(clampPerPage(q.PerPage)))
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var p Page[AuditLogEntry]
	err := c.get(ctx, call{
		group:    groupDefault,
		endpoint: "GET /api/0/organizations/{org}/audit-logs/",
		path:     "/api/0/organizations/" + url.PathEscape(q.Org) + "/audit-logs/",
		query:    v,
		scope:    "org:write",
	}, func(body []byte, h http.Header) error {
		items, err := decodeAuditLogs(body)
		if err != nil {
			return err
		}
		p = Page[AuditLogEntry]{Items: items}
		return pageLinks(h, body, q.Cursor, &p.NextCursor, &p.HasNext)
	})
	return p, err
}

// OrgStats returns event counts (field=sum(quantity)) from stats_v2.
func (c *Client) OrgStats(ctx context.Context, q StatsQuery) (*Stats, error) {
	if q.Org == "" {
		return nil, &QueryError{Msg: "organization is required"}
	}
	v := url.Values{}
	v.Set("field", statsField)
	cat := q.Category
	if cat == "" {
		cat = "error"
	}
	v.Set("category", cat)
	for _, o := range q.Outcomes {
		v.Add("outcome", o)
	}
	if q.Interval != 0 {
		iv, err := formatInterval(q.Interval)
		if err != nil {
			return nil, err
		}
		v.Set("interval", iv)
	}
	if err := setWindow(v, q.Start, q.End); err != nil {
		return nil, err
	}
	for _, p := range q.Projects {
		v.Add("project", p)
	}
	if q.GroupByProject {
		v.Set("groupBy", "project")
	}
	var out *Stats
	err := c.get(ctx, call{
		group:    groupStats,
		endpoint: "GET /api/0/organizations/{org}/stats_v2/",
		path:     "/api/0/organizations/" + url.PathEscape(q.Org) + "/stats_v2/",
		query:    v,
		scope:    "org:read",
	}, func(body []byte, _ http.Header) error {
		s, err := decodeStats(body)
		out = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// clampPerPage keeps a page size within Sentry's 1..100 (0 means 100).
func clampPerPage(n int) int {
	switch {
	case n <= 0, n > 100:
		return 100
	}
	return n
}

// timeParam formats t as UTC RFC 3339 whole seconds (truncated).
func timeParam(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// setWindow adds start/end (both or neither; start before end).
func setWindow(v url.Values, start, end time.Time) error {
	switch {
	case start.IsZero() && end.IsZero():
		return nil
	case start.IsZero() || end.IsZero():
		return &QueryError{Msg: "start and end must be given together"}
	}
	s, e := start.UTC().Truncate(time.Second), end.UTC().Truncate(time.Second)
	if !s.Before(e) {
		return &QueryError{Msg: fmt.Sprintf("start %s is not before end %s", timeParam(s), timeParam(e))}
	}
	v.Set("start", timeParam(s))
	v.Set("end", timeParam(e))
	return nil
}

// formatInterval renders a stats interval in Sentry's "1h"/"5m"/"1d" form.
func formatInterval(d time.Duration) (string, error) {
	switch {
	case d < time.Minute || d%time.Minute != 0:
		return "", &QueryError{Msg: fmt.Sprintf("stats interval %s is not a positive whole number of minutes", d)}
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d", nil
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h", nil
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m", nil
}

// pageLinks fills the pagination state from the Link header.
// A page without a rel="next" link is a malformed answer (Sentry always
// sends one, with results="false" on the last page; a proxy or cache may
// strip the header): taking it as the end of the data would silently skip
// every later page, so it is retried like a truncated body, then an error.
//
// The exception is a body that is an empty JSON list with no Link header
// at all: Sentry answers exactly that when it does not paginate because
// there is nothing to page through (organization_group_index.py: `if not
// projects: return Response([])`), and an empty page cannot hide later
// pages, so it is a complete, empty answer.
func pageLinks(h http.Header, body []byte, current string, next *string, hasNext *bool) error {
	if len(h.Values("Link")) == 0 && isEmptyJSONList(body) {
		*next, *hasNext = "", false
		return nil
	}
	if !hasNextLink(h.Values("Link")) {
		return fmt.Errorf("%w: no Link header with rel=\"next\" (stripped by a proxy?); cannot tell whether more pages follow", errMalformed)
	}
	cur, more, ok := nextPage(h.Values("Link"))
	if !ok {
		return fmt.Errorf("%w: Link rel=\"next\" has results=\"true\" but no cursor", errShape)
	}
	if more && cur == current {
		return fmt.Errorf("%w: Link rel=\"next\" repeats the current cursor %q", errShape, quoted(cur))
	}
	*next, *hasNext = cur, more
	return nil
}

// isEmptyJSONList reports whether body is "[]", give or take white space.
func isEmptyJSONList(body []byte) bool {
	b := bytes.TrimSpace(body)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return false
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) == 0
}
