package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// scripted is a Pass whose Open and Turn answer from scripts (nil once a
// script is used up), and which records the calls.
type scripted struct {
	active bool
	opens  []error // an Open's error; nil opens a pass
	due    int     // Open reports none due after this many passes
	turns  []error // a Turn's error; nil completes the pass
	calls  []string
}

func (p *scripted) Active() bool { return p.active }

func (p *scripted) Open(context.Context) (bool, error) {
	p.calls = append(p.calls, "open")
	if len(p.opens) > 0 {
		err := p.opens[0]
		p.opens = p.opens[1:]
		if err != nil {
			return false, err
		}
	}
	if p.due == 0 {
		return false, nil
	}
	p.due--
	p.active = true
	return true, nil
}

func (p *scripted) Turn(context.Context) error {
	p.calls = append(p.calls, "turn")
	var err error
	if len(p.turns) > 0 {
		err, p.turns = p.turns[0], p.turns[1:]
	}
	if err == nil {
		p.active = false
	}
	return err
}

func TestPassesRead(t *testing.T) {
	t.Parallel()
	storage := errors.New("storage failed")
	cases := []struct {
		name      string
		pass      scripted
		stopped   bool // the soft stop is given before Read
		wantStop  bool
		wantErr   string // "" for none
		transient bool   // the error is marked transient
		wantCalls []string
		reloads   int // Reloaded calls
	}{
		{name: "until_none_is_due", pass: scripted{due: 2},
			wantCalls: []string{"open", "turn", "open", "turn", "open"}},
		{name: "in_progress_first", pass: scripted{active: true},
			wantCalls: []string{"turn", "open"}},
		{name: "conflicts_are_retried", pass: scripted{due: 1, opens: []error{ErrConflict}, turns: []error{ErrConflict}},
			wantCalls: []string{"open", "open", "turn", "turn", "open"}, reloads: 2},
		{name: "stop_ends_a_turn", pass: scripted{due: 1, turns: []error{ErrStop}}, wantStop: true,
			wantCalls: []string{"open", "turn"}},
		{name: "no_read_no_open", pass: scripted{due: 1}, stopped: true, wantStop: true},
		{name: "turn_error_as_is", pass: scripted{due: 1, turns: []error{storage}}, wantErr: "storage failed",
			wantCalls: []string{"open", "turn"}},
		{name: "open_error_transient", pass: scripted{due: 1, opens: []error{storage}}, wantErr: "storage failed",
			transient: true, wantCalls: []string{"open"}},
		{name: "too_many_conflicts", pass: scripted{active: true, turns: slices.Repeat([]error{ErrConflict}, MaxConflictsPerRun+1)},
			wantErr: "test stream: too many concurrent state changes", transient: true,
			wantCalls: slices.Repeat([]string{"turn"}, MaxConflictsPerRun+1), reloads: MaxConflictsPerRun},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			stop := make(chan struct{})
			if tc.stopped {
				close(stop)
			}
			r := Start(f.ctx(), Config{Stream: "test", Data: f.store, State: f.store, Clock: f.clk, Budget: time.Minute, Stop: stop})
			reloads := 0
			ps := &Passes{Run: r, Reloaded: func() error { reloads++; return nil }}
			p := tc.pass
			stopped, err := ps.Read(f.ctx(), &p)
			if stopped != tc.wantStop {
				t.Errorf("stop = %v, want %v", stopped, tc.wantStop)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			case tc.transient && !failure.IsTransient(err):
				t.Errorf("err = %v is %v, want transient", err, failure.Classify(err))
			}
			if diff := cmp.Diff(tc.wantCalls, p.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if reloads != tc.reloads {
				t.Errorf("Reloaded called %d times, want %d", reloads, tc.reloads)
			}
		})
	}
}

// Conflicts are bounded over the whole run, not per Read: a source that
// reads several kinds of pass shares one Passes.
func TestPassesCountConflictsAcrossReads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(nil)
	ps := &Passes{Run: r}
	half := slices.Repeat([]error{ErrConflict}, MaxConflictsPerRun/2+1)
	first := scripted{active: true, turns: half}
	if _, err := ps.Read(f.ctx(), &first); err != nil {
		t.Fatalf("first Read: %v", err)
	}
	second := scripted{active: true, turns: half}
	if _, err := ps.Read(f.ctx(), &second); err == nil || !strings.Contains(err.Error(), "too many concurrent state changes") {
		t.Errorf("second Read: %v, want too many conflicts", err)
	}
}
