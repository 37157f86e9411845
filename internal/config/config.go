// Package config holds the service's configuration: one Config struct read from
// environment variables with go-envconfig, validated at start-up with errors that
// name the variable, and logged with the Sentry token redacted.
//
// The reference function's variables keep their names and meaning (GCS_BUCKET,
// GCS_PREFIX, STATE_KEY, SENTRY_ORG, SENTRY_AUTH_TOKEN, SENTRY_API_BASE,
// MAX_PROJECTS, MAX_PAGES_PER_PROJECT); new ones follow the same style.
// An empty (or blank) value is treated exactly like an unset one.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Limits used by validation.
const (
	// AckDeadline is Pub/Sub's maximum ack deadline, which is also the push
	// request timeout: a run must answer before it.
	AckDeadline = 600 * time.Second
	// MaxRunBudget is the exclusive upper bound of RUN_BUDGET, keeping room
	// below AckDeadline to commit progress and answer.
	MaxRunBudget = 10 * time.Minute
	// SentryRetention is how long Sentry keeps events (SaaS: 90 days).
	SentryRetention = 90 * 24 * time.Hour
	// MinEventRetention is the lower bound of EVENT_RETENTION: Sentry keeps
	// events for whole days, at least one.
	MinEventRetention = 24 * time.Hour
	// MaxPagesPerProjectLimit is the upper bound of MAX_PAGES_PER_PROJECT.
	MaxPagesPerProjectLimit = 1000
	// MaxCollectOverlap is the upper bound of COLLECT_OVERLAP: half the
	// collector's maximum window (24h, collector.DefaultMaxWindow), so that
	// every window moves the watermark forward.
	MaxCollectOverlap = 12 * time.Hour
)

