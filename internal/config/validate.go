package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Validate checks the configuration and normalises it in place (prefixes end
// with "/", SENTRY_API_BASE has no trailing slash, list items are trimmed).
// The error joins every problem found, each naming its variable.
func (c *Config) Validate() error {
	return c.validate(true)
}

var (
	orgSlugRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)
	topicRE      = regexp.MustCompile(`^projects/[^/\s]+/topics/[^/\s]+$`)
)

func (c *Config) validate(requireSentry bool) error {
	return errors.Join(append(append(append(append(
		c.checkSentry(requireSentry),
		c.checkOutput()...),
		c.checkStreams(requireSentry)...),
		c.checkCollection()...),
		c.checkService()...)...)
}

// checkSentry checks the organisation, the tokens and SENTRY_API_BASE.
func (c *Config) checkSentry(requireSentry bool) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.SentryOrg = strings.TrimSpace(c.SentryOrg)
	c.SentryAuthToken = strings.TrimSpace(c.SentryAuthToken) // secrets often carry a trailing newline
	switch {
	case c.SentryOrg == "" && requireSentry:
		add("SENTRY_ORG is required (the Sentry organisation slug)")
	case c.SentryOrg != "" && !orgSlugRE.MatchString(c.SentryOrg):
		add("SENTRY_ORG must be an organisation slug (letters, digits, '-', '_', '.'), got %q", c.SentryOrg)
	}
	if c.SentryAuthToken == "" && requireSentry {
		add("SENTRY_AUTH_TOKEN is required (a Sentry auth token with org:read, project:read and event:read)")
	}
	if base, err := normaliseAPIBase(c.SentryAPIBase, c.SentryAPIAllowHTTP); err != nil {
		errs = append(errs, err)
	} else {
		c.SentryAPIBase = base
	}
	return errs
}

