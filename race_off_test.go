//go:build !race

package mqttas_test

// raceEnabled reports whether the tests run under the race detector, which
// caps live goroutines at 8,128 and slows everything down.
const raceEnabled = false
