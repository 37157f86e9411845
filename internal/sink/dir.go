// This file is over 400 lines: the local directory store keeps the bucket's
// semantics (write-once creates, generations, compare-and-swap) with file
// locks and atomic renames, and each operation needs all of them.

package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// metaDir is the hidden top-level directory of a Dir that holds everything
// that is not an object: lock files, generation files and temporary files.
// It is never listed and no object name may start with it.
const metaDir = ".sink"

// lockStripes is the number of lock files; an object's lock is chosen by a
// hash of its name, so the number of lock files stays bounded.
const lockStripes = 64

// Dir stores objects as files under a root directory, with the same layout
// as the bucket: the object "a/b/c.ndjson" is the file root/a/b/c.ndjson,
// holding exactly the object's bytes.
//
// Generations are emulated as in Cloud Storage: each object has a generation
// file root/.sink/gen/<name>.gen holding a number that grows on every Write (at
// least the previous value plus one, normally the current time in
// microseconds). An object without a generation file (created by Create, or
// put there by hand) has generation 1; a Delete leaves the generation file as
// a tombstone, so a re-created object never reuses an old generation.
//
// Concurrency: every mutation holds an exclusive flock(2) on the object's lock
// file (one of a fixed set under root/.sink/lock, chosen by a hash of the
// name) and Read holds a shared one, so a compare-and-swap is atomic across
// goroutines and across processes sharing the directory on a local
// filesystem (flock locks belong to an open file description, and each
// operation opens the lock file afresh, so goroutines of one process exclude
// each other as well). Object files are written to root/.sink/tmp, synced,
// and then linked (Create: link fails if the name exists) or renamed (Write)
// into place, so a reader or a List never sees a partial object. The
// generation file is replaced before the data file: a crash in between leaves
// the old content under a new generation, which at worst fails a later
// compare-and-swap, never lets a stale one succeed. flock is not reliable on
// network filesystems; use a bucket for shared storage.
type Dir struct {
	root   string
	noSync bool
}

// NewDir returns a Dir rooted at root, creating the directory if needed.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve directory %q: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, metaDir, "lock"), filepath.Join(abs, metaDir, "tmp"), filepath.Join(abs, metaDir, "gen")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("failed to create directory %s: %w", d, err)
		}
	}
	removeStaleTemps(filepath.Join(abs, metaDir, "tmp"), time.Hour)
	return &Dir{root: abs}, nil
}

// removeStaleTemps deletes temporary files left behind by crashed writers:
// those older than age, which no live writer can still be using.
func removeStaleTemps(dir string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// WithoutSync returns a copy of d that does not fsync files and directories.
// Its writes are still atomic and survive a crash of the process, but not a
// crash of the machine; it is for tests, demos and benchmarks.
func (d *Dir) WithoutSync() *Dir {
	d2 := *d
	d2.noSync = true
	return &d2
}

// Root returns the absolute root directory.
func (d *Dir) Root() string { return d.root }

// checkName rejects names that are not plain relative slash-separated paths
// or that fall inside the hidden metadata directory.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return fmt.Errorf("invalid object name %q", name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid object name %q", name)
		}
	}
	if name == metaDir || strings.HasPrefix(name, metaDir+"/") {
		return fmt.Errorf("invalid object name %q: %s/ is reserved", name, metaDir)
	}
	return nil
}

func (d *Dir) dataPath(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }
func (d *Dir) genPath(name string) string {
	// The suffix keeps "a"'s file apart from "a/b"'s directory.
	return filepath.Join(d.root, metaDir, "gen", filepath.FromSlash(name)+".gen")
}

// lock takes the flock of name's stripe, exclusive or shared, and returns
// the function that releases it.
func (d *Dir) lock(name string, exclusive bool) (func(), error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	p := filepath.Join(d.root, metaDir, "lock", strconv.Itoa(int(h.Sum32()%lockStripes)))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock file: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("failed to lock %s: %w", p, err)
	}
	// Closing the file releases the lock.
	return func() { _ = f.Close() }, nil
}

// state returns the current content (nil if absent), whether it exists, and
// the current (or, for a deleted object, last) generation. The caller holds
// the lock.
func (d *Dir) state(name string) (data []byte, exists bool, gen int64, err error) {
	data, err = os.ReadFile(d.dataPath(name))
	switch {
	case err == nil:
		exists = true
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR):
		data = nil
	default:
		return nil, false, 0, fmt.Errorf("failed to read %s: %w", name, err)
	}
	raw, err := os.ReadFile(d.genPath(name))
	switch {
	case err == nil:
		gen, err = strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			return nil, false, 0, fmt.Errorf("failed to parse generation of %s: %w", name, err)
		}
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		gen = 0
	default:
		return nil, false, 0, fmt.Errorf("failed to read generation of %s: %w", name, err)
	}
	if exists && gen == 0 {
		gen = 1 // placed by hand
	}
	return data, exists, gen, nil
}

// nextGeneration returns a generation greater than prev, normally the
// current time in microseconds like Cloud Storage.
func nextGeneration(prev int64) int64 {
	return max(prev+1, time.Now().UnixMicro())
}

// writeTemp writes data to a synced temporary file under root/.sink/tmp.
func (d *Dir) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(d.root, metaDir, "tmp"), "obj-*")
	if err != nil {
		return "", fmt.Errorf("failed to create temporary file: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	var serr error
	if !d.noSync {
		serr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("failed to write temporary file: %w", err)
	}
	return tmp, nil
}

// put moves the synced temporary file tmp to dst (link: must not exist;
// otherwise rename over it), creating parent directories and syncing the
// parent directory.
func (d *Dir) put(tmp, dst string, exclusive bool) error {
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("failed to create directory: %w", err)
	}
	if exclusive {
		if err := os.Link(tmp, dst); err != nil {
			return err //nolint:wrapcheck // callers check fs.ErrExist
		}
		_ = os.Remove(tmp)
	} else if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("failed to rename into place: %w", err)
	}
	return d.syncDir(parent)
}

