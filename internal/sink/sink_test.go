package sink

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// store is the API both backends implement; the conformance tests run
// against each.
type store interface {
	Create(ctx context.Context, name string, data []byte, contentType string) error
	Read(ctx context.Context, name string) ([]byte, int64, error)
	Write(ctx context.Context, name string, data []byte, contentType string, ifGeneration int64) (int64, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, name string, ifGeneration int64) error
}

var (
	_ store = (*GCS)(nil)
	_ store = (*Dir)(nil)
	_ store = (*Memory)(nil)
)

const testBucket = "bkt"

// newFakeGCS starts an in-process fake-gcs-server with one bucket.
func newFakeGCS(t *testing.T) (*fakestorage.Server, *storage.Client) {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatalf("failed to start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
	c := srv.Client()
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

type backend struct {
	name string
	new  func(t *testing.T) store
}

func backends() []backend {
	return []backend{
		{name: "gcs", new: func(t *testing.T) store {
			_, c := newFakeGCS(t)
			return NewGCS(c, testBucket)
		}},
		{name: "dir", new: func(t *testing.T) store {
			d, err := NewDir(t.TempDir())
			if err != nil {
				t.Fatalf("NewDir: %v", err)
			}
			return d
		}},
		{name: "memory", new: func(*testing.T) store { return NewMemory() }},
	}
}

func mustRead(t *testing.T, s store, name string) ([]byte, int64) {
	t.Helper()
	data, gen, err := s.Read(t.Context(), name)
	if err != nil {
		t.Fatalf("Read(%q): %v", name, err)
	}
	return data, gen
}

func TestConformance(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		run  func(t *testing.T, s store)
	}{
		{name: "create_once", run: func(t *testing.T, s store) {
			ctx := t.Context()
			if err := s.Create(ctx, "d/a.ndjson", []byte("{\"id\":1}\n"), ContentTypeNDJSON); err != nil {
				t.Fatalf("Create: %v", err)
			}
			data, gen := mustRead(t, s, "d/a.ndjson")
			if got, want := string(data), "{\"id\":1}\n"; got != want {
				t.Errorf("Read = %q, want %q", got, want)
			}
			if gen <= 0 {
				t.Errorf("generation = %d, want > 0", gen)
			}
		}},
		{name: "create_identical_retry_recognised", run: func(t *testing.T, s store) {
			ctx := t.Context()
			data := []byte("{\"id\":1}\n{\"id\":2}\n")
			for i := range 3 {
				if err := s.Create(ctx, "d/a.ndjson", data, ContentTypeNDJSON); err != nil {
					t.Fatalf("Create attempt %d: %v", i, err)
				}
			}
			names, err := s.List(ctx, "")
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff([]string{"d/a.ndjson"}, names); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
		}},
		{name: "create_different_content_exists", run: func(t *testing.T, s store) {
			ctx := t.Context()
			if err := s.Create(ctx, "a", []byte("one\n"), ContentTypeNDJSON); err != nil {
				t.Fatalf("Create: %v", err)
			}
			_, gen := mustRead(t, s, "a")
			err := s.Create(ctx, "a", []byte("two\n"), ContentTypeNDJSON)
			if !errors.Is(err, ErrExists) {
				t.Fatalf("second Create = %v, want ErrExists", err)
			}
			if failure.IsTransient(err) {
				t.Errorf("failure.IsTransient(%v) = true", err)
			}
			data, gen2 := mustRead(t, s, "a")
			if got, want := string(data), "one\n"; got != want || gen2 != gen {
				t.Errorf("after refused Create: %q gen %d, want %q gen %d", got, gen2, want, gen)
			}
		}},
		{name: "read_not_found", run: func(t *testing.T, s store) {
			if _, _, err := s.Read(t.Context(), "nope/x"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read = %v, want ErrNotFound", err)
			}
		}},
		{name: "write_compare_and_swap", run: func(t *testing.T, s store) {
			ctx := t.Context()
			g1, err := s.Write(ctx, "state/doc.json", []byte(`{"v":1}`), "application/json", 0)
			if err != nil {
				t.Fatalf("Write(0): %v", err)
			}
			if _, err := s.Write(ctx, "state/doc.json", []byte(`{"v":9}`), "application/json", 0); !errors.Is(err, ErrPrecondition) {
				t.Fatalf("Write(0) on existing = %v, want ErrPrecondition", err)
			}
			g2, err := s.Write(ctx, "state/doc.json", []byte(`{"v":2}`), "application/json", g1)
			if err != nil {
				t.Fatalf("Write(g1): %v", err)
			}
			if g2 == g1 {
				t.Errorf("generation did not change: %d", g2)
			}
			if _, err := s.Write(ctx, "state/doc.json", []byte(`{"v":9}`), "application/json", g1); !errors.Is(err, ErrPrecondition) {
				t.Fatalf("Write(stale) = %v, want ErrPrecondition", err)
			}
			data, gen := mustRead(t, s, "state/doc.json")
			if got, want := string(data), `{"v":2}`; got != want || gen != g2 {
				t.Errorf("Read = %q gen %d, want %q gen %d", got, gen, want, g2)
			}
		}},
		{name: "write_missing_with_generation", run: func(t *testing.T, s store) {
			if _, err := s.Write(t.Context(), "x", []byte("a"), "text/plain", 12345); !errors.Is(err, ErrPrecondition) {
				t.Errorf("Write = %v, want ErrPrecondition", err)
			}
			if _, _, err := s.Read(t.Context(), "x"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read = %v, want ErrNotFound", err)
			}
		}},
		{name: "delete_with_generation", run: func(t *testing.T, s store) {
			ctx := t.Context()
			g1, err := s.Write(ctx, "k", []byte("1"), "text/plain", 0)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			g2, err := s.Write(ctx, "k", []byte("2"), "text/plain", g1)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := s.Delete(ctx, "k", g1); !errors.Is(err, ErrPrecondition) {
				t.Fatalf("Delete(stale) = %v, want ErrPrecondition", err)
			}
			if data, _ := mustRead(t, s, "k"); string(data) != "2" {
				t.Fatalf("after refused Delete: %q, want %q", data, "2")
			}
			if err := s.Delete(ctx, "k", g2); err != nil {
				t.Fatalf("Delete(g2): %v", err)
			}
			if _, _, err := s.Read(ctx, "k"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read after Delete = %v, want ErrNotFound", err)
			}
			if err := s.Delete(ctx, "k", g2); !errors.Is(err, ErrNotFound) {
				t.Errorf("second Delete = %v, want ErrNotFound", err)
			}
			// Re-created: a new generation, so the old ones never match again.
			g3, err := s.Write(ctx, "k", []byte("3"), "text/plain", 0)
			if err != nil {
				t.Fatalf("re-create: %v", err)
			}
			if g3 == g1 || g3 == g2 {
				t.Errorf("re-created generation %d reuses an old one (%d, %d)", g3, g1, g2)
			}
			if _, err := s.Write(ctx, "k", []byte("x"), "text/plain", g2); !errors.Is(err, ErrPrecondition) {
				t.Errorf("Write(old generation) = %v, want ErrPrecondition", err)
			}
		}},
		{name: "delete_unconditional", run: func(t *testing.T, s store) {
			ctx := t.Context()
			if err := s.Create(ctx, "a/b", []byte("x"), ContentTypeNDJSON); err != nil {
				t.Fatalf("Create: %v", err)
			}
			_, g1 := mustRead(t, s, "a/b")
			if err := s.Delete(ctx, "a/b", 0); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := s.Delete(ctx, "a/b", 0); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete missing = %v, want ErrNotFound", err)
			}
			if err := s.Create(ctx, "a/b", []byte("x"), ContentTypeNDJSON); err != nil {
				t.Fatalf("re-Create: %v", err)
			}
			_, g2 := mustRead(t, s, "a/b")
			if g2 == g1 {
				t.Errorf("re-created object has its old generation %d", g1)
			}
			// A name below a deleted one is usable, as in a bucket.
			if err := s.Delete(ctx, "a/b", 0); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := s.Write(ctx, "a/b/c", []byte("y"), "text/plain", 0); err != nil {
				t.Errorf("Write(a/b/c) after deleting a/b: %v", err)
			}
		}},
		{name: "list_prefix_sorted", run: func(t *testing.T, s store) {
			ctx := t.Context()
			for _, n := range []string{
				"sentry/events/2026/01/02/03/o-2-b.ndjson",
				"sentry/state/lease",
				"sentry/events/2026/01/02/03/o-1-a.ndjson",
				"sentry/events/2026/01/01/23/o-1-z.ndjson",
				"sentry/eventsX",
				"top",
			} {
				if err := s.Create(ctx, n, []byte(n), ContentTypeNDJSON); err != nil {
					t.Fatalf("Create(%q): %v", n, err)
				}
			}
			list := func(prefix string) []string {
				t.Helper()
				names, err := s.List(ctx, prefix)
				if err != nil {
					t.Fatalf("List(%q): %v", prefix, err)
				}
				return names
			}
			if diff := cmp.Diff([]string{
				"sentry/events/2026/01/01/23/o-1-z.ndjson",
				"sentry/events/2026/01/02/03/o-1-a.ndjson",
				"sentry/events/2026/01/02/03/o-2-b.ndjson",
			}, list("sentry/events/")); diff != "" {
				t.Errorf("List(sentry/events/) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{
				"sentry/events/2026/01/02/03/o-1-a.ndjson",
				"sentry/events/2026/01/02/03/o-2-b.ndjson",
			}, list("sentry/events/2026/01/02/03/o-")); diff != "" {
				t.Errorf("List(partial name) (-want +got):\n%s", diff)
			}
			if got, want := len(list("sentry/events")), 4; got != want {
				t.Errorf("List(sentry/events) has %d names, want %d", got, want)
			}
			if got, want := len(list("")), 6; got != want {
				t.Errorf("List(\"\") has %d names, want %d", got, want)
			}
			if got := list("nothing/here/"); len(got) != 0 {
				t.Errorf("List(nothing/here/) = %q, want none", got)
			}
		}},
		{name: "concurrent_cas_counter_no_lost_update", run: func(t *testing.T, s store) {
			ctx := t.Context()
			const workers, perWorker = 6, 8
			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				successes int
				conflicts int
			)
			for range workers {
				wg.Go(func() {
					for done := 0; done < perWorker; {
						n, gen := 0, int64(0)
						data, g, err := s.Read(ctx, "counter")
						switch {
						case errors.Is(err, ErrNotFound):
						case err != nil:
							t.Errorf("Read: %v", err)
							return
						default:
							if n, err = strconv.Atoi(string(data)); err != nil {
								t.Errorf("bad counter %q", data)
								return
							}
							gen = g
						}
						_, err = s.Write(ctx, "counter", []byte(strconv.Itoa(n+1)), "text/plain", gen)
						mu.Lock()
						switch {
						case err == nil:
							successes++
							done++
						case errors.Is(err, ErrPrecondition):
							conflicts++
						default:
							t.Errorf("Write: %v", err)
							mu.Unlock()
							return
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			data, _ := mustRead(t, s, "counter")
			if got, want := string(data), strconv.Itoa(successes); got != want {
				t.Errorf("counter = %s, want %s (successful writes; %d conflicts)", got, want, conflicts)
			}
			if got, want := successes, workers*perWorker; got != want {
				t.Errorf("successes = %d, want %d", got, want)
			}
		}},
		{name: "concurrent_create_one_content_wins", run: func(t *testing.T, s store) {
			ctx := t.Context()
			const workers = 8
			errs := make([]error, workers)
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					errs[i] = s.Create(ctx, "race", []byte(strconv.Itoa(i)), ContentTypeNDJSON)
				})
			}
			wg.Wait()
			data, _ := mustRead(t, s, "race")
			winner, err := strconv.Atoi(string(data))
			if err != nil {
				t.Fatalf("bad content %q", data)
			}
			for i, err := range errs {
				if i == winner && err != nil {
					t.Errorf("winner %d: Create = %v", i, err)
				}
				if i != winner && !errors.Is(err, ErrExists) {
					t.Errorf("loser %d: Create = %v, want ErrExists", i, err)
				}
			}
		}},
	}
	for _, b := range backends() {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, b.new(t))
			})
		}
	}
}

