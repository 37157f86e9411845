package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// demoSettings scale the real system down to a run of well under a minute:
// Sentry's project-events limit (60 requests per 60 s, one at a time) keeps
// its shape but runs ten times faster, and the window's lag and overlap shrink
// in proportion.
type demoSettings struct {
	projects    int
	backlog     int
	arrivals    int
	arrivalSpan time.Duration
	maxLate     time.Duration
	lag         time.Duration
	overlap     time.Duration
	interval    time.Duration
	seed        int64
}

func defaultDemoSettings() demoSettings {
	return demoSettings{
		projects:    6,
		backlog:     12000,
		arrivals:    1500,
		arrivalSpan: 20 * time.Second,
		maxLate:     8 * time.Second,
		lag:         3 * time.Second,
		overlap:     time.Minute,
		interval:    4 * time.Second,
		seed:        1,
	}
}

// runDemo starts the built-in Sentry simulator with a realistic organisation
// (a backlog, live arrivals, late events, rate limits and a few faults), runs
// collection passes into a fresh local folder the way the scheduler would,
// then checks what it wrote against the simulator's ground truth.
func runDemo(ctx context.Context, args []string) error {
	s := defaultDemoSettings()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Int64Var(&s.seed, "seed", s.seed, "seed of the simulated organisation")
	fs.IntVar(&s.backlog, "backlog", s.backlog, "events already in Sentry when the demo starts")
	fs.IntVar(&s.arrivals, "arrivals", s.arrivals, "events arriving while the demo runs")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	cfg, err := config.LoadForDemo(ctx, envconfig.OsLookuper())
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	logger := cliLogger(cfg.LogLevel)
	if cfg.LogLevel == "info" {
		logger = cliLogger("warn") // the demo prints its own progress
	}
	ctx = logging.WithLogger(ctx, logger)
	out := os.Stdout

	sim, err := sentrysim.Start(sentrysim.Config{
		Org:  "acme",
		Seed: s.seed,
		RateLimits: sentrysim.RateLimitConfig{
			Events:  sentrysim.Limit{Limit: 60, Window: 6 * time.Second, Concurrent: 1},
			Default: sentrysim.Limit{Limit: 40, Window: time.Second, Concurrent: 25},
		},
		Faults: sentrysim.Faults{P5xx: 0.02, P502HTML: 0.01, PTruncated: 0.01},
	})
	if err != nil {
		return fmt.Errorf("failed to start the Sentry simulator: %w", err)
	}
	defer func() { _ = sim.Close() }()
	sim.Populate(sentrysim.Scenario{
		Projects:     s.projects,
		Backlog:      s.backlog,
		BacklogSpan:  6 * time.Hour,
		Arrivals:     s.arrivals,
		ArrivalSpan:  s.arrivalSpan,
		LateFraction: 0.05,
		MaxLate:      s.maxLate,
	})

	dir := filepath.Join(cfg.LocalOutputDir, "demo-"+time.Now().UTC().Format("20060102-150405"))
	store, err := sink.NewDir(dir)
	if err != nil {
		return fmt.Errorf("failed to create the demo folder %q: %w", dir, err)
	}
	client, err := sentry.New(sentry.Options{BaseURL: sim.URL(), Token: "demo-token", Logger: logger})
	if err != nil {
		return fmt.Errorf("failed to create the Sentry client: %w", err)
	}
	progress := &progressPrinter{w: out, enabled: true}
	opts := collector.Options{
		Org:                "acme",
		DataPrefix:         cfg.GCSPrefix,
		StatePrefix:        cfg.StateKey,
		MaxProjects:        cfg.MaxProjects,
		MaxPagesPerProject: 10,
		Lag:                s.lag,
		Overlap:            s.overlap,
		InitialLookback:    7 * time.Hour,
		Budget:             20 * time.Second,
		Logger:             logger,
		Progress:           progress.print,
	}
	c, err := collector.New(opts, client, store, store)
	if err != nil {
		return fmt.Errorf("failed to create the collector: %w", err)
	}

	fmt.Fprintf(out, "Simulated Sentry organisation %q at %s: %d projects, %d events in the backlog, %d arriving over %s (5%% of them late), 2%% 5xx, 1%% HTML 502, 1%% truncated bodies, rate limit 60 requests per 6 s.\n",
		"acme", sim.URL(), s.projects, s.backlog, s.arrivals, s.arrivalSpan)
	fmt.Fprintf(out, "Writing NDJSON into %s/%s, state into %s/%s\n\n", dir, cfg.GCSPrefix, dir, cfg.StateKey)

	start := time.Now()
	// Arrivals stop after arrivalSpan; they are all visible maxLate (plus a
	// few seconds) later, and all inside a window lag after that.
	quiet := start.Add(s.arrivalSpan + s.maxLate + s.lag + 6*time.Second)
	for pass := 1; ; pass++ {
		fmt.Fprintf(out, "pass %d\n", pass)
		sum, err := c.Run(ctx)
		if err != nil && !collector.IsTransient(err) {
			return fmt.Errorf("demo pass %d failed: %w", pass, err)
		}
		if err := printSummary(out, sum, false); err != nil {
			return err
		}
		if err != nil {
			fmt.Fprintf(out, "  transient failure, retried next pass: %v\n", err)
		}
		if time.Now().After(quiet) && !sum.WorkRemaining && err == nil {
			break
		}
		wait := s.interval
		if sum.WorkRemaining {
			wait = 0 // a continuation: go on at once, as the service does
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return fmt.Errorf("demo interrupted: %w", err)
		}
	}
	fmt.Fprintf(out, "\nfinished in %s\n\n", time.Since(start).Round(100*time.Millisecond))
	return verifyDemo(ctx, out, store, cfg.GCSPrefix, sim.GroundTruth())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// verifyDemo reads every data object back and compares it with the events
// Sentry (the simulator) has made visible: nothing lost, nothing duplicated,
// nothing that is not an event.
func verifyDemo(ctx context.Context, out io.Writer, store *sink.Dir, prefix string, truth map[string]map[string]bool) error {
	names, err := store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", prefix, err)
	}
	seen := map[string]map[string]int{}
	lines, bad := 0, 0
	for _, name := range names {
		data, _, err := store.Read(ctx, name)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", name, err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			lines++
			var ev struct {
				ID        string `json:"id"`
				ProjectID string `json:"projectID"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.ID == "" || ev.ProjectID == "" {
				bad++
				continue
			}
			if seen[ev.ProjectID] == nil {
				seen[ev.ProjectID] = map[string]int{}
			}
			seen[ev.ProjectID][ev.ID]++
		}
	}
	projects := make([]string, 0, len(truth))
	for p := range truth {
		projects = append(projects, p)
	}
	sort.Strings(projects)
	fmt.Fprintf(out, "%d objects, %d lines\n", len(names), lines)
	fmt.Fprintf(out, "%-10s %10s %10s %10s %10s %10s\n", "project", "in Sentry", "in bucket", "lost", "duplicated", "unknown")
	var lost, dup, extra int
	for _, p := range projects {
		var l, d, x int
		for id := range truth[p] {
			if seen[p][id] == 0 {
				l++
			}
		}
		stored := 0
		for id, n := range seen[p] {
			stored += n
			if n > 1 {
				d += n - 1
			}
			if !truth[p][id] {
				x++
			}
		}
		fmt.Fprintf(out, "%-10s %10d %10d %10d %10d %10d\n", p, len(truth[p]), stored, l, d, x)
		lost, dup, extra = lost+l, dup+d, extra+x
	}
	for p := range seen {
		if _, ok := truth[p]; !ok {
			extra += len(seen[p])
		}
	}
	if lost+dup+extra+bad > 0 {
		return fmt.Errorf("the bucket does not match Sentry: %d lost, %d duplicated, %d unknown, %d lines that are not events", lost, dup, extra, bad)
	}
	fmt.Fprintln(out, "\nOK: every event Sentry made visible is stored exactly once, and nothing else is.")
	return nil
}