// checkOutput checks where data and state go: the bucket or the local
// directory, and the data and state prefixes.
func (c *Config) checkOutput() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.GCSBucket = strings.TrimSpace(c.GCSBucket)
	if c.GCSBucket != "" {
		switch {
		case strings.HasPrefix(c.GCSBucket, "gs://"):
			add("GCS_BUCKET must be a bucket name without gs:// or a path, got %q", c.GCSBucket)
		case !bucketNameRE.MatchString(c.GCSBucket):
			add("GCS_BUCKET must be a Cloud Storage bucket name (3-222 lowercase letters, digits, '-', '_', '.'), got %q", c.GCSBucket)
		}
	} else if strings.TrimSpace(c.LocalOutputDir) == "" {
		add("LOCAL_OUTPUT_DIR must not be empty when GCS_BUCKET is not set")
	}
	dataOK, stateOK := true, true
	if p, err := normalisePrefix("GCS_PREFIX", c.GCSPrefix); err != nil {
		errs, dataOK = append(errs, err), false
	} else {
		c.GCSPrefix = p
	}
	if p, err := normalisePrefix("STATE_KEY", c.StateKey); err != nil {
		errs, stateOK = append(errs, err), false
	} else {
		c.StateKey = p
	}
	if dataOK && stateOK {
		if err := checkPrefixesDisjoint(c.GCSPrefix, c.StateKey); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// checkStreams checks STREAMS, the audit token, and that no two selected
// streams' data prefixes (nor STATE_KEY) overlap.
func (c *Config) checkStreams(requireSentry bool) []error {
	var errs []error
	streams, err := normaliseStreams(c.Streams)
	if err != nil {
		errs = append(errs, err)
	} else {
		c.Streams = streams
	}
	c.SentryAuditToken = strings.TrimSpace(c.SentryAuditToken)
	if c.HasStream("audit") && c.SentryAuditToken == "" && requireSentry {
		errs = append(errs, errors.New("SENTRY_AUDIT_TOKEN is required when STREAMS includes audit (a Sentry token with org:write: "+
			"the audit-log endpoint refuses read-only tokens, so it is kept apart from SENTRY_AUTH_TOKEN)"))
	}
	var prefixes []namedPrefix
	if _, err := normalisePrefix("GCS_PREFIX", c.GCSPrefix); err == nil {
		prefixes = append(prefixes, namedPrefix{"GCS_PREFIX", c.GCSPrefix})
	}
	if _, err := normalisePrefix("STATE_KEY", c.StateKey); err == nil {
		prefixes = append(prefixes, namedPrefix{"STATE_KEY", c.StateKey})
	}
	for _, sp := range []struct {
		stream, name string
		p            *string
	}{{"issues", "ISSUES_PREFIX", &c.IssuesPrefix}, {"audit", "AUDIT_PREFIX", &c.AuditPrefix}} {
		if strings.TrimSpace(*sp.p) == "" {
			*sp.p = defaultOf(sp.name) // empty is unset
		}
		p, err := normalisePrefix(sp.name, *sp.p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*sp.p = p
		if c.HasStream(sp.stream) {
			prefixes = append(prefixes, namedPrefix{sp.name, p})
		}
	}
	return append(errs, checkStreamPrefixes(prefixes)...)
}

// checkCollection checks the settings that shape the collection: limits,
// windows, the budget, idle detection.
func (c *Config) checkCollection() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxProjects < 1 {
		add("MAX_PROJECTS must be a positive integer, got %d", c.MaxProjects)
	}
	if c.MaxPagesPerProject < 1 || c.MaxPagesPerProject > MaxPagesPerProjectLimit {
		add("MAX_PAGES_PER_PROJECT must be between 1 and %d, got %d", MaxPagesPerProjectLimit, c.MaxPagesPerProject)
	}
	if c.CollectLag < 0 || c.CollectLag > 24*time.Hour {
		add("COLLECT_LAG must be between 0s and 24h, got %s", c.CollectLag)
	}
	if c.CollectOverlap < 0 || c.CollectOverlap > MaxCollectOverlap {
		add("COLLECT_OVERLAP must be between 0s and %s (half the collector's 24h maximum window: each window "+
			"re-reads the overlap before the watermark, so a larger overlap would stop the watermark from moving "+
			"forward and no new event would be collected), got %s", "12h", c.CollectOverlap)
	}
	switch {
	case c.InitialLookback <= 0:
		add("INITIAL_LOOKBACK must be positive, got %s", c.InitialLookback)
	case c.InitialLookback > SentryRetention:
		add("INITIAL_LOOKBACK must be at most %s (Sentry keeps events for 90 days), got %s", SentryRetention, c.InitialLookback)
	}
	if c.EventRetention < MinEventRetention {
		add("EVENT_RETENTION must be at least 24h (Sentry keeps events for whole days: 2160h on most plans, 720h on "+
			"30-day plans), got %s", c.EventRetention)
	}
	switch {
	case c.RunBudget <= 0:
		add("RUN_BUDGET must be positive, got %s", c.RunBudget)
	case c.RunBudget >= MaxRunBudget:
		add("RUN_BUDGET must be below 10m: a push request must answer before Pub/Sub's 600 s ack deadline, "+
			"or Pub/Sub redelivers it while the run still goes on; got %s", c.RunBudget)
	}
	if c.FullSweepInterval < 0 || c.FullSweepInterval > 24*time.Hour {
		add("FULL_SWEEP_INTERVAL must be between 0s (idle detection off) and 24h, got %s", c.FullSweepInterval)
	}
	return errs
}

// checkService checks logging and the HTTP service's settings.
func (c *Config) checkService() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		add("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	} else {
		c.LogLevel = strings.ToLower(strings.TrimSpace(c.LogLevel))
	}
	if c.Port < 0 || c.Port > 65535 {
		add("PORT must be a TCP port between 0 and 65535, got %d", c.Port)
	}
	c.PushAudience = strings.TrimSpace(c.PushAudience)
	var err error
	if c.PushServiceAccounts, err = emailList("PUSH_SERVICE_ACCOUNTS", c.PushServiceAccounts); err != nil {
		errs = append(errs, err)
	}
	if c.BackfillInvokers, err = emailList("BACKFILL_INVOKERS", c.BackfillInvokers); err != nil {
		errs = append(errs, err)
	}
	c.PubSubTopic = strings.TrimSpace(c.PubSubTopic)
	if c.PubSubTopic != "" && !topicRE.MatchString(c.PubSubTopic) {
		add("PUBSUB_TOPIC must be a full topic name projects/PROJECT/topics/TOPIC, got %q", c.PubSubTopic)
	}
	return errs
}

