package main

// The object store and the Sentry clients of the process.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	"golang.org/x/sync/singleflight"

	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// objectStore is where data objects and state go: *sink.GCS, *sink.Dir or
// *sink.Memory.
type objectStore interface {
	engine.Objects
	Write(ctx context.Context, name string, data []byte, contentType string, ifGeneration int64) (int64, error)
	Delete(ctx context.Context, name string, ifGeneration int64) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// openStore opens the configured object store: the bucket when GCS_BUCKET is
// set, else the local directory LOCAL_OUTPUT_DIR. closeFn releases it.
func openStore(ctx context.Context, cfg *config.Config) (store objectStore, location string, closeFn func() error, err error) {
	if cfg.UseGCS() {
		client, err := storage.NewClient(ctx)
		if err != nil {
			return nil, "", nil, failure.Transient(fmt.Errorf("failed to create the Cloud Storage client: %w", err))
		}
		return sink.NewGCS(client, cfg.GCSBucket), "gs://" + cfg.GCSBucket + "/", client.Close, nil
	}
	d, err := sink.NewDir(cfg.LocalOutputDir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: failed to open LOCAL_OUTPUT_DIR %q: %w", failure.ErrConfig, cfg.LocalOutputDir, err)
	}
	return d, d.Root() + "/", func() error { return nil }, nil
}

// regionTimeout bounds resolving the organisation's region: the organisation
// request with the client's retries.
const regionTimeout = 2 * time.Minute

// regionClient is the main token's client for the organisation's region. On
// sentry.io the organisation's data lives on a region host
// (links.regionUrl, e.g. https://us.sentry.io); region endpoints are called
// there directly. On other hosts (self-hosted, or an explicit region host)
// the configured base is kept. It is resolved on first use, not at start-up,
// so that start-up stays fast and does not depend on Sentry being reachable;
// a failed resolution is tried again by the next run. No lock is held while
// Sentry is asked: concurrent runs share one request (singleflight), and
// each waits no longer than its own context allows.
type regionClient struct {
	base     *sentry.Client
	org      string
	stop     <-chan struct{}
	resolved atomic.Pointer[sentry.Client]
	group    singleflight.Group
}

// get returns the region-resolved client.
func (rc *regionClient) get(ctx context.Context) (*sentry.Client, error) {
	if c := rc.resolved.Load(); c != nil {
		return c, nil
	}
	ch := rc.group.DoChan("region", func() (any, error) {
		// Shared by every waiting run: bounded on its own, and given up
		// when the process is asked to stop.
		rctx, cancel := context.WithTimeout(logging.WithLogger(context.Background(), logging.FromContext(ctx)), regionTimeout)
		defer cancel()
		go func() {
			select {
			case <-rc.stop:
				cancel()
			case <-rctx.Done():
			}
		}()
		c, err := resolveRegion(rctx, rc.base, rc.org)
		if err == nil {
			rc.resolved.Store(c)
		}
		return c, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*sentry.Client), nil
	case <-ctx.Done():
		return nil, failure.Transient(fmt.Errorf("failed to resolve the organisation's region: %w", ctx.Err()))
	case <-rc.stop:
		return nil, failure.Transient(errors.New("failed to resolve the organisation's region: shutting down"))
	}
}

// maxRegionURLEchoed bounds the region URL an error quotes: real ones are
// as short as https://us.sentry.io.
const maxRegionURLEchoed = 200

// resolveRegion returns a client for the organisation's region.
func resolveRegion(ctx context.Context, c *sentry.Client, org string) (*sentry.Client, error) {
	o, err := c.Organization(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("failed to read organisation %q: %w", org,
			failure.Hint(err, "check SENTRY_ORG, SENTRY_AUTH_TOKEN and its org:read scope"))
	}
	if o.RegionURL == "" || !isSaaSControlHost(c.BaseURL()) {
		return c, nil
	}
	u, err := url.Parse(o.RegionURL)
	if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Hostname(), ".sentry.io") {
		// Never send the token to a host that is not Sentry's.
		// The URL is Sentry's (or a proxy's) to choose: clip it.
		return nil, fmt.Errorf("%w: organisation %q reports an unexpected region URL %q", failure.ErrConfig, org, logging.Clip(o.RegionURL, maxRegionURLEchoed))
	}
	return c.WithBaseURL(o.RegionURL), nil
}

func isSaaSControlHost(base string) bool {
	u, err := url.Parse(base)
	return err == nil && u.Hostname() == "sentry.io"
}

// newSentryClient builds a client for token on SENTRY_API_BASE.
func newSentryClient(cfg *config.Config, token, variable string, logger *slog.Logger) (*sentry.Client, error) {
	c, err := sentry.New(sentry.Options{BaseURL: cfg.SentryAPIBase, Token: token, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("%w: failed to create the Sentry client for %s: %w", failure.ErrConfig, variable, err)
	}
	return c, nil
}
