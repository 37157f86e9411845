package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// De-duplication against the bucket. Before a project's slice [a, b) is read
// from Sentry (in every run that works on it), the data objects that can hold
// events of [a, b) are listed and read, and their ids with dateCreated in
// [a, b) form the seen set. A stream object's epoch is at most t + MaxWindow
// (windows are capped) and, by construction of the names, every event of
// stream object k is older than object k+1's epoch. So the objects to read
// are those of the project in the hour folders hour(a) … hour(b + MaxWindow +
// Overlap), plus the project's last stream object before hour(a) (found once
// per job by walking back day folders, then carried from slice to slice).
// Cost per slice and run: about two day listings (cached within a run) and
// reading the project's objects of about Slice + MaxWindow + Overlap hours;
// memory: the ids of one slice of one project.

const (
	// predFloor bounds the walk back for a project's last stream object
	// before a job's start.
	predFloor = SentryRetention + 10*24*time.Hour
	// listCache bounds the day listings kept within one run.
	listCache = 16
)

// streamObjectKey parses a stream object's base name after the project
// prefix ("<epoch>-<seq>.ndjson").
func streamObjectKey(rest string) (epoch, seq int64, ok bool) {
	e, s, found := strings.Cut(strings.TrimSuffix(rest, ".ndjson"), "-")
	if !found {
		return 0, 0, false
	}
	ep, err1 := strconv.ParseInt(e, 10, 64)
	sq, err2 := strconv.ParseInt(s, 10, 64)
	return ep, sq, err1 == nil && err2 == nil
}

// listDay lists a day folder (cached within the run).
func (x *run) listDay(ctx context.Context, day time.Time) ([]string, error) {
	prefix := x.j.opts.DataPrefix + day.Format("2006/01/02/")
	if names, ok := x.lists[prefix]; ok {
		return names, nil
	}
	names, err := x.j.bucket.List(ctx, prefix)
	if err != nil {
		return nil, failure.Transient(fmt.Errorf("failed to list %s: %w", prefix, err))
	}
	if x.lists == nil || len(x.lists) >= listCache {
		x.lists = make(map[string][]string)
	}
	x.lists[prefix] = names
	return names, nil
}

// projectObjects returns the names of p's data objects in the hour folders
// [from, to] (both hours), and the greatest stream object before hourCut.
func (x *run) projectObjects(ctx context.Context, pid string, from, to, hourCut time.Time, pred string) ([]string, string, error) {
	o := x.j.opts
	base := o.Org + "-" + pid + "-"
	var out []string
	predKey := func(name string) (int64, int64, bool) {
		i := strings.LastIndex(name, "/")
		return streamObjectKey(strings.TrimPrefix(name[i+1:], base))
	}
	for day := from.Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		names, err := x.listDay(ctx, day)
		if err != nil {
			return nil, "", err
		}
		for _, n := range names {
			rest := strings.TrimPrefix(n, o.DataPrefix)
			if len(rest) < 14 {
				continue
			}
			hour, err := time.Parse("2006/01/02/15", rest[:13])
			if err != nil || hour.Before(from) || hour.After(to) || !strings.HasPrefix(rest[14:], base) {
				continue
			}
			out = append(out, n)
			if e, s, ok := predKey(n); ok && e < hourCut.Unix() {
				if pe, ps, pok := predKey(pred); !pok || e > pe || (e == pe && s > ps) {
					pred = n
				}
			}
		}
	}
	return out, pred, nil
}

// scan builds the ids already stored for project p with dateCreated in
// [a, b), and the stream predecessor for the next slice (b).
func (x *run) scan(ctx context.Context, p *Project, a, b time.Time) (engine.Seen, string, error) {
	o := x.j.opts
	from := a.Truncate(time.Hour)
	// Assumption: the hour folders listed are computed
	// with the CURRENT MaxWindow and Overlap. A stream object's epoch is the
	// end of a window that started at or before its events' timestamps, and
	// windows are capped at MaxWindow, so an object holding an event of
	// time t < b has an epoch before b + MaxWindow (+ Overlap as a margin).
	// This holds for every object only if no window was ever longer than
	// the current MaxWindow (+ Overlap): MaxWindow is fixed today (no
	// setting changes it). If it is ever made configurable, or objects were
	// written by a version with a larger cap or an unbounded overlap, this
	// bound must use the largest value ever in effect, or the scan misses
	// those objects and their events are written a second time.
	to := b.Add(o.MaxWindow + o.Overlap).Truncate(time.Hour)
	pred := p.StreamPred
	if !p.PredResolved {
		// Walk back day by day to the project's last stream object before
		// hour(a).
		floor := a.Add(-predFloor)
		for day := from.Add(-time.Hour).Truncate(24 * time.Hour); pred == "" && !day.Before(floor); day = day.Add(-24 * time.Hour) {
			if !x.r.CanRead() {
				return nil, "", engine.ErrStop
			}
			last := day.Add(23 * time.Hour)
			if last.After(from.Add(-time.Hour)) {
				last = from.Add(-time.Hour)
			}
			_, found, err := x.projectObjects(ctx, p.ID, day, last, from, "")
			if err != nil {
				return nil, "", err
			}
			pred = found
		}
		p.StreamPred, p.PredResolved = pred, true
	}
	names, next, err := x.projectObjects(ctx, p.ID, from, to, b.Truncate(time.Hour), pred)
	if err != nil {
		return nil, "", err
	}
	if pred != "" && !slices.Contains(names, pred) {
		names = append(names, pred)
	}
	seen := make(engine.Seen)
	lo, hi := a.Unix(), b.Unix()
	for _, n := range names {
		if !x.r.CanRead() {
			return nil, "", engine.ErrStop
		}
		recs, err := x.r.ReadBack(ctx, n, events.ParseEvent)
		if err != nil {
			if errors.Is(err, sink.ErrNotFound) {
				continue // deleted after transfer
			}
			return nil, "", failure.Transient(err)
		}
		x.scanned++
		for _, r := range recs {
			if r.Time >= lo && r.Time < hi {
				seen[r.ID] = r.Time
			}
		}
	}
	return seen, next, nil
}
