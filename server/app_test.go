package main

import (
	"testing"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/config"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// newTestApp builds the app as the service does, from environment
// variables (env, on top of a minimal set pointing at simURL) and store.
func newTestApp(t *testing.T, simURL string, store objectStore, env map[string]string) *app {
	t.Helper()
	vars := map[string]string{
		"SENTRY_ORG":        "acme",
		"SENTRY_AUTH_TOKEN": "tok",
		"SENTRY_API_BASE":   simURL,
		"RUN_BUDGET":        "1m",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(t.Context(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, store, logging.TestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
