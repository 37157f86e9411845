package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/collector"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// objectStore is what the collector writes to: *sink.GCS or *sink.Dir.
type objectStore interface {
	collector.Objects
}

// openStore opens the configured object store: the bucket when GCS_BUCKET is
// set, else the local directory LOCAL_OUTPUT_DIR. close releases it.
func openStore(ctx context.Context, cfg *config.Config) (store objectStore, location string, closeFn func() error, err error) {
	if cfg.UseGCS() {
		client, err := storage.NewClient(ctx)
		if err != nil {
			return nil, "", nil, fmt.Errorf("failed to create the Cloud Storage client: %w", err)
		}
		return sink.NewGCS(client, cfg.GCSBucket), "gs://" + cfg.GCSBucket + "/", client.Close, nil
	}
	d, err := sink.NewDir(cfg.LocalOutputDir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("failed to open LOCAL_OUTPUT_DIR %q: %w", cfg.LocalOutputDir, err)
	}
	return d, d.Root() + "/", func() error { return nil }, nil
}

// newSentryClient builds the Sentry client from the configuration.
func newSentryClient(cfg *config.Config, logger *slog.Logger) (*sentry.Client, error) {
	c, err := sentry.New(sentry.Options{
		BaseURL: cfg.SentryAPIBase,
		Token:   cfg.SentryAuthToken,
		Logger:  logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: failed to create the Sentry client: %w", collector.ErrConfig, err)
	}
	return c, nil
}

// resolveRegion returns a client for the organisation's region. On sentry.io
// the organisation's data lives on a region host (links.regionUrl, e.g.
// https://us.sentry.io); region endpoints are called there directly. On other
// hosts (self-hosted, or an explicit region host) the configured base is kept.
func resolveRegion(ctx context.Context, c *sentry.Client, org string) (*sentry.Client, error) {
	o, err := c.Organization(ctx, org)
	if err != nil {
		if sentry.IsPermanent(err) {
			return nil, fmt.Errorf("%w: failed to read organisation %q (check SENTRY_ORG, SENTRY_AUTH_TOKEN and its org:read scope): %w",
				collector.ErrConfig, org, err)
		}
		return nil, fmt.Errorf("failed to read organisation %q: %w", org, err)
	}
	if o.RegionURL == "" || !isSaaSControlHost(c.BaseURL()) {
		return c, nil
	}
	u, err := url.Parse(o.RegionURL)
	if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Hostname(), ".sentry.io") {
		// Never send the token to a host that is not Sentry's.
		return nil, fmt.Errorf("%w: organisation %q reports an unexpected region URL %q", collector.ErrConfig, org, o.RegionURL)
	}
	return c.WithBaseURL(o.RegionURL), nil
}

func isSaaSControlHost(base string) bool {
	u, err := url.Parse(base)
	return err == nil && u.Hostname() == "sentry.io"
}

// exit codes of the collect and demo sub-commands.
const (
	exitFailure   = 1 // anything else
	exitConfig    = 2 // configuration error: fix the settings, do not retry
	exitTransient = 3 // transient failure: progress is committed, retry later
)

// classify maps a run error to an exit code.
func classify(err error) int {
	switch {
	case err == nil:
		return 0
	case collector.IsConfig(err), sentry.IsPermanent(err):
		return exitConfig
	case collector.IsTransient(err), failure.IsTransient(err):
		return exitTransient
	default:
		return exitFailure
	}
}

// cliEnv is what the collect and backfill sub-commands share: the
// configuration, a logger, the store and a region-resolved Sentry client.
type cliEnv struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    objectStore
	location string
	api      *sentry.Client
	close    func() error
}

// openCLI loads the configuration from the environment and opens what a
// local run needs; errors carry the sub-command's exit code.
func openCLI(ctx context.Context) (context.Context, *cliEnv, error) {
	cfg, err := config.Load(ctx, envconfig.OsLookuper())
	if err != nil {
		return ctx, nil, &exitError{code: exitConfig, err: err}
	}
	logger := cliLogger(cfg.LogLevel)
	ctx = logging.WithLogger(ctx, logger)
	logger.DebugContext(ctx, "loaded configuration", "config", cfg)

	store, location, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return ctx, nil, &exitError{code: classify(err), err: err}
	}
	client, err := newSentryClient(cfg, logger)
	if err != nil {
		_ = closeStore()
		return ctx, nil, &exitError{code: exitConfig, err: err}
	}
	api, err := resolveRegion(ctx, client, cfg.SentryOrg)
	if err != nil {
		_ = closeStore()
		return ctx, nil, &exitError{code: classify(err), err: err}
	}
	return ctx, &cliEnv{cfg: cfg, logger: logger, store: store, location: location, api: api, close: closeStore}, nil
}
