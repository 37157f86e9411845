package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Reading the bucket back: which events of a project with a timestamp in
// [a, b) does it hold? A backfill asks before it reads a slice, the late lane
// before it writes an event it cannot place by the reads alone (late.go), and
// the coverage ledger when its counts differ.
//
// Every object of a project is named <org>-<project>[-<lane>]-<epoch>-<seq>
// in the hour folder of its epoch. A stream object's epoch is at most
// t + MaxWindow for each of its events (windows are capped), and every event
// of stream object k is older than object k+1's epoch (a window's first
// object may carry the previous window's end). A backfill object's epoch is
// the end of its slice, at most t + MaxWindow; a late object's is the hour of
// its events. So the objects to read are the project's objects in the hour
// folders hour(a) … hour(b + MaxWindow + Overlap), plus the project's last
// stream object before hour(a) (found by walking back day folders).
//
// Assumption: the hour folders listed use the current MaxWindow and Overlap.
// They hold for every object only if no window was ever longer than the
// current MaxWindow (+ Overlap): MaxWindow is fixed (no setting changes it).
// If it is ever made configurable, or objects were written by a version with
// a larger cap, the bound must use the largest value ever in effect, or the
// scan misses those objects and their events are written a second time.
//
// Cost: about two day listings per scan (cached for the scanner's life) and
// reading the project's objects of about (b − a) + MaxWindow + Overlap
// hours; memory: the ids found.

// Lister lists object names under a prefix: the bucket as the scan needs it
// (the objects are read through the run's engine.Env.Data).
type Lister interface {
	List(ctx context.Context, prefix string) ([]string, error)
}

const (
	// predFloor bounds the walk back for a project's last stream object
	// before a scan's start.
	predFloor = DefaultRetention + 10*24*time.Hour
	// listCache bounds the day listings a scanner keeps.
	listCache = 16
)

// Pred is a project's last stream object before a time, carried from scan
// to scan (a backfill keeps it in its job between runs).
type Pred struct {
	Name     string
	Resolved bool
}

// Scanner reads back a project's data objects. It caches day listings for
// its life (one run).
type Scanner struct {
	s     *Stream
	list  Lister
	r     *engine.Run
	lists map[string][]string
	// Objects counts the objects read back.
	Objects int
}

// NewScanner returns a scanner of the stream's data objects in list, within
// run r (its budget bounds the scan).
func (s *Stream) NewScanner(list Lister, r *engine.Run) *Scanner {
	return &Scanner{s: s, list: list, r: r}
}

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

// listDay lists a day folder (cached).
func (sc *Scanner) listDay(ctx context.Context, day time.Time) ([]string, error) {
	prefix := sc.s.opts.DataPrefix + day.Format("2006/01/02/")
	if names, ok := sc.lists[prefix]; ok {
		return names, nil
	}
	names, err := sc.list.List(ctx, prefix)
	if err != nil {
		return nil, failure.Transient(fmt.Errorf("failed to list %s: %w", prefix, err))
	}
	if sc.lists == nil || len(sc.lists) >= listCache {
		sc.lists = make(map[string][]string)
	}
	sc.lists[prefix] = names
	return names, nil
}

// projectObjects returns the names of the project's data objects in the
// hour folders [from, to] (both hours), and the greatest stream object
// before hourCut (pred, or a greater one found).
func (sc *Scanner) projectObjects(ctx context.Context, pid string, from, to, hourCut time.Time, pred string) ([]string, string, error) {
	o := sc.s.opts
	base := o.Org + "-" + pid + "-"
	var out []string
	predKey := func(name string) (int64, int64, bool) {
		i := strings.LastIndex(name, "/")
		return streamObjectKey(strings.TrimPrefix(name[i+1:], base))
	}
	for day := from.Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		names, err := sc.listDay(ctx, day)
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

// resolvePred walks back day by day to the project's last stream object
// before hour `from`.
func (sc *Scanner) resolvePred(ctx context.Context, pid string, a, from time.Time) (string, error) {
	pred := ""
	floor := a.Add(-predFloor)
	for day := from.Add(-time.Hour).Truncate(24 * time.Hour); pred == "" && !day.Before(floor); day = day.Add(-24 * time.Hour) {
		if !sc.r.CanRead() {
			return "", engine.ErrStop
		}
		last := day.Add(23 * time.Hour)
		if last.After(from.Add(-time.Hour)) {
			last = from.Add(-time.Hour)
		}
		_, found, err := sc.projectObjects(ctx, pid, day, last, from, "")
		if err != nil {
			return "", err
		}
		pred = found
	}
	return pred, nil
}

// Scan returns the ids the bucket holds of project pid with a timestamp in
// [a, b). pred carries the project's last stream object before hour(a): it
// is resolved when not yet, and on return it is the one before hour(b), for
// a scan of the next range.
func (sc *Scanner) Scan(ctx context.Context, pid string, a, b time.Time, pred *Pred) (engine.Seen, error) {
	o := sc.s.opts
	from := a.Truncate(time.Hour)
	to := b.Add(o.MaxWindow + sc.s.overlap()).Truncate(time.Hour)
	if !pred.Resolved {
		name, err := sc.resolvePred(ctx, pid, a, from)
		if err != nil {
			return nil, err
		}
		*pred = Pred{Name: name, Resolved: true}
	}
	names, next, err := sc.projectObjects(ctx, pid, from, to, b.Truncate(time.Hour), pred.Name)
	if err != nil {
		return nil, err
	}
	if pred.Name != "" && !slices.Contains(names, pred.Name) {
		names = append(names, pred.Name)
	}
	seen := make(engine.Seen)
	lo, hi := a.Unix(), b.Unix()
	for _, n := range names {
		if !sc.r.CanRead() {
			return nil, engine.ErrStop
		}
		recs, err := sc.r.ReadBack(ctx, n, ParseEvent)
		if err != nil {
			if errors.Is(err, sink.ErrNotFound) {
				continue // deleted after transfer
			}
			return nil, failure.Transient(err)
		}
		sc.Objects++
		for _, r := range recs {
			if r.Time >= lo && r.Time < hi {
				seen[r.ID] = r.Time
			}
		}
	}
	pred.Name = next
	return seen, nil
}
