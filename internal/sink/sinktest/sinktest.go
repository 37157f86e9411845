// Package sinktest provides object stores for tests: the real backends (a
// local directory, Cloud Storage through the real client against an
// in-process fake-gcs-server, memory) and wrappers that put hooks, crashes
// and Cloud Storage-like faults in front of any of them.
package sinktest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Store is the API every backend implements.
type Store interface {
	Create(ctx context.Context, name string, data []byte, contentType string) error
	Read(ctx context.Context, name string) ([]byte, int64, error)
	Write(ctx context.Context, name string, data []byte, contentType string, ifGeneration int64) (int64, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, name string, ifGeneration int64) error
}

var (
	_ Store = (*sink.GCS)(nil)
	_ Store = (*sink.Dir)(nil)
	_ Store = (*sink.Memory)(nil)
	_ Store = (*Hooked)(nil)
	_ Store = (*Faulty)(nil)
)

// Bucket is the bucket NewGCS creates.
const Bucket = "bkt"

// NewGCS returns a sink.GCS on an in-process fake-gcs-server with one
// bucket, stopped when the test ends.
func NewGCS(tb testing.TB) *sink.GCS {
	tb.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		tb.Fatalf("failed to start fake-gcs-server: %v", err)
	}
	tb.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	c := srv.Client()
	tb.Cleanup(func() { _ = c.Close() })
	return sink.NewGCS(c, Bucket)
}

// NewDir returns a sink.Dir in a temporary directory.
func NewDir(tb testing.TB) *sink.Dir {
	tb.Helper()
	d, err := sink.NewDir(tb.TempDir())
	if err != nil {
		tb.Fatalf("NewDir: %v", err)
	}
	return d
}

// New returns the named backend: "dir", "gcs" or "memory".
func New(tb testing.TB, name string) Store {
	tb.Helper()
	switch name {
	case "gcs":
		return NewGCS(tb)
	case "memory":
		return sink.NewMemory()
	case "dir":
		return NewDir(tb)
	}
	tb.Fatalf("unknown store %q", name)
	return nil
}

// Hooked counts operations and runs Before ahead of each (its error is
// returned instead of performing the operation) and After behind each
// successful one (its error replaces the result: the operation landed but
// the caller is told it failed).
type Hooked struct {
	Store
	Before func(n int, op, name string) error
	After  func(n int, op, name string) error

	n atomic.Int64
}

func (h *Hooked) pre(op, name string) (int, error) {
	n := int(h.n.Add(1))
	if h.Before != nil {
		return n, h.Before(n, op, name)
	}
	return n, nil
}

func (h *Hooked) post(n int, op, name string, err error) error {
	if err == nil && h.After != nil {
		return h.After(n, op, name)
	}
	return err
}

// Ops is the number of operations so far.
func (h *Hooked) Ops() int { return int(h.n.Load()) }

// Create implements Store.
func (h *Hooked) Create(ctx context.Context, name string, data []byte, ct string) error {
	n, err := h.pre("create", name)
	if err != nil {
		return err
	}
	return h.post(n, "create", name, h.Store.Create(ctx, name, data, ct))
}

// Read implements Store.
func (h *Hooked) Read(ctx context.Context, name string) ([]byte, int64, error) {
	n, err := h.pre("read", name)
	if err != nil {
		return nil, 0, err
	}
	d, g, err := h.Store.Read(ctx, name)
	if err = h.post(n, "read", name, err); err != nil {
		return nil, 0, err
	}
	return d, g, nil
}

// Write implements Store.
func (h *Hooked) Write(ctx context.Context, name string, data []byte, ct string, gen int64) (int64, error) {
	n, err := h.pre("write", name)
	if err != nil {
		return 0, err
	}
	g, err := h.Store.Write(ctx, name, data, ct, gen)
	return g, h.post(n, "write", name, err)
}

// List implements Store.
func (h *Hooked) List(ctx context.Context, prefix string) ([]string, error) {
	n, err := h.pre("list", prefix)
	if err != nil {
		return nil, err
	}
	names, err := h.Store.List(ctx, prefix)
	return names, h.post(n, "list", prefix, err)
}

// Delete implements Store.
func (h *Hooked) Delete(ctx context.Context, name string, gen int64) error {
	n, err := h.pre("delete", name)
	if err != nil {
		return err
	}
	return h.post(n, "delete", name, h.Store.Delete(ctx, name, gen))
}