// Config is the whole configuration of the collector, the CLI and the HTTP
// service. Struct tags: env (go-envconfig), desc (the README/Terraform
// description), secret (redacted in logs), cloudrun ("required": the Cloud Run
// deployment must set it; "platform": Cloud Run sets it itself and a deployment
// must not).
type Config struct {
	// GCSBucket is the Cloud Storage bucket written to; empty means the local
	// directory LocalOutputDir.
	GCSBucket string `env:"GCS_BUCKET" cloudrun:"required" desc:"Cloud Storage bucket for events and state; empty writes to LOCAL_OUTPUT_DIR instead"`
	// GCSPrefix is the data prefix the SecOps feed reads; normalised to end
	// with "/" and have no leading "/".
	GCSPrefix string `env:"GCS_PREFIX, default=sentry/events/" cloudrun:"required" desc:"object prefix of the NDJSON event objects (the SecOps feed's prefix)"`
	// StateKey is the prefix of state objects (checkpoints, leases); it must
	// not overlap GCSPrefix. Normalised like GCSPrefix.
	StateKey string `env:"STATE_KEY, default=sentry/state/" cloudrun:"required" desc:"object prefix of the state objects (watermarks, leases); must be outside GCS_PREFIX"`
	// Streams selects the streams collected: events, issues, audit.
	// Normalised to lowercase, without blanks or duplicates.
	Streams []string `env:"STREAMS, default=events" cloudrun:"required" desc:"comma-separated streams to collect: events, issues, audit (each has its own data prefix and state)"`
	// IssuesPrefix is the data prefix of the issues stream.
	IssuesPrefix string `env:"ISSUES_PREFIX, default=sentry/issues/" cloudrun:"required" desc:"object prefix of the NDJSON issue objects (STREAMS includes issues; its own SecOps feed)"`
	// AuditPrefix is the data prefix of the audit-log stream.
	AuditPrefix string `env:"AUDIT_PREFIX, default=sentry/audit/" cloudrun:"required" desc:"object prefix of the NDJSON audit-log objects (STREAMS includes audit; its own SecOps feed)"`
	// LocalOutputDir is the directory used instead of a bucket when GCSBucket
	// is empty (same layout as the bucket).
	LocalOutputDir string `env:"LOCAL_OUTPUT_DIR, default=./sentry-data" desc:"local directory used when GCS_BUCKET is empty (same layout as the bucket)"`

	// SentryOrg is the Sentry organisation slug.
	SentryOrg string `env:"SENTRY_ORG, required" cloudrun:"required" desc:"Sentry organisation slug"`
	// SentryAuthToken is the Sentry auth token (org:read, project:read,
	// event:read). Never logged.
	SentryAuthToken string `env:"SENTRY_AUTH_TOKEN, required" secret:"true" cloudrun:"required" desc:"Sentry auth token with org:read, project:read and event:read (secret; Secret Manager on Cloud Run)"`
	// SentryAuditToken is the token of the audit-log stream: the endpoint
	// needs org:write, which the main token should not have. Never logged.
	SentryAuditToken string `env:"SENTRY_AUDIT_TOKEN" secret:"true" desc:"Sentry auth token with org:write (or org:admin) for the audit-log stream; required when STREAMS includes audit (secret; Secret Manager on Cloud Run)"`
	// SentryAPIBase is the Sentry root URL (no /api/0), without a trailing
	// slash after validation.
	SentryAPIBase string `env:"SENTRY_API_BASE, default=https://sentry.io" cloudrun:"required" desc:"Sentry root URL without /api/0 (a region host such as https://de.sentry.io, or a self-hosted root); http:// only on a loopback host unless SENTRY_API_ALLOW_HTTP"`
	// SentryAPIAllowHTTP accepts a cleartext http:// SentryAPIBase on a host
	// other than loopback; the token then crosses the network unencrypted.
	SentryAPIAllowHTTP bool `env:"SENTRY_API_ALLOW_HTTP, default=false" desc:"accept a cleartext http:// SENTRY_API_BASE on a host other than loopback (the token then crosses the network unencrypted; a warning is logged at start-up)"`
	// MaxProjects caps the number of projects collected.
	MaxProjects int `env:"MAX_PROJECTS, default=100" cloudrun:"required" desc:"maximum number of projects collected"`
	// MaxPagesPerProject caps the pages read per project per run; a capped
	// project resumes where it stopped on the next run.
	MaxPagesPerProject int `env:"MAX_PAGES_PER_PROJECT, default=5" cloudrun:"required" desc:"maximum pages (100 events each) per project per run; a capped project resumes on the next run"`

	// CollectLag keeps the window's end this far behind now.
	CollectLag time.Duration `env:"COLLECT_LAG, default=2m" desc:"the window ends this long before now (Sentry indexing delay)"`
	// CollectOverlap re-reads this much before the watermark, to catch events
	// that became visible late (de-duplicated by id). Events received later
	// than this after their timestamp are the late sweep's (LateSweep), so
	// the overlap only has to cover Sentry's indexing delay, and every window
	// pays for it from the rate budget. 5m is the smallest that keeps the
	// sweep's usual five-minute slices to late events: with less, a slice
	// lists nearly every event received in it (BENCHMARKS.md, "Sustained
	// arrivals above the budget").
	CollectOverlap time.Duration `env:"COLLECT_OVERLAP, default=5m" desc:"each window starts this long before the watermark, to catch events that became visible late (de-duplicated); events received later are left to the late sweep; at most 12h"`
	// InitialLookback is how far back the first run of a project starts.
	InitialLookback time.Duration `env:"INITIAL_LOOKBACK, default=24h" desc:"how far back the first run of a project starts (at most 2160h, Sentry's 90-day retention)"`
	// EventRetention is how long Sentry keeps the organisation's events
	// (its plan's retention): no window of the events stream reaches
	// further back (events.Options.Retention).
	EventRetention time.Duration `env:"EVENT_RETENTION, default=2160h" desc:"Sentry's event retention for the organisation's plan (720h on 30-day plans); at least 24h. No window reaches further back: a range skipped for it is logged (WARN) and counted in the run summary (retention_clipped_projects, retention_clipped_before)"`
	// RunBudget bounds one run; it stops starting work before it runs out.
	RunBudget time.Duration `env:"RUN_BUDGET, default=7m" cloudrun:"required" desc:"time budget of one run; below 10m because Pub/Sub's ack deadline is 600s"`
	// FullSweepInterval turns on idle detection (stats_v2) and bounds how
	// long it may skip a project; 0 turns it off.
	FullSweepInterval time.Duration `env:"FULL_SWEEP_INTERVAL, default=1h" desc:"idle detection: projects that stats_v2 shows received nothing since their watermark are not read, but each is read at least this often; 0 reads every project every run"`
	// LateSweep turns on the late sweep: events sent long after their
	// timestamp (offline SDKs) are found by their receipt time.
	LateSweep bool `env:"LATE_SWEEP, default=true" desc:"find events Sentry received after the windows that could read their timestamp (offline SDKs sending hours or days late) with Discover's error.received, and write them once; false turns the sweep off"`
	// CoverageLedger turns on the coverage ledger (with the events stream).
	CoverageLedger bool `env:"COVERAGE_LEDGER, default=true" desc:"keep the coverage ledger: per project and hour, Sentry's counts against what was collected, with missing events found and written (server coverage, GET /coverage); runs with the events stream"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL, default=info" cloudrun:"required" desc:"log level: debug, info, warn or error"`

	// Port is the HTTP listen port (0 picks a free one, for tests).
	Port int `env:"PORT, default=8080" cloudrun:"platform" desc:"HTTP listen port (set by Cloud Run)"`
	// PushAudience is the audience the Pub/Sub push OIDC token must carry.
	PushAudience string `env:"PUSH_AUDIENCE" cloudrun:"required" desc:"audience expected in the Pub/Sub push OIDC token (required by serve unless PUSH_AUTH_DISABLED)"`
	// PushServiceAccounts are the service-account emails allowed to push.
	PushServiceAccounts []string `env:"PUSH_SERVICE_ACCOUNTS" cloudrun:"required" desc:"comma-separated service-account emails allowed to push (required by serve unless PUSH_AUTH_DISABLED)"`
	// BackfillInvokers are the identities (emails) allowed to POST /backfill.
	BackfillInvokers []string `env:"BACKFILL_INVOKERS" cloudrun:"required" desc:"comma-separated emails allowed to call POST /backfill (empty: nobody)"`
	// PubSubTopic is the trigger topic (projects/P/topics/T) the service
	// publishes continuation messages to.
	PubSubTopic string `env:"PUBSUB_TOPIC" cloudrun:"required" desc:"trigger topic projects/P/topics/T, for continuation messages when work remains"`
	// PushAuthDisabled turns off token verification (local use only).
	PushAuthDisabled bool `env:"PUSH_AUTH_DISABLED, default=false" desc:"disable OIDC verification of push and backfill requests (local use only)"`
	// AllowInsecureOnCloudRun permits PushAuthDisabled on Cloud Run.
	AllowInsecureOnCloudRun bool `env:"ALLOW_INSECURE_ON_CLOUD_RUN, default=false" desc:"allow PUSH_AUTH_DISABLED even on Cloud Run (never in production)"`
	// KService is the Cloud Run service name, set by Cloud Run itself.
	KService string `env:"K_SERVICE" cloudrun:"platform" desc:"Cloud Run service name (set by Cloud Run; marks the process as running on Cloud Run)"`
}

