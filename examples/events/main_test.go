package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas/examples/internal/syncbuf"
	"github.com/mqttas/mqttas/mqtttest"
)

// TestMain fails the run if the program leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEmbedded runs the program against its embedded broker, outage
// included, and checks that it saw the link go down and come back and got
// every message.
func TestEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, options{topic: "result", interval: 50 * time.Millisecond, count: 5}, &out)
	got := out.String()
	t.Logf("output:\n%s", got)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(got, "We are connected to broker.\n"); n != 2 {
		t.Errorf("connected %d times, want 2 (start and after the outage)", n)
	}
	if n := strings.Count(got, "WiFi or broker is down.\n"); n != 1 {
		t.Errorf("down %d times, want 1", n)
	}
	for _, m := range []string{"0", "1", "2", "3", "4"} {
		want := `Topic: "result" Message: "` + m + `" Retained: false`
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

// TestUnreachable: a broker that is not there is reported as such.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, options{server: "127.0.0.1:1", topic: "t"}, &out)
	if err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("run against a closed port: got %v, want a connect error", err)
	}
	t.Log(err)
}

// TestBadServer: a malformed -server is reported before anything is dialled.
func TestBadServer(t *testing.T) {
	err := run(t.Context(), options{server: "mqtt://broker:99999", topic: "t"}, &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "bad -server") {
		t.Fatalf("run with a bad -server: got %v", err)
	}
	t.Log(err)
}

// TestServer runs the -server mode against a broker of its own: no
// outage, and the program stops after -count messages.
func TestServer(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, options{server: b.Addr(), topic: "result", interval: 20 * time.Millisecond, count: 3}, &out)
	got := out.String()
	t.Logf("output:\n%s", got)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(got, "down") || !strings.Contains(got, `Message: "2"`) {
		t.Error("want three messages and no outage")
	}
}
