package events

import (
	"fmt"
	"slices"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
)

// checkpointVersion is the format version of a project's state document.
const checkpointVersion = 1

// checkpoint is the per-project state document, stored at
// <StatePrefix>events/projects/<project id>.json and saved only by
// compare-and-swap on its generation (engine.Doc).
//
// The name of the next data object is a function of the committed checkpoint
// (the embedded engine.Sequence): it changes only in a commit that also
// records the ids of the object written (or found) under the previous name.
type checkpoint struct {
	Version   int    `json:"version"`
	ProjectID string `json:"project_id"`
	// Slug is informational (slugs can be renamed; the key is the id).
	Slug string `json:"slug,omitempty"`
	// Watermark is the end of the last fully completed window (zero: none).
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress, persisted before any of its objects
	// is written; nil between windows.
	Window *Window `json:"window,omitempty"`
	// NextSeq and NextEpoch name the next data object; NextEpoch is the end
	// of the window in progress when NextSeq was allocated.
	engine.Sequence
	// Seen maps event ids already stored to their dateCreated (unix
	// seconds). It holds only what de-duplication still needs: the tail of
	// the previous window (ids at or after Watermark − Overlap), ids in the
	// last Overlap of the current window, and ids at or below the frontier.
	Seen engine.Seen `json:"seen"`
	// Stats is the stats_v2 count seen when the project was last chosen
	// for a read by idle detection (idle.go); nil: none.
	Stats *statsMark `json:"stats,omitempty"`
	// Failing is set when the project was skipped by its last run after an
	// error: it is served after the healthy projects, so that a project
	// that keeps failing (or hanging) cannot starve them.
	Failing bool `json:"failing,omitempty"`
	// FailingSince is when the project's current run of failures began
	// (zero: its last attempt succeeded). A project that fails every run
	// for longer than failingAlertAfter is logged for the alert.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// UpdatedAt and UpdatedBy record the last commit (diagnostics).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Window is a window [Start, End) of a project's events in progress (a
// stream window, or a backfill slice).
type Window struct {
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

// check validates a loaded checkpoint.
func (cp *checkpoint) check() error {
	if cp.Version != checkpointVersion {
		return fmt.Errorf("unsupported checkpoint version %d", cp.Version)
	}
	if cp.Seen == nil {
		cp.Seen = make(engine.Seen)
	}
	return nil
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
