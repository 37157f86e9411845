package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
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
	backlogSpan time.Duration
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
		backlogSpan: 6 * time.Hour,
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
// then checks what it wrote against the simulator's ground truth. When soft
// closes (the first signal) the pass in flight stops softly, as collect's
// does, and the demo exits 3 without the check.
func runDemo(ctx context.Context, soft <-chan struct{}, args []string) error {
	s := defaultDemoSettings()
	fs := newFlags("demo", "[-seed N] [-backlog N] [-arrivals N]", `Starts the built-in simulated Sentry (a realistic organisation: a backlog, live arrivals, late
events, Sentry's project-events rate limit running ten times faster, a few faults), runs
collection passes into a fresh folder under LOCAL_OUTPUT_DIR the way the scheduler would,
then reads every object back and checks it against the simulator's ground truth.`)
	fs.Int64Var(&s.seed, "seed", s.seed, "seed of the simulated organisation")
	fs.IntVar(&s.backlog, "backlog", s.backlog, "events already in Sentry when the demo starts")
	fs.IntVar(&s.arrivals, "arrivals", s.arrivals, "events arriving while the demo runs")
	if err := parseFlags(fs, args); err != nil {
		return err
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

	sim, err := startDemoSim(s)
	if err != nil {
		return err
	}
	defer func() { _ = sim.Close() }()

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
	c, err := events.New(events.Options{
		Org:                "acme",
		DataPrefix:         cfg.GCSPrefix,
		StatePrefix:        cfg.StateKey,
		MaxProjects:        cfg.MaxProjects,
		MaxPagesPerProject: 10,
		Lag:                s.lag,
		Overlap:            s.overlap,
		InitialLookback:    s.backlogSpan, // the first window starts where the backlog does
		FullSweepInterval:  -1,
		Progress:           progress.print,
	}, client, engine.Env{Data: store, State: store, Stop: soft, Counters: client.RequestCounts})
	if err != nil {
		return fmt.Errorf("failed to create the events stream: %w", err)
	}

	fmt.Fprintf(out, "Simulated Sentry organisation %q at %s: %d projects, %d events in the backlog, %d arriving over %s (5%% of them late), 2%% 5xx, 1%% HTML 502, 1%% truncated bodies, rate limit 60 requests per 6 s.\n",
		"acme", sim.URL(), s.projects, s.backlog, s.arrivals, s.arrivalSpan)
	fmt.Fprintf(out, "Writing NDJSON into %s/%s, state into %s/%s\n\n", dir, cfg.GCSPrefix, dir, cfg.StateKey)

	start := time.Now()
	if err := demoPasses(ctx, soft, out, c, s, start); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nfinished in %s\n\n", time.Since(start).Round(100*time.Millisecond))
	rep, err := sentrysim.Verify(ctx, store, cfg.GCSPrefix, sim.GroundTruth())
	if err != nil {
		return fmt.Errorf("failed to read the output back: %w", err)
	}
	rep.Table(out)
	if err := rep.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nOK: every event Sentry made visible is stored exactly once, and nothing else is.")
	return nil
}

// startDemoSim starts the simulated organisation of the demo: Sentry's
// project-events limit running ten times faster, a few faults, a backlog and
// live arrivals (some visible late).
func startDemoSim(s demoSettings) (*sentrysim.Running, error) {
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
		return nil, fmt.Errorf("failed to start the Sentry simulator: %w", err)
	}
	sim.Populate(sentrysim.Scenario{
		Projects:     s.projects,
		Backlog:      s.backlog,
		BacklogSpan:  s.backlogSpan,
		Arrivals:     s.arrivals,
		ArrivalSpan:  s.arrivalSpan,
		LateFraction: 0.05,
		MaxLate:      s.maxLate,
	})
	return sim, nil
}

// demoPasses runs collection passes the way the service would: at once
// while work remains (a continuation), else every interval, until the
// arrivals have stopped and a pass finds nothing left, or soft closes.
func demoPasses(ctx context.Context, soft <-chan struct{}, out io.Writer, c *events.Stream, s demoSettings, start time.Time) error {
	// Arrivals stop after arrivalSpan; they are all visible maxLate (plus a
	// few seconds) later, and all inside a window lag after that.
	quiet := start.Add(s.arrivalSpan + s.maxLate + s.lag + 6*time.Second)
	for pass := 1; ; pass++ {
		fmt.Fprintf(out, "pass %d\n", pass)
		sum, err := c.Run(ctx, demoBudget)
		if err != nil && !failure.IsTransient(err) {
			return fmt.Errorf("demo pass %d failed: %w", pass, err)
		}
		if err := printSummary(out, sum, false); err != nil {
			return err
		}
		if err != nil {
			fmt.Fprintf(out, "  transient failure, retried next pass: %v\n", err)
		}
		if time.Now().After(quiet) && !sum.WorkRemaining && err == nil {
			return nil
		}
		if isClosed(soft) {
			return stoppedBySignal(nil, "the output was not checked against the simulator")
		}
		wait := s.interval
		if sum.WorkRemaining {
			wait = 0 // a continuation: go on at once, as the service does
		}
		select {
		case <-time.After(wait):
		case <-soft:
			return stoppedBySignal(nil, "the output was not checked against the simulator")
		case <-ctx.Done():
			return fmt.Errorf("demo interrupted: %w", ctx.Err())
		}
	}
}

// demoBudget bounds each demo pass, as RUN_BUDGET bounds a push.
const demoBudget = 20 * time.Second