// Load reads the configuration from l and validates it. Every problem is
// reported at once (errors.Join), each naming its variable.
func Load(ctx context.Context, l envconfig.Lookuper) (*Config, error) {
	return load(ctx, l, true)
}

// LoadForDemo is Load without requiring SENTRY_ORG and SENTRY_AUTH_TOKEN: the
// demo sub-command collects from the built-in simulator.
func LoadForDemo(ctx context.Context, l envconfig.Lookuper) (*Config, error) {
	return load(ctx, l, false)
}

func load(ctx context.Context, l envconfig.Lookuper, requireSentry bool) (*Config, error) {
	if l == nil {
		return nil, errors.New("failed to load configuration: nil lookuper")
	}
	var errs []error
	values := make(map[string]string)
	for _, v := range fields() {
		raw, ok := l.Lookup(v.Name)
		raw = strings.TrimSpace(raw)
		if !ok || raw == "" {
			continue // unset or empty: the default applies
		}
		canonical, err := v.canonical(raw)
		if err != nil {
			errs = append(errs, err)
			continue // fall back to the default so validation can go on
		}
		values[v.Name] = canonical
	}
	required := make(map[string]bool)
	for _, v := range Variables() {
		required[v.Name] = v.Required
	}
	lookuper := envconfig.LookuperFunc(func(key string) (string, bool) {
		if v, ok := values[key]; ok {
			return v, true
		}
		// Required variables are checked (and named) by Validate.
		return "", required[key]
	})

	var cfg Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: lookuper}); err != nil {
		errs = append(errs, fmt.Errorf("failed to process environment: %w", err))
		return nil, errors.Join(errs...)
	}
	if err := cfg.validate(requireSentry); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

