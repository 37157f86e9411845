package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoad_sentryAPIBase checks what SENTRY_API_BASE accepts, that a refusal
// shows no more of the value than its scheme and host (a URL may carry
// credentials or a token in its query), and that cleartext http is refused
// unless the host is loopback or SENTRY_API_ALLOW_HTTP is set, in which case
// the configuration warns.
func TestLoad_sentryAPIBase(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name         string
		env          map[string]string
		wantBase     string
		wantWarnings []string // substrings, one per warning
		wantErr      []string
		secrets      []string // must not appear in the error
	}{
		{name: "https", env: map[string]string{"SENTRY_API_BASE": "https://de.sentry.io/"}, wantBase: "https://de.sentry.io"},
		{name: "http_ipv4_loopback", env: map[string]string{"SENTRY_API_BASE": "http://127.0.0.1:9000"}, wantBase: "http://127.0.0.1:9000"},
		{name: "http_other_127_address", env: map[string]string{"SENTRY_API_BASE": "http://127.0.0.53:9000"}, wantBase: "http://127.0.0.53:9000"},
		{name: "http_ipv6_loopback", env: map[string]string{"SENTRY_API_BASE": "http://[::1]:9000/"}, wantBase: "http://[::1]:9000"},
		{name: "http_localhost", env: map[string]string{"SENTRY_API_BASE": "http://LocalHost:9000"}, wantBase: "http://LocalHost:9000"},
		{name: "http_remote_refused", env: map[string]string{"SENTRY_API_BASE": "http://sentry.corp.example"},
			wantErr: []string{"SENTRY_API_BASE", "http://sentry.corp.example", "cleartext", "SENTRY_API_ALLOW_HTTP=true"}},
		{name: "http_localhost_lookalike_refused", env: map[string]string{"SENTRY_API_BASE": "http://localhost.evil.example"},
			wantErr: []string{"cleartext"}},
		{name: "http_127_lookalike_refused", env: map[string]string{"SENTRY_API_BASE": "http://127.0.0.1.evil.example"},
			wantErr: []string{"cleartext"}},
		{name: "http_remote_allowed_warns", env: map[string]string{"SENTRY_API_BASE": "http://sentry.corp.example:9000", "SENTRY_API_ALLOW_HTTP": "true"},
			wantBase: "http://sentry.corp.example:9000", wantWarnings: []string{"http://sentry.corp.example:9000"}},
		{name: "http_loopback_allowed_no_warning", env: map[string]string{"SENTRY_API_BASE": "http://127.0.0.1:9000", "SENTRY_API_ALLOW_HTTP": "true"},
			wantBase: "http://127.0.0.1:9000"},
		{name: "https_allow_http_no_warning", env: map[string]string{"SENTRY_API_ALLOW_HTTP": "true"}, wantBase: "https://sentry.io"},
		{name: "credentials_not_echoed", env: map[string]string{"SENTRY_API_BASE": "https://admin:hunter2@sentry.corp.example/"},
			wantErr: []string{"must not carry credentials", "https://sentry.corp.example"}, secrets: []string{"admin", "hunter2"}},
		{name: "query_not_echoed", env: map[string]string{"SENTRY_API_BASE": "https://sentry.corp.example/?token=sntryu_abcdef123456"},
			wantErr: []string{"must not carry credentials", "https://sentry.corp.example"}, secrets: []string{"token", "sntryu_abcdef123456"}},
		{name: "fragment_not_echoed", env: map[string]string{"SENTRY_API_BASE": "https://sentry.corp.example/#sntryu_abcdef123456"},
			wantErr: []string{"https://sentry.corp.example"}, secrets: []string{"sntryu_abcdef123456"}},
		{name: "api_0_path_not_echoed", env: map[string]string{"SENTRY_API_BASE": "https://sentry.corp.example/sntryu_abcdef123456/api/0"},
			wantErr: []string{"without /api/0", "https://sentry.corp.example"}, secrets: []string{"sntryu_abcdef123456"}},
		{name: "relative_not_echoed", env: map[string]string{"SENTRY_API_BASE": "admin:hunter2@sentry.corp.example"},
			wantErr: []string{"must be an absolute http(s) URL"}, secrets: []string{"admin", "hunter2"}},
		{name: "unparsable_not_echoed", env: map[string]string{"SENTRY_API_BASE": "https://admin:hun ter2@sentry.corp.example%zz"},
			wantErr: []string{"must be an absolute http(s) URL"}, secrets: []string{"admin", "hun ter2"}},
		{name: "ftp_shows_scheme_and_host", env: map[string]string{"SENTRY_API_BASE": "ftp://files.example/sntryu_abcdef123456"},
			wantErr: []string{"ftp://files.example"}, secrets: []string{"sntryu_abcdef123456"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(t.Context(), base(tc.env))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load accepted SENTRY_API_BASE %q", tc.env["SENTRY_API_BASE"])
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				for _, s := range tc.secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q shows %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := cfg.SentryAPIBase, tc.wantBase; got != want {
				t.Errorf("SentryAPIBase got %q, want %q", got, want)
			}
			warnings := cfg.Warnings()
			if got, want := len(warnings), len(tc.wantWarnings); got != want {
				t.Fatalf("warnings got %q, want %d", warnings, want)
			}
			for i, w := range tc.wantWarnings {
				if !strings.Contains(warnings[i], w) || !strings.Contains(warnings[i], "SENTRY_API_ALLOW_HTTP") {
					t.Errorf("warning %q does not name %q and SENTRY_API_ALLOW_HTTP", warnings[i], w)
				}
			}
		})
	}
}

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()

	got := map[string]bool{}
	for _, h := range []string{"127.0.0.1", "127.255.0.9", "::1", "localhost", "LOCALHOST", "10.0.0.1", "::", "0.0.0.0", "localhost.example", "127.0.0.1.example", ""} {
		got[h] = isLoopbackHost(h)
	}
	want := map[string]bool{"127.0.0.1": true, "127.255.0.9": true, "::1": true, "localhost": true, "LOCALHOST": true, "10.0.0.1": false,
		"::": false, "0.0.0.0": false, "localhost.example": false, "127.0.0.1.example": false, "": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("isLoopbackHost (-want +got):\n%s", diff)
	}
}
