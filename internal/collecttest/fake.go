package collecttest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// Fake is an in-memory Sentry with the project events endpoint's behaviour:
// newest first by (dateCreated, id), offset cursors "0:N:0", half-open
// start/end (unless told to ignore them), 100 rows a page, and two projects
// a page of the project list. It records the events queries it answers, and
// fails where told to. It is safe for concurrent use.
type Fake struct {
	mu          sync.Mutex
	projects    []sentry.Project
	events      map[string][]fakeEvent // oldest first
	ignoreRange bool
	listErr     error
	eventErrs   map[string]error
	queries     []sentry.EventsQuery
	metrics     sentry.Metrics
	seq         int
}

type fakeEvent struct {
	id string
	ts time.Time
}

// NewFake returns a Sentry with the given projects (slug "p<id>").
func NewFake(projectIDs ...string) *Fake {
	f := &Fake{events: make(map[string][]fakeEvent), eventErrs: make(map[string]error)}
	for _, id := range projectIDs {
		f.projects = append(f.projects, sentry.Project{ID: id, Slug: "p" + id, Name: "P" + id})
	}
	return f
}

// Add adds n events at ts.
func (f *Fake) Add(projectID string, n int, ts time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.seq++
		id := fmt.Sprintf("%032x", f.seq)
		f.events[projectID] = append(f.events[projectID], fakeEvent{id: id, ts: ts.Truncate(time.Second)})
	}
	slices.SortStableFunc(f.events[projectID], func(a, b fakeEvent) int {
		if c := a.ts.Compare(b.ts); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
}

// Truth is every event, by project.
func (f *Fake) Truth() map[string]map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]map[string]bool)
	for p, evs := range f.events {
		for _, e := range evs {
			if out[p] == nil {
				out[p] = make(map[string]bool)
			}
			out[p][e.id] = true
		}
	}
	return out
}

// RequestCounts implements the engine's request counters.
func (f *Fake) RequestCounts() (int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.metrics.Requests, f.metrics.RateLimited
}

// ListProjects implements the Sentry client's method.
func (f *Fake) ListProjects(_ context.Context, _, cursor string) (sentry.Page[sentry.Project], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metrics.Requests++
	if f.listErr != nil {
		return sentry.Page[sentry.Project]{}, f.listErr
	}
	off, _ := strconv.Atoi(cursor)
	end := min(off+2, len(f.projects)) // small pages to exercise paging
	p := sentry.Page[sentry.Project]{Items: slices.Clone(f.projects[off:end])}
	if end < len(f.projects) {
		p.HasNext, p.NextCursor = true, strconv.Itoa(end)
	}
	return p, nil
}

// ListEvents implements the Sentry client's method.
func (f *Fake) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
	if err := ctx.Err(); err != nil {
		return sentry.Page[sentry.Event]{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metrics.Requests++
	f.queries = append(f.queries, q)
	if err := f.eventErrs[q.Project]; err != nil {
		return sentry.Page[sentry.Event]{}, err
	}
	var rows []fakeEvent
	evs := f.events[q.Project]
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if !f.ignoreRange && !q.Start.IsZero() && (e.ts.Before(q.Start) || !e.ts.Before(q.End)) {
			continue
		}
		rows = append(rows, e)
	}
	off := 0
	if q.Cursor != "" {
		parts := strings.Split(q.Cursor, ":")
		off, _ = strconv.Atoi(parts[1])
	}
	per := 100
	if q.PerPage > 0 {
		per = q.PerPage
	}
	var page sentry.Page[sentry.Event]
	for i := off; i < len(rows) && i < off+per; i++ {
		e := rows[i]
		raw := fmt.Sprintf(`{"id":%q,"projectID":%q,"dateCreated":%q,"message":"m"}`, e.id, q.Project, e.ts.UTC().Format(time.RFC3339))
		page.Items = append(page.Items, sentry.Event{ID: e.id, ProjectID: q.Project, DateCreated: e.ts.UTC(), Raw: json.RawMessage(raw)})
	}
	page.HasNext = off+per < len(rows)
	page.NextCursor = fmt.Sprintf("0:%d:0", off+per)
	return page, nil
}

// Queries returns the events queries answered so far.
func (f *Fake) Queries() []sentry.EventsQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries)
}

// ResetQueries forgets the queries answered so far.
func (f *Fake) ResetQueries() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = nil
}

// SetEventErr makes every events query of project fail with err (nil: none).
func (f *Fake) SetEventErr(project string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventErrs[project] = err
}

// SetListErr makes every project-list query fail with err (nil: none).
func (f *Fake) SetListErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

// SetIgnoreRange makes the events endpoint ignore start and end, as
// self-hosted Sentry before 2025-08 does.
func (f *Fake) SetIgnoreRange(ignore bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ignoreRange = ignore
}