// UseGCS reports whether output goes to Cloud Storage (GCS_BUCKET set) rather
// than to LOCAL_OUTPUT_DIR.
func (c *Config) UseGCS() bool { return c.GCSBucket != "" }

// OnCloudRun reports whether the process runs on Cloud Run (K_SERVICE set).
func (c *Config) OnCloudRun() bool { return c.KService != "" }

// SlogLevel returns LOG_LEVEL as a slog.Level (info if invalid).
func (c *Config) SlogLevel() slog.Level {
	l, _ := logging.ParseLevel(c.LogLevel)
	return l
}

// Redacted is what LogValue shows for a secret that is set.
const Redacted = "REDACTED"

// LogValue implements slog.LogValuer: every variable under its lowercase name,
// secrets shown as "REDACTED" when set and "" when not.
func (c *Config) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	rv := reflect.ValueOf(c).Elem()
	attrs := make([]slog.Attr, 0, rv.NumField())
	for i, v := range fields() {
		key := strings.ToLower(v.Name)
		fv := rv.Field(i)
		if v.Secret {
			s := ""
			if !fv.IsZero() {
				s = Redacted
			}
			attrs = append(attrs, slog.String(key, s))
			continue
		}
		switch x := fv.Interface().(type) {
		case time.Duration:
			attrs = append(attrs, slog.String(key, x.String()))
		case []string:
			attrs = append(attrs, slog.String(key, strings.Join(x, ",")))
		default:
			attrs = append(attrs, slog.Any(key, x))
		}
	}
	return slog.GroupValue(attrs...)
}

// String never prints secrets either.
func (c *Config) String() string { return c.LogValue().String() }

// Warnings returns what a valid configuration still makes risky, one
// sentence each, for the caller to log at start-up: today a cleartext
// SENTRY_API_BASE on a host other than loopback, accepted through
// SENTRY_API_ALLOW_HTTP.
func (c *Config) Warnings() []string {
	var out []string
	if u, err := url.Parse(c.SentryAPIBase); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		out = append(out, fmt.Sprintf("SENTRY_API_BASE %s is cleartext http on a host other than loopback, accepted "+
			"because SENTRY_API_ALLOW_HTTP=true: the Sentry token crosses the network unencrypted", origin(u)))
	}
	if c.LateSweep && c.HasStream("events") && c.CollectOverlap < minSweptOverlap {
		out = append(out, fmt.Sprintf("COLLECT_OVERLAP %s is below %s: the late sweep's five-minute slices then list "+
			"most on-time events too, which costs several times the Discover requests and leaves project events "+
			"less of each run", c.CollectOverlap, minSweptOverlap))
	}
	return out
}

// minSweptOverlap is the least overlap with which the late sweep's usual
// five-minute slices list only events received later than the overlap
// (measured in BENCHMARKS.md: 466 Discover requests an hour at 5m, 3,286 at
// 2m, in the sustained-arrivals scenario).
const minSweptOverlap = 5 * time.Minute

// HasStream reports whether STREAMS selects the named stream.
func (c *Config) HasStream(name string) bool {
	for _, s := range c.Streams {
		if s == name {
			return true
		}
	}
	return false
}

// StreamNames are the streams STREAMS may select: the one list of them.
var StreamNames = []string{"events", "issues", "audit"}
