package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
)

// cliBackfillBudget bounds each run of the local backfill loop, so that
// progress is committed (and shown) at least this often.
const cliBackfillBudget = 2 * time.Minute

// runBackfillCmd creates a backfill job (or resumes one with -job) and runs
// it to completion in bounded runs, with the configuration from the
// environment. Exit codes as collect: 0 done, 2 configuration or invalid
// request, 3 transient failure (resume with -job <id>), 1 anything else.
func runBackfillCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	startF := fs.String("start", "", "start of the range, RFC 3339 (e.g. 2026-01-01T00:00:00Z)")
	endF := fs.String("end", "", "end of the range (exclusive), RFC 3339")
	projectsF := fs.String("projects", "all", `comma-separated project ids or slugs, or "all"`)
	jobF := fs.String("job", "", "resume this job id instead of creating one")
	jsonOut := fs.Bool("json", false, "print the final job progress as JSON on stdout")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: exitConfig, err: fmt.Errorf("backfill takes only flags, got %q", fs.Args())}
	}
	var spec collector.BackfillSpec
	if *jobF == "" {
		var err error
		if spec.Start, err = time.Parse(time.RFC3339, *startF); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("-start must be an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", *startF)}
		}
		if spec.End, err = time.Parse(time.RFC3339, *endF); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("-end must be an RFC 3339 time such as 2026-01-08T00:00:00Z, got %q", *endF)}
		}
		if p := strings.TrimSpace(*projectsF); p != "" && p != "all" {
			for _, s := range strings.Split(p, ",") {
				if s = strings.TrimSpace(s); s != "" {
					spec.Projects = append(spec.Projects, s)
				}
			}
		}
		spec.CreatedBy = "cli"
	}

	ctx, env, err := openCLI(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = env.close() }()
	cfg, logger, api, store := env.cfg, env.logger, env.api, env.store

	opts := collectorOptions(cfg, logger, nil)
	opts.Budget = min(opts.Budget, cliBackfillBudget)
	if opts.Budget <= 0 {
		opts.Budget = cliBackfillBudget
	}
	newC := func() (*collector.Collector, error) {
		o := opts
		o.RunID = ""
		return collector.New(o, api, store, store)
	}
	c, err := newC()
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	id := *jobF
	if id == "" {
		job, err := c.CreateBackfill(ctx, spec)
		if err != nil {
			return &exitError{code: classify(err), err: fmt.Errorf("failed to create the backfill job: %w", err)}
		}
		id = job.ID
		fmt.Fprintf(os.Stderr, "backfill job %s: %s … %s, %d projects\n", id,
			job.Start.Format(time.RFC3339), job.End.Format(time.RFC3339), len(job.Projects))
	}
	return backfillLoop(ctx, os.Stderr, os.Stdout, *jsonOut, id, func(ctx context.Context) (collector.BackfillSummary, error) {
		c, err := newC()
		if err != nil {
			return collector.BackfillSummary{}, err
		}
		return c.RunBackfill(ctx, id)
	})
}

// backfillLoop runs bounded backfill runs until the job is finished, showing
// a progress line on a terminal, and prints the final summary.
func backfillLoop(ctx context.Context, tty *os.File, out io.Writer, asJSON bool, id string,
	runOnce func(context.Context) (collector.BackfillSummary, error),
) error {
	show := isTerminal(tty)
	start := time.Now()
	var last collector.BackfillSummary
	for held := 0; ; {
		sum, err := runOnce(ctx)
		if err != nil {
			if show {
				fmt.Fprintln(tty)
			}
			if errors.Is(err, collector.ErrBackfillNotFound) {
				return &exitError{code: exitConfig, err: err}
			}
			return &exitError{code: classify(err), err: fmt.Errorf("backfill failed (resume with -job %s): %w", id, err)}
		}
		if sum.LeaseHeld {
			if held++; held > 3 {
				return &exitError{code: exitTransient, err: fmt.Errorf("another run works on backfill job %s; try again later with -job %s", id, id)}
			}
			select {
			case <-ctx.Done():
				return &exitError{code: exitTransient, err: ctx.Err()}
			case <-time.After(30 * time.Second):
			}
			continue
		}
		last = sum
		if show {
			wd, wt, ev, dups := sum.Job.Totals()
			fmt.Fprintf(tty, "\r%s %3d%%  windows %d/%d  events %d  duplicates %d  %s ", bar(wd, wt, 24), pct(wd, wt),
				wd, wt, ev, dups, time.Since(start).Round(time.Second))
		}
		if !sum.WorkRemaining {
			break
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
	if p.Status == collector.BackfillFailed {
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
