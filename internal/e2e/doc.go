// Package e2e holds the end-to-end test of the service: the built server
// binary behind the machine's real Pub/Sub emulator (push subscription, ticks
// published like Cloud Scheduler's), a standalone fake-gcs-server as the
// bucket, and the Sentry simulator as the API. It asserts that the bucket
// holds every visible event exactly once, also after the server is killed in
// the middle of a run and restarted.
//
// The package has no non-test code. The test runs in the normal
// `go test ./...` unless -short is given; it needs gcloud (with the beta
// Pub/Sub emulator component) and java, and fails when they are missing.
package e2e
