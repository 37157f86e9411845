package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// floor is the earliest event time the live stream may still write for a
// project: its watermark − Overlap, or its window's start.
func (s *Stream) floor(cp *checkpoint) (time.Time, bool) {
	switch {
	case !cp.Watermark.IsZero():
		return cp.Watermark.Add(-s.overlap()), true
	case cp.Window != nil:
		return cp.Window.Start, true
	}
	return time.Time{}, false
}

// HandOff returns where the live stream takes over a project's events: a
// backfill reads the project up to the returned time, the stream from it on,
// so that no event is left to neither and none is written by both.
//
// For a project the stream has already read, that is its watermark − Overlap
// (or its window's start). For a project it has not started, HandOff creates
// the project's checkpoint (compare-and-swap: only if none exists yet) with a
// window [now − InitialLookback, now − Lag) already open: the stream's next
// run reads it from its start, exactly where the backfill stops, and idle
// detection never skips a project with a window open. If the stream created
// the checkpoint first, the swap fails and the take-over point is read from
// what it committed.
func (s *Stream) HandOff(ctx context.Context, projectID, slug string) (time.Time, error) {
	for range maxConflictsPerRun {
		doc, err := loadCheckpoint(ctx, s, projectID, slug)
		if err != nil {
			return time.Time{}, err
		}
		if at, ok := s.floor(&doc.V); ok {
			return at, nil
		}
		now := s.env.Now().UTC()
		start := now.Add(-s.opts.InitialLookback).Truncate(time.Second)
		end := now.Add(-s.opts.Lag).Truncate(time.Second)
		if end.Sub(start) > s.opts.MaxWindow {
			end = start.Add(s.opts.MaxWindow)
		}
		cp := &doc.V
		cp.HoursSince = start.Unix()
		if end.After(start) {
			cp.Window = &Window{Start: start, End: end, Opened: now.Truncate(time.Second)}
			cp.Begin(end.Unix())
		} else {
			cp.Watermark = start.Add(s.overlap())
		}
		cp.UpdatedAt = now
		err = doc.Save(ctx, nil)
		switch {
		case err == nil:
			logging.FromContext(ctx).InfoContext(ctx, "opened the stream's first window of a project it has not read yet, starting where the backfill stops",
				"project_id", projectID, "hand_off", start, "stream", Name)
			return start, nil
		case errors.Is(err, engine.ErrConflict):
			continue // the stream got there first: hand off at what it committed
		default:
			return time.Time{}, fmt.Errorf("failed to create the checkpoint of project %s: %w", projectID, err)
		}
	}
	return time.Time{}, failure.Transient(fmt.Errorf("failed to create the checkpoint of project %s: too many concurrent changes", projectID))
}

// API returns the stream's Sentry client (a backfill reads through the same
// one, and its rate limits).
func (s *Stream) API() API { return s.api }

// Env returns the stream's engine environment.
func (s *Stream) Env() engine.Env { return s.env }
