package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// TestCheckSource: what every source's constructor refuses, each as a
// configuration error, and what it accepts.
func TestCheckSource(t *testing.T) {
	t.Parallel()
	stores := Env{Data: sink.NewMemory(), State: sink.NewMemory()}
	// api stands for a Sentry client: a nil interface value is "none".
	type api interface{ List() }
	var noAPI api
	cases := []struct {
		name                                 string
		env                                  Env
		api                                  any
		stream, org, dataPrefix, statePrefix string
		want                                 string // "" accepts
	}{
		{name: "ok", env: stores, api: 1, stream: "audit", org: "acme", dataPrefix: "sentry/audit/", statePrefix: "sentry/state/"},
		{name: "state_beside_data", env: stores, api: 1, stream: "issues", org: "acme", dataPrefix: "sentry/events/", statePrefix: "sentry/"},
		{name: "no_client", env: stores, api: noAPI, stream: "issues", org: "acme", dataPrefix: "d/", statePrefix: "s/", want: "the issues stream needs a Sentry client"},
		{name: "no_stores", env: Env{Data: sink.NewMemory()}, api: 1, stream: "audit", org: "acme", dataPrefix: "d/", statePrefix: "s/", want: "a data store and a state store are required"},
		{name: "no_org", env: stores, api: 1, stream: "audit", dataPrefix: "d/", statePrefix: "s/", want: "organisation"},
		{name: "empty_data_prefix", env: stores, api: 1, stream: "audit", org: "acme", statePrefix: "s/", want: "data prefix must not be empty"},
		{name: "state_inside_data", env: stores, api: 1, stream: "events", org: "acme", dataPrefix: "sentry/events/", statePrefix: "sentry/events/state/", want: "must not lie inside"},
		{name: "stream_state_is_data", env: stores, api: 1, stream: "events", org: "acme", dataPrefix: "sentry/events/", statePrefix: "sentry/", want: "must not lie inside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.env.CheckSource(tc.stream, tc.api, tc.org, tc.dataPrefix, tc.statePrefix)
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want it accepted", err)
				}
				return
			}
			if !errors.Is(err, failure.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a configuration error containing %q", err, tc.want)
			}
		})
	}
}
