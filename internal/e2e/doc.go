// Package e2e holds the end-to-end test of the service: the built server
// binary behind the machine's real Pub/Sub emulator (push subscription, ticks
// published like Cloud Scheduler's), a standalone fake-gcs-server as the
// bucket, and the Sentry simulator as the API. It asserts that the bucket
// holds every visible event exactly once, also after the server is killed in
// the middle of a run and restarted.
//
// The package has no non-test code. The test runs in the normal
// `go test ./...` unless -short is given; it needs gcloud (with its beta and
// pubsub-emulator components) and java. Without them it is skipped with a
// message naming what is missing, or fails with it when E2E_REQUIRED is set
// (as CI sets it).
package e2e
