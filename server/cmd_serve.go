package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/buildinfo"
	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"
)

// runServe runs the HTTP service until ctx is done (SIGTERM).
func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve", "", `Runs the HTTP service until SIGTERM: POST /pubsub/push (Pub/Sub push deliveries: ticks,
continuations, backfill messages), POST /backfill and GET /backfill/{id} (operators),
GET /health. Configuration comes from the environment (PORT, PUSH_AUDIENCE,
PUSH_SERVICE_ACCOUNTS or PUSH_AUTH_DISABLED=true locally, ...); logs are JSON lines on stdout.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	cfg, err := config.Load(ctx, envconfig.OsLookuper())
	if err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	logger := logging.New(os.Stdout, logging.Options{Level: cfg.SlogLevel(), AddSource: true})
	slog.SetDefault(logger)
	ctx = logging.WithLogger(ctx, logger)

	return serveConfig(ctx, cfg, serveDeps{})
}

// serveDeps lets tests replace what runServe builds from the configuration.
type serveDeps struct {
	// ListenHost is the interface to listen on ("" = all, as on Cloud Run).
	ListenHost string
	// Collector replaces the real collector when set.
	Collector Collector
	// Validator replaces Google's token validator when set.
	Validator auth.Validator
	// Ready, when set, is called with the listening address once the
	// server is about to serve.
	Ready func(net.Addr)
}

// serveConfig listens first (so the port is taken, and a bad PORT fails,
// before anything slow), builds the dependencies in order (token verifier,
// publisher, collector, server), serves until ctx is done, and releases
// everything.
func serveConfig(ctx context.Context, cfg *config.Config, deps serveDeps) (retErr error) {
	logger := logging.FromContext(ctx)
	start := time.Now()

	ln, err := net.Listen("tcp", net.JoinHostPort(deps.ListenHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("failed to listen on port %d: %w", cfg.Port, err)
	}
	defer func() {
		// serveHTTP closes the listener; this covers early returns.
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			retErr = errors.Join(retErr, fmt.Errorf("failed to close listener: %w", err))
		}
	}()

	logger.InfoContext(ctx, "loaded configuration",
		"version", buildinfo.Version,
		"commit", buildinfo.Commit,
		"addr", ln.Addr().String(),
		"config", cfg)
	for _, w := range cfg.Warnings() {
		logger.WarnContext(ctx, w)
	}

	opts := serverOptions{
		Logger:         logger,
		ProjectID:      projectID(ctx, cfg),
		RunTimeout:     runTimeout(cfg.RunBudget),
		PublishTimeout: defaultPublishTimeout,
		StopGrace:      defaultStopGrace,
		MaxBodyBytes:   pubsub.DefaultMaxBodyBytes,
	}

	if err := setVerifiers(ctx, cfg, deps.Validator, &opts); err != nil {
		return err
	}

	if cfg.PubSubTopic != "" {
		pub, err := pubsub.NewPublisher(ctx, cfg.PubSubTopic)
		if err != nil {
			return fmt.Errorf("failed to create publisher: %w", err)
		}
		defer func() {
			if err := pub.Close(); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("failed to close publisher: %w", err))
			}
		}()
		opts.Publisher = pub
	} else {
		logger.WarnContext(ctx, "PUBSUB_TOPIC is not set: a backlog left at the end of a run continues only at the next tick")
	}

	if deps.Collector != nil {
		opts.Collector = deps.Collector
	} else {
		store, location, closeStore, err := openStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer func() {
			if err := closeStore(); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("failed to close storage: %w", err))
			}
		}()
		a, err := newApp(cfg, store, logger)
		if err != nil {
			return err
		}
		logger.InfoContext(ctx, "collector ready", "output", location, "streams", a.streams)
		opts.Collector = a
	}

	if c, ok := opts.Collector.(Coverager); ok {
		opts.Coverage = c
	}
	if b, ok := opts.Collector.(Backfiller); ok {
		opts.Backfill = b
	}
	srv, err := newServer(opts)
	if err != nil {
		return fmt.Errorf("failed to create server: %w", err)
	}
	logger.InfoContext(ctx, "serving", "addr", ln.Addr().String(), "startup", time.Since(start).String(),
		"run_timeout", opts.RunTimeout.String())
	if deps.Ready != nil {
		deps.Ready(ln.Addr())
	}
	return serveHTTP(ctx, ln, srv.Handler(), timeoutsFor(opts.RunTimeout+opts.PublishTimeout), srv.Drain)
}

// runTimeout is a push request's deadline for its run: the budget plus time
// to commit, but always below Pub/Sub's 600 s ack deadline (the push request
// timeout) with room to answer. The collector honours the tighter of its
// budget and this deadline.
func runTimeout(budget time.Duration) time.Duration {
	const (
		commitMargin = time.Minute
		answerMargin = 20 * time.Second
	)
	return min(budget+commitMargin, config.AckDeadline-answerMargin)
}

// projectID returns the project that qualifies trace ids in logs: the
// PUBSUB_TOPIC's project, else, on Cloud Run, the metadata server's.
func projectID(ctx context.Context, cfg *config.Config) string {
	if p, _, err := pubsub.ParseTopic(cfg.PubSubTopic); err == nil {
		return p
	}
	if !cfg.OnCloudRun() {
		return ""
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, err := metadata.ProjectIDWithContext(mctx)
	if err != nil {
		logging.FromContext(ctx).WarnContext(ctx, "failed to read the project id from the metadata server; logs will carry no trace", "error", err)
		return ""
	}
	return p
}

// setVerifiers sets the token verifiers of the push and backfill routes, or
// turns authentication off when PUSH_AUTH_DISABLED asks for it (with a
// warning; an error log on Cloud Run, where the configuration has already
// demanded a second opt-in).
func setVerifiers(ctx context.Context, cfg *config.Config, v auth.Validator, opts *serverOptions) error {
	logger := logging.FromContext(ctx)
	if cfg.PushAuthDisabled {
		opts.AuthDisabled = true
		msg := "push authentication is DISABLED (PUSH_AUTH_DISABLED=true): anyone who can reach this service can trigger collection; use this only locally"
		if cfg.OnCloudRun() {
			logger.ErrorContext(ctx, msg, "k_service", cfg.KService, "allow_insecure_on_cloud_run", cfg.AllowInsecureOnCloudRun)
		} else {
			logger.WarnContext(ctx, msg)
		}
		return nil
	}
	if v == nil {
		// One validator for the process: it caches Google's
		// certificates, bounds and shares their fetches. Building it makes
		// no network call.
		gv, err := auth.NewGoogleValidator(ctx, auth.ValidatorOptions{})
		if err != nil {
			return fmt.Errorf("failed to create token validator: %w", err)
		}
		v = gv
	}
	verifier, err := auth.NewVerifier(v, cfg.PushAudience, cfg.PushServiceAccounts)
	if err != nil {
		return fmt.Errorf("failed to create token verifier: %w", err)
	}
	opts.Verifier = verifier
	if len(cfg.BackfillInvokers) > 0 {
		// POST/GET /backfill: the same validator and audience, the
		// invokers' emails.
		bv, err := auth.NewVerifier(v, cfg.PushAudience, cfg.BackfillInvokers)
		if err != nil {
			return fmt.Errorf("failed to create backfill token verifier: %w", err)
		}
		opts.BackfillVerifier = bv
	}
	return nil
}
