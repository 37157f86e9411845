package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Response bodies are decoded with encoding/json. A page is split into
// []json.RawMessage rows, which keeps each row's bytes exactly as Sentry sent
// them (a RawMessage is never re-encoded), and a small struct per endpoint
// reads the few fields the client needs. json.Unmarshal checks the whole body
// before it decodes anything, so a truncated or non-JSON body yields no rows.
//
// Keys are matched as encoding/json matches them: the last of repeated keys
// wins, and a key differing only in case (say "ID") matches too. Sentry's
// serializers write each top-level key once and in one spelling.

// errSyntax is wrapped by the decoders' errors for a body that is not JSON
// (truncated, an HTML error page): the client retries it.
var errSyntax = errors.New("invalid JSON")

// errMalformed is a 2xx answer that cannot be trusted (a missing
// pagination Link header): retried like errSyntax.
var errMalformed = errors.New("malformed response")

// errShape is a valid JSON document of an unexpected shape: the client does
// not retry it.
var errShape = errors.New("unexpected JSON shape")

// maxQuoted bounds a value from an answer that a decoding error quotes (an
// id, a time, a number): real ones are far shorter, and an odd answer must
// not make the error, and every log line that carries it, megabytes long
// (Cloud Logging drops lines over 256 KB).
const maxQuoted = 64

// quoted is v clipped to maxQuoted bytes, for an error to quote with %q.
func quoted(v string) string { return logging.Clip(v, maxQuoted) }

// jsonErr classifies an error from encoding/json: invalid JSON wraps
// errSyntax; anything else (a value of the wrong type) wraps errShape. Its
// text is clipped to maxDetailLen: encoding/json quotes a number it cannot
// store as written, whatever its length.
func jsonErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s (offset %d)", errSyntax, logging.Clip(err.Error(), maxDetailLen), se.Offset)
	}
	return fmt.Errorf("%w: %s", errShape, logging.Clip(err.Error(), maxDetailLen))
}

// validJSON reports whether d is one valid JSON value (with optional
// surrounding whitespace); its error wraps errSyntax.
func validJSON(d []byte) error {
	if json.Valid(d) {
		return nil
	}
	return jsonErr(json.Unmarshal(d, new(json.RawMessage)))
}

// splitRows splits body, a JSON array of objects, into its rows. A row is
// written as one NDJSON line, so insignificant whitespace is removed from it
// (see compact); Sentry sends compact JSON, so rows are normally kept as sent.
func splitRows(body []byte) ([]json.RawMessage, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, jsonErr(err)
	}
	if rows == nil {
		return nil, fmt.Errorf("%w: expected a JSON array, got null", errShape)
	}
	var scratch bytes.Buffer
	for i, row := range rows {
		if row[0] != '{' {
			return nil, fmt.Errorf("%w: expected rows to be objects, row %d is not", errShape, i)
		}
		var err error
		if rows[i], err = compact(row, &scratch); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// decodeRows splits body, a JSON array of objects, into its rows (see
// splitRows) and decodes the fields the client reads from every row into an F,
// in one json.Unmarshal call: fields[i] belongs to rows[i].
func decodeRows[F any](body []byte) (rows []json.RawMessage, fields []F, err error) {
	if rows, err = splitRows(body); err != nil {
		return nil, nil, err
	}
	fields = make([]F, 0, len(rows))
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, nil, jsonErr(err)
	}
	return rows, fields, nil
}

// compact returns the valid JSON value v without insignificant whitespace:
// v itself when it has none, else a compacted copy. json.Compact only drops
// whitespace; it never re-encodes what it keeps.
func compact(v []byte, scratch *bytes.Buffer) ([]byte, error) {
	if !bytes.ContainsAny(v, " \t\r\n") {
		return v, nil
	}
	scratch.Reset()
	if err := json.Compact(scratch, v); err != nil {
		return nil, jsonErr(err)
	}
	if scratch.Len() == len(v) { // the spaces were inside strings
		return v, nil
	}
	return bytes.Clone(scratch.Bytes()), nil
}

// text is a field read as a string: a JSON string, or a number kept as
// written (Sentry sends some ids as numbers); null or absent is "". Any other
// kind sets bad, which each decoder turns into an invalid row or an errShape.
type text struct {
	s   string
	bad bool
}

