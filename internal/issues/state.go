package issues

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
)

// stateVersion is the format version of the state document. Version 1
// (written by the first issues stream) versioned issues on window-scoped
// numbers, kept its marks under "issues" and paged windows with sort=date;
// it is migrated on load (see migrate).
const stateVersion = 2

// state is the stream's state document, <StatePrefix>issues/state.json,
// saved only by compare-and-swap (engine.Doc).
type state struct {
	Version int `json:"version"`
	// Watermark is the end of the last completed window (zero: none).
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress; persisted before its objects.
	Window *pass `json:"window,omitempty"`
	// Sweep is the quiet-change sweep in progress; persisted before its
	// objects.
	Sweep *pass `json:"sweep,omitempty"`
	// SweptTo is the end of the last completed sweep (zero: none); the
	// next sweep starts SweepInterval after it.
	SweptTo time.Time `json:"swept_to,omitzero"`
	// NextSeq and NextEpoch name the next data object; they change only
	// in a commit that records the versions of the object written (or
	// found) under the previous name. Windows and sweeps write into the
	// same sequence.
	engine.Sequence
	// Marks maps an issue id to the version last written (see marks).
	Marks     marks     `json:"marks"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// pass is a window of the issue search, [Start, End), being read: a window
// on recent events, or a sweep over a longer period.
type pass struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Cursor string    `json:"cursor,omitempty"`
	Pages  int64     `json:"pages,omitempty"`
}

// migrate brings a loaded document to stateVersion. From version 1 it keeps
// the watermark and the object sequence (an object an interrupted version-1
// run left under the current name is still recovered), restarts a window in
// progress from its start (its cursor was for sort=date), and drops the
// marks (the version-1 key "issues" is not read): their fingerprints cannot
// be compared with this version's, so each issue the next passes return is
// written once more, once.
func (st *state) migrate() error {
	switch st.Version {
	case stateVersion:
	case 1:
		st.Version = stateVersion
		if st.Window != nil {
			st.Window.Cursor, st.Window.Pages = "", 0
		}
		st.Marks = nil
	default:
		return fmt.Errorf("unsupported version %d", st.Version)
	}
	if st.Marks == nil {
		st.Marks = make(marks)
	}
	return nil
}

// marks maps an issue id to the version of it last written.
//
// A mark is kept while a pass may still return the issue without it having
// changed. A pass [S, E) returns only issues with an event at or after S, so
// the lifetime lastSeen of what it returns is at least S: a mark whose
// lastSeen is before S can never equal the version of a row of that pass
// (the lastSeen, or at least the count, differs). So marks older than the
// start of the earliest pass still to read are pruned (see run.keepFrom).
//
// In JSON, marks are grouped by the UTC hour of their lastSeen:
// {"<hour, unix seconds>": {"<issue id>": "<16-hex fingerprint>", …}, …},
// about 32 bytes per issue for Sentry's 10-digit issue ids. The hour is a
// floor, and pruning drops a mark only when its whole hour is before the
// limit, so it keeps a mark up to an hour longer than needed, never less.
type marks map[string]mark

// mark is the version of an issue last written.
type mark struct {
	v    string // the fingerprint (engine.Record.Version)
	hour int64  // unix seconds of the UTC hour holding its lastSeen
}

// hourOf is the start of the UTC hour holding unix second t.
func hourOf(t int64) int64 { return t - ((t%3600)+3600)%3600 }

// MarshalJSON encodes the marks grouped by hour (keys sorted, so the same
// marks always encode the same).
func (m marks) MarshalJSON() ([]byte, error) {
	byHour := make(map[string]map[string]string)
	for id, k := range m {
		h := strconv.FormatInt(k.hour, 10)
		if byHour[h] == nil {
			byHour[h] = make(map[string]string)
		}
		byHour[h][id] = k.v
	}
	b, err := json.Marshal(byHour)
	if err != nil {
		return nil, fmt.Errorf("failed to encode issue marks: %w", err)
	}
	return b, nil
}

// UnmarshalJSON decodes the grouped form.
func (m *marks) UnmarshalJSON(data []byte) error {
	var byHour map[string]map[string]string
	if err := json.Unmarshal(data, &byHour); err != nil {
		return fmt.Errorf("failed to decode issue marks: %w", err)
	}
	out := make(marks)
	for h, ids := range byHour {
		hour, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return fmt.Errorf("failed to decode issue marks: bad hour %q", h)
		}
		for id, v := range ids {
			out[id] = mark{v: v, hour: hour}
		}
	}
	*m = out
	return nil
}

// prune drops the marks of issues whose lastSeen's hour ends at or before
// keepFrom (unix seconds).
func (m marks) prune(keepFrom int64) {
	maps.DeleteFunc(m, func(_ string, k mark) bool { return k.hour+3600 <= keepFrom })
}
