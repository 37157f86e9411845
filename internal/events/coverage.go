package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// What the coverage ledger (internal/coverage) reads from and asks of a
// project's checkpoint.

// ProjectCoverage is what a project's checkpoint says of its collection.
type ProjectCoverage struct {
	// Exists is false for a project the stream has never seen.
	Exists bool
	// Collected counts the events written per hour of their timestamp
	// (the hour's start), by the windows and the late lane, from Since on:
	// hours starting at or after Since are counted in full.
	Collected map[time.Time]int64
	Since     time.Time
	// Floor is the oldest timestamp a window of the stream still reads:
	// an hour that ends after it is not done (zero: the stream has not
	// started the project).
	Floor time.Time
	// Pending counts the late events queued per hour of their timestamp
	// (not written yet).
	Pending map[time.Time]int
}

// Coverage reads a project's checkpoint for the coverage ledger.
func (s *Stream) Coverage(ctx context.Context, projectID string) (ProjectCoverage, error) {
	doc, err := loadCheckpoint(ctx, s, projectID, "")
	if err != nil {
		return ProjectCoverage{}, err
	}
	cp := &doc.V
	out := ProjectCoverage{Exists: doc.Exists(), Collected: make(map[time.Time]int64), Pending: make(map[time.Time]int)}
	if !out.Exists {
		return out, nil
	}
	for h, n := range cp.Hours {
		out.Collected[time.Unix(h, 0).UTC()] = n
	}
	if cp.HoursSince != 0 {
		out.Since = time.Unix(cp.HoursSince, 0).UTC().Add(time.Hour - time.Second).Truncate(time.Hour)
	}
	if f, ok := s.floor(cp); ok {
		out.Floor = f.UTC()
	}
	for _, st := range cp.Pending {
		out.Pending[time.Unix(hourOf(st.T), 0).UTC()]++
	}
	return out, nil
}

// Queue adds events to a project's late queue, to be placed and written if
// no read stored them (late.go); with look, each is looked for in the bucket
// before it is written. The coverage ledger queues the events its diff found
// missing (look), and those it found received beyond the sweep's horizon.
// It returns how many were added (those queued already, or known written,
// are not).
func (s *Stream) Queue(ctx context.Context, projectID string, sts []Straggler, look bool) (int, error) {
	for i := range sts {
		sts[i].Look = sts[i].Look || look
	}
	for range maxConflictsPerRun {
		doc, err := loadCheckpoint(ctx, s, projectID, "")
		if err != nil {
			return 0, err
		}
		added, _ := s.placer(&doc.V).enqueue(sts)
		if added == 0 {
			return 0, nil
		}
		err = doc.Save(ctx, nil)
		switch {
		case err == nil:
			return added, nil
		case !errors.Is(err, engine.ErrConflict):
			return 0, fmt.Errorf("failed to queue events of project %s: %w", projectID, err)
		}
	}
	return 0, failure.Transient(fmt.Errorf("failed to queue events of project %s: too many concurrent changes", projectID))
}
