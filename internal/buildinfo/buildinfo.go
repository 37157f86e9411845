// Package buildinfo holds the version and commit stamped into the binary at
// build time with -ldflags "-X".
package buildinfo

// Version and Commit are set by the linker, for example:
//
//	go build -ldflags "-X github.com/secops-collectors/sentry-gcs/internal/buildinfo.Version=v1.2.3 \
//	  -X github.com/secops-collectors/sentry-gcs/internal/buildinfo.Commit=abc123" ./server
var (
	Version = "dev"
	Commit  = "unknown"
)

// UserAgent is the User-Agent the product sends to Sentry.
func UserAgent() string {
	return "sentry-gcs/" + Version + " (+https://github.com/secops-collectors/sentry-gcs)"
}
