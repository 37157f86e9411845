package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Record is one line of a data object: a row as Sentry sent it, and what
// de-duplication knows it by.
type Record struct {
	// ID identifies the row: an event id, an audit-log entry id, an issue
	// id.
	ID string
	// Version distinguishes versions of the same ID that are each written
	// once (an issue's status changes); "" when a row is written once.
	Version string
	// Time is the unix second the source files the row under (an event's
	// dateCreated, an issue's lastSeen).
	Time int64
	// Raw is the row's JSON as Sentry sent it.
	Raw json.RawMessage
}

// Key is what is written exactly once: the id, and the version if any.
func (r Record) Key() string {
	if r.Version == "" {
		return r.ID
	}
	return r.ID + "\x00" + r.Version
}

// Lane is one sequence of write-once data objects and the state document (or
// the part of one) that records what they hold. Its methods change the
// loaded state in memory, except Commit, which saves it.
//
// The rule that makes recovery work: the name of the next object (Next) is a
// function of the committed state alone, and it changes only in a commit that
// also records what the object under the previous name holds (Absorb). So an
// object created by a writer that crashed, or lost a race, before committing
// is always found again under the current name by whoever writes next, and
// absorbed instead of being written twice.
type Lane interface {
	// Next is the name of the next data object.
	Next() string
	// Parse reads one line of one of the lane's objects back into a
	// record, exactly as the source turned the row into a record when it
	// read it from Sentry.
	Parse(line []byte) (Record, error)
	// Absorb records recs as stored (written by this run, or found in an
	// object left by an interrupted run) and moves Next to the following
	// name. Commit makes it durable.
	Absorb(recs []Record)
	// Commit saves the state by compare-and-swap. On a lost swap it
	// reloads the state and returns an error wrapping ErrConflict: the
	// batch in hand must then be dropped and read again.
	Commit(ctx context.Context) error
}

// ErrConflict is wrapped when a state document changed since it was loaded.
var ErrConflict = errors.New("state changed concurrently")

// Batch holds the new records of consecutive pages of one window (or sweep),
// to be written as one data object.
type Batch struct {
	// Records are the rows to write, de-duplicated by Key.
	Records []Record
	// Cursor is the cursor of the next page to read; Done is set when the
	// window has no more pages. The source's reader sets both.
	Cursor string
	Done   bool
	// Pages counts pages read into the batch; Dups rows skipped as stored
	// already (or repeated), Invalid rows without a usable id or date.
	Pages   int
	Dups    int
	Invalid int
	// Object is the data object the batch was written to, once written.
	Object string

	keys  map[string]struct{}
	bytes int
}

// NewBatch returns an empty batch whose next page is at cursor.
func NewBatch(cursor string) *Batch {
	return &Batch{Cursor: cursor, keys: make(map[string]struct{})}
}

// Add appends rec unless its key is already in the batch (then it counts a
// duplicate and returns false).
func (b *Batch) Add(rec Record) bool {
	if _, ok := b.keys[rec.Key()]; ok {
		b.Dups++
		return false
	}
	b.keys[rec.Key()] = struct{}{}
	b.Records = append(b.Records, rec)
	b.bytes += len(rec.Raw) + 1
	return true
}

// Has reports whether the batch holds key.
func (b *Batch) Has(key string) bool {
	_, ok := b.keys[key]
	return ok
}

// Bytes is the size of the batch as NDJSON.
func (b *Batch) Bytes() int { return b.bytes }

// full reports whether the batch should be written before reading more.
func (b *Batch) full(maxPages int) bool {
	return b.Done || b.Pages >= maxPages || b.bytes >= MaxObjectBytes
}

// drop removes the records whose keys are in stored (after an object was
// recovered), counting them as duplicates.
func (b *Batch) drop(stored []Record) {
	found := make(map[string]struct{}, len(stored))
	for _, r := range stored {
		found[r.Key()] = struct{}{}
	}
	kept := b.Records[:0]
	b.bytes = 0
	for _, r := range b.Records {
		if _, ok := found[r.Key()]; ok {
			delete(b.keys, r.Key())
			b.Dups++
			continue
		}
		kept = append(kept, r)
		b.bytes += len(r.Raw) + 1
	}
	clear(b.Records[len(kept):])
	b.Records = kept
}

