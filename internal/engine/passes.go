package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// MaxConflictsPerRun bounds the compare-and-swap conflicts a
// single-document source accepts in one run: only concurrent writers cause
// them, and past this many the run gives up (transient) rather than keep
// reading pages that are then dropped.
const MaxConflictsPerRun = 20

// Pass is how a single-document source reads: one state document holds its
// progress, and the reading is a sequence of passes over one of Sentry's
// lists (the audit log's sweeps, the issues stream's windows and sweeps),
// each persisted in the document before any of its objects is written, then
// read one turn (Run.Turn) at a time.
type Pass interface {
	// Active reports whether the loaded document has a pass in progress.
	Active() bool
	// Open persists a new pass, or reports (false) that none is due in
	// this run. A lost compare-and-swap is an error wrapping ErrConflict.
	Open(ctx context.Context) (bool, error)
	// Turn reads one turn of the pass in progress and writes it (the
	// errors of Run.Turn).
	Turn(ctx context.Context) error
}

// Passes reads the passes of a single-document source within one run, and
// counts its compare-and-swap conflicts across every Read of the run.
type Passes struct {
	// Run is the run, which names the stream in errors.
	Run *Run
	// Reloaded, when set, is called after a lost compare-and-swap reloaded
	// the document (Doc.Save): a source that migrates its document on load
	// migrates it again there.
	Reloaded  func() error
	conflicts int
}

// Read takes turns on the pass in progress, and opens the next one when
// none is, until Open reports none is due. stop reports that the budget or
// the soft stop ended the reading: no page request could start before a
// pass was opened (Run.CanRead), or a turn returned ErrStop. A lost
// compare-and-swap drops the turn (the document was reloaded) and the
// reading goes on from the committed state; a failure to open a pass is
// transient; any other error of a turn is returned as it is.
func (ps *Passes) Read(ctx context.Context, p Pass) (stop bool, err error) {
	for {
		if !p.Active() {
			if !ps.Run.CanRead() {
				return true, nil
			}
			opened, err := p.Open(ctx)
			if errors.Is(err, ErrConflict) {
				if err := ps.conflict(); err != nil {
					return false, err
				}
				continue
			}
			if err != nil {
				return false, failure.Transient(err)
			}
			if !opened {
				return false, nil
			}
		}
		err := p.Turn(ctx)
		switch {
		case err == nil:
		case errors.Is(err, ErrStop):
			return true, nil
		case errors.Is(err, ErrConflict):
			if err := ps.conflict(); err != nil {
				return false, err
			}
		default:
			return false, err
		}
	}
}

// conflict counts a lost compare-and-swap.
func (ps *Passes) conflict() error {
	if ps.conflicts++; ps.conflicts > MaxConflictsPerRun {
		return failure.Transient(fmt.Errorf("%s stream: too many concurrent state changes", ps.Run.cfg.Stream))
	}
	if ps.Reloaded != nil {
		return ps.Reloaded()
	}
	return nil
}
