package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
)

// referenceRun replays, in Go, the polling strategy of the Python function
// that this product replaces (Google's guide "Collect Sentry logs"), as
// faithfully as it matters here:
//
//   - state is one JSON file inside the data prefix
//     (sentry/events/state.json), read and rewritten without a precondition;
//   - per project (by slug), the first run fetches the newest page and
//     follows rel="next" up to MAX_PAGES_PER_PROJECT pages; later runs start
//     from the stored rel="previous" cursor and follow "previous" while
//     results="true";
//   - the stored cursor is the rel="previous" cursor of the last page fetched;
//   - every page is written as a JSON array to
//     <prefix>YYYY/MM/DD/sentry-<project>-<page>.json, overwriting the object
//     of the same page number written earlier that day;
//   - no status check: any JSON body (a 401, 429 or 500 answer included) is
//     written as a page; a body that is not JSON aborts the run before the
//     state is saved.
//
// It is a test fixture: the property checker must fail on its output.
type referenceRun struct {
	base     string
	clk      clock.Clock
	store    sinktest.Store
	prefix   string
	maxPages int
}

var linkPart = regexp.MustCompile(`rel="(\w+)"; results="(\w+)"; cursor="([^"]*)"`)

func (r *referenceRun) request(ctx context.Context, path string, cursor string) (any, string, error) {
	u := r.base + path
	if cursor != "" {
		u += "?cursor=" + cursor
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	var data any // json.loads: whatever the status
	if err := json.Unmarshal(body, &data); err != nil {
		return nil, "", fmt.Errorf("json.loads: %w", err)
	}
	return data, resp.Header.Get("Link"), nil
}

func parseLinks(h string) (prev string, prevMore bool, next string, nextMore bool) {
	for _, m := range linkPart.FindAllStringSubmatch(h, -1) {
		switch m[1] {
		case "previous":
			prev, prevMore = m[3], m[2] == "true"
		case "next":
			next, nextMore = m[3], m[2] == "true"
		}
	}
	return prev, prevMore, next, nextMore
}

// put overwrites an object, as blob.upload_from_string does.
func (r *referenceRun) put(ctx context.Context, name string, data []byte) error {
	_, gen, err := r.store.Read(ctx, name)
	if err != nil && !errors.Is(err, sink.ErrNotFound) {
		return err
	}
	_, err = r.store.Write(ctx, name, data, "application/json", gen)
	return err
}

func (r *referenceRun) run(ctx context.Context, org string) error {
	stateKey := r.prefix + "state.json"
	state := map[string]map[string]string{}
	if data, _, err := r.store.Read(ctx, stateKey); err == nil {
		var doc struct {
			Projects map[string]map[string]string `json:"projects"`
		}
		if json.Unmarshal(data, &doc) == nil && doc.Projects != nil {
			state = doc.Projects
		}
	}
	var slugs []string
	cursor := ""
	for {
		data, link, err := r.request(ctx, "/api/0/organizations/"+org+"/projects/", cursor)
		if err != nil {
			return err
		}
		rows, _ := data.([]any)
		for _, p := range rows {
			if m, ok := p.(map[string]any); ok {
				if s, _ := m["slug"].(string); s != "" {
					slugs = append(slugs, s)
				}
			}
		}
		_, _, next, more := parseLinks(link)
		if !more {
			break
		}
		cursor = next
	}
	for _, slug := range slugs {
		pages := 0
		latestPrev := ""
		fetch := func(cursor string) (string, bool, string, bool, error) {
			data, link, err := r.request(ctx, "/api/0/projects/"+org+"/"+slug+"/events/", cursor)
			if err != nil {
				return "", false, "", false, err
			}
			payload, _ := json.Marshal(data)
			day := r.clk.Now().UTC().Format("2006/01/02")
			if err := r.put(ctx, fmt.Sprintf("%s%s/sentry-%s-%05d.json", r.prefix, day, slug, pages), payload); err != nil {
				return "", false, "", false, err
			}
			prev, prevMore, next, nextMore := parseLinks(link)
			if prev != "" {
				latestPrev = prev
			}
			pages++
			return prev, prevMore, next, nextMore, nil
		}
		if start := state[slug]["prev_cursor"]; start != "" {
			cur := start
			for pages < r.maxPages {
				prev, prevMore, _, _, err := fetch(cur)
				if err != nil {
					return err
				}
				if !prevMore {
					break
				}
				cur = prev
			}
		} else {
			_, _, next, nextMore, err := fetch("")
			if err != nil {
				return err
			}
			for nextMore && pages < r.maxPages {
				if _, _, next, nextMore, err = fetch(next); err != nil {
					return err
				}
			}
		}
		if latestPrev != "" {
			state[slug] = map[string]string{"prev_cursor": latestPrev}
		}
	}
	doc, _ := json.Marshal(map[string]any{"projects": state})
	return r.put(ctx, stateKey, doc)
}

// feedStore records every version of every object written under a prefix,
// as a Cloud Storage feed ingests it: a rewritten object is ingested again.
type feedStore struct {
	sinktest.Store
	prefix string
	mu     sync.Mutex
	log    [][]byte
}

func (f *feedStore) record(name string, data []byte) {
	if len(name) >= len(f.prefix) && name[:len(f.prefix)] == f.prefix {
		f.mu.Lock()
		f.log = append(f.log, bytes.Clone(data))
		f.mu.Unlock()
	}
}

func (f *feedStore) Create(ctx context.Context, name string, data []byte, ct string) error {
	// A Create that finds identical content writes nothing: not ingested.
	if _, _, err := f.Store.Read(ctx, name); err == nil {
		return f.Store.Create(ctx, name, data, ct)
	}
	err := f.Store.Create(ctx, name, data, ct)
	if err == nil {
		f.record(name, data)
	}
	return err
}

func (f *feedStore) Write(ctx context.Context, name string, data []byte, ct string, gen int64) (int64, error) {
	g, err := f.Store.Write(ctx, name, data, ct, gen)
	if err == nil {
		f.record(name, data)
	}
	return g, err
}

// ingested checks what the feed ingested against the truth. Records are the
// lines of each object; a line that is a JSON array (the reference's format)
// has its elements counted as records, and is itself a format violation.
func (f *feedStore) ingested(truth map[string]bool) (*bucketReport, int) {
	rep := &bucketReport{counts: make(map[string]int)}
	arrays := 0
	for _, obj := range f.log {
		rep.objects++
		for line := range bytes.Lines(obj) {
			line = bytes.TrimRight(line, "\n")
			rep.lines++
			var elems []json.RawMessage
			if bytes.HasPrefix(line, []byte("[")) && json.Unmarshal(line, &elems) == nil {
				arrays++
				for _, e := range elems {
					rep.addRecord(e)
				}
				continue
			}
			rep.addRecord(line)
		}
	}
	rep.compare(truth)
	return rep, arrays
}

// TestReferenceStrategyFails runs the reference function's strategy and this
// collector on identical simulated organisations (same seed: backlog, live
// arrivals, late events, faults, real rate limits), with the same checker
// on what a feed would ingest. The collector must pass; the reference must
// lose events, duplicate events and ingest non-event records, which is why
// the design is what it is.
func TestReferenceStrategyFails(t *testing.T) {
	t.Parallel()
	const seed = 20260310
	sc := sentrysim.Scenario{Projects: 3, Backlog: 2500, BacklogSpan: 6 * time.Hour, Arrivals: 1500,
		ArrivalSpan: time.Hour, LateFraction: 0.05, MaxLate: 10 * time.Minute}
	faults := sentrysim.Faults{P5xx: 0.02, P502HTML: 0.01, PTruncated: 0.01}

	type outcome struct {
		rep    *bucketReport
		arrays int
		errs   int
	}
	play := func(reference bool) outcome {
		clk := clock.NewFake(t0)
		sim := sentrysim.New(sentrysim.Config{Clock: clk, Seed: seed})
		sim.Populate(sc)
		sim.SetFaults(faults)
		w := &world{t: t, sc: scenario{Seed: seed, ArrivalSpan: sc.ArrivalSpan, MaxLate: sc.MaxLate, MaxPages: 5}, clk: clk, sim: sim}
		srv := newSimServer(t, sim)
		w.url = srv
		d := sinktest.NewDir(t)
		feed := &feedStore{Store: d, prefix: testData}
		errs := 0
		runOnce := func() {
			if reference {
				ref := &referenceRun{base: srv, clk: clk, store: feed, prefix: testData, maxPages: 5}
				if err := ref.run(t.Context(), "acme"); err != nil {
					errs++
				}
				return
			}
			cl := w.client()
			if _, err := w.stream("run", cl, feed, true).Run(logging.WithLogger(t.Context(), slog.New(slog.DiscardHandler)), 7*time.Minute); err != nil {
				errs++
			}
		}
		// Scheduled every 5 minutes for two hours, then quiet.
		for range 24 {
			runOnce()
			clk.Advance(5 * time.Minute)
		}
		for range 12 {
			runOnce()
			clk.Advance(10 * time.Minute)
		}
		truth := make(map[string]bool)
		for _, ids := range sim.GroundTruth() {
			for id := range ids {
				truth[id] = true
			}
		}
		rep, arrays := feed.ingested(truth)
		return outcome{rep: rep, arrays: arrays, errs: errs}
	}

	ours := play(false)
	if !ours.rep.ok() || ours.arrays != 0 {
		t.Errorf("collector: %s (JSON arrays: %d)", ours.rep, ours.arrays)
	}
	ref := play(true)
	t.Logf("reference strategy: %s; JSON arrays %d; runs aborted %d", ref.rep, ref.arrays, ref.errs)
	if ref.rep.ok() {
		t.Fatal("the checker passed the reference strategy: the simulator or the checker is not faithful")
	}
	if len(ref.rep.lost) == 0 || len(ref.rep.dups) == 0 || len(ref.rep.nonEvents) == 0 || ref.arrays == 0 {
		t.Errorf("want loss, duplicates, non-event records and JSON arrays from the reference strategy: %s, arrays %d", ref.rep, ref.arrays)
	}
}

// newSimServer serves sim over HTTP on 127.0.0.1 and returns its URL.
func newSimServer(t *testing.T, sim *sentrysim.Server) string {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return srv.URL
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
