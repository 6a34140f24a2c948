package mqttas_test

// Hostile acknowledgements on a live link: for identifiers the client never
// used, twice, in the wrong order, of the wrong kind, with the wrong number
// of codes. A stray acknowledgement is harmless (a resend may cross its
// answer): the client ignores it and keeps the link. One that cannot be
// decoded ends the link.

import (
	"testing"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// Acknowledgements for identifiers nobody is waiting for: ignored, the
// link kept, and the client still works on it.
func TestHostileStrayAck(t *testing.T) {
	for _, p := range []packet.Packet{
		&packet.Puback{PacketID: 999},
		&packet.Pubrec{PacketID: 999},
		&packet.Pubcomp{PacketID: 999},
		&packet.Suback{PacketID: 999, ReasonCodes: []packet.ReasonCode{0}},
		&packet.Unsuback{PacketID: 999},
	} {
		t.Run(p.Type().String(), func(t *testing.T) {
			in := hbInject(t, packet.V311, hbBytes(p, packet.V311), true, nil)
			c := hbConnect(t, in.hbBroker, nil)
			close(in.fire)
			hbRoundTrip(t, c)
			if err := c.Subscribe(fxCtx(t, hbWait), "a/b", 1); err != nil {
				t.Fatalf("Subscribe after a stray %v: %v", p.Type(), err)
			}
			hbLinkKept(t, c, in.hbBroker)
		})
	}
}

// hbLinkKept checks that the first connection is still the only one.
func hbLinkKept(t *testing.T, c *hbClient, b *hbBroker) {
	t.Helper()
	if s := c.Stats(); s.Outages != 0 || b.accepted() != 1 || !c.IsConnected() || c.LastError() != nil {
		t.Fatalf("link not kept: stats %+v, %d connections, connected %v, LastError %v",
			s, b.accepted(), c.IsConnected(), c.LastError())
	}
}

// A PUBREL for an identifier the client never received is answered with
// PUBCOMP all the same (MQTT 3.1.1 section 4.3.3: the broker may resend
// PUBREL after the client forgot the exchange), and the link is kept.
func TestHostilePubrelUnknownID(t *testing.T) {
	comp := make(chan uint16, 1)
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.accept(nil); err != nil || hc.send(&packet.Pubrel{PacketID: 77}) != nil {
			return
		}
		p, err := hc.nextOf(packet.PUBCOMP)
		if err != nil {
			return
		}
		comp <- p.(*packet.Pubcomp).PacketID
		hc.serveRest()
	})
	c := hbConnect(t, b, nil)
	select {
	case id := <-comp:
		if id != 77 {
			t.Fatalf("PUBCOMP for %d, want 77", id)
		}
	case <-fxCtx(t, hbWait).Done():
		t.Fatal("no PUBCOMP for the unknown PUBREL")
	}
	hbRoundTrip(t, c)
	hbLinkKept(t, c, b)
}

// hbAckScript answers a first connection with onPublish for every PUBLISH
// at QoS 1 or 2, and like a broker otherwise.
func hbAckScript(onPublish func(hc *hbConn, p *packet.Publish) bool) func(hc *hbConn) {
	return func(hc *hbConn) {
		if _, err := hc.accept(nil); err != nil {
			return
		}
		for {
			p, err := hc.next()
			if err != nil {
				return
			}
			if pub, ok := p.(*packet.Publish); ok && pub.QoS > 0 {
				if !onPublish(hc, pub) {
					return
				}
				continue
			}
			if !hc.answer(p) {
				return
			}
		}
	}
}

