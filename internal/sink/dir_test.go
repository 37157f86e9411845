package sink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	return d
}

func TestDirLayoutAndHiddenFiles(t *testing.T) {
	t.Parallel()

	ctx := t.Context()
	d := newDir(t)
	if err := d.Create(ctx, "sentry/events/2026/01/02/x.ndjson", []byte("{}\n"), ContentTypeNDJSON); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := d.Write(ctx, "sentry/state/lease", []byte("{}"), "application/json", 0); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// The object is a plain file with exactly its bytes, at the bucket path.
	raw, err := os.ReadFile(filepath.Join(d.Root(), "sentry", "events", "2026", "01", "02", "x.ndjson"))
	if err != nil || string(raw) != "{}\n" {
		t.Fatalf("file = %q, %v; want %q", raw, err, "{}\n")
	}
	// Lock, generation and temporary files never show up in List.
	names, err := d.List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]string{"sentry/events/2026/01/02/x.ndjson", "sentry/state/lease"}, names); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	tmp, err := os.ReadDir(filepath.Join(d.Root(), metaDir, "tmp"))
	if err != nil || len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v, %v", tmp, err)
	}
}

func TestDirFilePlacedByHand(t *testing.T) {
	t.Parallel()

	ctx := t.Context()
	d := newDir(t)
	if err := os.WriteFile(filepath.Join(d.Root(), "hand"), []byte("h"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, gen, err := d.Read(ctx, "hand")
	if err != nil || string(data) != "h" || gen != 1 {
		t.Fatalf("Read = %q, %d, %v; want %q, 1", data, gen, err, "h")
	}
	if err := d.Delete(ctx, "hand", 1); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	g, err := d.Write(ctx, "hand", []byte("new"), "text/plain", 0)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if g <= 1 {
		t.Errorf("re-created generation %d, want > 1", g)
	}
}

func TestDirInvalidNames(t *testing.T) {
	t.Parallel()

	d := newDir(t)
	for _, name := range []string{"", "/abs", "a/", "a//b", "../x", "a/../b", "./a", ".sink", ".sink/gen/x", `a\b`} {
		if err := d.Create(t.Context(), name, []byte("x"), ContentTypeNDJSON); err == nil {
			t.Errorf("Create(%q) succeeded, want an error", name)
		}
		if _, err := d.Write(t.Context(), name, []byte("x"), "", 0); err == nil {
			t.Errorf("Write(%q) succeeded, want an error", name)
		}
	}
	if _, err := d.List(t.Context(), "../"); err == nil {
		t.Errorf("List(../) succeeded, want an error")
	}
}

// The helper process used by TestDirCrossProcessCAS: it increments the
// counter in SINK_HELPER_DIR SINK_HELPER_N times with compare-and-swap.
func TestDirHelperProcess(t *testing.T) {
	t.Parallel()

	root := os.Getenv("SINK_HELPER_DIR")
	if root == "" {
		t.Skip("helper process for TestDirCrossProcessCAS")
	}
	n, err := strconv.Atoi(os.Getenv("SINK_HELPER_N"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := increment(t, d, n); err != nil {
		t.Fatal(err)
	}
}

func increment(t *testing.T, d *Dir, n int) error {
	t.Helper()
	for done := 0; done < n; {
		v, gen := 0, int64(0)
		data, g, err := d.Read(t.Context(), "counter")
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		default:
			if v, err = strconv.Atoi(string(data)); err != nil {
				return fmt.Errorf("bad counter %q", data)
			}
			gen = g
		}
		_, err = d.Write(t.Context(), "counter", []byte(strconv.Itoa(v+1)), "text/plain", gen)
		switch {
		case err == nil:
			done++
		case errors.Is(err, ErrPrecondition):
		default:
			return err
		}
	}
	return nil
}

// TestDirCrossProcessCAS runs several processes (this test binary re-run as
// TestDirHelperProcess) and goroutines in this process incrementing one
// counter by compare-and-swap on the same directory: no update is lost,
// which holds only if the flock-based CAS excludes across processes.
func TestDirCrossProcessCAS(t *testing.T) {
	t.Parallel()

	const procs, perProc, local = 3, 30, 30
	d := newDir(t)
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDirHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SINK_HELPER_DIR="+d.Root(), "SINK_HELPER_N="+strconv.Itoa(perProc))
		// Its output is shown only on failure ("go test" would otherwise
		// read its coverage line as this package's).
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatalf("failed to start helper: %v", err)
		}
		cmds[i] = cmd
	}
	if err := increment(t, d, local); err != nil {
		t.Errorf("local increments: %v", err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v\n%s", err, outs[i])
		}
	}
	data, _, err := d.Read(t.Context(), "counter")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got, want := string(data), strconv.Itoa(procs*perProc+local); got != want {
		t.Errorf("counter = %s, want %s", got, want)
	}
}

// BenchmarkDir measures Create of a 100-event data object and a CAS Write
// of a small state document, with and without fsync.
func BenchmarkDir(b *testing.B) {
	data := bytes.Repeat([]byte("{\"id\":\"0123456789abcdef0123456789abcdef\",\"message\":\"x\"}\n"), 100)
	for _, mode := range []string{"sync", "nosync"} {
		newBenchDir := func(b *testing.B) *Dir {
			b.Helper()
			d, err := NewDir(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			if mode == "nosync" {
				d = d.WithoutSync()
			}
			return d
		}
		b.Run("create_"+mode, func(b *testing.B) {
			d := newBenchDir(b)
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				i++
				if err := d.Create(b.Context(), "sentry/events/2026/01/02/03/o-"+strconv.Itoa(i)+".ndjson", data, ContentTypeNDJSON); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("write_cas_"+mode, func(b *testing.B) {
			d := newBenchDir(b)
			var (
				gen int64
				err error
			)
			for b.Loop() {
				if gen, err = d.Write(b.Context(), "sentry/state/cp.json", []byte(`{"watermark":"2026-01-02T03:04:05Z"}`), "application/json", gen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDirRemovesStaleTemporaryFiles(t *testing.T) {
	t.Parallel()

	d := newDir(t)
	tmp := filepath.Join(d.Root(), metaDir, "tmp")
	stale, fresh := filepath.Join(tmp, "obj-stale"), filepath.Join(tmp, "obj-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDir(d.Root()); err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
}
