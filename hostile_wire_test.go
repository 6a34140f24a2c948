package mqttas_test

// Hostile framing on a live link: lengths that cannot be, packets cut
// short, types that do not exist, packets too large. Every one ends the
// connection (Down, with the reason in LastError), the client reconnects
// (Up), nothing partial is delivered, and a hostile length costs no memory.

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// hbInjector is a broker whose first connection, once the test closes
// fire, writes inject and then reads until the client hangs up (or, with
// keep, goes on serving like a broker); later connections, if any, run
// then (nil: serve like a broker).
type hbInjector struct {
	*hbBroker
	fire chan struct{}
	got  chan []packet.Type // without keep: what conn 0 read after inject
}

func hbInject(t *testing.T, v packet.Version, inject []byte, keep bool, then func(hc *hbConn)) *hbInjector {
	t.Helper()
	in := &hbInjector{fire: make(chan struct{}), got: make(chan []packet.Type, 1)}
	in.hbBroker = hbStart(t, v, func(hc *hbConn) {
		if hc.k > 0 {
			if then != nil {
				then(hc)
			} else {
				hc.serve()
			}
			return
		}
		if _, err := hc.accept(nil); err != nil {
			return
		}
		select {
		case <-in.fire:
		case <-hc.quit:
			return
		}
		hc.raw(inject)
		if keep {
			hc.serveRest()
			return
		}
		var got []packet.Type
		for {
			p, err := hc.next()
			if err != nil {
				in.got <- got
				return
			}
			got = append(got, p.Type())
		}
	})
	return in
}

// hbInjectOutage connects a client to a broker that injects bytes on the
// live link, and returns the client and why the link went down once it
// is back up.
func hbInjectOutage(t *testing.T, v packet.Version, inject []byte, tweak func(*mqttas.Config)) (*hbClient, error) {
	t.Helper()
	in := hbInject(t, v, inject, false, nil)
	c := hbConnect(t, in.hbBroker, tweak)
	close(in.fire)
	err := hbOutage(t, c)
	if s := c.Stats(); s.Outages != 1 || s.Reconnects != 1 {
		t.Fatalf("stats %+v, want one outage and one reconnect", s)
	}
	hbRoundTrip(t, c)
	hbNoMessage(t, c)
	return c, err
}

// hbRoundTrip proves the link works: a QoS 1 publish acknowledged.
func hbRoundTrip(t *testing.T, c *hbClient) {
	t.Helper()
	if err := c.Publish(fxCtx(t, hbWait), "hostile/rt", []byte("rt"), 1, false); err != nil {
		t.Fatalf("round trip after the fault: %v", err)
	}
}

// The largest remaining length there is, 268,435,455 bytes, announced in
// a PUBLISH header with no body behind it: the client refuses it from the
// header alone (MaxPacketSize defaults to 1 MiB) without waiting for the
// body or setting memory aside for it, and reconnects.
func TestHostileRemainingLengthMax(t *testing.T) {
	hdr := []byte{0x30, 0xff, 0xff, 0xff, 0x7f}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := hbInjectOutage(t, packet.V311, hdr, nil)
	runtime.ReadMemStats(&after)
	hbIs(t, err, packet.ErrPacketTooLarge, "268435460 bytes")
	if d := after.TotalAlloc - before.TotalAlloc; d > 32<<20 {
		t.Fatalf("the client allocated %d MiB around a hostile length", d>>20)
	}
}

// The same length in place of the CONNACK: Connect fails at once.
func TestHostileRemainingLengthMaxInsteadOfConnack(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.next(); err == nil {
			hc.raw([]byte{0x20, 0xff, 0xff, 0xff, 0x7f})
			hc.next()
		}
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := hbConnectErr(t, b, nil)
	runtime.ReadMemStats(&after)
	hbIs(t, err, packet.ErrPacketTooLarge, "waiting for CONNACK")
	if d := after.TotalAlloc - before.TotalAlloc; d > 32<<20 {
		t.Fatalf("the client allocated %d MiB around a hostile length", d>>20)
	}
}

// A remaining length in five bytes (MQTT allows four).
func TestHostileVarintFiveBytes(t *testing.T) {
	_, err := hbInjectOutage(t, packet.V311, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, nil)
	hbIs(t, err, packet.ErrMalformed, "remaining length", "invalid variable byte integer")
}