// Crash modes of Faulty.
const (
	// CrashBefore fails the K-th operation without performing it.
	CrashBefore = iota
	// CrashAfter performs the K-th operation, then reports a failure.
	CrashAfter
	// CrashCancel cancels the run's context at the K-th operation.
	CrashCancel
)

// ErrInjected is the error of an injected crash.
var ErrInjected = errors.New("injected crash")

// Err503 stands for a Cloud Storage 503 as the sink reports it.
var Err503 = failure.Transient(errors.New("googleapi: Error 503: injected backend error"))

// Faulty crashes at its K-th operation (0: never) the way Mode says, and,
// with probability FaultP per operation, answers like an unavailable Cloud
// Storage: a 503 before the operation, a 503 after it landed (the answer was
// lost), or a 412 after a landed write (a retry that finds its own first
// attempt). Cancel is called for CrashCancel.
type Faulty struct {
	Store
	K      int64
	Mode   int
	Cancel context.CancelFunc
	FaultP float64
	Seed   uint64

	n       atomic.Int64
	fired   atomic.Bool
	firedOn atomic.Value // string: the object the crash hit
	mu      sync.Mutex
	rng     *rand.Rand
}

// Fired reports whether the crash happened.
func (f *Faulty) Fired() bool { return f.fired.Load() }

// FiredOn is the name of the object whose operation crashed ("" if none, or
// for a list).
func (f *Faulty) FiredOn() string {
	s, _ := f.firedOn.Load().(string)
	return s
}

func (f *Faulty) fire(name string) {
	f.firedOn.Store(name)
	f.fired.Store(true)
}

// Ops is the number of operations so far.
func (f *Faulty) Ops() int64 { return f.n.Load() }

func (f *Faulty) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng == nil {
		f.rng = rand.New(rand.NewPCG(f.Seed, uint64(f.K)))
	}
	return f.rng.Float64()
}

func (f *Faulty) before(ctx context.Context, name string) (int64, error) {
	n := f.n.Add(1)
	if n == f.K {
		switch f.Mode {
		case CrashBefore:
			f.fire(name)
			return n, ErrInjected
		case CrashCancel:
			f.fire(name)
			if f.Cancel != nil {
				f.Cancel()
			}
			return n, ctx.Err()
		}
	}
	if f.FaultP > 0 && f.roll() < f.FaultP/2 {
		return n, Err503
	}
	return n, nil
}

func (f *Faulty) after(n int64, op, name string, err error) error {
	if err != nil {
		return err
	}
	if n == f.K && f.Mode == CrashAfter {
		f.fire(name)
		return ErrInjected
	}
	if f.FaultP > 0 && op != "read" && op != "list" {
		switch x := f.roll(); {
		case x < f.FaultP/4:
			return Err503 // landed, but the answer was lost
		case x < f.FaultP/2 && op == "write":
			return sink.ErrPrecondition // a retried write that finds its own first attempt
		}
	}
	return nil
}

// Create implements Store.
func (f *Faulty) Create(ctx context.Context, name string, data []byte, ct string) error {
	n, err := f.before(ctx, name)
	if err != nil {
		return err
	}
	return f.after(n, "create", name, f.Store.Create(ctx, name, data, ct))
}

// Read implements Store.
func (f *Faulty) Read(ctx context.Context, name string) ([]byte, int64, error) {
	n, err := f.before(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	d, g, err := f.Store.Read(ctx, name)
	if err = f.after(n, "read", name, err); err != nil {
		return nil, 0, err
	}
	return d, g, nil
}

// Write implements Store.
func (f *Faulty) Write(ctx context.Context, name string, data []byte, ct string, gen int64) (int64, error) {
	n, err := f.before(ctx, name)
	if err != nil {
		return 0, err
	}
	g, err := f.Store.Write(ctx, name, data, ct, gen)
	return g, f.after(n, "write", name, err)
}

// List implements Store.
func (f *Faulty) List(ctx context.Context, prefix string) ([]string, error) {
	n, err := f.before(ctx, "")
	if err != nil {
		return nil, err
	}
	names, err := f.Store.List(ctx, prefix)
	return names, f.after(n, "list", "", err)
}

// Delete implements Store.
func (f *Faulty) Delete(ctx context.Context, name string, gen int64) error {
	n, err := f.before(ctx, name)
	if err != nil {
		return err
	}
	return f.after(n, "delete", name, f.Store.Delete(ctx, name, gen))
}
