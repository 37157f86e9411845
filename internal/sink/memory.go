package sink

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Memory keeps objects in memory with the same semantics as GCS and Dir:
// write-once Create that recognises an identical retry, compare-and-swap
// Write, generations that never repeat for a name. The conformance tests run
// against it as against the other backends. It serves tests, the demo and
// benchmarks; it is safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	objects map[string]memObject
	gen     int64 // last generation handed out; global, so never reused
}

type memObject struct {
	data []byte
	gen  int64
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{objects: make(map[string]memObject)} }

// Create stores data under name unless it exists: an identical object is a
// recognised retry (nil), a different one an error wrapping ErrExists.
func (m *Memory) Create(ctx context.Context, name string, data []byte, _ string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objects[name]; ok {
		if bytes.Equal(o.data, data) {
			return nil
		}
		return fmt.Errorf("failed to create %s: %w", name, ErrExists)
	}
	m.gen++
	m.objects[name] = memObject{data: bytes.Clone(data), gen: m.gen}
	return nil
}

// Read returns a copy of the object's content and its generation.
func (m *Memory) Read(ctx context.Context, name string) ([]byte, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("failed to read %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return nil, 0, fmt.Errorf("failed to read %s: %w", name, ErrNotFound)
	}
	return bytes.Clone(o.data), o.gen, nil
}

// Write replaces the object if its generation is ifGeneration (0: it must
// not exist), else fails with ErrPrecondition.
func (m *Memory) Write(ctx context.Context, name string, data []byte, _ string, ifGeneration int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if (ifGeneration == 0 && ok) || (ifGeneration != 0 && (!ok || o.gen != ifGeneration)) {
		return 0, fmt.Errorf("failed to write %s at generation %d: %w", name, ifGeneration, ErrPrecondition)
	}
	m.gen++
	m.objects[name] = memObject{data: bytes.Clone(data), gen: m.gen}
	return m.gen, nil
}

// List returns the names that start with prefix, sorted.
func (m *Memory) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("failed to list %q: %w", prefix, err)
	}
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

// Delete removes the object if its generation is ifGeneration (0: whatever
// its generation).
func (m *Memory) Delete(ctx context.Context, name string, ifGeneration int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("failed to delete %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	switch {
	case !ok:
		return fmt.Errorf("failed to delete %s: %w", name, ErrNotFound)
	case ifGeneration != 0 && o.gen != ifGeneration:
		return fmt.Errorf("failed to delete %s at generation %d: %w", name, ifGeneration, ErrPrecondition)
	}
	delete(m.objects, name)
	return nil
}
