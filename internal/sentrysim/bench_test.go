package sentrysim

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// BenchmarkEventsPage measures one events page (100 rows, windowed, deep
// offset) on a 1,000-project, 1,000,000-event org, through ServeHTTP.
//
//	go test -run '^$' -bench EventsPage -benchmem ./internal/sentrysim/
func BenchmarkEventsPage(b *testing.B) {
	fc := clock.NewFake(t0)
	s := New(Config{Clock: fc, Seed: 1, RateLimits: RateLimitConfig{Disabled: true}})
	s.Populate(Scenario{Projects: 1000, Backlog: 1_000_000, BacklogSpan: 24 * time.Hour})
	fc.Advance(time.Hour)
	// The busiest project (skewed traffic: a few thousand events).
	var pid string
	most := 0
	for id, set := range s.GroundTruth() {
		if len(set) > most {
			pid, most = id, len(set)
		}
	}
	start := t0.Add(-20 * time.Hour).Format(time.RFC3339)
	end := t0.Add(-time.Hour).Format(time.RFC3339)
	path := eventsPath("acme", pid, "per_page=100&cursor=0:500:0&start="+start+"&end="+end)
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer tok")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.Len() < 50_000 {
			b.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}
