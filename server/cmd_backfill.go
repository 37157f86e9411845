package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// cliBackfillBudget bounds each run of the local backfill loop, so that
// progress is committed (and shown) at least this often.
const cliBackfillBudget = 2 * time.Minute

// runBackfillCmd creates a backfill job (or resumes one with -job) and runs
// it to completion in bounded runs, with the configuration from the
// environment. When soft closes (the first signal) the run in flight stops
// softly, committing what it read, and the command exits 3.
func runBackfillCmd(ctx context.Context, soft <-chan struct{}, args []string) error {
	fs := newFlags("backfill", "-start T -end T [-projects a,b|all] [-json]  |  server backfill -job ID [-json]",
		`Reads a past range [start, end) of the events again (within Sentry's 90-day retention) and
writes only the events the output does not hold yet, running the job to completion in bounded
runs with a progress bar on a terminal. -job resumes an interrupted job.

exit codes: as collect (2 also for an invalid range or an unknown project; 3: resume with -job).

The first SIGINT (Ctrl-C) or SIGTERM stops the run in flight softly: it stops reading, commits
what it read and exits 3 (resume with -job). A second one cuts it short.`)
	startF := fs.String("start", "", "start of the range, RFC 3339 (e.g. 2026-01-01T00:00:00Z)")
	endF := fs.String("end", "", "end of the range (exclusive), RFC 3339")
	projectsF := fs.String("projects", "all", `comma-separated project ids or slugs, or "all"`)
	jobF := fs.String("job", "", "resume this job id instead of creating one")
	jsonOut := fs.Bool("json", false, "print the final job progress as JSON on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var spec backfill.Spec
	if *jobF == "" {
		var err error
		if spec.Start, err = time.Parse(time.RFC3339, *startF); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("-start must be an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", logging.Clip(*startF, maxEchoed))}
		}
		if spec.End, err = time.Parse(time.RFC3339, *endF); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("-end must be an RFC 3339 time such as 2026-01-08T00:00:00Z, got %q", logging.Clip(*endF, maxEchoed))}
		}
		if p := strings.TrimSpace(*projectsF); p != "all" {
			spec.Projects = splitList(p)
		}
		spec.CreatedBy = "cli"
		// Check the range before anything is contacted.
		if _, _, _, err := backfill.Validate(spec, time.Now().UTC(), 0); err != nil {
			return withCode(err)
		}
	}

	ctx, env, err := openCLI(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = env.close() }()
	defer drainOn(ctx, soft, env.app.Drain)()
	// Commit (and show) progress at least every cliBackfillBudget.
	env.cfg.RunBudget = min(env.cfg.RunBudget, cliBackfillBudget)
	id := *jobF
	if id == "" {
		job, err := env.app.CreateBackfill(ctx, spec)
		if err != nil {
			err = withCode(fmt.Errorf("failed to create the backfill job: %w", err))
			if isClosed(soft) {
				return stoppedBySignal(err, "")
			}
			return err
		}
		id = job.ID
		fmt.Fprintf(os.Stderr, "backfill job %s: %s … %s, %d projects\n", id,
			job.Start.Format(time.RFC3339), job.End.Format(time.RFC3339), len(job.Projects))
	}
	return backfillLoop(ctx, soft, os.Stderr, os.Stdout, *jsonOut, id, func(ctx context.Context) (backfill.Result, error) {
		return env.app.RunBackfill(ctx, id)
	})
}

// backfillLoop runs bounded backfill runs until the job is finished, showing
// a progress line on a terminal, and prints the final summary. Once soft is
// closed (runOnce's run was drained by it) it runs no further run and exits 3.
func backfillLoop(ctx context.Context, soft <-chan struct{}, tty *os.File, out io.Writer, asJSON bool, id string,
	runOnce func(context.Context) (backfill.Result, error),
) error {
	show := isTerminal(tty)
	start := time.Now()
	resume := fmt.Sprintf("resume with -job %s", id)
	var last backfill.Result
	for held := 0; ; {
		res, err := runOnce(ctx)
		if err != nil {
			if show {
				fmt.Fprintln(tty)
			}
			if errors.Is(err, backfill.ErrNotFound) {
				return &exitError{code: exitConfig, err: err}
			}
			err = withCode(fmt.Errorf("backfill failed (%s): %w", resume, err))
			if isClosed(soft) {
				return stoppedBySignal(err, "")
			}
			return err
		}
		sum := res.Summary
		if sum.LeaseHeld {
			if held++; held > 3 {
				return &exitError{code: exitLeaseHeld, err: fmt.Errorf("another run (%s) works on backfill job %s until %s at the latest; try again later with -job %s",
					sum.LeaseHolder, id, sum.LeaseUntil.UTC().Format(time.RFC3339), id)}
			}
			select {
			case <-ctx.Done():
				return &exitError{code: exitTransient, err: ctx.Err()}
			case <-soft:
				return stoppedBySignal(nil, resume)
			case <-time.After(30 * time.Second):
			}
			continue
		}
		last = res
		if show {
			wd, wt, ev, dups := res.Job.Totals()
			fmt.Fprintf(tty, "\r%s %3d%%  windows %d/%d  events %d  duplicates %d  %s ", bar(wd, wt, 24), pct(wd, wt),
				wd, wt, ev, dups, time.Since(start).Round(time.Second))
		}
		if !sum.WorkRemaining {
			break
		}
		if isClosed(soft) {
			if show {
				fmt.Fprintln(tty)
			}
			return stoppedBySignal(nil, resume)
		}
		if err := ctx.Err(); err != nil {
			return &exitError{code: exitTransient, err: fmt.Errorf("interrupted (resume with -job %s): %w", id, err)}
		}
	}
	if show {
		fmt.Fprintln(tty)
	}
	p := progressOf(last.Job)
	if asJSON {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("failed to encode the job: %w", err)
		}
		fmt.Fprintf(out, "%s\n", b)
	} else {
		fmt.Fprintf(out, "backfill %s %s: %d/%d windows, %d events written, %d duplicates skipped, %d errors\n",
			p.JobID, p.Status, p.WindowsDone, p.WindowsTotal, p.EventsWritten, p.DuplicatesSkipped, len(p.Errors))
		for _, e := range p.Errors {
			fmt.Fprintf(out, "  error: %s\n", e)
		}
	}
	if p.Status == backfill.Failed {
		return &exitError{code: exitConfig, err: fmt.Errorf("backfill %s finished with %d failed projects", p.JobID, len(p.Errors))}
	}
	return nil
}

func pct(done, total int) int {
	if total == 0 {
		return 100
	}
	return done * 100 / total
}

func bar(done, total, width int) string {
	n := width
	if total > 0 {
		n = done * width / total
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
