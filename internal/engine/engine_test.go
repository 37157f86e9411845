package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
	"github.com/secops-collectors/sentry-gcs/internal/sink/sinktest"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// doc is the state document of the test lane: a sequence and the ids
// written.
type doc struct {
	Sequence
	Seen Seen `json:"seen"`
	// Cursor stands for a source's reading progress.
	Cursor string `json:"cursor"`
}

// testLane is a Lane over a Doc[doc], named "lane".
type testLane struct {
	r *Run
	d *Doc[doc]
}

func (l testLane) Next() string { return l.d.V.Name("data/", "acme", "lane") }
func (l testLane) Parse(line []byte) (Record, error) {
	var v struct {
		ID string `json:"id"`
		T  int64  `json:"t"`
	}
	if err := json.Unmarshal(line, &v); err != nil || v.ID == "" {
		return Record{}, errors.New("not a record")
	}
	return Record{ID: v.ID, Time: v.T, Raw: line}, nil
}
func (l testLane) Absorb(recs []Record) {
	for _, r := range recs {
		l.d.V.Seen[r.ID] = r.Time
	}
	l.d.V.Advance(l.d.V.NextEpoch + 1)
}
func (l testLane) Commit(ctx context.Context) error { return l.d.Save(ctx, l.r) }

func rec(id string, t int64) Record {
	return Record{ID: id, Time: t, Raw: json.RawMessage(fmt.Sprintf(`{"id":%q,"t":%d}`, id, t))}
}

type fixture struct {
	t     *testing.T
	clk   *clock.Fake
	store *sink.Memory
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, clk: clock.NewFake(t0), store: sink.NewMemory()}
}

func (f *fixture) ctx() context.Context {
	return logging.WithLogger(f.t.Context(), slog.New(slog.DiscardHandler))
}

func (f *fixture) run(data Objects) *Run {
	if data == nil {
		data = f.store
	}
	return Start(f.ctx(), Config{Stream: "test", Data: data, State: f.store, Clock: f.clk, Budget: 5 * time.Minute, RunID: "r1"})
}

func (f *fixture) lane(r *Run) testLane {
	f.t.Helper()
	d, err := LoadDoc(f.ctx(), f.store, "state/lane.json", func() doc { return doc{Seen: Seen{}} })
	if err != nil {
		f.t.Fatal(err)
	}
	d.V.Begin(100)
	return testLane{r: r, d: d}
}

func (f *fixture) lines() []string {
	f.t.Helper()
	names, err := f.store.List(f.t.Context(), "data/")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		data, _, _ := f.store.Read(f.t.Context(), n)
		out = append(out, strings.Split(strings.TrimSpace(string(data)), "\n")...)
	}
	return out
}

func TestWriteThenCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(nil)
	l := f.lane(r)
	b := NewBatch("")
	b.Add(rec("a", 1))
	b.Add(rec("b", 2))
	if b.Add(rec("a", 1)) {
		t.Error("a repeated key was added to the batch")
	}
	b.Pages = 1
	if err := r.Write(f.ctx(), l, b, func(b *Batch) { l.d.V.Cursor = "next" }); err != nil {
		t.Fatal(err)
	}
	if b.Object != "data/1970/01/01/00/acme-lane-100-000001.ndjson" {
		t.Errorf("object %q", b.Object)
	}
	got, err := LoadDoc[doc](f.ctx(), f.store, "state/lane.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(doc{Sequence: Sequence{NextSeq: 2, NextEpoch: 101}, Seen: Seen{"a": 1, "b": 2}, Cursor: "next"}, got.V); diff != "" {
		t.Errorf("committed state (-want +got):\n%s", diff)
	}
	if s := r.Summary(); s.Records != 2 || s.Duplicates != 1 || s.Objects != 1 {
		t.Errorf("summary %+v", *s)
	}
}

