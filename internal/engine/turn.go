package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// ReadError is a failed read from the source (Sentry, after the client's own
// retries), as opposed to a storage or lease failure: it concerns the unit
// being read (a project, a single-document stream), not the whole run.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// IsReadError reports whether err is a failed read from the source.
func IsReadError(err error) bool {
	var re *ReadError
	return errors.As(err, &re)
}

// Fetch runs one page request, fn, under a context bounded so that what was
// read can still be written and committed (the deadline minus the write
// reserve) and cut by the soft stop. Its error is a *ReadError: for a request
// cut by the budget it wraps ErrBudgetExhausted (transient), for one cut by
// the soft stop ErrStopped, else fn's error.
func (r *Run) Fetch(ctx context.Context, fn func(ctx context.Context) error) error {
	pctx, cancel := context.WithTimeout(ctx, max(r.Remaining()-r.writeReserve(), time.Second))
	defer cancel()
	if sig := r.cfg.Stop; sig != nil {
		// A soft stop cuts the request in flight: what was read is
		// committed before the process goes away.
		sctx, scancel := context.WithCancelCause(pctx)
		defer scancel(nil)
		go func() {
			select {
			case <-sig:
				scancel(ErrStopped)
			case <-sctx.Done():
			}
		}()
		pctx = sctx
	}
	t0 := r.clock.Now()
	err := fn(pctx)
	r.mu.Lock()
	r.maxPage = max(r.maxPage, r.clock.Now().Sub(t0))
	r.mu.Unlock()
	if err == nil {
		return nil
	}
	if pctx.Err() != nil && ctx.Err() == nil {
		if errors.Is(context.Cause(pctx), ErrStopped) {
			return &ReadError{Err: fmt.Errorf("%w: %w", ErrStopped, err)}
		}
		return &ReadError{Err: failure.Transient(fmt.Errorf("%w: %w", ErrBudgetExhausted, err))}
	}
	return &ReadError{Err: err}
}

// Reader reads the next page at b.Cursor into b: it adds the page's new
// records (Batch.Add), counts what it skipped (Dups, Invalid), and sets
// b.Cursor to the next page's cursor, or b.Done when there is none.
type Reader func(ctx context.Context, b *Batch) error

// Turn reads up to maxPages pages through read (fewer when the batch fills up
// or the window ends) and writes them as one object through lane (Write),
// with apply recording the reading progress. It returns the batch and:
//   - nil when the batch was written and committed;
//   - ErrStop when the budget or the soft stop ended the turn (what was
//     read is committed);
//   - a *ReadError when a page request failed (what was read before it is
//     committed first), or a page announced a next page without a new
//     cursor;
//   - an error wrapping ErrConflict when the state changed concurrently
//     (the batch is dropped);
//   - a storage or lease error otherwise.
func (r *Run) Turn(ctx context.Context, lane Lane, cursor string, maxPages int, read Reader, apply func(*Batch)) (*Batch, error) {
	b := NewBatch(cursor)
	var stop error
	for !b.full(maxPages) {
		if !r.CanRead() {
			stop = ErrStop
			break
		}
		before := b.Cursor
		err := r.Fetch(ctx, func(pctx context.Context) error { return read(pctx, b) })
		if err == nil && !b.Done && (b.Cursor == "" || b.Cursor == before) {
			// Following it would read the same page forever; nothing of
			// this batch is written.
			return b, &ReadError{Err: failure.Transient(fmt.Errorf("the source announced a next page without a new cursor (%q)", b.Cursor))}
		}
		if err != nil {
			if ctx.Err() != nil {
				return b, failure.Transient(err)
			}
			// Keep what was read: commit it, then report the error.
			r.sum.InvalidRows += b.Invalid
			if werr := r.Write(ctx, lane, b, apply); werr != nil && !errors.Is(werr, ErrStop) && !errors.Is(werr, ErrConflict) {
				// A storage failure: the run's problem, not the source's.
				return b, failure.Transient(fmt.Errorf("failed to commit after a read error (%v): %w", err, werr))
			}
			if errors.Is(err, ErrStopped) {
				return b, ErrStop
			}
			return b, err
		}
		b.Pages++
		r.sum.Pages++
	}
	r.sum.InvalidRows += b.Invalid
	if err := r.Write(ctx, lane, b, apply); err != nil {
		return b, err
	}
	return b, stop
}
