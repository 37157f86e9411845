//go:build race

package backfill

// raceDetector is set when the tests run with -race, which makes them about
// ten times slower: the crash suite then samples fewer boundaries.
const raceDetector = true