// An object left under the current name by a run that crashed before its
// commit is read back and absorbed: its records are not written again.
func TestWriteRecoversAnObjectLeftBehind(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	crashed := &sinktest.Hooked{Store: f.store, Before: func(_ int, op, name string) error {
		if op == "write" && name == "state/lane.json" {
			return errors.New("injected crash before the commit")
		}
		return nil
	}}
	first := NewBatch("")
	first.Add(rec("a", 1))
	first.Add(rec("b", 2))
	first.Pages = 1
	r1 := Start(f.ctx(), Config{Stream: "test", Data: crashed, State: crashed, Clock: f.clk, Budget: time.Minute})
	l1 := f.lane(r1)
	l1.d.store = crashed
	if err := r1.Write(f.ctx(), l1, first, nil); err == nil {
		t.Fatal("the crashed write reported no error")
	}
	r2 := f.run(nil)
	l2 := f.lane(r2)
	second := NewBatch("")
	second.Add(rec("b", 2))
	second.Add(rec("c", 3))
	second.Pages = 1
	if err := r2.Write(f.ctx(), l2, second, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`{"id":"a","t":1}`, `{"id":"b","t":2}`, `{"id":"c","t":3}`}, f.lines()); diff != "" {
		t.Errorf("bucket (-want +got):\n%s", diff)
	}
	if s := r2.Summary(); s.ObjectsRecovered != 1 || s.Records != 1 || s.Duplicates != 1 {
		t.Errorf("summary %+v; want 1 recovered, 1 written, 1 duplicate", *s)
	}
}

// A lost compare-and-swap reloads the state and reports ErrConflict: the
// batch is dropped, never written from stale state twice.
func TestSaveConflictReloads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(nil)
	l := f.lane(r)
	if err := l.Commit(f.ctx()); err != nil {
		t.Fatal(err)
	}
	other := f.lane(r)
	other.d.V.Cursor = "theirs"
	if err := other.Commit(f.ctx()); err != nil {
		t.Fatal(err)
	}
	l.d.V.Cursor = "mine"
	err := l.Commit(f.ctx())
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale commit: %v, want ErrConflict", err)
	}
	if l.d.V.Cursor != "theirs" || r.Summary().Conflicts != 1 {
		t.Errorf("after the conflict: cursor %q, conflicts %d; want the reloaded state and 1", l.d.V.Cursor, r.Summary().Conflicts)
	}
}

func TestUndecodableDocument(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.store.Write(f.t.Context(), "state/bad.json", []byte("{nope"), "application/json", 0); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDoc[doc](f.ctx(), f.store, "state/bad.json", nil)
	if !errors.Is(err, state.ErrUndecodable) || failure.IsTransient(err) {
		t.Errorf("LoadDoc = %v, want ErrUndecodable, not transient", err)
	}
}

// The turn stops starting pages before the budget runs out, and commits
// what it read.
func TestTurnKeepsTheBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(nil)
	l := f.lane(r)
	page := 0
	b, err := r.Turn(f.ctx(), l, "", 100, func(ctx context.Context, b *Batch) error {
		f.clk.Advance(time.Minute) // each page takes a minute
		page++
		b.Add(rec(fmt.Sprintf("id%d", page), int64(page)))
		b.Cursor = fmt.Sprintf("c%d", page)
		return nil
	}, func(b *Batch) { l.d.V.Cursor = b.Cursor })
	if !errors.Is(err, ErrStop) {
		t.Fatalf("Turn = %v, want ErrStop", err)
	}
	if page == 0 || page > 4 || b.Object == "" {
		t.Errorf("read %d pages of 1 min in a 5 min budget, object %q", page, b.Object)
	}
	if r.Remaining() < 0 {
		t.Errorf("ran %v past the deadline", -r.Remaining())
	}
}

// A page announcing a next page without a new cursor would be read for
// ever: the turn fails without writing.
func TestTurnRefusesARepeatedCursor(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(nil)
	l := f.lane(r)
	_, err := r.Turn(f.ctx(), l, "c1", 10, func(ctx context.Context, b *Batch) error {
		b.Add(rec("x", 1))
		return nil // b.Cursor stays "c1"
	}, nil)
	if !IsReadError(err) || !failure.IsTransient(err) || len(f.lines()) != 0 {
		t.Errorf("Turn = %v with %d lines written; want a transient read error and nothing written", err, len(f.lines()))
	}
}

// A failed page commits what was read before it, then reports the error.
func TestTurnCommitsBeforeAReadError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(nil)
	l := f.lane(r)
	boom := errors.New("sentry: 502")
	n := 0
	_, err := r.Turn(f.ctx(), l, "", 10, func(ctx context.Context, b *Batch) error {
		if n++; n == 3 {
			return boom
		}
		b.Add(rec(fmt.Sprintf("id%d", n), int64(n)))
		b.Cursor = fmt.Sprintf("c%d", n)
		return nil
	}, func(b *Batch) { l.d.V.Cursor = b.Cursor })
	if !errors.Is(err, boom) || !IsReadError(err) {
		t.Fatalf("Turn = %v, want the read error", err)
	}
	if got := len(f.lines()); got != 2 || l.d.V.Cursor != "c2" {
		t.Errorf("%d lines, cursor %q; want the 2 rows read before the error committed at c2", got, l.d.V.Cursor)
	}
}

