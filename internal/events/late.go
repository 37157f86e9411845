package events

import (
	"cmp"
	"slices"
	"time"
)

// Late-sent events. Windows read on the timestamp; an event an offline SDK
// sends hours after its timestamp lands in a window that is done, and no
// window reads it again. The late sweep (sweep.go) lists, by received time,
// the events whose timestamp is older than the windows still read; each is
// queued in its project's checkpoint (Pending) and then placed (place):
//
//   - stored: its id is in the checkpoint (Seen, Late), or a read that
//     covered its timestamp began after it was received and had become
//     visible (Read.O ≥ received + the visibility allowance);
//   - window: a window of the stream will still read its timestamp;
//   - write: every read that covered its timestamp had ended before it was
//     received, so none can have stored it;
//   - look: neither is certain (a read was running while it arrived, or the
//     reads are forgotten): the project's objects that can hold it are read
//     back (scan.go), and it is written only if they do not.
//
// Events to write are read again from the project events endpoint (the list
// row, as every other record), over the shortest time ranges that cover
// them, and written through the late lane (latelane.go): objects named from
// the checkpoint, in the hour folder of the events' timestamp, with the same
// recovery and compare-and-swap commit as the windows. Their ids stay in
// Late for lateKeep, which covers any re-listing of them.

// Straggler is an event Sentry received after the windows that could read
// its timestamp may have been done with it.
type Straggler struct {
	ID string `json:"id"`
	// T is its timestamp and R its receipt, unix seconds (Discover's
	// whole seconds).
	T int64 `json:"t"`
	R int64 `json:"r"`
	// Look forces a look in the bucket before writing (the coverage
	// ledger queues the events it found missing so).
	Look bool `json:"look,omitempty"`
	// Tries counts reads of its time range that did not return it.
	Tries int `json:"tries,omitempty"`
}

// Limits of the late queue.
const (
	// maxPending bounds a project's queue; a sweep that finds more leaves
	// the rest for its next run (the slice is not marked done).
	maxPending = 5000
	// maxTries bounds the reads of a straggler's range that do not return
	// it (deleted since it was listed): it is then dropped and reported.
	maxTries = 3
	// lateKeep is how long the ids written by the late lane are kept.
	lateKeep = 48 * time.Hour
	// minVisibleWithin is the least time allowed between an event's
	// receipt and its visibility when placing it (Options.Lag when larger).
	minVisibleWithin = 30 * time.Second
)

// placement is where a straggler stands.
type placement int

const (
	placeStored placement = iota
	placeWindow
	placeWrite
	placeLook
)

func (p placement) String() string {
	return [...]string{"stored", "window", "write", "look"}[p]
}

// placer places stragglers against a loaded checkpoint.
type placer struct {
	cp            *checkpoint
	overlap       int64 // seconds
	visibleWithin int64 // seconds
}

func (s *Stream) placer(cp *checkpoint) placer {
	return placer{
		cp:            cp,
		overlap:       int64(s.overlap() / time.Second),
		visibleWithin: int64(max(s.opts.Lag, minVisibleWithin) / time.Second),
	}
}

// place places st.
func (pl placer) place(st Straggler) placement {
	cp := pl.cp
	if _, ok := cp.Late[st.ID]; ok {
		return placeStored
	}
	if _, ok := cp.Seen[st.ID]; ok {
		return placeStored
	}
	reads := cp.Reads
	switch w := cp.Window; {
	case w != nil:
		if st.T >= w.End.Unix()-pl.overlap {
			return placeWindow // the next window starts there
		}
		if st.T >= w.Start.Unix() {
			f := w.Frontier
			if f == nil || st.T < f.T || (st.T == f.T && !f.has(st.T, st.ID)) {
				return placeWindow // below the frontier: still to read
			}
			// Read by this window, after it opened.
			reads = append(slices.Clip(reads), Read{S: w.Start.Unix(), E: w.End.Unix(), O: unixOrZero(w.Opened)})
		}
	case !cp.Watermark.IsZero():
		if st.T >= cp.Watermark.Unix()-pl.overlap {
			return placeWindow
		}
	default:
		// A project the stream has not read yet: where its first window
		// starts is known once it is open (the late lane waits for it).
		return placeLook
	}
	ended := cp.ReadsPruned
	running := false
	for _, rd := range reads {
		if st.T < rd.S || st.T >= rd.E {
			continue
		}
		// Discover's receipt is floored to the second: +1.
		if rd.O > 0 && st.R+1+pl.visibleWithin <= rd.O {
			return placeStored
		}
		if rd.C == 0 {
			running = true
		}
		ended = max(ended, rd.C)
	}
	if st.Look || running || st.R <= ended {
		return placeLook
	}
	return placeWrite
}

// enqueue adds stragglers to the project's queue, skipping those already
// queued and those placed stored or left to a window. It returns how many it
// added, and false when the queue is full (the rest was not added).
func (pl placer) enqueue(sts []Straggler) (added int, ok bool) {
	cp := pl.cp
	queued := make(map[string]bool, len(cp.Pending))
	for _, st := range cp.Pending {
		queued[st.ID] = true
	}
	for _, st := range sts {
		if queued[st.ID] {
			continue
		}
		if p := pl.place(st); p == placeStored || p == placeWindow {
			continue
		}
		if len(cp.Pending) >= maxPending {
			return added, false
		}
		cp.Pending = append(cp.Pending, st)
		queued[st.ID] = true
		added++
	}
	slices.SortFunc(cp.Pending, compareStragglers)
	return added, true
}

func compareStragglers(a, b Straggler) int {
	return cmp.Or(cmp.Compare(a.T, b.T), cmp.Compare(a.ID, b.ID))
}

// hourOf is the start of t's UTC hour, unix seconds.
func hourOf(t int64) int64 { return t - ((t%3600)+3600)%3600 }

// countHour adds n events of timestamp t to the checkpoint's hourly counts
// (the coverage ledger's "collected").
func (cp *checkpoint) countHour(t int64, n int64) {
	if cp.Hours == nil {
		cp.Hours = make(map[int64]int64)
	}
	cp.Hours[hourOf(t)] += n
}

// hoursKeep is how long the hourly counts are kept: the ledger's final check
// of an hour is a day after it, and its rows are kept a week.
const hoursKeep = 8 * 24 * time.Hour

// pruneLate forgets hourly counts and late ids older than they are needed.
func (cp *checkpoint) pruneLate(now time.Time) {
	cut := now.Add(-hoursKeep).Unix()
	for h := range cp.Hours {
		if h < cut {
			delete(cp.Hours, h)
		}
	}
	lateCut := now.Add(-lateKeep).Unix()
	for id, at := range cp.Late {
		if at < lateCut {
			delete(cp.Late, id)
		}
	}
}
