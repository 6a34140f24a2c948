package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas/mqtttest"
)

// TestMain fails the run if the program leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer that the program and the client's logger
// may write to at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEmbedded runs both scenes against the embedded broker: every message
// published while the client was away arrives, on a resumed session.
func TestEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncBuffer
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
	err := run(t.Context(), options{server: "mqtt://broker", topic: "t"}, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "want host:port") {
		t.Fatalf("run with -server mqtt://broker: got %v", err)
	}
}

// TestUnreachable: a broker that is not there is reported as such.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := run(ctx, options{server: "127.0.0.1:1", topic: "t"}, &syncBuffer{})
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
	var out syncBuffer
	if err := run(ctx, options{server: b.Addr(), topic: "ps/server"}, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "session_present=true"); n != 2 {
		t.Errorf("output:\n%s\nsession present %d times, want 2", out.String(), n)
	}
}
