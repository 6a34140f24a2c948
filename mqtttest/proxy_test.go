package mqtttest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// brokerAndProxy starts a broker and a proxy in front of it.
func brokerAndProxy(t *testing.T) (*Broker, *Proxy) {
	b := StartBroker(t)
	return b, StartProxy(t, b.Addr())
}

func TestProxyForwards(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b, p := brokerAndProxy(t)
		ctx := testCtx(t)
		obs, err := b.Subscribe("f")
		if err != nil {
			t.Fatal(err)
		}
		c, _ := connectRaw(t, p.Addr(), v, "fwd", true)
		if err := p.WaitConns(ctx, 1); err != nil {
			t.Fatal(err)
		}
		c.subscribe("f", 1)
		c.send(&packet.Publish{Topic: "f", QoS: 1, PacketID: 3, Payload: []byte("via proxy")})
		if ack, ok := c.recv().(*packet.Puback); !ok || ack.PacketID != 3 {
			t.Fatalf("want PUBACK 3, got %+v", ack)
		}
		if pub := c.recvPublish(); string(pub.Payload) != "via proxy" {
			t.Fatalf("got %q", pub.Payload)
		}
		if r, err := obs.Next(ctx); err != nil || r.ClientID != "fwd" {
			t.Fatalf("observer: %+v, %v", r, err)
		}
		if p.Accepted() != 1 || p.Conns() != 1 {
			t.Fatalf("Accepted %d Conns %d", p.Accepted(), p.Conns())
		}
		// The broker closes after DISCONNECT; the proxy passes the FIN on
		// and ends the connection once the client has closed too.
		c.send(&packet.Disconnect{})
		if err := c.expectEnd(); !errors.Is(err, io.EOF) {
			t.Fatalf("after DISCONNECT: %v", err)
		}
		if p.Conns() != 1 {
			t.Fatal("connection ended before the client closed")
		}
		_ = c.conn.Close()
		if err := p.WaitConns(ctx, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// Blackhole(Both): writes succeed, nothing arrives either way.
func TestProxyBlackhole(t *testing.T) {
	b, p := brokerAndProxy(t)
	obs, err := b.Subscribe("bh")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connectRaw(t, p.Addr(), packet.V311, "bh", true)
	c.subscribe("bh", 0)

	p.Blackhole(Both)
	c.send(&packet.Publish{Topic: "bh", Payload: []byte("into the void")})
	c.send(&packet.Pingreq{})
	c.expectSilence() // no PINGRESP, no PUBLISH
	if r, err := obs.Next(timeout(t, silence)); err == nil {
		t.Fatalf("broker received %+v through a blackhole", r)
	}
	if p.Conns() != 1 {
		t.Fatal("blackhole closed the connection")
	}
}

// Blackhole(ToBroker): the client's packets vanish, the broker's arrive.
func TestProxyBlackholeToBroker(t *testing.T) {
	b, p := brokerAndProxy(t)
	c, _ := connectRaw(t, p.Addr(), packet.V5, "oneway", true)
	c.subscribe("ow", 0)
	p.Blackhole(ToBroker)

	c.send(&packet.Pingreq{})
	if err := b.Publish("ow", []byte("still flowing"), 0, false); err != nil {
		t.Fatal(err)
	}
	// The broker-to-client half still works; the PINGRESP never comes.
	if pub := c.recvPublish(); string(pub.Payload) != "still flowing" {
		t.Fatalf("got %q", pub.Payload)
	}
	c.expectSilence()
}

// Blackhole(ToClient): the broker sees everything and answers into the
// void. On a fresh connection that is a broker that never sends CONNACK.
func TestProxyBlackholeToClient(t *testing.T) {
	b, p := brokerAndProxy(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("ow")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connectRaw(t, p.Addr(), packet.V311, "oneway", true)
	p.Blackhole(ToClient)
	c.send(&packet.Publish{Topic: "ow", QoS: 1, PacketID: 1, Payload: []byte("up")})
	if r, err := obs.Next(ctx); err != nil || string(r.Payload) != "up" {
		t.Fatalf("broker got %+v, %v", r, err)
	}
	c.send(&packet.Pingreq{})
	c.expectSilence() // neither PUBACK nor PINGRESP

	fresh := dialRaw(t, p.Addr(), packet.V311)
	fresh.send(&packet.Connect{ClientID: "nack", CleanStart: true})
	fresh.expectSilence()
}

// StopReading: the proxy stops reading, the kernel buffers fill and the
// sender's write blocks until its deadline.
func TestProxyStopReading(t *testing.T) {
	_, p := brokerAndProxy(t)
	c, _ := connectRaw(t, p.Addr(), packet.V311, "stall", true)
	p.StopReading(ToBroker)

	// One PUBLISH announcing 64 MiB, far more than loopback socket
	// buffers hold, written in 1 MiB pieces.
	const size = 64 << 20
	rem := 2 + len("big") + size
	hdr := []byte{0x30, byte(rem) | 0x80, byte(rem>>7) | 0x80, byte(rem>>14) | 0x80, byte(rem >> 21), 0, 3, 'b', 'i', 'g'}
	if err := c.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Write(hdr); err != nil {
		t.Fatal(err)
	}
	piece := make([]byte, 1<<20)
	for wrote := 0; wrote < size; {
		n, err := c.conn.Write(piece)
		wrote += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write failed with %v", err)
			}
			t.Logf("writer blocked after %d KiB", wrote>>10)
			return
		}
	}
	t.Fatal("wrote 64 MiB into a proxy that stopped reading")
}

// Reset: both peers see ECONNRESET.
func TestProxyReset(t *testing.T) {
	_, p := brokerAndProxy(t)
	ctx := testCtx(t)
	c, _ := connectRaw(t, p.Addr(), packet.V311, "rst", true)
	p.Reset()
	if _, err := c.read(5 * time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client saw %v, want ECONNRESET", err)
	}
	if err := p.WaitConns(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// CloseConns: FIN, so the client reads end of stream.
func TestProxyCloseConns(t *testing.T) {
	_, p := brokerAndProxy(t)
	ctx := testCtx(t)
	c, _ := connectRaw(t, p.Addr(), packet.V311, "fin", true)
	p.CloseConns()
	if err := c.expectEnd(); !errors.Is(err, io.EOF) {
		t.Fatalf("client saw %v, want EOF", err)
	}
	_ = c.conn.Close()
	if err := p.WaitConns(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// Latency with jitter delays packets but keeps their order, both ways.
func TestProxyLatencyPreservesOrder(t *testing.T) {
	b, p := brokerAndProxy(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("up")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connectRaw(t, p.Addr(), packet.V311, "slow", true)
	c.subscribe("down", 0)
	const latency, n = 20 * time.Millisecond, 100
	p.Latency(latency, 20*time.Millisecond)

	start := time.Now()
	for i := range n {
		c.send(&packet.Publish{Topic: "up", Payload: []byte(strconv.Itoa(i))})
		if err := b.Publish("down", []byte(strconv.Itoa(i)), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		r, err := obs.Next(ctx)
		if err != nil || string(r.Payload) != strconv.Itoa(i) {
			t.Fatalf("up %d: got %+v, %v", i, r, err)
		}
		if pub := c.recvPublish(); string(pub.Payload) != strconv.Itoa(i) {
			t.Fatalf("down %d: got %q", i, pub.Payload)
		}
	}
	if d := time.Since(start); d < latency {
		t.Fatalf("all delivered in %v, latency %v", d, latency)
	}
}

// Chunk(1): one byte per write still delivers whole packets.
func TestProxyChunkOneByte(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b, p := brokerAndProxy(t)
		ctx := testCtx(t)
		obs, err := b.Subscribe("c")
		if err != nil {
			t.Fatal(err)
		}
		p.Chunk(1)
		c, _ := connectRaw(t, p.Addr(), v, "slicer", true)
		c.subscribe("c", 1)
		payload := bytes.Repeat([]byte("0123456789"), 100)
		c.send(&packet.Publish{Topic: "c", QoS: 1, PacketID: 5, Payload: payload})
		if ack, ok := c.recv().(*packet.Puback); !ok || ack.PacketID != 5 {
			t.Fatalf("want PUBACK 5, got %+v", ack)
		}
		if pub := c.recvPublish(); !bytes.Equal(pub.Payload, payload) {
			t.Fatal("payload changed")
		}
		if r, err := obs.Next(ctx); err != nil || !bytes.Equal(r.Payload, payload) {
			t.Fatalf("broker got %d bytes, %v", len(r.Payload), err)
		}
	})
}

// Heal restores an open connection: data held while the proxy stopped
// reading is delivered, and new data flows after a blackhole.
func TestProxyHeal(t *testing.T) {
	b, p := brokerAndProxy(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("h")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connectRaw(t, p.Addr(), packet.V311, "healed", true)
	p.StopReading(ToBroker)
	c.send(&packet.Publish{Topic: "h", Payload: []byte("held")})
	p.Heal()
	if r, err := obs.Next(ctx); err != nil || string(r.Payload) != "held" {
		t.Fatalf("got %+v, %v", r, err)
	}

	p.Blackhole(Both)
	p.Heal()
	c.send(&packet.Pingreq{})
	if pk := c.recv(); pk.Type() != packet.PINGRESP {
		t.Fatalf("got %v, want PINGRESP", pk.Type())
	}
}

// Refuse: the port answers, the connection closes at once.
func TestProxyRefuse(t *testing.T) {
	_, p := brokerAndProxy(t)
	p.Refuse(true)
	c := dialRaw(t, p.Addr(), packet.V311)
	err := c.expectEnd()
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %v, want EOF or ECONNRESET", err)
	}
	if p.Accepted() != 1 || p.Conns() != 0 {
		t.Fatalf("Accepted %d Conns %d", p.Accepted(), p.Conns())
	}
	p.Refuse(false)
	connectRaw(t, p.Addr(), packet.V311, "welcome", true)
}

// A stopped broker behind the proxy: the client's connection closes.
func TestProxyTargetDown(t *testing.T) {
	b, p := brokerAndProxy(t)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, p.Addr(), packet.V311)
	if err := c.expectEnd(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want EOF", err)
	}
}

func TestProxyClose(t *testing.T) {
	_, p := brokerAndProxy(t)
	c, _ := connectRaw(t, p.Addr(), packet.V311, "bye", true)
	p.StopReading(Both) // goroutines parked on a fault must exit too
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := c.read(5 * time.Second); err == nil {
		t.Fatal("connection survived Close")
	}
}
