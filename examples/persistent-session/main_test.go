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

// TestEmbedded runs both scenes against the embedded broker: every message
// published while the client was away arrives, on a resumed session.
func TestEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, options{topic: "ps/demo"}, &out)
	got := out.String()
	t.Logf("output:\n%s", got)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(got, "session_present=true"); n != 2 {
		t.Errorf("session present %d times, want 2 (after the outage and after the restart)", n)
	}
	for _, m := range []string{
		"sent during the outage 1", "sent during the outage 2", "sent during the outage 3",
		"sent while it was off 1", "sent while it was off 2",
	} {
		if want := `Received "` + m + `" (QoS 1).`; !strings.Contains(got, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	if !strings.Contains(got, "Done; the session is deleted from the broker.") {
		t.Error("the program did not finish")
	}
}

// TestBadServer: -server must be host:port, since the proxy dials it as is.
func TestBadServer(t *testing.T) {
	err := run(t.Context(), options{server: "mqtt://broker", topic: "t"}, &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "want host:port") {
		t.Fatalf("run with -server mqtt://broker: got %v", err)
	}
}

// TestUnreachable: a broker that is not there is reported as such.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := run(ctx, options{server: "127.0.0.1:1", topic: "t"}, &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("run against a closed port: got %v", err)
	}
	t.Log(err)
}

// TestServer runs the -server mode against a broker of its own.
func TestServer(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	if err := run(ctx, options{server: b.Addr(), topic: "ps/server"}, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "session_present=true"); n != 2 {
		t.Errorf("output:\n%s\nsession present %d times, want 2", out.String(), n)
	}
}
