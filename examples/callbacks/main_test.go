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

// TestEmbedded runs the program against its embedded broker: every request
// is answered by the callback, which publishes the reply itself.
func TestEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, options{topic: "demo", count: 3}, &out)
	got := out.String()
	t.Logf("output:\n%s", got)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{
		`responder: "hello 1" -> "HELLO 1"`,
		`reply "HELLO 1"`,
		`reply "HELLO 2"`,
		`reply "HELLO 3"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

// TestBadFlags: a bad -count or -server is reported before anything is
// dialled.
func TestBadFlags(t *testing.T) {
	for _, o := range []options{
		{topic: "demo", count: 0},
		{server: "tcp://", topic: "demo", count: 1},
	} {
		err := run(t.Context(), o, &syncbuf.Buffer{})
		if err == nil {
			t.Errorf("run(%+v) succeeded", o)
			continue
		}
		t.Log(err)
	}
}

// TestServer runs the -server mode against a broker of its own.
func TestServer(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	if err := run(ctx, options{server: b.Addr(), topic: "x", count: 2}, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `reply "HELLO 2"`) {
		t.Errorf("output:\n%s\nwant two replies", out.String())
	}
}
