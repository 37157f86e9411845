package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// memStore is an in-memory Objects with the sink package's semantics.
type memStore struct {
	mu      sync.Mutex
	objects map[string]memObject
	gen     int64
}

type memObject struct {
	data []byte
	gen  int64
}

var _ Objects = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{objects: make(map[string]memObject)} }

func (m *memStore) Create(ctx context.Context, name string, data []byte, _ string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objects[name]; ok {
		if bytes.Equal(o.data, data) {
			return nil
		}
		return fmt.Errorf("failed to create %s: %w", name, sink.ErrExists)
	}
	m.gen++
	m.objects[name] = memObject{data: bytes.Clone(data), gen: m.gen}
	return nil
}

func (m *memStore) Read(ctx context.Context, name string) ([]byte, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return nil, 0, fmt.Errorf("failed to read %s: %w", name, sink.ErrNotFound)
	}
	return bytes.Clone(o.data), o.gen, nil
}

func (m *memStore) Write(ctx context.Context, name string, data []byte, _ string, ifGen int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if (ifGen == 0 && ok) || (ifGen != 0 && (!ok || o.gen != ifGen)) {
		return 0, fmt.Errorf("failed to write %s: %w", name, sink.ErrPrecondition)
	}
	m.gen++
	m.objects[name] = memObject{data: bytes.Clone(data), gen: m.gen}
	return m.gen, nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

// fakeAPI is an in-memory Sentry with the project events endpoint's
// behaviour: newest first by (dateCreated, id), offset cursors "0:N:0",
// half-open start/end (unless ignoreRange), 100 rows a page.
type fakeAPI struct {
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

var _ SentryAPI = (*fakeAPI)(nil)

func newFakeAPI(projectIDs ...string) *fakeAPI {
	f := &fakeAPI{events: make(map[string][]fakeEvent), eventErrs: make(map[string]error)}
	for _, id := range projectIDs {
		f.projects = append(f.projects, sentry.Project{ID: id, Slug: "p" + id, Name: "P" + id})
	}
	return f
}

// add adds n events at ts.
func (f *fakeAPI) add(projectID string, n int, ts time.Time) {
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

func (f *fakeAPI) truth() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]bool)
	for _, evs := range f.events {
		for _, e := range evs {
			out[e.id] = true
		}
	}
	return out
}

func (f *fakeAPI) Metrics() sentry.Metrics {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.metrics
}

func (f *fakeAPI) ListProjects(_ context.Context, _, cursor string) (sentry.Page[sentry.Project], error) {
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

func (f *fakeAPI) ListEvents(ctx context.Context, q sentry.EventsQuery) (sentry.Page[sentry.Event], error) {
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

// opsStore wraps an Objects and runs hook before each operation; a hook
// error is returned instead of performing it (after, when set, runs after a
// successful operation and may turn it into an error).
type opsStore struct {
	inner  Objects
	mu     sync.Mutex
	n      int
	before func(n int, op, name string) error
	after  func(n int, op, name string) error
}

func (s *opsStore) tick(op, name string) (int, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if s.before != nil {
		return n, s.before(n, op, name)
	}
	return n, nil
}

func (s *opsStore) post(n int, op, name string, err error) error {
	if err == nil && s.after != nil {
		return s.after(n, op, name)
	}
	return err
}

func (s *opsStore) Create(ctx context.Context, name string, data []byte, ct string) error {
	n, err := s.tick("create", name)
	if err != nil {
		return err
	}
	return s.post(n, "create", name, s.inner.Create(ctx, name, data, ct))
}

func (s *opsStore) Read(ctx context.Context, name string) ([]byte, int64, error) {
	n, err := s.tick("read", name)
	if err != nil {
		return nil, 0, err
	}
	d, g, err := s.inner.Read(ctx, name)
	return d, g, s.post(n, "read", name, err)
}

func (s *opsStore) Write(ctx context.Context, name string, data []byte, ct string, gen int64) (int64, error) {
	n, err := s.tick("write", name)
	if err != nil {
		return 0, err
	}
	g, err := s.inner.Write(ctx, name, data, ct, gen)
	return g, s.post(n, "write", name, err)
}

// lister lists object names under a prefix (sink.Dir, sink.GCS, memStore).
type lister interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Read(ctx context.Context, name string) ([]byte, int64, error)
}

// bucketReport is what the checker found in the data prefix.
type bucketReport struct {
	lines     int
	objects   int
	counts    map[string]int // event id → lines
	nonEvents []string       // lines that are not event objects
	lost      []string       // in the truth, not in the bucket
	extra     []string       // in the bucket, not in the truth
	dups      []string       // ids on more than one line
}

func (b *bucketReport) ok() bool {
	return len(b.nonEvents) == 0 && len(b.lost) == 0 && len(b.extra) == 0 && len(b.dups) == 0
}

func (b *bucketReport) String() string {
	f := func(s []string) []string { return s[:min(len(s), 5)] }
	return fmt.Sprintf("objects=%d lines=%d distinct=%d lost=%d %v dups=%d %v extra=%d %v non-events=%d %q",
		b.objects, b.lines, len(b.counts), len(b.lost), f(b.lost), len(b.dups), f(b.dups), len(b.extra), f(b.extra), len(b.nonEvents), f(b.nonEvents))
}

// checkBucket reads every object under prefix and compares the events found
// (one JSON object with an "id" per line) with truth.
func checkBucket(ctx context.Context, store lister, prefix string, truth map[string]bool) (*bucketReport, error) {
	names, err := store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	rep := &bucketReport{counts: make(map[string]int)}
	for _, name := range names {
		data, _, err := store.Read(ctx, name)
		if err != nil {
			return nil, err
		}
		rep.objects++
		rep.addNDJSON(data)
	}
	rep.compare(truth)
	return rep, nil
}

// addNDJSON counts the lines of an NDJSON object.
func (b *bucketReport) addNDJSON(data []byte) {
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\n")
		b.lines++
		b.addRecord(line)
	}
}

// addRecord counts one record, which must be an event object.
func (b *bucketReport) addRecord(rec []byte) {
	var ev map[string]any
	if err := json.Unmarshal(rec, &ev); err != nil || ev == nil {
		b.nonEvents = append(b.nonEvents, string(rec[:min(len(rec), 80)]))
		return
	}
	id, _ := ev["id"].(string)
	_, hasDate := ev["dateCreated"].(string)
	if len(id) != 32 || !hasDate {
		b.nonEvents = append(b.nonEvents, string(rec[:min(len(rec), 80)]))
		return
	}
	b.counts[id]++
}

func (b *bucketReport) compare(truth map[string]bool) {
	for id := range truth {
		if b.counts[id] == 0 {
			b.lost = append(b.lost, id)
		}
	}
	for id, n := range b.counts {
		if !truth[id] {
			b.extra = append(b.extra, id)
		}
		if n > 1 {
			b.dups = append(b.dups, id)
		}
	}
	slices.Sort(b.lost)
	slices.Sort(b.extra)
	slices.Sort(b.dups)
}

// testLogger discards logs.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	return slog.New(slog.DiscardHandler)
}
