package mqttas_test

// Hostile brokers that attack resources rather than the grammar: a flood
// of unprompted packets, a broker that stops reading so the TCP window
// fills, and one that hangs up after every CONNACK to provoke a reconnect
// storm. The client must stay bounded in memory, declare a stuck link dead
// within ResponseTime, and hold its backoff.

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// 10,000 PINGRESPs nobody asked for, in one burst: each is a valid
// packet, so the link is kept; the flood costs no memory to speak of, and
// the client answers at once afterwards.
func TestHostilePingrespFlood(t *testing.T) {
	flood := bytes.Repeat(hbBytes(&packet.Pingresp{}, packet.V311), 10_000)
	in := hbInject(t, packet.V311, flood, true, nil)
	c := hbConnect(t, in.hbBroker, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	close(in.fire)
	start := time.Now()
	hbRoundTrip(t, c) // answered after the flood, on the same stream
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("the flood cost %d KiB of allocations", d>>10)
	}
	if took > time.Second {
		t.Fatalf("round trip after the flood took %v", took)
	}
	hbLinkKept(t, c, in.hbBroker)
}

// The broker takes the CONNACK exchange and then reads nothing more: the
// client's QoS 0 publishes of 256 KiB fill the socket buffers until a
// write blocks. The write deadline (ResponseTime) then declares the link
// dead; it does not hang, and the next connection takes the publishes.
func TestHostileBrokerStopsReading(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if hc.k > 0 {
			hc.serve()
			return
		}
		if _, err := hc.accept(nil); err != nil {
			return
		}
		<-hc.quit // never read again; cleanup closes the socket
	})
	c := hbConnect(t, b, nil)
	ctx, cancel := context.WithCancel(fxCtx(t, 10*time.Second))
	var wg sync.WaitGroup
	wg.Add(1)
	payload := make([]byte, 256<<10)
	go func() {
		defer wg.Done()
		for c.Publish(ctx, "bulk", payload, 0, false) == nil {
		}
	}()
	fxWaitDown(t, c.Client, hbWait+hbResponse)
	cancel()
	wg.Wait()
	hbIs(t, c.LastError(), nil, "broker stopped reading", "not finished within ResponseTime")
	fxWaitUp(t, c.Client, hbWait)
	hbRoundTrip(t, c)
}

// The broker accepts every connection and closes it right after the
// CONNACK. Every reconnect then fails the way an outage does, and the
// backoff (ReconnectMin 100 ms doubling to ReconnectMax 400 ms, each ±25%)
// bounds the attempts: in 3 s at most 1 + 2 + 9 of them if every delay
// is the shortest, 1 + 2 + 5 if every one is the longest (the lower bound
// asserted is looser, for a loaded machine).
func TestHostileReconnectStorm(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) { hc.accept(nil) })
	cfg := hbConfig(b)
	cfg.ReconnectMin = 100 * time.Millisecond
	cfg.ReconnectMax = 400 * time.Millisecond
	c := hbNew(t, cfg)
	if err := c.Connect(fxCtx(t, hbWait)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	window := time.NewTimer(3 * time.Second) // the condition under test
	<-window.C
	n := b.accepted()
	c.Close()
	if n > 1+2+9 || n < 4 {
		t.Fatalf("%d connections in 3s, want 4 to 12 with backoff from %v to %v", n, cfg.ReconnectMin, cfg.ReconnectMax)
	}
	t.Logf("%d connections in 3s; stats %+v", n, c.Stats())
}
