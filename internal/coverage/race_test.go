//go:build race

package coverage

// raceDetector is set when the tests run with -race, which makes them about
// ten times slower: the randomised suites then run fewer trials.
const raceDetector = true
