package mqttas

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func TestSmokeClient(t *testing.T) {
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.AddHook(new(auth.AllowHook), nil)
	l := listeners.NewTCP(listeners.Config{ID: "t1", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	addr := l.Address()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(Config{Server: addr, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.IsConnected() {
		t.Fatal("not connected")
	}
	if err := c.Subscribe(ctx, "a/#", 2); err != nil {
		t.Fatal(err)
	}
	for q := byte(0); q < 3; q++ {
		if err := c.Publish(ctx, "a/b", []byte{'x', '0' + q}, q, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		select {
		case m := <-c.Messages():
			t.Logf("got %+v", m)
		case <-ctx.Done():
			t.Fatal("timeout")
		}
	}
	t.Logf("stats %+v, up=%v", c.Stats(), c.BrokerUp(ctx))
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "a", nil, 0, false); err != ErrClosed {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// The default resolver can only be seen from inside: an external test must
// never send to it.
func TestWANResolverDefault(t *testing.T) {
	s, err := Config{Server: "b"}.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.WANResolver != "8.8.8.8:53" {
		t.Errorf("default WANResolver = %q, want 8.8.8.8:53 (mqtt_as's wan_ok)", s.WANResolver)
	}
}
