package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// checkpointVersion is the format version of a project's state document.
const checkpointVersion = 1

// checkpoint is the per-project state document, stored at
// <StatePrefix>events/projects/<project id>.json and updated only by
// compare-and-swap on its generation.
//
// The name of the next data object is a pure function of the committed
// checkpoint (NextSeq, NextEpoch): it changes only in a commit that also
// records the ids of the object written (or found) under the previous name.
// So an object created by a writer that crashed (or lost a race) before
// committing is always found again under the current name, by whoever writes
// next, and absorbed into Seen instead of being written twice.
type checkpoint struct {
	Version   int    `json:"version"`
	ProjectID string `json:"project_id"`
	// Slug is informational (slugs can be renamed; the key is the id).
	Slug string `json:"slug,omitempty"`
	// Watermark is the end of the last fully completed window (zero: none).
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress, persisted before any of its objects
	// is written; nil between windows.
	Window *window `json:"window,omitempty"`
	// NextSeq is the sequence number of the next data object.
	NextSeq int64 `json:"next_seq"`
	// NextEpoch (unix seconds) is the time part of the next data object's
	// name: the end of the window in progress when NextSeq was allocated.
	NextEpoch int64 `json:"next_epoch"`
	// Seen maps event ids already stored to their dateCreated (unix
	// seconds). It holds only what de-duplication still needs: the tail of
	// the previous window (ids at or after Watermark − Overlap), ids in the
	// last Overlap of the current window, and ids at or below the frontier.
	Seen seenSet `json:"seen"`
	// Stats is the stats_v2 count seen when the project was last chosen
	// for a read by idle detection (idle.go); nil: none.
	Stats *statsMark `json:"stats,omitempty"`
	// Failing is set when the project was skipped by its last run after an
	// error: it is served after the healthy projects, so that a project
	// that keeps failing (or hanging) cannot starve them.
	Failing bool `json:"failing,omitempty"`
	// UpdatedAt and UpdatedBy record the last commit (diagnostics).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// window is a window [Start, End) in progress.
type window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Cursor is Sentry's NextCursor after the last committed page, verbatim
	// ("" before the first page).
	Cursor string `json:"cursor,omitempty"`
	// Frontier is the oldest second processed so far in this window (pages
	// are newest first) and the ids processed at that second. Rows newer
	// than the frontier were processed already (or became visible too late
	// for this window, and fall in the next window's overlap), so they are
	// skipped without keeping their ids.
	Frontier *frontier `json:"frontier,omitempty"`
	// Pages counts pages read in this window (diagnostics).
	Pages int64 `json:"pages,omitempty"`
}

// frontier is the oldest processed second of a window and its ids.
type frontier struct {
	T   int64    `json:"t"`
	IDs []string `json:"ids"`
}

func (f *frontier) clone() *frontier {
	if f == nil {
		return nil
	}
	return &frontier{T: f.T, IDs: slices.Clone(f.IDs)}
}

// has reports whether id was processed at second t of the frontier.
func (f *frontier) has(t int64, id string) bool {
	return f != nil && f.T == t && slices.Contains(f.IDs, id)
}

// newer reports whether second t is newer than the frontier (processed).
func (f *frontier) newer(t int64) bool { return f != nil && t > f.T }

// add records a processed row.
func (f *frontier) add(t int64, id string) *frontier {
	switch {
	case f == nil || t < f.T:
		return &frontier{T: t, IDs: []string{id}}
	case t == f.T:
		if !slices.Contains(f.IDs, id) {
			f.IDs = append(f.IDs, id)
		}
	}
	return f
}

// seenSet maps event id → dateCreated in unix seconds. In JSON it is an
// object from unix second to the sorted ids of that second, which is compact
// and deterministic.
type seenSet map[string]int64

// MarshalJSON encodes the set grouped by second, seconds ascending.
func (s seenSet) MarshalJSON() ([]byte, error) {
	byT := make(map[int64][]string)
	for id, t := range s {
		byT[t] = append(byT[t], id)
	}
	ts := make([]int64, 0, len(byT))
	for t := range byT {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	var b bytes.Buffer
	b.Grow(len(s)*35 + len(ts)*16 + 2)
	b.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strconv.FormatInt(t, 10))
		b.WriteString(`":[`)
		ids := byT[t]
		slices.Sort(ids)
		for j, id := range ids {
			if j > 0 {
				b.WriteByte(',')
			}
			// Ids are validated hex on the way in, so quoting is trivial.
			b.WriteByte('"')
			b.WriteString(id)
			b.WriteByte('"')
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes the grouped form.
func (s *seenSet) UnmarshalJSON(data []byte) error {
	var byT map[string][]string
	if err := json.Unmarshal(data, &byT); err != nil {
		return fmt.Errorf("failed to decode seen set: %w", err)
	}
	out := make(seenSet)
	for k, ids := range byT {
		t, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return fmt.Errorf("failed to decode seen set: bad second %q", k)
		}
		for _, id := range ids {
			out[id] = t
		}
	}
	*s = out
	return nil
}

// decodeCheckpoint parses a state document.
func decodeCheckpoint(data []byte) (*checkpoint, error) {
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("failed to decode project checkpoint: %w", err)
	}
	if cp.Version != checkpointVersion {
		return nil, fmt.Errorf("failed to decode project checkpoint: unsupported version %d", cp.Version)
	}
	if cp.Seen == nil {
		cp.Seen = make(seenSet)
	}
	return &cp, nil
}

// encode renders the document.
func (cp *checkpoint) encode() ([]byte, error) {
	b, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("failed to encode project checkpoint: %w", err)
	}
	return b, nil
}

// prune drops seen ids that no future read can return without being
// skipped anyway. With a window in progress: ids newer than the frontier but
// older than End − overlap (rows above the frontier are skipped, and the next
// window starts at End − overlap). Between windows: ids older than
// Watermark − overlap (the next window starts there).
func (cp *checkpoint) prune(overlap time.Duration) {
	if w := cp.Window; w != nil {
		if w.Frontier == nil {
			return
		}
		keepFrom := w.End.Add(-overlap).Unix()
		for id, t := range cp.Seen {
			if t > w.Frontier.T && t < keepFrom {
				delete(cp.Seen, id)
			}
		}
		return
	}
	if cp.Watermark.IsZero() {
		return
	}
	keepFrom := cp.Watermark.Add(-overlap).Unix()
	for id, t := range cp.Seen {
		if t < keepFrom {
			delete(cp.Seen, id)
		}
	}
}

// objectName is the name of the data object with the given sequence number
// and epoch: <prefix>YYYY/MM/DD/HH/<org>-<project id>-<epoch>-<seq>.ndjson,
// the time folder being the epoch's UTC hour. Names sort by time within a
// project and never collide across projects, organisations or sequence
// numbers.
func objectName(prefix, org, projectID string, epoch, seq int64) string {
	t := time.Unix(epoch, 0).UTC()
	return fmt.Sprintf("%s%04d/%02d/%02d/%02d/%s-%s-%d-%06d.ndjson",
		prefix, t.Year(), int(t.Month()), t.Day(), t.Hour(), org, projectID, epoch, seq)
}
