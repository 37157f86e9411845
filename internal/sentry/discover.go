package sentry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// Discover: GET /api/0/organizations/{org}/events/?dataset=errors, Sentry's
// organisation events endpoint (src/sentry/api/endpoints/organization_events.py).
// It is the one list that can find error events by the time Sentry received
// them (the error.received field, Snuba's received column, whole seconds),
// which is how events sent hours or days after their timestamp are found.
//
// Behaviour to know:
//
//   - A range on the events' timestamp is always applied ([Start, End));
//     Discover has no index on received, so keep it as short as correctness
//     allows.
//   - The fields come back under keys spelled exactly as asked. Without an
//     aggregate function Sentry adds "id", and "project.name" unless
//     "project.id" is selected. With aggregates (count(), count_unique(id))
//     the rows are grouped by the other fields: field=project.id and
//     field=count_unique(id) give one row per project.
//   - Every sort key must be a selected field, else 400 "Cannot sort by a
//     field that is not selected.". Rows tied on every sort key come in no
//     stable order from one page to the next (ClickHouse), so offset paging
//     can repeat or skip them: end the sort with a unique field (id).
//   - A query over more than one project (AllProjects included, when the
//     token can see several) needs the organisation's global-views feature;
//     without it Sentry answers 400 "You cannot view events from multiple
//     projects." and the caller must query one project at a time.
//   - Sentry does not refuse a name it does not know: it takes it for a tag,
//     answers "" (meta type "string"), and a date comparison on it is a text
//     match that finds nothing. So a deployment without error.received would
//     silently return no rows. Always select error.received as a field when
//     filtering or sorting on it: the client then checks its type in the
//     answer's meta and fails with a *FieldTypeError (IsUnknownField) rather
//     than return a silently empty page.
//   - Its own rate limit (30 requests per second, 15 concurrent in current
//     code), paced by its own limiter group.

// groupDiscover is the limiter group of Discover, which Sentry rate limits
// apart from every other endpoint (organization_events.py, rate_limits). The
// limiter learns its concurrency from the X-Sentry-Rate-Limit-* headers.
const groupDiscover = "discover"

// maxDiscoverFields is Sentry's MAX_FIELDS: more is a 400.
const maxDiscoverFields = 20

// DiscoverQuery selects a page of Discover over the errors dataset.
type DiscoverQuery struct {
	Org string
	// Projects are numeric ids, or just AllProjects. None: only the
	// projects whose teams the token's user is a member of (every project
	// for an internal integration). More than one needs global-views (see
	// above).
	Projects []string
	// Fields are sent as repeated field parameters, in order: 1 to 20.
	// For example "id", "project.id", "timestamp", "error.received",
	// "count()", "count_unique(id)".
	Fields []string
	// Query is Sentry's search, e.g.
	// "error.received:>=2026-01-01T00:00:00 error.received:<2026-01-01T01:00:00";
	// "" for none. Dates without an offset are UTC.
	Query string
	// Sort keys, each sent as a sort parameter in order, "-" first for
	// descending; each must be one of the selected fields (or the added
	// "id"). End with a unique key when paging (see above).
	Sort []string
	// Start and End bound the events' timestamp, [Start, End): both
	// required, sent as UTC whole seconds (truncated).
	Start, End time.Time
	// Cursor is "" for the first page, else the previous page's
	// NextCursor, verbatim.
	Cursor string
	// PerPage is 1..100; 0 or more than 100 means 100.
	PerPage int
}

// DiscoverRow is a row of a Discover answer.
type DiscoverRow struct {
	// Raw is the row's exact bytes from Sentry, compact, never re-encoded.
	Raw json.RawMessage
	// Fields maps each key of the row (the fields as asked, plus any Sentry
	// added) to its raw JSON value: a string, a number or null.
	Fields map[string]json.RawMessage
}

