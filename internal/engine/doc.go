package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// Doc is a state document of type T as loaded at a generation: every state
// document of every stream (events checkpoints, the issues and audit states,
// backfill jobs, the coverage ledger) is read and saved through it, by
// compare-and-swap on that generation.
type Doc[T any] struct {
	// Key is the document's name in the state store.
	Key string
	// V is the loaded value; change it, then Save.
	V T
	// Gen is the generation V was loaded at (0: the document did not exist).
	Gen int64

	store state.Objects
	init  func() T
}

// LoadDoc reads the document at key. A missing document is init() at
// generation 0 (Save then creates it). A document that exists but cannot be
// decoded is an error wrapping state.ErrUndecodable; a storage failure is
// transient.
func LoadDoc[T any](ctx context.Context, store state.Objects, key string, init func() T) (*Doc[T], error) {
	d := &Doc[T]{Key: key, store: store, init: init}
	if err := d.Reload(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// DocAt returns the document at key as if it had been loaded with value v
// at generation gen: Save then replaces what is stored at gen. It is how a
// document that cannot be decoded is rebuilt (after the caller kept it
// aside).
func DocAt[T any](store state.Objects, key string, v T, gen int64) *Doc[T] {
	return &Doc[T]{Key: key, V: v, Gen: gen, store: store}
}

// Exists reports whether the document existed when it was (re)loaded.
func (d *Doc[T]) Exists() bool { return d.Gen != 0 }

// Reload reads the document again (after a lost compare-and-swap).
func (d *Doc[T]) Reload(ctx context.Context) error {
	v, gen, err := state.NewDoc[T](d.store).Load(ctx, d.Key)
	switch {
	case errors.Is(err, state.ErrUndecodable):
		return err
	case err != nil:
		return failure.Transient(err)
	}
	if gen == 0 && d.init != nil {
		v = d.init()
	}
	d.V, d.Gen = v, gen
	return nil
}

// Save writes V by compare-and-swap on Gen, renewing r's lease first when
// due (nil r: no lease to keep). On a lost swap it reloads the document and
// returns an error wrapping ErrConflict: whatever the caller built on the
// old value must be dropped. On any other failure the outcome is unknown, so
// it reloads too (best effort) and returns a transient error.
func (d *Doc[T]) Save(ctx context.Context, r *Run) error {
	if r != nil {
		if err := r.keepLease(ctx); err != nil {
			return err
		}
	}
	gen, err := state.NewDoc[T](d.store).Save(ctx, d.Key, d.V, d.Gen)
	if errors.Is(err, state.ErrConflict) {
		logging.FromContext(ctx).InfoContext(ctx, "state changed concurrently; reloading", "state", d.Key)
		if r != nil {
			r.sum.Conflicts++
		}
		if lerr := d.Reload(ctx); lerr != nil {
			return lerr
		}
		return fmt.Errorf("failed to save %s: %w", d.Key, ErrConflict)
	}
	if err != nil {
		_ = d.Reload(ctx)
		return failure.Transient(fmt.Errorf("failed to save %s: %w", d.Key, err))
	}
	d.Gen = gen
	return nil
}
