// Package bench holds cross-package benchmarks of the collector against the
// Sentry simulator at Sentry's real rate limits (backlog drain, idle ticks),
// a naive sequential collector for comparison (the reference function's
// request pattern), and the service's start-up time and idle memory. The
// package has no production code; see BENCHMARKS.md at the repository root
// for the commands and the figures.
package bench
