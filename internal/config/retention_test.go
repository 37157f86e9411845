package config

import (
	"strings"
	"testing"
	"time"
)

// TestLoad_eventRetention: EVENT_RETENTION is the plan's retention, a whole
// day at least; a bad value is refused with an error that names it.
func TestLoad_eventRetention(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		value   string // "" leaves it unset
		want    time.Duration
		wantErr string
	}{
		{name: "default_90_days", want: 2160 * time.Hour},
		{name: "blank_is_default", value: "  ", want: 2160 * time.Hour},
		{name: "30_day_plan", value: "720h", want: 720 * time.Hour},
		{name: "one_day", value: "24h", want: 24 * time.Hour},
		{name: "longer_self_hosted", value: "8760h", want: 8760 * time.Hour},
		{name: "under_a_day", value: "23h59m", wantErr: "EVENT_RETENTION must be at least 24h (Sentry keeps events for whole days: 2160h on most plans, 720h on 30-day plans), got 23h59m0s"},
		{name: "zero", value: "0s", wantErr: "EVENT_RETENTION must be at least 24h"},
		{name: "negative", value: "-720h", wantErr: "EVENT_RETENTION must be at least 24h"},
		{name: "days_unit", value: "30d", wantErr: `EVENT_RETENTION must be a duration such as "90s", "30m" or "24h" (no days unit: 7 days is "168h"), got "30d"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			if tc.value != "" {
				env["EVENT_RETENTION"] = tc.value
			}
			cfg, err := Load(t.Context(), base(env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Load: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.EventRetention != tc.want {
				t.Errorf("EventRetention = %s, want %s", cfg.EventRetention, tc.want)
			}
		})
	}
}