// ValidateServe adds the checks the HTTP service needs on top of Validate:
// push verification needs an audience and allowed accounts unless explicitly
// disabled, and disabling it on Cloud Run needs a second, explicit opt-in.
func (c *Config) ValidateServe() error {
	var errs []error
	if c.PushAuthDisabled {
		if c.OnCloudRun() && !c.AllowInsecureOnCloudRun {
			errs = append(errs, errors.New("PUSH_AUTH_DISABLED=true is refused on Cloud Run (K_SERVICE is set): "+
				"anyone who can reach the service could trigger collection; set ALLOW_INSECURE_ON_CLOUD_RUN=true to force it"))
		}
		return errors.Join(errs...)
	}
	if c.PushAudience == "" {
		errs = append(errs, errors.New("PUSH_AUDIENCE is required to verify push tokens (or set PUSH_AUTH_DISABLED=true for local use)"))
	}
	if len(c.PushServiceAccounts) == 0 {
		errs = append(errs, errors.New("PUSH_SERVICE_ACCOUNTS is required to verify push tokens (or set PUSH_AUTH_DISABLED=true for local use)"))
	}
	return errors.Join(errs...)
}

// normaliseAPIBase checks SENTRY_API_BASE and strips trailing slashes. Its
// errors show at most the URL's scheme and host: the rest of a mistaken value
// may hold credentials or a token (a user:password@, a query, a path).
// Cleartext http is refused unless the host is loopback (the built-in
// simulator and tests) or allowHTTP is set: the token goes in every request.
func normaliseAPIBase(s string, allowHTTP bool) (string, error) {
	raw := strings.TrimSpace(s)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("SENTRY_API_BASE must be an absolute http(s) URL such as https://sentry.io, got %s", describeURL(u, err))
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("SENTRY_API_BASE must not carry credentials, a query or a fragment, got a URL on %s "+
			"(the rest is not shown: it may hold a secret)", origin(u))
	}
	trimmed := strings.TrimRight(raw, "/")
	if strings.HasSuffix(trimmed, "/api/0") || strings.HasSuffix(trimmed, "/api") {
		return "", fmt.Errorf("SENTRY_API_BASE must be the Sentry root URL without /api/0 (the client adds it), "+
			"got a URL on %s whose path ends in /api/0 or /api", origin(u))
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("SENTRY_API_BASE %s is cleartext http on a host other than loopback: the Sentry token would "+
			"cross the network unencrypted; use https, or set SENTRY_API_ALLOW_HTTP=true to accept it", origin(u))
	}
	return trimmed, nil
}

// origin returns a URL's scheme and host only.
func origin(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// describeURL names a refused URL by its scheme and host when it has both,
// and shows nothing of it otherwise.
func describeURL(u *url.URL, err error) string {
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "a value that is not scheme://host (not shown: it may hold a secret)"
	}
	return origin(u)
}

