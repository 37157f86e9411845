package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-envconfig"
)

const testToken = "sntrys_secret_token_value_1234567890"

// base returns the minimal valid environment, merged with extra.
func base(extra map[string]string) envconfig.Lookuper {
	m := map[string]string{
		"SENTRY_ORG":        "acme",
		"SENTRY_AUTH_TOKEN": testToken,
	}
	for k, v := range extra {
		m[k] = v
	}
	return envconfig.MapLookuper(m)
}

func TestLoad_defaults(t *testing.T) {
	t.Parallel()

	got, err := Load(t.Context(), base(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		GCSPrefix:          "sentry/events/",
		StateKey:           "sentry/state/",
		Streams:            []string{"events"},
		IssuesPrefix:       "sentry/issues/",
		AuditPrefix:        "sentry/audit/",
		LocalOutputDir:     "./sentry-data",
		SentryOrg:          "acme",
		SentryAuthToken:    testToken,
		SentryAPIBase:      "https://sentry.io",
		MaxProjects:        100,
		MaxPagesPerProject: 5,
		CollectLag:         2 * time.Minute,
		CollectOverlap:     5 * time.Minute,
		InitialLookback:    24 * time.Hour,
		EventRetention:     2160 * time.Hour,
		RunBudget:          7 * time.Minute,
		FullSweepInterval:  time.Hour,
		LateSweep:          true,
		CoverageLedger:     true,
		LogLevel:           "info",
		Port:               8080,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got.UseGCS() {
		t.Errorf("UseGCS() = true without GCS_BUCKET")
	}
	if got.OnCloudRun() {
		t.Errorf("OnCloudRun() = true without K_SERVICE")
	}
}

func TestLoad_values(t *testing.T) {
	t.Parallel()

	got, err := Load(t.Context(), base(map[string]string{
		"GCS_BUCKET":                  "my-bucket",
		"GCS_PREFIX":                  "/logs/sentry",
		"STATE_KEY":                   "state/sentry",
		"SENTRY_ORG":                  "  acme  ",
		"SENTRY_AUTH_TOKEN":           testToken + "\n",
		"SENTRY_API_BASE":             "https://de.sentry.io/",
		"MAX_PROJECTS":                "7",
		"MAX_PAGES_PER_PROJECT":       "1000",
		"COLLECT_LAG":                 "0s",
		"COLLECT_OVERLAP":             "1h",
		"INITIAL_LOOKBACK":            "2160h",
		"RUN_BUDGET":                  "9m59s",
		"LOG_LEVEL":                   "DEBUG",
		"PORT":                        "0",
		"PUSH_AUDIENCE":               "https://svc.example/push",
		"PUSH_SERVICE_ACCOUNTS":       "push@p.iam.gserviceaccount.com, other@p.iam.gserviceaccount.com,",
		"BACKFILL_INVOKERS":           "ops@example.com",
		"PUBSUB_TOPIC":                "projects/p/topics/t",
		"PUSH_AUTH_DISABLED":          "true",
		"ALLOW_INSECURE_ON_CLOUD_RUN": "1",
		"K_SERVICE":                   "sentry-gcs",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		GCSBucket:               "my-bucket",
		GCSPrefix:               "logs/sentry/",
		StateKey:                "state/sentry/",
		Streams:                 []string{"events"},
		IssuesPrefix:            "sentry/issues/",
		AuditPrefix:             "sentry/audit/",
		LocalOutputDir:          "./sentry-data",
		SentryOrg:               "acme",
		SentryAuthToken:         testToken,
		SentryAPIBase:           "https://de.sentry.io",
		MaxProjects:             7,
		MaxPagesPerProject:      1000,
		CollectLag:              0,
		CollectOverlap:          time.Hour,
		InitialLookback:         2160 * time.Hour,
		EventRetention:          2160 * time.Hour,
		RunBudget:               9*time.Minute + 59*time.Second,
		FullSweepInterval:       time.Hour,
		LateSweep:               true,
		CoverageLedger:          true,
		LogLevel:                "debug",
		Port:                    0,
		PushAudience:            "https://svc.example/push",
		PushServiceAccounts:     []string{"push@p.iam.gserviceaccount.com", "other@p.iam.gserviceaccount.com"},
		BackfillInvokers:        []string{"ops@example.com"},
		PubSubTopic:             "projects/p/topics/t",
		PushAuthDisabled:        true,
		AllowInsecureOnCloudRun: true,
		KService:                "sentry-gcs",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if !got.UseGCS() || !got.OnCloudRun() {
		t.Errorf("UseGCS()=%v OnCloudRun()=%v, want both true", got.UseGCS(), got.OnCloudRun())
	}
	if got, want := got.SlogLevel(), slog.LevelDebug; got != want {
		t.Errorf("SlogLevel() = %v, want %v", got, want)
	}
	if err := got.ValidateServe(); err != nil {
		t.Errorf("ValidateServe: %v", err)
	}
}

func TestLoad_errors(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		env     map[string]string
		wantErr []string
	}{
		{name: "max_projects_not_a_number", env: map[string]string{"MAX_PROJECTS": "abc"},
			wantErr: []string{`MAX_PROJECTS must be a positive integer, got "abc"`}},
		{name: "max_projects_zero", env: map[string]string{"MAX_PROJECTS": "0"},
			wantErr: []string{`MAX_PROJECTS must be a positive integer, got "0"`}},
		{name: "max_projects_negative", env: map[string]string{"MAX_PROJECTS": "-3"},
			wantErr: []string{`MAX_PROJECTS must be a positive integer, got "-3"`}},
		{name: "max_pages_not_a_number", env: map[string]string{"MAX_PAGES_PER_PROJECT": "5.5"},
			wantErr: []string{`MAX_PAGES_PER_PROJECT must be a positive integer, got "5.5"`}},
		{name: "max_pages_too_many", env: map[string]string{"MAX_PAGES_PER_PROJECT": "1001"},
			wantErr: []string{`MAX_PAGES_PER_PROJECT must be between 1 and 1000, got 1001`}},
		{name: "org_missing", env: map[string]string{"SENTRY_ORG": ""},
			wantErr: []string{`SENTRY_ORG is required`}},
		{name: "org_blank", env: map[string]string{"SENTRY_ORG": "   "},
			wantErr: []string{`SENTRY_ORG is required`}},
		{name: "org_with_slash", env: map[string]string{"SENTRY_ORG": "acme/x"},
			wantErr: []string{`SENTRY_ORG must be an organisation slug`, `got "acme/x"`}},
		{name: "token_missing", env: map[string]string{"SENTRY_AUTH_TOKEN": ""},
			wantErr: []string{`SENTRY_AUTH_TOKEN is required`}},
		{name: "api_base_relative", env: map[string]string{"SENTRY_API_BASE": "sentry.io"},
			wantErr: []string{`SENTRY_API_BASE must be an absolute http(s) URL`, `not scheme://host`}},
		{name: "api_base_ftp", env: map[string]string{"SENTRY_API_BASE": "ftp://sentry.io"},
			wantErr: []string{`SENTRY_API_BASE must be an absolute http(s) URL`}},
		{name: "api_base_with_api_0", env: map[string]string{"SENTRY_API_BASE": "https://sentry.io/api/0/"},
			wantErr: []string{`SENTRY_API_BASE must be the Sentry root URL without /api/0`}},
		{name: "api_base_with_query", env: map[string]string{"SENTRY_API_BASE": "https://sentry.io/?a=b"},
			wantErr: []string{`SENTRY_API_BASE must not carry credentials, a query or a fragment`}},
		{name: "bucket_with_scheme", env: map[string]string{"GCS_BUCKET": "gs://my-bucket"},
			wantErr: []string{`GCS_BUCKET must be a bucket name without gs://`}},
		{name: "bucket_uppercase", env: map[string]string{"GCS_BUCKET": "My_Bucket"},
			wantErr: []string{`GCS_BUCKET must be a Cloud Storage bucket name`}},
		{name: "streams_unknown", env: map[string]string{"STREAMS": "events,spans"},
			wantErr: []string{`STREAMS must be a comma-separated list of events, issues and audit, got unknown stream "spans"`}},
		{name: "audit_without_token", env: map[string]string{"STREAMS": "events,audit"},
			wantErr: []string{`SENTRY_AUDIT_TOKEN is required when STREAMS includes audit`}},
		{name: "issues_prefix_inside_events_prefix", env: map[string]string{"STREAMS": "events,issues", "ISSUES_PREFIX": "sentry/events/issues"},
			wantErr: []string{`GCS_PREFIX "sentry/events/" and ISSUES_PREFIX "sentry/events/issues/" overlap`}},
		{name: "audit_prefix_inside_state", env: map[string]string{"STREAMS": "audit", "SENTRY_AUDIT_TOKEN": "t", "AUDIT_PREFIX": "sentry/state/audit/"},
			wantErr: []string{`STATE_KEY "sentry/state/" and AUDIT_PREFIX "sentry/state/audit/" overlap`}},
		{name: "issues_and_audit_same_prefix", env: map[string]string{"STREAMS": "issues,audit", "SENTRY_AUDIT_TOKEN": "t", "ISSUES_PREFIX": "x/", "AUDIT_PREFIX": "x/"},
			wantErr: []string{`ISSUES_PREFIX "x/" and AUDIT_PREFIX "x/" overlap`}},
		{name: "prefix_only_slash", env: map[string]string{"GCS_PREFIX": "/"},
			wantErr: []string{`GCS_PREFIX must be a non-empty object prefix`}},
		{name: "prefix_dotdot", env: map[string]string{"STATE_KEY": "sentry/../state"},
			wantErr: []string{`STATE_KEY must not contain empty, '.' or '..' path segments`}},
		{name: "lag_not_a_duration", env: map[string]string{"COLLECT_LAG": "2 minutes"},
			wantErr: []string{`COLLECT_LAG must be a duration such as`, `got "2 minutes"`}},
		{name: "lag_negative", env: map[string]string{"COLLECT_LAG": "-1m"},
			wantErr: []string{`COLLECT_LAG must be between 0s and 24h, got -1m0s`}},
		{name: "overlap_negative", env: map[string]string{"COLLECT_OVERLAP": "-1s"},
			wantErr: []string{`COLLECT_OVERLAP must be between 0s and 12h`, `got -1s`}},
		{name: "overlap_whole_window", env: map[string]string{"COLLECT_OVERLAP": "24h"},
			wantErr: []string{`COLLECT_OVERLAP must be between 0s and 12h (half the collector's 24h maximum window`, `stop the watermark from moving forward`, `got 24h0m0s`}},
		{name: "overlap_above_half_window", env: map[string]string{"COLLECT_OVERLAP": "12h1s"},
			wantErr: []string{`COLLECT_OVERLAP must be between 0s and 12h`, `got 12h0m1s`}},
		{name: "lookback_days_unit", env: map[string]string{"INITIAL_LOOKBACK": "7d"},
			wantErr: []string{`INITIAL_LOOKBACK must be a duration`, `7 days is "168h"`, `got "7d"`}},
		{name: "lookback_zero", env: map[string]string{"INITIAL_LOOKBACK": "0s"},
			wantErr: []string{`INITIAL_LOOKBACK must be positive, got 0s`}},
		{name: "lookback_beyond_retention", env: map[string]string{"INITIAL_LOOKBACK": "2161h"},
			wantErr: []string{`INITIAL_LOOKBACK must be at most 2160h0m0s (Sentry keeps events for 90 days), got 2161h0m0s`}},
		{name: "run_budget_zero", env: map[string]string{"RUN_BUDGET": "0s"},
			wantErr: []string{`RUN_BUDGET must be positive, got 0s`}},
		{name: "run_budget_ack_deadline", env: map[string]string{"RUN_BUDGET": "10m"},
			wantErr: []string{`RUN_BUDGET must be below 10m`, `600 s ack deadline`, `got 10m0s`}},
		{name: "log_level_unknown", env: map[string]string{"LOG_LEVEL": "verbose"},
			wantErr: []string{`LOG_LEVEL must be debug, info, warn or error, got "verbose"`}},
		{name: "port_out_of_range", env: map[string]string{"PORT": "70000"},
			wantErr: []string{`PORT must be a TCP port between 0 and 65535, got "70000"`}},
		{name: "bool_not_a_bool", env: map[string]string{"PUSH_AUTH_DISABLED": "yes please"},
			wantErr: []string{`PUSH_AUTH_DISABLED must be true or false, got "yes please"`}},
		{name: "push_accounts_not_emails", env: map[string]string{"PUSH_SERVICE_ACCOUNTS": "a@b.c,not an email"},
			wantErr: []string{`PUSH_SERVICE_ACCOUNTS must be a comma-separated list of email addresses, got "not an email"`}},
		{name: "backfill_invokers_named_address", env: map[string]string{"BACKFILL_INVOKERS": "Bob <bob@example.com>"},
			wantErr: []string{`BACKFILL_INVOKERS must be a comma-separated list of email addresses`}},
		{name: "topic_short_name", env: map[string]string{"PUBSUB_TOPIC": "sentry-trigger"},
			wantErr: []string{`PUBSUB_TOPIC must be a full topic name projects/PROJECT/topics/TOPIC, got "sentry-trigger"`}},
		{name: "reference_default_state_inside_data",
			env: map[string]string{"GCS_PREFIX": "sentry/events/", "STATE_KEY": "sentry/events/state.json"},
			wantErr: []string{`STATE_KEY "sentry/events/state.json/" is inside GCS_PREFIX "sentry/events/"`,
				"the SecOps feed ingests every object under GCS_PREFIX", "delete the state"}},
		{name: "state_equals_data", env: map[string]string{"GCS_PREFIX": "a/b", "STATE_KEY": "/a/b/"},
			wantErr: []string{`STATE_KEY "a/b/" is inside GCS_PREFIX "a/b/"`}},
		{name: "data_inside_state", env: map[string]string{"GCS_PREFIX": "sentry/events/", "STATE_KEY": "sentry/"},
			wantErr: []string{`GCS_PREFIX "sentry/events/" is inside STATE_KEY "sentry/"`}},
		{name: "all_errors_at_once",
			env: map[string]string{"SENTRY_ORG": "", "MAX_PROJECTS": "abc", "RUN_BUDGET": "1h", "COLLECT_LAG": "x",
				"STATE_KEY": "sentry/events/state.json"},
			wantErr: []string{`SENTRY_ORG is required`, `MAX_PROJECTS must be a positive integer, got "abc"`,
				`RUN_BUDGET must be below 10m`, `COLLECT_LAG must be a duration`, `STATE_KEY "sentry/events/state.json/" is inside`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(t.Context(), base(tc.env))
			if err == nil {
				t.Fatalf("Load succeeded (%v), want errors %q", cfg, tc.wantErr)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %q", err)
			}
			// Go field names must never be all an operator sees.
			for _, goName := range []string{"MaxProjects:", "CollectLag:", "strconv."} {
				if strings.Contains(err.Error(), goName) {
					t.Errorf("error names a Go field or parser instead of the variable: %q", err)
				}
			}
		})
	}
}

func TestLoad_emptyMeansDefault(t *testing.T) {
	t.Parallel()

	cfg, err := Load(t.Context(), base(map[string]string{"MAX_PROJECTS": "", "RUN_BUDGET": " ", "GCS_PREFIX": ""}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.MaxProjects != 100 || cfg.RunBudget != 7*time.Minute || cfg.GCSPrefix != "sentry/events/" {
		t.Errorf("empty values did not fall back to defaults: %+v", cfg)
	}
}

func TestLoadForDemo(t *testing.T) {
	t.Parallel()

	cfg, err := LoadForDemo(t.Context(), envconfig.MapLookuper(nil))
	if err != nil {
		t.Fatalf("LoadForDemo without Sentry credentials: %v", err)
	}
	if cfg.SentryOrg != "" || cfg.UseGCS() {
		t.Errorf("unexpected demo config: %+v", cfg)
	}
	// Everything else is still validated.
	if _, err := LoadForDemo(t.Context(), envconfig.MapLookuper(map[string]string{"MAX_PROJECTS": "x"})); err == nil ||
		!strings.Contains(err.Error(), "MAX_PROJECTS") {
		t.Errorf("LoadForDemo error = %v, want MAX_PROJECTS error", err)
	}
	if _, err := Load(t.Context(), envconfig.MapLookuper(nil)); err == nil {
		t.Errorf("Load without Sentry credentials succeeded")
	}
}

func TestValidateServe(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		env     map[string]string
		wantErr []string
	}{
		{name: "verified", env: map[string]string{"PUSH_AUDIENCE": "aud", "PUSH_SERVICE_ACCOUNTS": "a@b.c"}},
		{name: "missing_audience_and_accounts", env: nil,
			wantErr: []string{"PUSH_AUDIENCE is required", "PUSH_SERVICE_ACCOUNTS is required"}},
		{name: "disabled_locally", env: map[string]string{"PUSH_AUTH_DISABLED": "true"}},
		{name: "disabled_on_cloud_run", env: map[string]string{"PUSH_AUTH_DISABLED": "true", "K_SERVICE": "svc"},
			wantErr: []string{"PUSH_AUTH_DISABLED=true is refused on Cloud Run", "ALLOW_INSECURE_ON_CLOUD_RUN"}},
		{name: "disabled_on_cloud_run_forced",
			env: map[string]string{"PUSH_AUTH_DISABLED": "true", "K_SERVICE": "svc", "ALLOW_INSECURE_ON_CLOUD_RUN": "true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(t.Context(), base(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			err = cfg.ValidateServe()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Errorf("ValidateServe: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateServe succeeded, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLogValue_redactsToken(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name      string
		token     string
		wantToken string
	}{
		{name: "set", token: testToken, wantToken: Redacted},
		{name: "unset", token: "", wantToken: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := LoadForDemo(t.Context(), envconfig.MapLookuper(map[string]string{
				"SENTRY_AUTH_TOKEN": tc.token, "PUSH_SERVICE_ACCOUNTS": "a@b.c,d@e.f",
			}))
			if err != nil {
				t.Fatalf("LoadForDemo: %v", err)
			}
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			logger.InfoContext(t.Context(), "loaded configuration", "config", cfg)
			if tc.token != "" && strings.Contains(buf.String(), tc.token) {
				t.Fatalf("log line leaks the token: %s", buf.String())
			}
			var line struct {
				Config map[string]any `json:"config"`
			}
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("decode log line: %v", err)
			}
			if got := line.Config["sentry_auth_token"]; got != tc.wantToken {
				t.Errorf("sentry_auth_token = %q, want %q", got, tc.wantToken)
			}
			if got, want := line.Config["run_budget"], "7m0s"; got != want {
				t.Errorf("run_budget = %v, want %v", got, want)
			}
			if got, want := line.Config["push_service_accounts"], "a@b.c,d@e.f"; got != want {
				t.Errorf("push_service_accounts = %v, want %v", got, want)
			}
			if got, want := len(line.Config), len(Variables()); got != want {
				t.Errorf("logged %d keys, want one per variable (%d)", got, want)
			}
			if s := cfg.String(); tc.token != "" && strings.Contains(s, tc.token) {
				t.Errorf("String() leaks the token: %s", s)
			}
		})
	}
}

func TestVariables(t *testing.T) {
	t.Parallel()

	vars := Variables()
	byName := make(map[string]Variable)
	for _, v := range vars {
		if v.Name == "" || v.Description == "" {
			t.Errorf("variable %+v lacks a name or description", v)
		}
		if _, dup := byName[v.Name]; dup {
			t.Errorf("duplicate variable %s", v.Name)
		}
		byName[v.Name] = v
	}
	want := map[string]Variable{
		"GCS_PREFIX":        {Name: "GCS_PREFIX", Default: "sentry/events/", CloudRun: CloudRunRequired},
		"STATE_KEY":         {Name: "STATE_KEY", Default: "sentry/state/", CloudRun: CloudRunRequired},
		"SENTRY_ORG":        {Name: "SENTRY_ORG", Required: true, CloudRun: CloudRunRequired},
		"SENTRY_AUTH_TOKEN": {Name: "SENTRY_AUTH_TOKEN", Required: true, Secret: true, CloudRun: CloudRunRequired},
		"MAX_PROJECTS":      {Name: "MAX_PROJECTS", Default: "100", CloudRun: CloudRunRequired},
		"RUN_BUDGET":        {Name: "RUN_BUDGET", Default: "7m", CloudRun: CloudRunRequired},
		"PORT":              {Name: "PORT", Default: "8080", CloudRun: CloudRunPlatform},
		"PUSH_SERVICE_ACCOUNTS": {Name: "PUSH_SERVICE_ACCOUNTS", List: true,
			CloudRun: CloudRunRequired},
		"K_SERVICE": {Name: "K_SERVICE", CloudRun: CloudRunPlatform},
	}
	for name, w := range want {
		got, ok := byName[name]
		if !ok {
			t.Errorf("variable %s missing", name)
			continue
		}
		got.Description = ""
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("variable %s (-want +got):\n%s", name, diff)
		}
	}
	// Every variable of the contract is present.
	for _, name := range []string{"GCS_BUCKET", "GCS_PREFIX", "STATE_KEY", "SENTRY_ORG", "SENTRY_AUTH_TOKEN",
		"SENTRY_API_BASE", "MAX_PROJECTS", "MAX_PAGES_PER_PROJECT", "COLLECT_LAG", "COLLECT_OVERLAP",
		"INITIAL_LOOKBACK", "RUN_BUDGET", "LOCAL_OUTPUT_DIR", "LOG_LEVEL", "PORT", "PUSH_AUDIENCE",
		"PUSH_SERVICE_ACCOUNTS", "BACKFILL_INVOKERS", "PUBSUB_TOPIC", "PUSH_AUTH_DISABLED",
		"ALLOW_INSECURE_ON_CLOUD_RUN", "K_SERVICE"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("contract variable %s is missing from Variables()", name)
		}
	}
}

func TestValidate_normalisesInPlace(t *testing.T) {
	t.Parallel()

	cfg := &Config{
		GCSPrefix: "data", StateKey: "state", LocalOutputDir: "d", SentryOrg: "acme", SentryAuthToken: "t",
		SentryAPIBase: "http://127.0.0.1:9000/", MaxProjects: 1, MaxPagesPerProject: 1,
		InitialLookback: time.Hour, EventRetention: 720 * time.Hour, RunBudget: time.Minute, LogLevel: "Warn",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.GCSPrefix != "data/" || cfg.StateKey != "state/" || cfg.SentryAPIBase != "http://127.0.0.1:9000" ||
		cfg.LogLevel != "warn" {
		t.Errorf("not normalised: %+v", cfg)
	}
}

func TestLoad_streams(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "default", env: nil, want: []string{"events"}},
		{name: "all_mixed_case_with_blanks", env: map[string]string{"STREAMS": " Events, ,issues,AUDIT,events", "SENTRY_AUDIT_TOKEN": "t\n"},
			want: []string{"events", "issues", "audit"}},
		{name: "audit_only", env: map[string]string{"STREAMS": "audit", "SENTRY_AUDIT_TOKEN": "t"}, want: []string{"audit"}},
		// An unselected stream's prefix is not checked against the others.
		{name: "unselected_prefix_may_overlap", env: map[string]string{"ISSUES_PREFIX": "sentry/events/x"}, want: []string{"events"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(t.Context(), base(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Streams); diff != "" {
				t.Errorf("Streams (-want +got):\n%s", diff)
			}
			if got.HasStream("audit") && got.SentryAuditToken != "t" {
				t.Errorf("audit token not trimmed: %q", got.SentryAuditToken)
			}
			if s := got.String(); strings.Contains(s, "sentry_audit_token=t ") {
				t.Errorf("audit token logged: %s", s)
			}
		})
	}
}

// TestWarnings_smallOverlap: an overlap under five minutes with the late
// sweep on is accepted, with a warning naming the cost.
func TestWarnings_smallOverlap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"default", nil, false},
		{"5m", map[string]string{"COLLECT_OVERLAP": "5m"}, false},
		{"2m", map[string]string{"COLLECT_OVERLAP": "2m"}, true},
		{"2m_without_sweep", map[string]string{"COLLECT_OVERLAP": "2m", "LATE_SWEEP": "false"}, false},
		{"2m_without_events", map[string]string{"COLLECT_OVERLAP": "2m", "STREAMS": "issues"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(t.Context(), base(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			var got bool
			for _, w := range cfg.Warnings() {
				got = got || strings.Contains(w, "COLLECT_OVERLAP")
			}
			if got != tc.want {
				t.Errorf("warns about COLLECT_OVERLAP: %v, want %v (%q)", got, tc.want, cfg.Warnings())
			}
		})
	}
}
