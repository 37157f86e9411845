package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/state"
)

// Name is the name of backfill runs in their summaries and logs.
const Name = "backfill"

// transientErrorPrefix marks the job's errors that did not fail a project
// (a transient Sentry error: the project was retried by a later run).
const transientErrorPrefix = "transient (retried): "

// maxTransientErrors bounds the transient errors a job keeps (the oldest go
// first), so that a project failing run after run does not grow the job
// document without bound.
const maxTransientErrors = 20

// Run advances job id within budget (and ctx's deadline). The job is looked
// up first, without contacting Sentry: an unknown id is an error wrapping
// ErrNotFound at once. It returns a nil error when it did what it could
// (Result.Summary.WorkRemaining tells whether to run again; it is also set
// when another run holds the job's lease), and a transient error when
// storage or the lease failed, or when every project tried failed in Sentry;
// progress is committed. A project whose Sentry requests still fail
// transiently after the client's retries is skipped for this run (recorded in
// the job's Errors with transientErrorPrefix) while the others go on; one
// that Sentry refuses (deleted, no access) ends with an error and the job ends
// failed.
func (j *Jobs) Run(ctx context.Context, id string, budget time.Duration) (Result, error) {
	doc, err := j.load(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if doc.V.Status == Done || doc.V.Status == Failed {
		return Result{Job: doc.V}, nil
	}
	cfg := j.env.Config(Name, j.leaseKey(id), budget)
	cfg.RecordsKey = "events_written"
	x := &run{j: j, id: id, doc: doc}
	sum, err := engine.Do(ctx, cfg, func(r *engine.Run) error {
		x.r = r
		r.Summary().Projects = &engine.ProjectCounts{Considered: len(doc.V.Projects)}
		defer func() { r.Summary().Extra = summaryAttrs(x.doc.V, x.scannedObjects()) }()
		return x.do(ctx)
	})
	if sum.LeaseHeld {
		sum.WorkRemaining = true // the holder goes on; so must the caller
	}
	return Result{Summary: sum, Job: x.doc.V}, err
}

// run is one Run of a job.
type run struct {
	j       *Jobs
	id      string
	r       *engine.Run
	doc     *engine.Doc[Job]
	scanner *events.Scanner // the bucket scan of this run (scan.go)
}

func (x *run) job() *Job              { return &x.doc.V }
func (x *run) project(i int) *Project { return &x.doc.V.Projects[i] }
func (x *run) commit(ctx context.Context) error {
	job := x.job()
	job.UpdatedAt = x.r.Now().UTC()
	job.UpdatedBy = x.r.ID()
	return x.doc.Save(ctx, x.r)
}

func (x *run) do(ctx context.Context) error {
	// Reload under the lease.
	if err := x.doc.Reload(ctx); err != nil {
		return err
	}
	sum := x.r.Summary()
	if s := x.job().Status; s == Done || s == Failed {
		return nil
	}
	if x.job().Status == Pending {
		x.job().Status = Running
		if err := x.commit(ctx); err != nil && !errors.Is(err, engine.ErrConflict) {
			return err
		}
	}
	w := &workList{busy: map[string]bool{}, skipped: map[string]bool{}}
	for {
		if x.r.StopRequested() {
			sum.WorkRemaining = true
			return nil
		}
		i := w.next(x.job().Projects)
		if i < 0 {
			break
		}
		p := x.project(i)
		err := x.r.WithLease(ctx, x.j.projectLeaseKey(p.ID), func() error { return x.work(ctx, i) })
		stop, err := x.settle(ctx, w, i, err)
		if err != nil {
			sum.WorkRemaining = true
			return err
		}
		if stop {
			sum.WorkRemaining = true
			return nil
		}
	}
	return x.conclude(ctx, w)
}

// workList is what a run knows of the job's projects beyond the job
// document: the projects another run holds (busy) and the ones that failed
// transiently (skipped), both left for a later run.
type workList struct {
	busy, skipped map[string]bool
	progressed    int     // projects worked on without error
	readErrs      []error // the skipped projects' errors
	conflicts     int
}

// next picks the next project to work on: projects whose last attempt
// failed transiently come after the others, so that one failing (or
// hanging) project cannot keep the head of the order and starve the rest of
// the job. It returns -1 when none is left.
func (w *workList) next(projects []Project) int {
	ready := func(p Project) bool { return !p.Done && !w.busy[p.ID] && !w.skipped[p.ID] }
	if i := slices.IndexFunc(projects, func(p Project) bool { return ready(p) && !p.Failing }); i >= 0 {
		return i
	}
	return slices.IndexFunc(projects, ready)
}

// settle records the outcome of working on project i: stop ends the run
// with work remaining, err fails it.
func (x *run) settle(ctx context.Context, w *workList, i int, err error) (stop bool, _ error) {
	p := x.project(i)
	switch {
	case err == nil:
		w.progressed++
	case errors.Is(err, state.ErrLeaseHeld):
		w.busy[p.ID] = true
		logging.FromContext(ctx).InfoContext(ctx, "another backfill run works on this project; skipping it for this run",
			"job_id", x.id, "project_id", p.ID)
	case errors.Is(err, engine.ErrStop):
		return true, nil
	case errors.Is(err, engine.ErrConflict):
		w.conflicts++
		return w.conflicts >= maxConflictsPerRun, nil
	case engine.IsReadError(err) && failure.IsConfig(err):
		// Sentry refuses the project (deleted, no access): it ends, with
		// its error, and the job will end failed.
		p.Done, p.Window = true, nil
		p.Error = err.Error()
		x.job().Errors = append(x.job().Errors, fmt.Sprintf("project %s (%s): %v", p.ID, p.Slug, err))
		if cerr := x.commit(ctx); cerr != nil && !errors.Is(cerr, engine.ErrConflict) {
			return false, cerr
		}
	case engine.IsReadError(err) && ctx.Err() == nil:
		// Sentry still failing on this project after the client's
		// retries: skip it for this run, as the stream does, and go on
		// with the others; a later run retries it from its committed
		// progress.
		w.skipped[p.ID] = true
		w.readErrs = append(w.readErrs, err)
		p.Failing = true
		x.r.Summary().Projects.Failed++
		logging.FromContext(ctx).WarnContext(ctx, "skipping project for this backfill run after a transient Sentry error",
			"job_id", x.id, "project_id", p.ID, "project", p.Slug, "error", err)
		x.job().Errors = appendTransientError(x.job().Errors,
			fmt.Sprintf("%s%s project %s (%s): %v", transientErrorPrefix, x.r.Now().UTC().Format(time.RFC3339), p.ID, p.Slug, err))
		if cerr := x.commit(ctx); cerr != nil && !errors.Is(cerr, engine.ErrConflict) {
			return false, cerr
		}
	default:
		return false, failure.Transient(err)
	}
	return false, nil
}

// conclude ends a run that went through every project it could: work
// remains while projects were skipped or busy; otherwise the job is done
// (or failed, when a project ended with an error).
func (x *run) conclude(ctx context.Context, w *workList) error {
	sum := x.r.Summary()
	if len(w.skipped) > 0 {
		sum.WorkRemaining = true
		if w.progressed == 0 {
			// Every project tried failed: the run failed.
			return &engine.ReadError{Err: failure.Transient(fmt.Errorf("backfill %s: every project tried failed: %w", x.id, errors.Join(w.readErrs...)))}
		}
		return nil
	}
	if len(w.busy) > 0 {
		sum.WorkRemaining = true
		return nil
	}
	x.job().Status = Done
	if slices.ContainsFunc(x.job().Projects, func(p Project) bool { return p.Error != "" }) {
		x.job().Status = Failed
	}
	if err := x.commit(ctx); err != nil {
		if errors.Is(err, engine.ErrConflict) {
			sum.WorkRemaining = true
			return nil
		}
		return err
	}
	return nil
}

// appendTransientError appends msg to errs, dropping the oldest transient
// entries beyond maxTransientErrors.
func appendTransientError(errs []string, msg string) []string {
	errs = append(errs, msg)
	n := 0
	for _, e := range errs {
		if strings.HasPrefix(e, transientErrorPrefix) {
			n++
		}
	}
	for i := 0; n > maxTransientErrors && i < len(errs); {
		if strings.HasPrefix(errs[i], transientErrorPrefix) {
			errs = slices.Delete(errs, i, i+1)
			n--
			continue
		}
		i++
	}
	return errs
}

// work works on project i until it is done or the budget runs out.
func (x *run) work(ctx context.Context, i int) error {
	for !x.project(i).Done {
		p := x.project(i)
		if !x.r.CanRead() {
			return engine.ErrStop
		}
		if p.Window == nil {
			if !p.Cursor.Before(p.End) {
				p.Done = true
				if err := x.commit(ctx); err != nil {
					return err
				}
				continue
			}
			end := p.Cursor.Add(x.j.slice())
			if end.After(p.End) {
				end = p.End
			}
			p.Window = &events.Window{Start: p.Cursor, End: end}
			p.NextEpoch = end.Unix() // objects of this slice: epoch = slice end
			if err := x.commit(ctx); err != nil {
				return err
			}
		}
		if err := x.slice(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// slice de-duplicates project i's slice against the bucket, then reads it
// from Sentry and writes what is new, until the slice is complete.
func (x *run) slice(ctx context.Context, i int) error {
	start, end := x.project(i).Window.Start, x.project(i).Window.End
	// The stream's late lane must know that this range is being read
	// (events.Stream.NoteRead): until the slice ends, it looks in the bucket
	// before writing a late event of the range.
	read := events.Read{S: start.Unix(), E: end.Unix(), O: x.r.Now().Unix()}
	if err := x.j.stream.NoteRead(ctx, x.project(i).ID, read); err != nil {
		return err
	}
	seen, pred, err := x.scan(ctx, x.project(i), start, end)
	if err != nil {
		return err
	}
	l := lane{x: x, i: i, seen: seen}
	for {
		p := x.project(i)
		if p.Window == nil || !p.Window.Start.Equal(start) {
			return nil // changed concurrently: the caller goes on from the job
		}
		wr := events.NewWindowReader(x.j.stream.API(), x.j.opts.Org, p.ID, p.Slug, p.Window, seen)
		b, err := x.r.Turn(ctx, l, p.Window.Cursor, engine.MaxPagesPerObject, func(ctx context.Context, b *engine.Batch) error {
			if err := wr.Read(ctx, b); err != nil {
				return err
			}
			x.project(i).Failing = false // committed with the slice's progress
			return nil
		}, func(b *engine.Batch) {
			p := x.project(i)
			p.Pages += b.Pages
			p.DuplicatesSkipped += b.Dups
			if b.Object != "" {
				p.EventsWritten += len(b.Records)
				p.Objects++
			}
			wr.Progress(b)
			if b.Done {
				p.Cursor = p.Window.End
				p.Window = nil
				p.WindowsDone++
				p.StreamPred, p.PredResolved = pred, true
				p.Done = !p.Cursor.Before(p.End)
			}
		})
		if err != nil {
			return err
		}
		if b.Done {
			read.C = x.r.Now().Unix()
			return x.j.stream.NoteRead(ctx, p.ID, read)
		}
	}
}

// lane is project i's sequence of backfill objects, recorded in the job.
type lane struct {
	x    *run
	i    int
	seen engine.Seen // the ids in the bucket for the slice (scan.go)
}

// Next implements engine.Lane:
// <data>YYYY/MM/DD/HH/<org>-<project>-bf<job>-<epoch>-<seq>.ndjson.
func (l lane) Next() string {
	p := l.x.project(l.i)
	return p.Name(l.x.j.opts.DataPrefix, l.x.j.opts.Org, p.ID+"-bf"+l.x.id)
}

// Parse implements engine.Lane.
func (l lane) Parse(line []byte) (engine.Record, error) { return events.ParseEvent(line) }

// Absorb implements engine.Lane.
func (l lane) Absorb(recs []engine.Record) {
	for _, r := range recs {
		l.seen[r.ID] = r.Time
	}
	p := l.x.project(l.i)
	p.Advance(p.NextEpoch)
}

// Commit implements engine.Lane.
func (l lane) Commit(ctx context.Context) error { return l.x.commit(ctx) }

// scannedObjects counts the objects the run's scans read back.
func (x *run) scannedObjects() int {
	if x.scanner == nil {
		return 0
	}
	return x.scanner.Objects
}
