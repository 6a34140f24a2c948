package main

import (
	"bytes"
	"math"
	"os"
	"testing"

	"github.com/mqttas/mqttas/internal/mosquitto"
)

// TestQuickRun runs the whole harness in -quick mode against a real
// mosquitto and fails if any scenario fails or any client loses a QoS 0
// message. Without mosquitto it skips, unless MQTTAS_REQUIRE_MOSQUITTO is
// set (as CI sets it), in which case it fails.
func TestQuickRun(t *testing.T) {
	if err := mosquitto.Installed(); err != nil {
		if v := os.Getenv(mosquitto.RequireEnv); v != "" && v != "0" {
			t.Fatalf("%v, and %s is set", err, mosquitto.RequireEnv)
		}
		t.Skipf("mosquitto is not installed (%v); skipping the harness smoke test (set %s=1 to fail instead)",
			err, mosquitto.RequireEnv)
	}
	var out, progress bytes.Buffer
	rows, err := run(options{quick: true}, &out, &progress)
	t.Logf("progress:\n%s\ntable:\n%s", progress.String(), out.String())
	if err != nil {
		t.Fatal(err)
	}
	checked := false
	for _, r := range rows {
		if r.Key != "qos0" || r.Better != "" {
			continue
		}
		checked = true
		for j, lib := range libraries() {
			if got := r.Values[j]; got != float64(quick.qos0) {
				t.Errorf("%s: subscriber received %v of %d QoS 0 messages", lib.name(), got, quick.qos0)
			}
		}
	}
	if !checked {
		t.Error("no QoS 0 received row in the results")
	}
	for _, r := range rows {
		for j, v := range r.Values {
			if math.IsNaN(v) && !(r.Key == "reconnect" && libraries()[j].name() == "raw") {
				t.Errorf("%s: %q not measured", libraries()[j].name(), r.Label)
			}
		}
	}
}
