package mqttas_test

// Helpers of the MQTT 5.0 tests: a scripted fake 5.0 broker for what the
// embedded broker cannot be made to do (a Receive Maximum it counts, a
// Server Keep Alive, a DISCONNECT with a reason, a PUBACK 0x10, a topic
// alias out of range), and a recorder of the packets a fault proxy passes,
// decoded as MQTT 5.0 (fxParseWire decodes as 3.1.1).

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// v5Fake is a scripted MQTT 5.0 broker on loopback TCP. Every connection it
// accepts is handed to serve, on a goroutine of its own, with k counting
// connections from 0; the connection is closed when serve returns. Cleanup
// closes the listener and every connection and waits for the goroutines.
type v5Fake struct {
	ln    net.Listener
	serve func(fc *v5Conn)
	n     atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// v5Conn is one connection to the fake broker.
type v5Conn struct {
	k  int
	nc net.Conn
	rd *packet.Reader
}

func v5StartFake(t testing.TB, serve func(fc *v5Conn)) *v5Fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &v5Fake{ln: ln, serve: serve, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[nc] = struct{}{}
			f.mu.Unlock()
			fc := &v5Conn{k: int(f.n.Add(1) - 1), nc: nc, rd: packet.NewReader(nc, 1<<20)}
			fc.rd.SetVersion(packet.V5)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(fc)
				nc.Close()
				f.mu.Lock()
				delete(f.conns, nc)
				f.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for nc := range f.conns {
			nc.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *v5Fake) addr() string { return f.ln.Addr().String() }

// accepted is the number of connections accepted so far.
func (f *v5Fake) accepted() int { return int(f.n.Load()) }

// next reads the next packet; it owns its memory.
func (fc *v5Conn) next() (packet.Packet, error) {
	h, body, err := fc.rd.Next()
	if err != nil {
		return nil, err
	}
	return packet.Decode(h, bytes.Clone(body), packet.V5)
}

// send writes p as MQTT 5.0; a packet the codec refuses is a bug in the test.
func (fc *v5Conn) send(p packet.Packet) error {
	b, err := p.AppendTo(nil, packet.V5)
	if err != nil {
		panic(fmt.Sprintf("fake broker: encode %v: %v", p.Type(), err))
	}
	_, err = fc.nc.Write(b)
	return err
}

// accept reads the CONNECT and answers it with ack, or with a plain
// success when ack is nil.
func (fc *v5Conn) accept(ack *packet.Connack) (*packet.Connect, error) {
	return acceptConnect(fc.next, fc.send, ack)
}

// answer gives p the reply an obliging broker would: PINGRESP, a SUBACK
// granting what was asked, UNSUBACK, PUBACK or PUBREC, PUBCOMP. It reports
// false when the connection should end (DISCONNECT, a failed write).
func (fc *v5Conn) answer(p packet.Packet) bool {
	reply, ok := obligingReply(p)
	return ok && (reply == nil || fc.send(reply) == nil)
}

// acceptConnect is the scripted brokers' CONNECT: it reads the first
// packet with next, which must be CONNECT, and answers it with ack, or a
// plain success when ack is nil.
func acceptConnect(next func() (packet.Packet, error), send func(packet.Packet) error, ack *packet.Connack) (*packet.Connect, error) {
	p, err := next()
	if err != nil {
		return nil, err
	}
	c, ok := p.(*packet.Connect)
	if !ok {
		return nil, fmt.Errorf("scripted broker: first packet %v, want CONNECT", p.Type())
	}
	if ack == nil {
		ack = &packet.Connack{}
	}
	return c, send(ack)
}

// obligingReply is what an obliging broker answers to p: PINGRESP, a
// SUBACK granting what was asked, UNSUBACK, PUBACK or PUBREC, PUBCOMP; nil
// for nothing. ok is false when the connection should end (DISCONNECT).
func obligingReply(p packet.Packet) (reply packet.Packet, ok bool) {
	switch p := p.(type) {
	case *packet.Pingreq:
		reply = &packet.Pingresp{}
	case *packet.Subscribe:
		codes := make([]packet.ReasonCode, len(p.Subscriptions))
		for i, s := range p.Subscriptions {
			codes[i] = packet.ReasonCode(s.QoS)
		}
		reply = &packet.Suback{PacketID: p.PacketID, ReasonCodes: codes}
	case *packet.Unsubscribe:
		reply = &packet.Unsuback{PacketID: p.PacketID, ReasonCodes: make([]packet.ReasonCode, len(p.Filters))}
	case *packet.Publish:
		switch p.QoS {
		case 1:
			reply = &packet.Puback{PacketID: p.PacketID}
		case 2:
			reply = &packet.Pubrec{PacketID: p.PacketID}
		}
	case *packet.Pubrel:
		reply = &packet.Pubcomp{PacketID: p.PacketID}
	case *packet.Disconnect:
		return nil, false
	}
	return reply, true
}

// stream reads packets on a goroutine of its own and hands them over on
// the channel, which is closed when the connection ends, so that a script
// can wait for a packet and a timer at once. stop closes the connection
// and waits for that goroutine; call it before serve returns.
func (fc *v5Conn) stream() (pkts <-chan packet.Packet, stop func()) {
	ch := make(chan packet.Packet)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			p, err := fc.next()
			if err != nil {
				return
			}
			select {
			case ch <- p:
			case <-done:
				return
			}
		}
	}()
	return ch, func() {
		close(done)
		fc.nc.Close()
		for range ch {
		}
	}
}