func (t *text) UnmarshalJSON(b []byte) error {
	*t = text{}
	switch c := b[0]; {
	case c == '"':
		if bytes.IndexByte(b, '\\') < 0 {
			t.s = string(b[1 : len(b)-1])
			return nil
		}
		return json.Unmarshal(b, &t.s)
	case c == '-' || ('0' <= c && c <= '9'):
		t.s = string(b)
	case c == 'n':
	default:
		t.bad = true
	}
	return nil
}

// timestamp is a field read as an RFC 3339 time, with or without fractional
// seconds ("2026-01-02T03:04:05Z", "…05.123Z", "…05.123000Z", "…05+00:00"),
// in UTC. A naive time is UTC, as in Sentry. Anything else (not a string, not
// a time) leaves the zero time: the row is invalid, the page is not.
type timestamp struct{ t time.Time }

func (ts *timestamp) UnmarshalJSON(b []byte) error {
	ts.t = parseTimestamp(b)
	return nil
}

func parseTimestamp(b []byte) time.Time {
	var t time.Time
	// time.Time reads a JSON RFC 3339 string (or null) without allocating.
	if t.UnmarshalJSON(b) == nil {
		return t.UTC()
	}
	// It does not unescape the string, nor accept a naive time.
	var s string
	if b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

type eventFields struct {
	ID          text      `json:"id"`
	ProjectID   text      `json:"projectID"`
	DateCreated timestamp `json:"dateCreated"`
}

// decodeEvents splits a project-events page into rows. Each Event.Raw is the
// row's exact bytes; only id, projectID and dateCreated are decoded. A row
// without a string id or with an unreadable dateCreated is returned with an
// empty ID or a zero DateCreated rather than failing the page: callers count
// such rows as invalid and skip them (one bad row must not block a project).
// The second argument, the requested page size, is not needed.
func decodeEvents(body []byte, _ int) ([]Event, error) {
	rows, fields, err := decodeRows[eventFields](body)
	if err != nil {
		return nil, err
	}
	events := make([]Event, 0, len(rows))
	for i, f := range fields {
		if f.ProjectID.bad {
			return nil, fmt.Errorf("%w: event %q has an invalid \"projectID\"", errShape, quoted(f.ID.s))
		}
		events = append(events, Event{ID: f.ID.s, ProjectID: f.ProjectID.s, DateCreated: f.DateCreated.t, Raw: rows[i]})
	}
	return events, nil
}

type projectFields struct {
	ID   text `json:"id"`
	Slug text `json:"slug"`
	Name text `json:"name"`
}

func decodeProjects(body []byte) ([]Project, error) {
	rows, fields, err := decodeRows[projectFields](body)
	if err != nil {
		return nil, err
	}
	out := make([]Project, 0, len(rows))
	for i, f := range fields {
		if f.ID.bad || f.Slug.bad || f.Name.bad || f.ID.s == "" {
			return nil, fmt.Errorf("%w: project row %d lacks a string id, slug or name", errShape, i)
		}
		out = append(out, Project{ID: f.ID.s, Slug: f.Slug.s, Name: f.Name.s, Raw: rows[i]})
	}
	return out, nil
}

type issueFields struct {
	ID        text            `json:"id"`
	Project   json.RawMessage `json:"project"` // read only when an object
	Status    text            `json:"status"`
	Level     text            `json:"level"`
	Count     text            `json:"count"`
	FirstSeen timestamp       `json:"firstSeen"`
	LastSeen  timestamp       `json:"lastSeen"`
}

// decodeIssues splits an issues page into rows. As for events, a row without
// a string id or with an unreadable firstSeen or lastSeen is returned with an
// empty ID or a zero time rather than failing the page: callers count such
// rows as invalid and skip them (one bad row must not block the stream).
func decodeIssues(body []byte) ([]Issue, error) {
	rows, fields, err := decodeRows[issueFields](body)
	if err != nil {
		return nil, err
	}
	out := make([]Issue, 0, len(rows))
	for i, f := range fields {
		is := Issue{ID: f.ID.s, FirstSeen: f.FirstSeen.t, LastSeen: f.LastSeen.t, Raw: rows[i]}
		if len(f.Project) > 0 && f.Project[0] == '{' {
			var p struct {
				ID text `json:"id"`
			}
			if err := json.Unmarshal(f.Project, &p); err != nil {
				return nil, fmt.Errorf("issue %q project: %w", quoted(is.ID), jsonErr(err))
			}
			if p.ID.bad {
				return nil, fmt.Errorf("%w: issue %q has an invalid project.id", errShape, quoted(is.ID))
			}
			is.ProjectID = p.ID.s
		}
		for _, fld := range [...]struct {
			name string
			bad  bool
		}{{"status", f.Status.bad}, {"level", f.Level.bad}, {"count", f.Count.bad}} {
			if fld.bad {
				return nil, fmt.Errorf("%w: issue %q has an invalid %q", errShape, quoted(is.ID), fld.name)
			}
		}
		is.Status, is.Level, is.Count = f.Status.s, f.Level.s, f.Count.s
		out = append(out, is)
	}
	return out, nil
}

type auditFields struct {
	ID          text      `json:"id"`
	Event       text      `json:"event"`
	DateCreated timestamp `json:"dateCreated"`
}

// decodeAuditLogs accepts the current {"rows": [...], "options": [...]} shape
// and the older bare list. As for events, a row without a string id or with
// an unreadable dateCreated is returned with an empty ID or a zero
// DateCreated rather than failing the page: callers count such rows as
// invalid and skip them.
func decodeAuditLogs(body []byte) ([]AuditLogEntry, error) {
	list := body
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '{' {
		var doc struct {
			Rows json.RawMessage `json:"rows"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, jsonErr(err)
		}
		if doc.Rows == nil {
			return nil, fmt.Errorf("%w: audit-log object has no \"rows\"", errShape)
		}
		list = doc.Rows
	}
	rows, fields, err := decodeRows[auditFields](list)
	if err != nil {
		return nil, err
	}
	out := make([]AuditLogEntry, 0, len(rows))
	for i, f := range fields {
		if f.Event.bad {
			return nil, fmt.Errorf("%w: audit-log entry %q has an invalid \"event\"", errShape, quoted(f.ID.s))
		}
		out = append(out, AuditLogEntry{ID: f.ID.s, Event: f.Event.s, DateCreated: f.DateCreated.t, Raw: rows[i]})
	}
	return out, nil
}

// orgJSON is the part of GET /api/0/organizations/{org}/ the client reads.
type orgJSON struct {
	ID    text   `json:"id"`
	Slug  string `json:"slug"`
	Name  string `json:"name"`
	Links struct {
		RegionURL string `json:"regionUrl"`
	} `json:"links"`
}

func decodeOrganization(body []byte) (*Organization, error) {
	var o orgJSON
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, jsonErr(err)
	}
	if o.ID.bad || o.ID.s == "" {
		return nil, fmt.Errorf("%w: organization has no \"id\"", errShape)
	}
	raw, err := compact(body, new(bytes.Buffer))
	if err != nil {
		return nil, err
	}
	return &Organization{ID: o.ID.s, Slug: o.Slug, Name: o.Name, RegionURL: o.Links.RegionURL, Raw: raw}, nil
}

// statsJSON is the stats_v2 response. "intervals" and "series" are absent
// when grouping by project.
type statsJSON struct {
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Intervals []string `json:"intervals"`
	Groups    []struct {
		By     map[string]text          `json:"by"`
		Totals map[string]json.Number   `json:"totals"`
		Series map[string][]json.Number `json:"series"`
	} `json:"groups"`
}

const statsField = "sum(quantity)"

func decodeStats(body []byte) (*Stats, error) {
	var sj statsJSON
	if err := json.Unmarshal(body, &sj); err != nil {
		return nil, jsonErr(err)
	}
	parse := func(s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		// Also accepts fractional seconds.
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: stats time %q", errShape, quoted(s))
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
			if p.bad {
				return nil, fmt.Errorf("%w: stats group %d has an invalid by.project", errShape, gi)
			}
			ss.ProjectID = p.s
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
		return 0, fmt.Errorf("%w: invalid number %q", errShape, quoted(string(n)))
	}
	return int64(f), nil
}