// The soft stop cuts a page request in flight; the run stops without an
// error.
func TestSoftStopCutsARequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stop := make(chan struct{})
	r := Start(f.ctx(), Config{Stream: "test", Data: f.store, State: f.store, Clock: f.clk, Budget: time.Minute, Stop: stop})
	l := f.lane(r)
	_, err := r.Turn(f.ctx(), l, "", 10, func(ctx context.Context, b *Batch) error {
		close(stop)
		<-ctx.Done()
		return ctx.Err()
	}, nil)
	if !errors.Is(err, ErrStop) {
		t.Errorf("Turn = %v, want ErrStop", err)
	}
}

func TestLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := Config{Stream: "test", Data: f.store, State: f.store, Clock: f.clk, Budget: time.Minute, LeaseKey: "state/lease.json"}
	other, err := state.NewLeases(f.store, f.clk).Acquire(f.ctx(), "state/lease.json", "other", LeaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	sum, err := Do(f.ctx(), cfg, func(*Run) error { ran = true; return nil })
	if err != nil || ran || !sum.LeaseHeld || sum.LeaseHolder != "other" || !sum.LeaseUntil.Equal(t0.Add(LeaseTTL)) {
		t.Fatalf("lease held: ran %v, summary %+v, %v", ran, sum, err)
	}
	// The holder crashed: its lease expires after LeaseTTL, not later.
	f.clk.Advance(LeaseTTL)
	sum, err = Do(f.ctx(), cfg, func(r *Run) error {
		ran = true
		f.clk.Advance(leaseRenewEvery)
		return r.keepLease(f.ctx()) // renewed when due
	})
	if err != nil || !ran || sum.LeaseHeld {
		t.Fatalf("after expiry: ran %v, summary %+v, %v", ran, sum, err)
	}
	// The old holder cannot come back.
	if err := other.Renew(f.ctx(), LeaseTTL); !errors.Is(err, state.ErrLeaseLost) {
		t.Errorf("old holder renewed: %v", err)
	}
	// A run whose lease was taken stops writing.
	sum, err = Do(f.ctx(), cfg, func(r *Run) error {
		f.clk.Advance(2 * LeaseTTL)
		if _, err := state.NewLeases(f.store, f.clk).Acquire(f.ctx(), "state/lease.json", "thief", LeaseTTL); err != nil {
			return err
		}
		return r.keepLease(f.ctx())
	})
	if !errors.Is(err, state.ErrLeaseLost) {
		t.Errorf("run after losing its lease: %v, want ErrLeaseLost", err)
	}
}

func TestSummaryIsLoggedOnceWithTheAuthKind(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf bytes.Buffer
	ctx := logging.WithLogger(t.Context(), slog.New(slog.NewJSONHandler(&buf, nil)))
	cfg := Config{Stream: "test", Data: f.store, State: f.store, Clock: f.clk, Budget: time.Minute, RecordsKey: "events_written"}
	authErr := fmt.Errorf("failed to read: %w", authError{})
	sum, _ := Do(ctx, cfg, func(r *Run) error { r.Summary().Records = 3; return authErr })
	if n := strings.Count(buf.String(), `"msg":"run summary"`); n != 1 {
		t.Fatalf("%d summary lines:\n%s", n, buf.String())
	}
	for _, want := range []string{`"level":"ERROR"`, `"error_kind":"sentry_auth"`, `"events_written":3`, `"records_written":3`, `"auth_errors":1`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary line lacks %s:\n%s", want, buf.String())
		}
	}
	if sum.AuthErrors != 1 {
		t.Errorf("AuthErrors %d", sum.AuthErrors)
	}
}

type authError struct{}

func (authError) Error() string             { return "sentry: 401 Unauthorized" }
func (authError) AuthFailure() bool         { return true }
func (authError) FailureKind() failure.Kind { return failure.KindConfig }

func TestSeenJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := Seen{"b": 2, "a": 2, "c": 1}
	data, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"1":["c"],"2":["a","b"]}`; got != want {
		t.Errorf("encoding: got %s, want %s", got, want)
	}
	var out Seen
	if err := out.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestObjectName(t *testing.T) {
	t.Parallel()
	got := ObjectName("sentry/events/", "acme", "42", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix(), 7)
	if want := "sentry/events/2026/01/02/03/acme-42-1767323045-000007.ndjson"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