func TestGCSContentType(t *testing.T) {
	t.Parallel()

	ctx := t.Context()
	_, c := newFakeGCS(t)
	g := NewGCS(c, testBucket)
	if err := g.Create(ctx, "e.ndjson", []byte("{}\n"), ContentTypeNDJSON); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := g.Write(ctx, "s.json", []byte("{}"), "application/json", 0); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for name, want := range map[string]string{"e.ndjson": ContentTypeNDJSON, "s.json": "application/json"} {
		attrs, err := c.Bucket(testBucket).Object(name).Attrs(ctx)
		if err != nil {
			t.Fatalf("Attrs(%s): %v", name, err)
		}
		if attrs.ContentType != want {
			t.Errorf("%s content type = %q, want %q", name, attrs.ContentType, want)
		}
	}
}

func TestGCSLargeObject(t *testing.T) {
	t.Parallel()

	// Larger than one upload block: still a single retryable request.
	ctx := t.Context()
	_, c := newFakeGCS(t)
	g := NewGCS(c, testBucket)
	data := bytes.Repeat([]byte("{\"id\":\"0123456789abcdef\"}\n"), 40000) // ~1 MiB
	if err := g.Create(ctx, "big.ndjson", data, ContentTypeNDJSON); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := g.Create(ctx, "big.ndjson", data, ContentTypeNDJSON); err != nil {
		t.Fatalf("identical Create: %v", err)
	}
	got, _, err := g.Read(ctx, "big.ndjson")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Read returned %d bytes, want %d identical", len(got), len(data))
	}
}
