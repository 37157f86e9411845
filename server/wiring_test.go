package main

import (
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/events"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// TestApp_eventRetention: EVENT_RETENTION reaches the events stream (and the
// backfill jobs, which are built on it) as its retention.
func TestApp_eventRetention(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		value string // "" leaves it unset
		want  time.Duration
	}{
		{name: "default", want: events.DefaultRetention},
		{name: "30_day_plan", value: "720h", want: 720 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			if tc.value != "" {
				env["EVENT_RETENTION"] = tc.value
			}
			a := newTestApp(t, "http://127.0.0.1:1", sink.NewMemory(), env)
			cl := a.main.base
			s, err := events.New(a.eventsOptions(cl), cl, a.env(cl))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Options().Retention; got != tc.want {
				t.Errorf("events stream retention %s, want %s", got, tc.want)
			}
		})
	}
}