func (d *Dir) syncDir(dir string) error {
	if d.noSync {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync directory: %w", err)
	}
	return nil
}

// setGeneration atomically replaces name's generation file.
func (d *Dir) setGeneration(name string, gen int64) error {
	tmp, err := d.writeTemp([]byte(strconv.FormatInt(gen, 10) + "\n"))
	if err != nil {
		return err
	}
	if err := d.put(tmp, d.genPath(name), false); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("failed to store generation of %s: %w", name, err)
	}
	return nil
}

// Create stores data under name if nothing exists there; a byte-identical
// existing object is recognised as a retry and returns nil, a different one
// returns an error wrapping ErrExists. The content type is not stored.
func (d *Dir) Create(ctx context.Context, name string, data []byte, _ string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	unlock, err := d.lock(name, true)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	defer unlock()
	existing, exists, gen, err := d.state(name)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	if exists {
		return sameContent(name, existing, data)
	}
	tmp, err := d.writeTemp(data)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	defer os.Remove(tmp)
	// A name that never existed needs no generation file: it reads as
	// generation 1. After a Delete the tombstone holds the last generation
	// and the new object must get a larger one.
	if gen != 0 {
		if err := d.setGeneration(name, nextGeneration(gen)); err != nil {
			return fmt.Errorf("failed to create %s: %w", name, err)
		}
	}
	if err := d.put(tmp, d.dataPath(name), true); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Someone bypassing the lock put a file there meanwhile.
			existing, rerr := os.ReadFile(d.dataPath(name))
			if rerr != nil {
				return fmt.Errorf("failed to compare existing %s: %w", name, rerr)
			}
			return sameContent(name, existing, data)
		}
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	return nil
}

func sameContent(name string, existing, data []byte) error {
	if bytes.Equal(existing, data) {
		return nil
	}
	return fmt.Errorf("failed to create %s: %w", name, ErrExists)
}

// Read returns the object's content and generation.
func (d *Dir) Read(ctx context.Context, name string) ([]byte, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("failed to read %s: %w", name, err)
	}
	unlock, err := d.lock(name, false)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read %s: %w", name, err)
	}
	defer unlock()
	data, exists, gen, err := d.state(name)
	if err != nil {
		return nil, 0, err
	}
	if !exists {
		return nil, 0, fmt.Errorf("failed to read %s: %w", name, ErrNotFound)
	}
	return data, gen, nil
}

// Write replaces the object if its generation is ifGeneration (0: it must
// not exist) and returns the new generation; otherwise it returns an error
// wrapping ErrPrecondition. The content type is not stored.
func (d *Dir) Write(ctx context.Context, name string, data []byte, _ string, ifGeneration int64) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	unlock, err := d.lock(name, true)
	if err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	defer unlock()
	_, exists, gen, err := d.state(name)
	if err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	if (ifGeneration == 0 && exists) || (ifGeneration != 0 && (!exists || gen != ifGeneration)) {
		return 0, fmt.Errorf("failed to write %s at generation %d: %w", name, ifGeneration, ErrPrecondition)
	}
	tmp, err := d.writeTemp(data)
	if err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	defer os.Remove(tmp)
	next := nextGeneration(gen)
	if err := d.setGeneration(name, next); err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := d.put(tmp, d.dataPath(name), false); err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	return next, nil
}

// Delete removes the object if its generation is ifGeneration (0: whatever
// its generation). The generation file stays as a tombstone.
func (d *Dir) Delete(ctx context.Context, name string, ifGeneration int64) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("failed to delete %s: %w", name, err)
	}
	unlock, err := d.lock(name, true)
	if err != nil {
		return fmt.Errorf("failed to delete %s: %w", name, err)
	}
	defer unlock()
	_, exists, gen, err := d.state(name)
	if err != nil {
		return fmt.Errorf("failed to delete %s: %w", name, err)
	}
	if !exists {
		return fmt.Errorf("failed to delete %s: %w", name, ErrNotFound)
	}
	if ifGeneration != 0 && gen != ifGeneration {
		return fmt.Errorf("failed to delete %s at generation %d: %w", name, ifGeneration, ErrPrecondition)
	}
	if gen == 1 {
		// No generation file yet (placed by hand): record the tombstone so a
		// re-created object gets a newer generation.
		if err := d.setGeneration(name, gen); err != nil {
			return fmt.Errorf("failed to delete %s: %w", name, err)
		}
	}
	if err := os.Remove(d.dataPath(name)); err != nil {
		return fmt.Errorf("failed to delete %s: %w", name, err)
	}
	if err := d.syncDir(filepath.Dir(d.dataPath(name))); err != nil {
		return fmt.Errorf("failed to delete %s: %w", name, err)
	}
	return nil
}

// List returns the names of the objects whose names start with prefix,
// sorted. Directories, the hidden metadata directory and anything that is
// not a regular file are skipped.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("failed to list %q: %w", prefix, err)
	}
	// Walk only the deepest directory the prefix determines.
	start := d.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir := path.Clean(prefix[:i])
		if dir == ".." || strings.HasPrefix(dir, "../") || strings.HasPrefix(dir, "/") {
			return nil, fmt.Errorf("invalid list prefix %q", prefix)
		}
		start = filepath.Join(d.root, filepath.FromSlash(dir))
	}
	var names []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err //nolint:wrapcheck // wrapped below
		}
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == metaDir {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && strings.HasPrefix(rel, prefix) {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list %q: %w", prefix, err)
	}
	slices.Sort(names)
	return names, nil
}
