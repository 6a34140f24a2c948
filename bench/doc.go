// Package bench compares mqttas with other Go MQTT libraries in two ways.
// The packet codecs: the benchmarks and the tests that keep them honest are
// in codec_test.go. The whole clients, against a real mosquitto: the
// harness in cmd/mqttbench, run with "go run ./cmd/mqttbench". README.md
// says how to run both and what each measures.
//
// It is a separate module so that the libraries it measures against never
// become dependencies of mqttas itself.
package bench