// Packet types 0 and 15 do not exist in MQTT 3.1.1 (15 is 5.0's AUTH).
func TestHostileUnknownPacketType(t *testing.T) {
	t.Run("type0", func(t *testing.T) {
		_, err := hbInjectOutage(t, packet.V311, []byte{0x00, 0x00}, nil)
		hbIs(t, err, packet.ErrMalformed, "reserved type 0")
	})
	t.Run("type15", func(t *testing.T) {
		_, err := hbInjectOutage(t, packet.V311, []byte{0xf0, 0x00}, nil)
		hbIs(t, err, nil, "AUTH from the broker on an MQTT 3.1.1 connection")
	})
}

// A 3.1.1 broker never sends DISCONNECT: the client treats it as the end
// of the connection and reconnects.
func TestHostileServerDisconnect311(t *testing.T) {
	_, err := hbInjectOutage(t, packet.V311, []byte{0xe0, 0x00}, nil)
	hbIs(t, err, nil, "broker sent DISCONNECT")
}

// A PUBLISH over Config.MaxPacketSize is refused from its header and
// never delivered; the next connection's messages are.
func TestHostilePublishOverMaxPacketSize(t *testing.T) {
	big := hbBytes(&packet.Publish{Topic: "big", Payload: make([]byte, 2000)}, packet.V311)
	in := hbInject(t, packet.V311, big, false, func(hc *hbConn) {
		if _, err := hc.accept(nil); err == nil && hc.send(&packet.Publish{Topic: "small", Payload: []byte("ok")}) == nil {
			hc.serveRest()
		}
	})
	c := hbConnect(t, in.hbBroker, func(cfg *mqttas.Config) { cfg.MaxPacketSize = 1024 })
	close(in.fire)
	hbIs(t, hbOutage(t, c), packet.ErrPacketTooLarge, "exceeds the maximum packet size of 1024")
	if m := fxRecv(t, c.Client, hbWait); m.Topic != "small" {
		t.Fatalf("first message %q, want the one after the reconnect", m.Topic)
	}
}

// A PUBLISH cut short after every prefix of its bytes, the socket then
// closed, one connection per prefix: each time the client goes down and
// comes back, and only the one PUBLISH sent whole is ever delivered.
func TestHostilePublishTruncatedEveryOffset(t *testing.T) {
	full := hbBytes(&packet.Publish{Topic: "t/x", Payload: []byte("whole"), QoS: 1, PacketID: 7}, packet.V311)
	cut := make(chan int)
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.accept(nil); err != nil {
			return
		}
		select {
		case n := <-cut:
			hc.raw(full[:n])
			if n == len(full) {
				hc.serveRest()
			}
		case <-hc.quit:
		}
	})
	c := hbConnect(t, b, nil)
	for n := range len(full) {
		cut <- n
		err := hbOutage(t, c)
		want := io.ErrUnexpectedEOF
		if n == 0 {
			want = nil // nothing came: a plain close
		}
		hbIs(t, err, want)
		hbNoMessage(t, c)
	}
	cut <- len(full)
	if m := fxRecv(t, c.Client, hbWait); m.Topic != "t/x" || string(m.Payload) != "whole" {
		t.Fatalf("got %q %q", m.Topic, m.Payload)
	}
	if s := c.Stats(); s.Outages != uint64(len(full)) || s.Reconnects != uint64(len(full)) {
		t.Fatalf("stats %+v, want %d outages and reconnects", s, len(full))
	}
	hbNoMessage(t, c)
}

// A SUBACK cut short after every prefix: the link goes down, and on the
// next one the subscription is made again and Subscribe succeeds.
func TestHostileSubackTruncatedEveryOffset(t *testing.T) {
	full := hbBytes(&packet.Suback{PacketID: 1, ReasonCodes: []packet.ReasonCode{1}}, packet.V311)
	for n := range len(full) {
		t.Run(fmt.Sprintf("prefix=%d", n), func(t *testing.T) {
			b := hbStart(t, packet.V311, func(hc *hbConn) {
				if hc.k > 0 {
					hc.serve()
					return
				}
				if _, err := hc.accept(nil); err != nil {
					return
				}
				if _, err := hc.nextOf(packet.SUBSCRIBE); err == nil {
					hc.raw(full[:n])
				}
			})
			c := hbConnect(t, b, nil)
			if err := c.Subscribe(fxCtx(t, hbWait), "t/#", 1); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			fxWaitDown(t, c.Client, hbWait)
			if s := c.Stats(); s.Outages != 1 || b.accepted() != 2 {
				t.Fatalf("stats %+v after %d connections, want one outage, two connections", s, b.accepted())
			}
			if err := c.LastError(); n > 0 && !strings.Contains(err.Error(), io.ErrUnexpectedEOF.Error()) {
				t.Fatalf("LastError %v, want an unexpected EOF", err)
			}
		})
	}
}