// A PUBREC for a QoS 1 message: the wrong acknowledgement for it. The
// client ignores it (no PUBREL follows) and completes on the PUBACK.
func TestHostilePubrecForQoS1(t *testing.T) {
	rel := make(chan uint16, 8)
	b := hbStart(t, packet.V311, hbAckScript(func(hc *hbConn, p *packet.Publish) bool {
		if hc.send(&packet.Pubrec{PacketID: p.PacketID}) != nil || hc.send(&packet.Puback{PacketID: p.PacketID}) != nil {
			return false
		}
		// The client writes any PUBREL before its next packet, so read
		// up to the QoS 0 marker the test publishes once Publish returns.
		for {
			q, err := hc.next()
			if err != nil {
				return false
			}
			switch q := q.(type) {
			case *packet.Pubrel:
				rel <- q.PacketID
			case *packet.Publish:
				return string(q.Payload) == "marker"
			default:
				if !hc.answer(q) {
					return false
				}
			}
		}
	}))
	c := hbConnect(t, b, nil)
	if err := c.Publish(fxCtx(t, hbWait), "q1", []byte("x"), 1, false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := c.Publish(fxCtx(t, hbWait), "q0", []byte("marker"), 0, false); err != nil {
		t.Fatalf("Publish marker: %v", err)
	}
	hbRoundTrip(t, c) // the broker has read the marker before it answers this
	select {
	case id := <-rel:
		t.Fatalf("the client sent PUBREL %d for a QoS 1 message", id)
	default:
	}
	hbLinkKept(t, c, b)
}

// A PUBCOMP before the PUBREC of a QoS 2 message: ignored, since the
// exchange is not at that step. The PUBREC that follows gets its PUBREL
// and the PUBCOMP after that completes the publish.
func TestHostilePubcompBeforePubrec(t *testing.T) {
	rel := make(chan uint16, 1)
	b := hbStart(t, packet.V311, hbAckScript(func(hc *hbConn, p *packet.Publish) bool {
		if hc.send(&packet.Pubcomp{PacketID: p.PacketID}) != nil || hc.send(&packet.Pubrec{PacketID: p.PacketID}) != nil {
			return false
		}
		r, err := hc.nextOf(packet.PUBREL)
		if err != nil {
			return false
		}
		rel <- r.(*packet.Pubrel).PacketID
		return hc.send(&packet.Pubcomp{PacketID: p.PacketID}) == nil
	}))
	c := hbConnect(t, b, nil)
	if err := c.Publish(fxCtx(t, hbWait), "q2", []byte("x"), 2, false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case <-rel:
	default:
		t.Fatal("Publish returned before the client sent PUBREL: the early PUBCOMP completed it")
	}
	if s := c.Stats(); s.InFlight != 0 {
		t.Fatalf("stats %+v: the exchange is still in flight", s)
	}
	hbLinkKept(t, c, b)
}

// hbSubackScript answers every SUBSCRIBE on the first connection with
// reply(sub); later connections serve like a broker.
func hbSubackScript(reply func(s *packet.Subscribe) [][]byte) func(hc *hbConn) {
	return func(hc *hbConn) {
		if hc.k > 0 {
			hc.serve()
			return
		}
		if _, err := hc.accept(nil); err != nil {
			return
		}
		for {
			p, err := hc.next()
			if err != nil {
				return
			}
			if s, ok := p.(*packet.Subscribe); ok {
				for _, b := range reply(s) {
					if hc.raw(b) != nil {
						return
					}
				}
				continue
			}
			if !hc.answer(p) {
				return
			}
		}
	}
}

// The same SUBACK twice: the second is for an exchange already settled,
// and is ignored.
func TestHostileDuplicateSuback(t *testing.T) {
	b := hbStart(t, packet.V311, hbSubackScript(func(s *packet.Subscribe) [][]byte {
		ack := hbBytes(&packet.Suback{PacketID: s.PacketID, ReasonCodes: []packet.ReasonCode{1}}, packet.V311)
		return [][]byte{ack, ack}
	}))
	c := hbConnect(t, b, nil)
	for _, f := range []string{"a/1", "a/2", "a/3"} {
		if err := c.Subscribe(fxCtx(t, hbWait), f, 1); err != nil {
			t.Fatalf("Subscribe %s: %v", f, err)
		}
	}
	hbRoundTrip(t, c)
	hbLinkKept(t, c, b)
}

// A SUBACK whose number of codes does not match the SUBSCRIBE's filters
// (MQTT-3.9.3-1). With too many, the client reads the code at the
// filter's position and ignores the rest, keeping the link; with none,
// the SUBACK is a protocol violation that ends the link, and the
// subscription is made again on the next one.
func TestHostileSubackWrongCodeCount(t *testing.T) {
	codes := func(cs ...byte) func(s *packet.Subscribe) [][]byte {
		return func(s *packet.Subscribe) [][]byte {
			return [][]byte{hbFrame(0x90, append([]byte{byte(s.PacketID >> 8), byte(s.PacketID)}, cs...)...)}
		}
	}
	t.Run("extra-granted", func(t *testing.T) {
		b := hbStart(t, packet.V311, hbSubackScript(codes(1, 0x80, 2)))
		c := hbConnect(t, b, nil)
		if err := c.Subscribe(fxCtx(t, hbWait), "a/b", 1); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		hbLinkKept(t, c, b)
	})
	t.Run("extra-refused", func(t *testing.T) {
		b := hbStart(t, packet.V311, hbSubackScript(codes(0x80, 1)))
		c := hbConnect(t, b, nil)
		err := c.Subscribe(fxCtx(t, hbWait), "a/b", 1)
		hbIs(t, err, mqttas.ErrRefused, `"a/b"`)
		hbLinkKept(t, c, b)
	})
	t.Run("none", func(t *testing.T) {
		b := hbStart(t, packet.V311, hbSubackScript(codes()))
		c := hbConnect(t, b, nil)
		if err := c.Subscribe(fxCtx(t, hbWait), "a/b", 1); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		fxWaitDown(t, c.Client, hbWait)
		hbIs(t, c.LastError(), packet.ErrProtocolViolation, "bad SUBACK", "at least one reason code")
		if s := c.Stats(); s.Outages != 1 || b.accepted() != 2 {
			t.Fatalf("stats %+v after %d connections, want one outage, two connections", s, b.accepted())
		}
	})
	t.Run("invalid-code", func(t *testing.T) {
		b := hbStart(t, packet.V311, hbSubackScript(codes(0x03)))
		c := hbConnect(t, b, nil)
		if err := c.Subscribe(fxCtx(t, hbWait), "a/b", 1); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		fxWaitDown(t, c.Client, hbWait)
		hbIs(t, c.LastError(), packet.ErrProtocolViolation, "bad SUBACK", "return code")
	})
}
