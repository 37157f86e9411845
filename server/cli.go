package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Exit codes of the local commands. `go run` reports any non-zero code as
// "exit status N" and then exits with 1 itself: build the binary
// (`go build -o sentry-gcs ./server`) where the code matters.
const (
	exitFailure   = 1 // anything unexpected
	exitConfig    = 2 // configuration error or invalid request: fix it, retrying will not help
	exitTransient = 3 // Sentry or Cloud Storage unavailable: progress is committed, run again
	exitLeaseHeld = 4 // another run holds the lease: nothing was done, run again after it ends
	exitVerdict   = 1 // coverage: an hour is not complete
)

// exitError carries a specific process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errHelp is returned after a command printed its help: exit 0.
var errHelp = errors.New("help shown")

// exitCode maps an error to the process exit code, through the one
// classifier the service's HTTP statuses come from too (failure.Classify).
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	switch failure.Classify(err) {
	case failure.KindNone:
		return 0
	case failure.KindConfig:
		return exitConfig
	case failure.KindTransient:
		return exitTransient
	}
	return exitFailure
}

// withCode wraps err with the exit code its class gives.
func withCode(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitCode(err), err: err}
}

// newFlags returns a flag set whose help (-h, -help) prints usage, a
// description of the command and its flags to stdout, and makes the
// command exit 0.
func newFlags(name, usage, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stdout)
	fs.Usage = func() {
		fmt.Fprintf(os.Stdout, "usage: server %s %s\n\n%s\n", name, usage, description)
		if hasFlags(fs) {
			fmt.Fprintln(os.Stdout, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args: errHelp after help was asked for, an exit code 2
// error (naming the flag) for bad flags or stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // errors are printed once, by main
	err := fs.Parse(args)
	fs.SetOutput(os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return errHelp
	case err != nil:
		return &exitError{code: exitConfig, err: fmt.Errorf("%s: %w (see server %s -h)", fs.Name(), err, fs.Name())}
	case fs.NArg() > 0:
		return &exitError{code: exitConfig, err: fmt.Errorf("%s takes only flags, got %q (configuration comes from the environment; see server %s -h)", fs.Name(), fs.Args(), fs.Name())}
	}
	return nil
}

// cliLogger logs to stderr: readable text on a terminal (durations as
// durations), Cloud Logging JSON otherwise; both bound their lines.
func cliLogger(level string) *slog.Logger {
	return cliLoggerTo(os.Stderr, isTerminal(os.Stderr), level)
}

func cliLoggerTo(w io.Writer, terminal bool, level string) *slog.Logger {
	lvl, err := logging.ParseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	if terminal {
		return logging.NewText(w, logging.Options{Level: lvl})
	}
	return logging.New(w, logging.Options{Level: lvl})
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// cliEnv is what the local commands share: the configuration, the store
// and the app over them.
type cliEnv struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    objectStore
	location string
	app      *app
	close    func() error
}

// openCLI loads the configuration from the environment and opens what a
// local run needs, without contacting Sentry; errors carry their exit code.
func openCLI(ctx context.Context) (context.Context, *cliEnv, error) {
	cfg, err := config.Load(ctx, envconfig.OsLookuper())
	if err != nil {
		return ctx, nil, &exitError{code: exitConfig, err: err}
	}
	logger := cliLogger(cfg.LogLevel)
	ctx = logging.WithLogger(ctx, logger)
	logger.DebugContext(ctx, "loaded configuration", "config", cfg)
	for _, w := range cfg.Warnings() {
		logger.WarnContext(ctx, w)
	}
	store, location, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return ctx, nil, withCode(err)
	}
	a, err := newApp(cfg, store, logger)
	if err != nil {
		_ = closeStore()
		return ctx, nil, withCode(err)
	}
	return ctx, &cliEnv{cfg: cfg, logger: logger, store: store, location: location, app: a, close: closeStore}, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
