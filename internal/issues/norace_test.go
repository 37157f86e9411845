//go:build !race

package issues

// raceDetector is set when the tests run with -race, which makes the
// simulator-heavy measurements many times slower.
const raceDetector = false