// ndjson renders the records, one per line, each as Sentry sent it; a row
// that spans lines is compacted so that it stays one line.
func (b *Batch) ndjson(buf *bytes.Buffer) []byte {
	buf.Reset()
	buf.Grow(b.bytes)
	for _, r := range b.Records {
		if bytes.IndexByte(r.Raw, '\n') >= 0 || bytes.IndexByte(r.Raw, '\r') >= 0 {
			n := buf.Len()
			if err := json.Compact(buf, r.Raw); err == nil {
				buf.WriteByte('\n')
				continue
			}
			buf.Truncate(n)
		}
		buf.Write(r.Raw)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// Write stores the batch's records exactly once in lane, then commits with
// apply (the source's reading progress: cursor, watermark) applied to the
// state. A batch with no record but pages read only commits the progress. An
// object found under the lane's current name (left by an interrupted run) is
// read back and absorbed first, and the batch's records it already holds are
// dropped. It returns ErrStop when too little budget is left to write
// safely (nothing is written; the pages are read again next run), and an
// error wrapping ErrConflict when the state changed concurrently.
func (r *Run) Write(ctx context.Context, lane Lane, b *Batch, apply func(*Batch)) error {
	if apply == nil {
		apply = func(*Batch) {}
	}
	var buf bytes.Buffer
	for {
		if len(b.Records) == 0 {
			if b.Pages == 0 {
				return nil
			}
			if r.Remaining() < MinSafetyMargin {
				return ErrStop
			}
			apply(b)
			if err := lane.Commit(ctx); err != nil {
				return err
			}
			r.sum.Duplicates += b.Dups
			return nil
		}
		if r.Remaining() < r.writeReserve()-r.maxWriteSeen() {
			return ErrStop
		}
		if err := r.keepLease(ctx); err != nil {
			return err
		}
		name := lane.Next()
		t0 := r.clock.Now()
		err := r.cfg.Data.Create(ctx, name, b.ndjson(&buf), sink.ContentTypeNDJSON)
		switch {
		case err == nil:
			lane.Absorb(b.Records)
			b.Object = name
			apply(b)
			if err := lane.Commit(ctx); err != nil {
				return err
			}
			r.noteWrite(r.clock.Now().Sub(t0))
			r.sum.Records += len(b.Records)
			r.sum.Duplicates += b.Dups
			r.sum.Objects++
			return nil
		case errors.Is(err, sink.ErrExists):
			stored, rerr := r.ReadBack(ctx, name, lane.Parse)
			if rerr != nil {
				return rerr
			}
			lane.Absorb(stored)
			if err := lane.Commit(ctx); err != nil {
				return err
			}
			r.sum.ObjectsRecovered++
			logging.FromContext(ctx).InfoContext(ctx, "recovered an object written by an interrupted run",
				"stream", r.cfg.Stream, "object", name, "records", len(stored))
			b.drop(stored)
		default:
			return fmt.Errorf("failed to write data object %s: %w", name, err)
		}
	}
}

// ReadBack reads a data object and parses each line with parse.
func (r *Run) ReadBack(ctx context.Context, name string, parse func([]byte) (Record, error)) ([]Record, error) {
	data, _, err := r.cfg.Data.Read(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("failed to read back object %s: %w", name, err)
	}
	var out []Record
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		rec, err := parse(line)
		if err != nil {
			return nil, fmt.Errorf("failed to read back object %s: line %d: %w", name, len(out)+1, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (r *Run) maxWriteSeen() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxWrite
}

func (r *Run) noteWrite(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxWrite = max(r.maxWrite, d)
}

// ValidID accepts Sentry's ids (32-hex event ids, numeric issue and
// audit-log ids, and other plain tokens up to 64 characters) and rejects ids
// that would need escaping in state documents. A row whose id fails it is
// invalid: counted, never written.
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