// awaitGo accepts the connection with ack (nil: success) and answers like
// a broker until the client publishes "go", which proves the connection
// live: whatever the script does next is an outage, not a failed connect.
// It reports false if the connection ended first.
func (fc *v5Conn) awaitGo(ack *packet.Connack) bool {
	if _, err := fc.accept(ack); err != nil {
		return false
	}
	for {
		p, err := fc.next()
		if err != nil {
			return false
		}
		if pub, ok := p.(*packet.Publish); ok && string(pub.Payload) == "go" {
			return true
		}
		if !fc.answer(p) {
			return false
		}
	}
}

// sendAll sends pkts, then answers like a broker until the connection ends.
func (fc *v5Conn) sendAll(pkts ...packet.Packet) {
	for _, p := range pkts {
		if fc.send(p) != nil {
			return
		}
	}
	fc.serveRest()
}

// serveRest answers like a broker until the connection ends.
func (fc *v5Conn) serveRest() {
	for {
		p, err := fc.next()
		if err != nil || !fc.answer(p) {
			return
		}
	}
}

// v5Wire records the packets a proxy passes, decoded as MQTT 5.0, in the
// order its rules saw them, and lets a test wait for what it expects.
type v5Wire struct {
	mu      sync.Mutex // guards log and changed
	log     []v5Pkt
	changed chan struct{} // closed and replaced on every packet
}

type v5Pkt struct {
	dir mqtttest.Direction
	p   packet.Packet // nil if it did not decode
}

func newV5Wire() *v5Wire { return &v5Wire{changed: make(chan struct{})} }

// rule returns a proxy rule recording every packet in direction dir and
// forwarding it.
func (w *v5Wire) rule(dir mqtttest.Direction) mqtttest.Rule {
	return func(h packet.FixedHeader, raw []byte) mqtttest.Action {
		body := bytes.Clone(raw[len(raw)-h.RemainingLength:])
		p, err := packet.Decode(h, body, packet.V5)
		if err != nil {
			p = nil
		}
		w.mu.Lock()
		w.log = append(w.log, v5Pkt{dir: dir, p: p})
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		return mqtttest.Forward()
	}
}

func (w *v5Wire) packets() []v5Pkt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// connects returns the CONNECT packets seen, in order.
func (w *v5Wire) connects() []*packet.Connect {
	var out []*packet.Connect
	for _, x := range w.packets() {
		if c, ok := x.p.(*packet.Connect); ok {
			out = append(out, c)
		}
	}
	return out
}

func (w *v5Wire) dump(t testing.TB) {
	t.Helper()
	var b strings.Builder
	for i, x := range w.packets() {
		fmt.Fprintf(&b, "%3d %v %s\n", i, x.dir, v5Describe(x.p))
	}
	t.Logf("wire:\n%s", b.String())
}

func v5Describe(p packet.Packet) string {
	switch p := p.(type) {
	case nil:
		return "(undecodable)"
	case *packet.Publish:
		return fmt.Sprintf("PUBLISH id=%d dup=%v qos=%d retain=%v topic=%q alias=%d %q",
			p.PacketID, p.Dup, p.QoS, p.Retain, p.Topic, p.Properties.TopicAlias, p.Payload)
	case *packet.Connect:
		return fmt.Sprintf("CONNECT clean=%v id=%q expiry=%v/%d", p.CleanStart, p.ClientID,
			p.Properties.Has(packet.PropSessionExpiry), p.Properties.SessionExpiry)
	case *packet.Connack:
		return fmt.Sprintf("CONNACK present=%v code=%v", p.SessionPresent, p.ReasonCode)
	case *packet.Puback:
		return fmt.Sprintf("PUBACK id=%d code=%v", p.PacketID, p.ReasonCode)
	}
	return p.Type().String()
}
