package mqtttest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// TruncateAndClose on CONNACK at every offset: end of stream inside the
// packet is io.ErrUnexpectedEOF, before it io.EOF, never a hang.
func TestProxyTruncateConnack(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b := StartBroker(t)
		full := connackSize(t, b.Addr(), v)
		for n := 0; n <= full; n++ {
			t.Run(strconv.Itoa(n), func(t *testing.T) {
				p := StartProxy(t, b.Addr())
				p.Rule(ToClient, func(h packet.FixedHeader, raw []byte) Action {
					if h.Type == packet.CONNACK {
						return TruncateAndClose(n)
					}
					return Forward()
				})
				c := dialRaw(t, p.Addr(), v)
				c.send(&packet.Connect{ClientID: "cut" + strconv.Itoa(n), CleanStart: true})
				pk, err := c.read(5 * time.Second)
				switch {
				case n == 0 && !errors.Is(err, io.EOF),
					n > 0 && n < full && !errors.Is(err, io.ErrUnexpectedEOF),
					n == full && err != nil:
					t.Fatalf("got %v, %v", pk, err)
				}
				if n == full {
					if err := c.expectEnd(); !errors.Is(err, io.EOF) {
						t.Fatalf("after a whole CONNACK: %v", err)
					}
				}
			})
		}
	})
}

// connackSize is the length of the broker's CONNACK for version v, seen
// through a rule.
func connackSize(t *testing.T, addr string, v packet.Version) int {
	p := StartProxy(t, addr)
	var size atomic.Int64
	p.Rule(ToClient, func(h packet.FixedHeader, raw []byte) Action {
		if h.Type == packet.CONNACK {
			size.Store(int64(len(raw)))
		}
		return Forward()
	})
	connectRaw(t, p.Addr(), v, "measure", true)
	return int(size.Load())
}

// Delay holds one packet back, and those behind it wait.
func TestProxyRuleDelay(t *testing.T) {
	_, p := brokerAndProxy(t)
	c, _ := connectRaw(t, p.Addr(), packet.V311, "delayed", true)
	const hold = 100 * time.Millisecond
	p.Rule(ToClient, func(h packet.FixedHeader, _ []byte) Action {
		if h.Type == packet.PINGRESP {
			return Delay(hold)
		}
		return Forward()
	})
	start := time.Now()
	c.send(&packet.Pingreq{})
	c.send(&packet.Publish{Topic: "d", QoS: 1, PacketID: 4})
	if pk := c.recv(); pk.Type() != packet.PINGRESP {
		t.Fatalf("got %v first, want PINGRESP", pk.Type())
	}
	if pk := c.recv(); pk.Type() != packet.PUBACK {
		t.Fatalf("got %v, want PUBACK", pk.Type())
	}
	if d := time.Since(start); d < hold {
		t.Fatalf("answered in %v, delay %v", d, hold)
	}
}

// A rule dropping PUBACK: the broker acknowledged, the client never hears.
func TestProxyRuleDropPuback(t *testing.T) {
	b, p := brokerAndProxy(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("q")
	if err != nil {
		t.Fatal(err)
	}
	p.Rule(ToClient, func(h packet.FixedHeader, _ []byte) Action {
		if h.Type == packet.PUBACK {
			return Drop()
		}
		return Forward()
	})
	c, _ := connectRaw(t, p.Addr(), packet.V311, "noack", true)
	c.send(&packet.Publish{Topic: "q", QoS: 1, PacketID: 1, Payload: []byte("x")})
	c.send(&packet.Pingreq{})
	// The broker sends PUBACK before PINGRESP on this connection.
	if pk := c.recv(); pk.Type() != packet.PINGRESP {
		t.Fatalf("got %v, want PINGRESP", pk.Type())
	}
	if r, err := obs.Next(ctx); err != nil || string(r.Payload) != "x" {
		t.Fatalf("broker got %+v, %v", r, err)
	}
}

// Duplicate, ResetConn and BlackholeFrom, on a live connection.
func TestProxyRuleActions(t *testing.T) {
	b, p := brokerAndProxy(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("act")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connectRaw(t, p.Addr(), packet.V311, "acts", true)

	p.Rule(ToBroker, func(h packet.FixedHeader, _ []byte) Action {
		if h.Type == packet.PUBLISH {
			return Duplicate()
		}
		return Forward()
	})
	c.send(&packet.Publish{Topic: "act", Payload: []byte("twice")})
	for range 2 {
		if r, err := obs.Next(ctx); err != nil || string(r.Payload) != "twice" {
			t.Fatalf("got %+v, %v", r, err)
		}
	}

	p.Heal()
	p.Rule(ToClient, func(h packet.FixedHeader, _ []byte) Action {
		if h.Type == packet.PINGRESP {
			return BlackholeFrom()
		}
		return Forward()
	})
	c.subscribe("act", 0)
	c.send(&packet.Pingreq{})
	c.send(&packet.Publish{Topic: "act", Payload: []byte("after")})
	if r, err := obs.Next(ctx); err != nil || string(r.Payload) != "after" {
		t.Fatalf("broker got %+v, %v", r, err)
	}
	c.expectSilence() // neither the PINGRESP nor the PUBLISH after it

	p.Heal()
	p.Rule(ToBroker, func(h packet.FixedHeader, _ []byte) Action {
		if h.Type == packet.PINGREQ {
			return ResetConn()
		}
		return Forward()
	})
	c2, _ := connectRaw(t, p.Addr(), packet.V311, "acts2", true)
	c2.send(&packet.Pingreq{})
	if _, err := c2.read(5 * time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %v, want ECONNRESET", err)
	}
}

// Bytes that are not MQTT are forwarded unchanged, rules or not.
func TestProxyFallsBackToBytes(t *testing.T) {
	p := StartProxy(t, startEcho(t))
	p.Rule(Both, func(packet.FixedHeader, []byte) Action { return Drop() })
	c := dialRaw(t, p.Addr(), packet.V311)
	// The start of a TLS ClientHello, then more.
	msg := append([]byte{0x16, 0x03, 0x01, 0x00, 0x05}, "hello, not MQTT"...)
	if _, err := c.conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c.conn, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
}
