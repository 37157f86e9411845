package state

import (
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

var (
	_ Objects = (*sink.GCS)(nil)
	_ Objects = (*sink.Dir)(nil)
)

type backend struct {
	name string
	new  func(t *testing.T) Objects
}

// backends returns the two real sinks: a local directory and Cloud Storage
// through the real client against an in-process fake-gcs-server.
func backends() []backend {
	return []backend{
		{name: "dir", new: func(t *testing.T) Objects {
			t.Helper()
			d, err := sink.NewDir(t.TempDir())
			if err != nil {
				t.Fatalf("NewDir: %v", err)
			}
			return d
		}},
		{name: "gcs", new: func(t *testing.T) Objects {
			t.Helper()
			srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
			if err != nil {
				t.Fatalf("fake-gcs-server: %v", err)
			}
			t.Cleanup(srv.Stop)
			srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "bkt"})
			c := srv.Client()
			t.Cleanup(func() { _ = c.Close() })
			return sink.NewGCS(c, "bkt")
		}},
	}
}

func TestKey(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name   string
		prefix string
		parts  []string
		want   string
	}{
		{name: "trailing_slash_prefix", prefix: "sentry/state/", parts: []string{"lease", "events"}, want: "sentry/state/lease/events"},
		{name: "no_trailing_slash", prefix: "sentry/state", parts: []string{"watermarks.json"}, want: "sentry/state/watermarks.json"},
		{name: "leading_slashes_dropped", prefix: "/s/", parts: []string{"/a/", "b"}, want: "s/a/b"},
		{name: "empty_prefix", prefix: "", parts: []string{"a"}, want: "a"},
		{name: "empty_parts_skipped", prefix: "s", parts: []string{"", "a", "/"}, want: "s/a"},
		{name: "prefix_only", prefix: "s/", want: "s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Key(tc.prefix, tc.parts...); got != tc.want {
				t.Errorf("Key(%q, %q) = %q, want %q", tc.prefix, tc.parts, got, tc.want)
			}
		})
	}
}

func TestInside(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name        string
		data, state string
		want        bool
	}{
		{name: "reference_default_state_under_data", data: "sentry/events/", state: "sentry/events/state.json", want: true},
		{name: "state_folder_under_data", data: "sentry/events/", state: "sentry/events/state/", want: true},
		{name: "separate_folders", data: "sentry/events/", state: "sentry/state/", want: false},
		{name: "trailing_slash_normalised", data: "sentry/events", state: "sentry/events/state", want: true},
		{name: "sibling_with_common_start", data: "sentry/events", state: "sentry/events-state/", want: false},
		{name: "equal", data: "a/", state: "a", want: true},
		{name: "data_inside_state", data: "sentry/state/events/", state: "sentry/state/", want: true},
		{name: "leading_slash_ignored", data: "/sentry/events/", state: "sentry/events/s/", want: true},
		{name: "empty_data_is_whole_bucket", data: "", state: "sentry/state/", want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Inside(tc.data, tc.state); got != tc.want {
				t.Errorf("Inside(%q, %q) = %v, want %v", tc.data, tc.state, got, tc.want)
			}
		})
	}
}
