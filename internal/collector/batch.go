package collector

import (
	"bytes"
	"encoding/json"

	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// batch accumulates the new events of consecutive pages of one window, to be
// written as one data object.
type batch struct {
	start, end int64 // the window, unix seconds, half-open
	// cursor is the cursor of the next page to read; frontier the oldest
	// processed second (see window.Frontier). Both start from the committed
	// window and are committed with the batch.
	cursor   string
	frontier *frontier
	seen     seenSet // the committed seen set (read only)

	events []sentry.Event
	ids    map[string]int64
	bytes  int

	pages    int
	complete bool // the window has no more pages
	dups     int  // rows skipped as already stored or processed
	invalid  int  // rows without an id or a date
	object   string
}

func newBatch(w *window, seen seenSet) *batch {
	return &batch{
		start:    w.Start.Unix(),
		end:      w.End.Unix(),
		cursor:   w.Cursor,
		frontier: w.Frontier.clone(),
		seen:     seen,
		ids:      make(map[string]int64),
	}
}

// addPage filters a page's rows into the batch and advances the cursor. Pages
// are newest first; rows at or after the window's end are dropped and rows
// before its start end the window (both only happen with servers that ignore
// start and end).
func (b *batch) addPage(page sentry.Page[sentry.Event]) {
	b.pages++
	older := false
	for i := range page.Items {
		ev := &page.Items[i]
		if !validEventID(ev.ID) || ev.DateCreated.IsZero() || len(ev.Raw) == 0 {
			b.invalid++
			continue
		}
		t := ev.DateCreated.Unix()
		if t >= b.end {
			continue
		}
		if t < b.start {
			older = true
			continue
		}
		if b.frontier.newer(t) || b.frontier.has(t, ev.ID) {
			b.dups++
			continue
		}
		b.frontier = b.frontier.add(t, ev.ID)
		if _, ok := b.seen[ev.ID]; ok {
			b.dups++
			continue
		}
		if _, ok := b.ids[ev.ID]; ok {
			b.dups++
			continue
		}
		b.ids[ev.ID] = t
		b.events = append(b.events, *ev)
		b.bytes += len(ev.Raw) + 1
	}
	if !page.HasNext || older {
		b.complete = true
		return
	}
	b.cursor = page.NextCursor
}

// validEventID accepts Sentry's 32-hex event ids (and any other plain
// token), rejecting ids that would need JSON escaping in the seen set.
func validEventID(id string) bool {
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

// refilter drops events already in seen (after absorbing an object).
func (b *batch) refilter(seen seenSet) {
	kept := b.events[:0]
	b.bytes = 0
	for _, ev := range b.events {
		if _, ok := seen[ev.ID]; ok {
			delete(b.ids, ev.ID)
			b.dups++
			continue
		}
		kept = append(kept, ev)
		b.bytes += len(ev.Raw) + 1
	}
	clear(b.events[len(kept):])
	b.events = kept
}

// ndjson renders the batch: each event's bytes as Sentry sent them, one per
// line. A row that is not compact is compacted so that it stays one line.
func (b *batch) ndjson(buf *bytes.Buffer) []byte {
	buf.Reset()
	buf.Grow(b.bytes)
	for _, ev := range b.events {
		if bytes.IndexByte(ev.Raw, '\n') >= 0 || bytes.IndexByte(ev.Raw, '\r') >= 0 {
			if err := json.Compact(buf, ev.Raw); err == nil {
				buf.WriteByte('\n')
				continue
			}
		}
		buf.Write(ev.Raw)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// apply records the batch's reading progress in cp: the cursor and frontier,
// or, when the window is complete, the new watermark.
func (b *batch) apply(cp *checkpoint) {
	w := cp.Window
	w.Pages += int64(b.pages)
	if b.complete {
		cp.Watermark = w.End
		cp.Window = nil
		return
	}
	w.Cursor = b.cursor
	w.Frontier = b.frontier
}
