package engine

import (
	"fmt"
	"time"
)

// ObjectName names a data object: <prefix>YYYY/MM/DD/HH/<org>-<lane>-<epoch>-<seq>.ndjson,
// the folder being the epoch's UTC hour. A lane is what owns the sequence (a
// project id, "issues", "audit", "<project id>-bf<job id>"). Names sort by
// time within a lane and never collide across lanes, organisations or
// sequence numbers. Every object ever written by this product is named so:
// changing the format would make objects left by an interrupted run of an
// older version unrecognisable, and their records would be written twice.
func ObjectName(prefix, org, lane string, epoch, seq int64) string {
	t := time.Unix(epoch, 0).UTC()
	return fmt.Sprintf("%s%04d/%02d/%02d/%02d/%s-%s-%d-%06d.ndjson",
		prefix, t.Year(), int(t.Month()), t.Day(), t.Hour(), org, lane, epoch, seq)
}

// Sequence is the part of a state document that names the lane's next
// object. Embedded in a document, its fields keep their JSON names
// (next_seq, next_epoch) at the document's top level.
type Sequence struct {
	// NextSeq is the sequence number of the next data object.
	NextSeq int64 `json:"next_seq"`
	// NextEpoch (unix seconds) is the time part of the next object's name.
	NextEpoch int64 `json:"next_epoch"`
}

// Started reports whether the sequence was ever started.
func (s Sequence) Started() bool { return s.NextEpoch != 0 }

// Begin starts the sequence at epoch when it was never started: nothing can
// have been written under it yet, so the first name may be chosen freely.
func (s *Sequence) Begin(epoch int64) {
	if s.NextEpoch == 0 {
		s.NextSeq, s.NextEpoch = 1, epoch
	}
}

// Advance moves to the next name, with the given epoch.
func (s *Sequence) Advance(epoch int64) {
	s.NextSeq, s.NextEpoch = s.NextSeq+1, epoch
}

// Name is the name of the next object of lane.
func (s Sequence) Name(prefix, org, lane string) string {
	return ObjectName(prefix, org, lane, s.NextEpoch, s.NextSeq)
}