// isLoopbackHost reports whether host (without port or brackets) is
// "localhost" or a loopback address (127.0.0.0/8, ::1).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalisePrefix returns p without leading "/" and with a trailing "/".
func normalisePrefix(name, p string) (string, error) {
	p = strings.TrimLeft(strings.TrimSpace(p), "/")
	if p == "" {
		return "", fmt.Errorf("%s must be a non-empty object prefix such as %q: an empty prefix is the whole bucket, "+
			"which the SecOps feed and the state would then share", name, defaultOf(name))
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%s must not contain empty, '.' or '..' path segments, got %q", name, p)
		}
	}
	return p, nil
}

func checkPrefixesDisjoint(data, state string) error {
	const why = "the SecOps feed ingests every object under GCS_PREFIX as a log, and a feed set to delete " +
		"transferred files would delete the state and restart collection from scratch (the reference default " +
		"STATE_KEY=sentry/events/state.json did exactly that); use a sibling prefix such as sentry/state/"
	switch {
	case strings.HasPrefix(state, data):
		return fmt.Errorf("STATE_KEY %q is inside GCS_PREFIX %q: %s", state, data, why)
	case strings.HasPrefix(data, state):
		return fmt.Errorf("GCS_PREFIX %q is inside STATE_KEY %q: %s", data, state, why)
	}
	return nil
}

func normaliseStreams(in []string) ([]string, error) {
	var out []string
	var errs []error
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		switch {
		case s == "":
		case slices.Contains(StreamNames, s):
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		default:
			errs = append(errs, fmt.Errorf("STREAMS must be a comma-separated list of %s and %s, got unknown stream %q", strings.Join(StreamNames[:len(StreamNames)-1], ", "), StreamNames[len(StreamNames)-1], s))
		}
	}
	if len(errs) == 0 && len(out) == 0 {
		out = []string{defaultOf("STREAMS")} // empty is unset
	}
	return out, errors.Join(errs...)
}

type namedPrefix struct{ name, prefix string }

// checkStreamPrefixes checks that no two of the selected streams' data
// prefixes overlap, and that none overlaps STATE_KEY (GCS_PREFIX against
// STATE_KEY is checked by checkPrefixesDisjoint, with its own explanation).
func checkStreamPrefixes(ps []namedPrefix) []error {
	var errs []error
	for i, a := range ps {
		for _, b := range ps[i+1:] {
			if (a.name == "GCS_PREFIX" && b.name == "STATE_KEY") || (a.name == "STATE_KEY" && b.name == "GCS_PREFIX") {
				continue
			}
			if strings.HasPrefix(a.prefix, b.prefix) || strings.HasPrefix(b.prefix, a.prefix) {
				errs = append(errs, fmt.Errorf("%s %q and %s %q overlap: each stream needs its own prefix (its SecOps feed reads "+
					"every object under it), and the state must lie outside every data prefix", a.name, a.prefix, b.name, b.prefix))
			}
		}
	}
	return errs
}

func emailList(name string, in []string) ([]string, error) {
	var out []string
	var errs []error
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if a, err := mail.ParseAddress(s); err != nil || a.Address != s || a.Name != "" {
			errs = append(errs, fmt.Errorf("%s must be a comma-separated list of email addresses, got %q", name, s))
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// canonical parses a raw value of the variable's type and returns the form
// go-envconfig decodes identically, or an error naming the variable.
func (v field) canonical(raw string) (string, error) {
	switch v.kind {
	case kindInt:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return "", fmt.Errorf("%s must be a positive integer, got %q", v.Name, raw)
		}
		return strconv.Itoa(n), nil
	case kindPort:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > 65535 {
			return "", fmt.Errorf("%s must be a TCP port between 0 and 65535, got %q", v.Name, raw)
		}
		return strconv.Itoa(n), nil
	case kindDuration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return "", fmt.Errorf("%s must be a duration such as \"90s\", \"30m\" or \"24h\" (no days unit: 7 days is \"168h\"), got %q", v.Name, raw)
		}
		return d.String(), nil
	case kindBool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return "", fmt.Errorf("%s must be true or false, got %q", v.Name, raw)
		}
		return strconv.FormatBool(b), nil
	}
	return raw, nil
}
