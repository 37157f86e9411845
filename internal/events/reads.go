package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// What a project's checkpoint remembers of who read which timestamps when,
// so that an event Sentry received late (an offline SDK's cached event, sent
// hours after its timestamp) can be placed: read already by a window or a
// backfill (skip), certainly not read by any (write), or in between (look in
// the bucket). See late.go.

// Read is a completed (or, with C = 0, still running) read of a range
// [S, E) of a project's events, by a window of the stream or a slice of a
// backfill job: every event with a timestamp in [S, E) that Sentry showed at
// time O or later, up to time C, was read and stored. Times are unix
// seconds.
type Read struct {
	S int64 `json:"s"`
	E int64 `json:"e"`
	// O is when the read began (it saw everything visible then); 0:
	// unknown.
	O int64 `json:"o,omitempty"`
	// C is when it ended; 0 while it is still running (a backfill slice in
	// progress, or one whose job crashed).
	C int64 `json:"c,omitempty"`
}

// readsKeep is how long completed reads are remembered. A late-sent event is
// placed by the reads that covered its timestamp; the sweep normally places
// it minutes after it was received, so two hours is ample. Forgotten reads
// only make placement conservative (readsPruned): events received before
// the latest forgotten read ended are looked for in the bucket.
const readsKeep = 2 * time.Hour

// addRead records a read in the checkpoint and forgets the old ones.
func (cp *checkpoint) addRead(rd Read, now time.Time) {
	cp.Reads = append(cp.Reads, rd)
	cp.pruneReads(now)
}

// pruneReads forgets completed reads that ended more than readsKeep ago,
// keeping in ReadsPruned the latest end of what it forgot. Running reads are
// kept until they end.
func (cp *checkpoint) pruneReads(now time.Time) {
	cut := now.Add(-readsKeep).Unix()
	cp.Reads = slices.DeleteFunc(cp.Reads, func(rd Read) bool {
		if rd.C != 0 && rd.C < cut {
			cp.ReadsPruned = max(cp.ReadsPruned, rd.C)
			return true
		}
		return false
	})
}

// noteRead records a read of another reader (a backfill slice): a running
// one (C = 0) unless the same range is already running (a slice resumed by a
// later run keeps the earlier start, the one every row read is newer than),
// or the end of the running one.
func (cp *checkpoint) noteRead(rd Read, now time.Time) {
	i := slices.IndexFunc(cp.Reads, func(r Read) bool { return r.S == rd.S && r.E == rd.E && r.C == 0 })
	switch {
	case i < 0:
		cp.addRead(rd, now)
	case rd.C != 0:
		cp.Reads[i].C = rd.C
		cp.pruneReads(now)
	}
}

// NoteRead records in a project's checkpoint that another reader (a backfill
// slice) reads, or has read, its events in [rd.S, rd.E): call it with C = 0
// before the first page is read and with C set once the last is written. The
// late lane then knows what the bucket may hold (late.go).
func (s *Stream) NoteRead(ctx context.Context, projectID string, rd Read) error {
	for range maxConflictsPerRun {
		doc, err := loadCheckpoint(ctx, s, projectID, "")
		if err != nil {
			return err
		}
		doc.V.noteRead(rd, s.env.Now())
		err = doc.Save(ctx, nil)
		if !errors.Is(err, engine.ErrConflict) {
			if err != nil {
				return fmt.Errorf("failed to record a read of project %s: %w", projectID, err)
			}
			return nil
		}
	}
	return failure.Transient(fmt.Errorf("failed to record a read of project %s: too many concurrent changes", projectID))
}

// unixOrZero is t in unix seconds, 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