// String returns a field read as text: a JSON string, or a number as
// written; ok is false when the field is absent, null or another kind.
func (r DiscoverRow) String(key string) (s string, ok bool) {
	v, found := r.Fields[key]
	if !found {
		return "", false
	}
	var t text
	if err := t.UnmarshalJSON(v); err != nil || t.bad || bytes.Equal(v, []byte("null")) {
		return "", false
	}
	return t.s, true
}

// Int returns a field read as an integer (a JSON number, or a string of
// digits); ok is false otherwise.
func (r DiscoverRow) Int(key string) (n int64, ok bool) {
	s, ok := r.String(key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Time returns a date field ("2026-01-02T03:04:05+00:00", as Discover
// renders Snuba's DateTime columns such as timestamp and error.received) in
// UTC; ok is false when it is absent or not a time.
func (r DiscoverRow) Time(key string) (t time.Time, ok bool) {
	v, found := r.Fields[key]
	if !found || len(v) == 0 {
		return time.Time{}, false
	}
	t = parseTimestamp(v)
	return t, !t.IsZero()
}

// FieldTypeError is a Discover answer in which a field the client knows
// came back with another type than Sentry gives it: the deployment does not
// know the field and took it for a tag (an empty string of type "string").
// Filters and sorts on that name then silently match as text, so the page
// cannot be trusted. It is permanent.
type FieldTypeError struct {
	Endpoint string
	Field    string
	Want     string // the type the field has where Sentry knows it
	Got      string // the type in the answer's meta
}

func (e *FieldTypeError) Error() string {
	return fmt.Sprintf("sentry: %s: field %q comes back as %q, not %q: this Sentry does not know it and reads it as a tag",
		e.Endpoint, e.Field, e.Got, e.Want)
}

// Unwrap makes the error a *ShapeError for IsPermanent.
func (e *FieldTypeError) Unwrap() error { return &ShapeError{Endpoint: e.Endpoint, Msg: e.Error()} }

// FailureKind: the deployment lacks the field; retrying cannot help.
func (e *FieldTypeError) FailureKind() failure.Kind { return failure.KindConfig }

var _ failure.Classifier = (*FieldTypeError)(nil)

// discoverFieldType is the meta type Sentry gives a field the client knows
// (get_json_meta_type), "" for others.
func discoverFieldType(field string) string {
	switch field {
	case "id", "project", "project.name":
		return "string"
	case "project.id":
		return "integer"
	case "timestamp", "error.received":
		return "date"
	}
	if strings.HasPrefix(field, "count(") || strings.HasPrefix(field, "count_unique(") {
		return "integer"
	}
	return ""
}

// IsUnknownField reports whether err says that this Sentry does not support
// field in Discover: a *FieldTypeError for it (it took the name for a tag),
// or a 400 whose detail refuses it as event_search does a key outside a
// search's allowed keys ("Invalid key for this search: error.received"), or
// refuses a function ("count_foo is not a valid function" for
// "count_foo(...)"). Other 400s (a malformed value, a sort on an unselected
// field, the global-views rule) are not about the field being unknown.
func IsUnknownField(err error, field string) bool {
	var fe *FieldTypeError
	if errors.As(err, &fe) {
		return fe.Field == field
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		return false
	}
	if ae.Detail == "Invalid key for this search: "+field {
		return true
	}
	fn, _, isFunc := strings.Cut(field, "(")
	return isFunc && ae.Detail == fn+" is not a valid function"
}

// multiProjectDetail is Sentry's 400 detail for a query over several
// projects without the global-views feature.
const multiProjectDetail = "You cannot view events from multiple projects."

// IsMultiProjectRefused reports whether err is Sentry refusing a Discover
// query over several projects because the organisation lacks global-views:
// the caller must query one project at a time.
func IsMultiProjectRefused(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest && ae.Detail == multiProjectDetail
}

// Discover returns one page of Discover rows over the errors dataset.
func (c *Client) Discover(ctx context.Context, q DiscoverQuery) (Page[DiscoverRow], error) {
	switch {
	case q.Org == "":
		return Page[DiscoverRow]{}, &QueryError{Msg: "organization is required"}
	case len(q.Fields) == 0:
		return Page[DiscoverRow]{}, &QueryError{Msg: "discover needs at least one field"}
	case len(q.Fields) > maxDiscoverFields:
		return Page[DiscoverRow]{}, &QueryError{Msg: fmt.Sprintf("discover takes at most %d fields, got %d", maxDiscoverFields, len(q.Fields))}
	case q.Start.IsZero() || q.End.IsZero():
		return Page[DiscoverRow]{}, &QueryError{Msg: "discover needs a timestamp range (start and end)"}
	}
	for _, p := range q.Projects {
		if _, err := strconv.ParseInt(p, 10, 64); err != nil {
			return Page[DiscoverRow]{}, &QueryError{Msg: fmt.Sprintf("project %q is not a numeric id", p)}
		}
	}
	v := url.Values{}
	v.Set("dataset", "errors")
	for _, f := range q.Fields {
		v.Add("field", f)
	}
	for _, p := range q.Projects {
		v.Add("project", p)
	}
	if err := setWindow(v, q.Start, q.End); err != nil {
		return Page[DiscoverRow]{}, err
	}
	if q.Query != "" {
		v.Set("query", q.Query)
	}
	for _, s := range q.Sort {
		v.Add("sort", s)
	}
	v.Set("per_page", strconv.Itoa(clampPerPage(q.PerPage)))
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	const endpoint = "GET /api/0/organizations/{org}/events/"
	var p Page[DiscoverRow]
	var types map[string]string
	err := c.get(ctx, call{
		group:    groupDiscover,
		endpoint: endpoint,
		path:     "/api/0/organizations/" + url.PathEscape(q.Org) + "/events/",
		query:    v,
		scope:    "event:read",
	}, func(body []byte, h http.Header) error {
		rows, meta, err := decodeDiscover(body)
		if err != nil {
			return err
		}
		p, types = Page[DiscoverRow]{Items: rows}, meta
		if len(h.Values("Link")) == 0 && len(rows) == 0 {
			// Sentry's answer when the caller can see no project
			// (NoProjects): nothing to page through.
			return nil
		}
		return pageLinks(h, nil, q.Cursor, &p.NextCursor, &p.HasNext)
	})
	if err != nil {
		return Page[DiscoverRow]{}, err
	}
	for _, f := range q.Fields {
		want, got := discoverFieldType(f), types[f]
		if want != "" && got != "" && got != want {
			return Page[DiscoverRow]{}, &FieldTypeError{Endpoint: endpoint, Field: f, Want: want, Got: got}
		}
	}
	return p, nil
}

// decodeDiscover splits a Discover answer, {"data": [...], "meta":
// {"fields": {...}, ...}}, into its rows (each kept as sent) and the field
// types of its meta.
//
// A bare [] is the empty answer of older Sentry versions to a caller who can
// see no project (OrganizationEventsV2Endpoint: return Response([])).
func decodeDiscover(body []byte) ([]DiscoverRow, map[string]string, error) {
	if isEmptyJSONList(body) {
		return nil, nil, nil
	}
	var doc struct {
		Data json.RawMessage `json:"data"`
		Meta struct {
			Fields map[string]string `json:"fields"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, jsonErr(err)
	}
	if len(doc.Data) == 0 {
		return nil, nil, fmt.Errorf("%w: no \"data\" list", errShape)
	}
	raws, err := splitRows(doc.Data)
	if err != nil {
		return nil, nil, err
	}
	rows := make([]DiscoverRow, len(raws))
	for i, raw := range raws {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, nil, jsonErr(err)
		}
		rows[i] = DiscoverRow{Raw: raw, Fields: fields}
	}
	return rows, doc.Meta.Fields, nil
}
