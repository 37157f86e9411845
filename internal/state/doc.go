package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// maxUpdateAttempts bounds Doc.Update's reload-and-retry loop.
const maxUpdateAttempts = 10

// Doc reads and writes JSON documents of type T.
type Doc[T any] struct {
	objs Objects
}

// NewDoc returns a Doc over objs.
func NewDoc[T any](objs Objects) Doc[T] {
	return Doc[T]{objs: objs}
}

// Load returns the document at key and its generation. A missing document is
// the zero value with generation 0, which Save accepts as "create".
func (d Doc[T]) Load(ctx context.Context, key string) (T, int64, error) {
	var v T
	raw, gen, err := d.objs.Read(ctx, key)
	if errors.Is(err, sink.ErrNotFound) {
		return v, 0, nil
	}
	if err != nil {
		return v, 0, fmt.Errorf("failed to load state %s: %w", key, err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, 0, fmt.Errorf("failed to decode state %s (generation %d): %w: %w", key, gen, ErrUndecodable, err)
	}
	return v, gen, nil
}

// Save stores v at key if the document's generation is still ifGeneration
// (0: it must not exist) and returns the new generation. If the document
// changed meanwhile, the error wraps ErrConflict: reload and try again.
func (d Doc[T]) Save(ctx context.Context, key string, v T, ifGeneration int64) (int64, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("failed to encode state %s: %w", key, err)
	}
	gen, err := d.objs.Write(ctx, key, raw, ContentType, ifGeneration)
	if errors.Is(err, sink.ErrPrecondition) {
		return 0, fmt.Errorf("failed to save state %s at generation %d: %w: %w", key, ifGeneration, ErrConflict, err)
	}
	if err != nil {
		return 0, fmt.Errorf("failed to save state %s: %w", key, err)
	}
	return gen, nil
}

// Update loads the document at key, applies fn to it and saves it, reloading
// and applying fn again (to the fresh value) when another writer got there
// first, up to 10 attempts. fn must therefore be a pure function of the value
// it is given. An error from fn aborts the update and is returned as is.
// Update returns the saved value and its generation.
func (d Doc[T]) Update(ctx context.Context, key string, fn func(v *T) error) (T, int64, error) {
	var err error
	for range maxUpdateAttempts {
		var (
			v   T
			gen int64
		)
		v, gen, err = d.Load(ctx, key)
		if err != nil {
			return v, 0, err
		}
		if err := fn(&v); err != nil {
			return v, 0, err
		}
		gen, err = d.Save(ctx, key, v, gen)
		if err == nil {
			return v, gen, nil
		}
		if !errors.Is(err, ErrConflict) {
			return v, 0, err
		}
	}
	var zero T
	return zero, 0, fmt.Errorf("failed to update state %s after %d attempts: %w", key, maxUpdateAttempts, err)
}

// Delete removes the document at key if its generation is still
// ifGeneration; if it changed meanwhile the error wraps ErrConflict. A
// document that is already gone is not an error.
func (d Doc[T]) Delete(ctx context.Context, key string, ifGeneration int64) error {
	err := d.objs.Delete(ctx, key, ifGeneration)
	switch {
	case err == nil, errors.Is(err, sink.ErrNotFound):
		return nil
	case errors.Is(err, sink.ErrPrecondition):
		return fmt.Errorf("failed to delete state %s at generation %d: %w: %w", key, ifGeneration, ErrConflict, err)
	default:
		return fmt.Errorf("failed to delete state %s: %w", key, err)
	}
}
