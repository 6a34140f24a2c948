// Package bench compares the packet codec of mqttas with the codecs of other
// Go MQTT libraries. It has no code of its own: the benchmarks and the tests
// that keep them honest are in codec_test.go, and README.md says how to run
// them and what they showed.
//
// It is a separate module so that the libraries it measures against never
// become dependencies of mqttas itself.
package bench
