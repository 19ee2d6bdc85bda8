//go:build !race

package cli

// raceEnabled reports that the tests run under the race detector, so the
// binary under test is built with it too.
const raceEnabled = false
