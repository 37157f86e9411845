package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/coverage"
)

// runCoverageCmd prints the coverage ledger: a table per hour and project,
// and a one-line verdict. It reads the output's state only (no Sentry
// request). Exit code 0 when every final hour is complete, 1 otherwise.
func runCoverageCmd(ctx context.Context, args []string) error {
	fs := newFlags("coverage", "[-since 24h] [-projects a,b] [-json]",
		`Prints the coverage ledger kept by the service: per project and hour, Sentry's own counts
(accepted, received, visible) against the events collected, the events missing, and a status
(complete, provisional, missing, unverified, sentry_inconsistent), then a one-line verdict.

exit codes: 0 every final hour is complete; 1 otherwise; 2 configuration error.`)
	sinceF := fs.String("since", "24h", "how far back: a duration (24h) or an RFC 3339 time")
	projectsF := fs.String("projects", "", "comma-separated project ids or slugs (default: all)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	since, err := parseSince(*sinceF, time.Now().UTC())
	if err != nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("-%w", err)}
	}
	ctx, env, err := openCLI(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = env.close() }()
	rep, err := env.app.Coverage(ctx, since, splitList(strings.TrimSpace(*projectsF)))
	if err != nil {
		return withCode(fmt.Errorf("failed to read the coverage ledger: %w", err))
	}
	if err := printCoverage(os.Stdout, rep, *jsonOut); err != nil {
		return err
	}
	if !rep.OK {
		return &exitError{code: exitVerdict, err: fmt.Errorf("coverage: %s", rep.Verdict)}
	}
	return nil
}

// printCoverage writes the report as a table or as JSON.
func printCoverage(w io.Writer, rep *coverage.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("failed to print the report: %w", err)
		}
		return nil
	}
	if err := rep.WriteTable(w); err != nil {
		return fmt.Errorf("failed to print the report: %w", err)
	}
	return nil
}
