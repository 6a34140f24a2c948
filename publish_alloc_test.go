package mqttas_test

// What a QoS 0 publish costs the client, per protocol version. The broker
// is a peer that only discards bytes, so every allocation counted is the
// client's.

import (
	"context"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

// CONNACKs, success, no session: 3.1.1, and 5.0 with no properties.
var (
	connack311 = []byte{0x20, 0x02, 0x00, 0x00}
	connackV5  = []byte{0x20, 0x03, 0x00, 0x00, 0x00}
)

func discardClient(tb testing.TB, v5 bool) *mqttas.Client {
	tb.Helper()
	connack := connack311
	if v5 {
		connack = connackV5
	}
	addr := mutePeer(tb, connack)
	c := fxNewClient(tb, mqttas.Config{Server: addr, MQTTv5: v5, KeepAlive: -1})
	if err := c.Connect(fxCtx(tb, 5*time.Second)); err != nil {
		tb.Fatal(err)
	}
	return c
}

// An MQTT 5.0 publish without properties must cost no more than a 3.1.1
// one: no 3.1.1 user pays for v5, and no v5 user pays for unused features.
func TestPublishQoS0AllocsV5NoMoreThan311(t *testing.T) {
	ctx := context.Background()
	payload := make([]byte, 64)
	count := func(v5 bool) float64 {
		c := discardClient(t, v5)
		return testing.AllocsPerRun(200, func() {
			if err := c.Publish(ctx, "sensors/t1", payload, 0, false); err != nil {
				t.Fatal(err)
			}
		})
	}
	v3, v5 := count(false), count(true)
	t.Logf("allocations per QoS 0 publish: 3.1.1 %.1f, 5.0 %.1f", v3, v5)
	if v5 > v3 {
		t.Errorf("a 5.0 QoS 0 publish allocates %.1f times, more than 3.1.1's %.1f", v5, v3)
	}
}

func BenchmarkPublishQoS0(b *testing.B) {
	for _, tc := range []struct {
		name string
		v5   bool
	}{{"3.1.1", false}, {"5.0", true}} {
		b.Run(tc.name, func(b *testing.B) {
			c := discardClient(b, tc.v5)
			ctx := context.Background()
			payload := make([]byte, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if err := c.Publish(ctx, "sensors/t1", payload, 0, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
