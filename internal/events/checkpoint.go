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
	// Reads are the recent reads of the project's events by windows and
	// backfill slices (reads.go); ReadsPruned is the latest end of the
	// reads forgotten.
	Reads       []Read `json:"reads,omitempty"`
	ReadsPruned int64  `json:"reads_pruned,omitempty"`
	// Pending are late-sent events found by the sweep (or missing by the
	// coverage ledger) and not yet placed or written (late.go), oldest
	// timestamp first.
	Pending []Straggler `json:"pending,omitempty"`
	// Late maps the ids the late lane wrote to when (unix seconds), for
	// lateKeep; LateSeq counts the late lane's objects; LateHour is the
	// hour whose pending events the lane writes (0: none), which names its
	// objects (latelane.go).
	Late     engine.Seen `json:"late,omitempty"`
	LateSeq  int64       `json:"late_seq,omitempty"`
	LateHour int64       `json:"late_hour,omitempty"`
	// Hours counts the events written per hour of their timestamp (unix
	// second of the hour's start), by windows and the late lane, for
	// hoursKeep: the coverage ledger's "collected". HoursSince is when the
	// counting began (hours before it are not counted).
	Hours      map[int64]int64 `json:"hours,omitempty"`
	HoursSince int64           `json:"hours_since,omitempty"`
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
	// Opened is when the window was opened: every row it reads was read
	// at that time or later (zero: unknown, a window of an older version).
	Opened time.Time `json:"opened,omitzero"`
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
	if cp.Late == nil {
		cp.Late = make(engine.Seen)
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
