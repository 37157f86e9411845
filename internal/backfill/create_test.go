package backfill

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

// TestValidateRetention: the range must lie within the organisation's
// retention (EVENT_RETENTION), Sentry's usual 90 days by default.
func TestValidateRetention(t *testing.T) {
	t.Parallel()
	now := collecttest.T0
	tests := []struct {
		name      string
		start     time.Time
		retention time.Duration
		wantErr   string
	}{
		{"default_inside", now.Add(-89 * 24 * time.Hour), 0, ""},
		{"default_beyond", now.Add(-91 * 24 * time.Hour), 0, "90-day event retention"},
		{"thirty_day_plan_beyond", now.Add(-31 * 24 * time.Hour), 30 * 24 * time.Hour, "30-day event retention"},
		{"thirty_day_plan_inside", now.Add(-29 * 24 * time.Hour), 30 * 24 * time.Hour, ""},
		{"unlimited", now.Add(-400 * 24 * time.Hour), -1, ""},
	}
	for _, tc := range tests {
		_, _, _, err := Validate(Spec{Start: tc.start, End: now}, now, tc.retention)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: err = %v, want %q (ErrInvalid)", tc.name, err, tc.wantErr)
		}
	}
}
