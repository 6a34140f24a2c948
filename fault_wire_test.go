package mqttas_test

// Fault tests of broken bytes on the wire: packets truncated by the link,
// and malformed packets from a scripted fake broker (defined here).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// TestTruncatedPackets: the link closes (FIN) inside a CONNACK, a SUBACK or
// an incoming PUBLISH, at several byte offsets. The client sees an
// unexpected end of stream, reconnects at once, never hangs, and keeps
// working.
func TestTruncatedPackets(t *testing.T) {
	t.Run("CONNACK", func(t *testing.T) {
		r := fxNewRig(t)
		const size = 4 // 0x20 0x02 flags code
		var n atomic.Int64
		r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.CONNACK {
				if k := n.Add(1) - 1; k < size {
					return mqtttest.TruncateAndClose(int(k)) // offsets 0..3
				}
			}
			return mqtttest.Forward()
		})
		cfg := r.config()
		cfg.ConnectRetry = true
		cfg.ResponseTime = 2 * time.Second // a hang on a truncated CONNACK would show
		c := r.client(cfg)
		start := time.Now()
		if err := c.Connect(fxCtx(t, 10*time.Second)); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		el := time.Since(start)
		t.Logf("connected after %d truncated CONNACKs in %v", size, el.Round(time.Millisecond))
		if el >= cfg.ResponseTime {
			t.Errorf("Connect took %v: a truncated CONNACK was waited on instead of failing at once", el)
		}
		if got := r.proxy.Accepted(); got != size+1 {
			t.Errorf("proxy accepted %d connections, want %d", got, size+1)
		}
		fxRoundTrip(t, c, "tc/connack")
	})

	t.Run("SUBACK", func(t *testing.T) {
		r := fxNewRig(t)
		offsets := []int{0, 1, 2, 3, 4} // SUBACK for one filter: 5 bytes
		// One truncation per connection: a second SUBACK read before the
		// first one's FIN went out would never reach the client.
		var conns, cutConn, n atomic.Int64
		r.proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.CONNECT {
				conns.Add(1)
			}
			return mqtttest.Forward()
		})
		r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.SUBACK && n.Load() < int64(len(offsets)) {
				if k := conns.Load(); cutConn.Swap(k) != k {
					return mqtttest.TruncateAndClose(offsets[n.Add(1)-1])
				}
			}
			return mqtttest.Forward()
		})
		cfg := r.config()
		cfg.ResponseTime = 2 * time.Second
		c := r.connect(cfg)
		start := time.Now()
		if err := c.Subscribe(fxCtx(t, 10*time.Second), "tc/sub", 1); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		el := time.Since(start)
		st := c.Stats()
		t.Logf("subscribed through %d truncated SUBACKs in %v; stats %+v", len(offsets), el.Round(time.Millisecond), st)
		// A cut during a reconnect's restore is a failed reconnect, not an
		// outage: count the cuts at the proxy.
		if got := n.Load(); got != int64(len(offsets)) {
			t.Errorf("%d SUBACKs cut, want %d", got, len(offsets))
		}
		if st.Outages == 0 {
			t.Error("no outage")
		}
		if el >= time.Duration(len(offsets))*cfg.ResponseTime {
			t.Errorf("Subscribe took %v: truncated SUBACKs were waited on", el)
		}
		if err := r.broker.Publish("tc/sub", []byte("hello"), 1, false); err != nil {
			t.Fatal(err)
		}
		if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "hello" {
			t.Errorf("received %q", m.Payload)
		}
	})

	t.Run("PUBLISH", func(t *testing.T) {
		r := fxNewRig(t)
		var armed atomic.Int64 // offset+1 for the next incoming PUBLISH; 0: forward
		r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.PUBLISH {
				if k := armed.Swap(0); k > 0 {
					return mqtttest.TruncateAndClose(int(k - 1))
				}
			}
			return mqtttest.Forward()
		})
		cfg := r.config()
		cfg.ResponseTime = 2 * time.Second
		// Every connection dies young, so the backoff stays at its
		// maximum: keep it short for the 25 offsets.
		cfg.ReconnectMin, cfg.ReconnectMax = 5*time.Millisecond, 20*time.Millisecond
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "tc/pub/#", 1); err != nil {
			t.Fatal(err)
		}
		// The client publishes to itself, so the message comes back after
		// its (restored) subscription on the same connection.
		payload := []byte("truncate-me")
		size := 2 + 2 + len("tc/pub/x") + 2 + len(payload) // QoS 1 PUBLISH
		for off := range size {                            // every byte offset
			armed.Store(int64(off + 1))
			start := time.Now()
			if err := c.Publish(fxCtx(t, 5*time.Second), "tc/pub/x", payload, 1, false); err != nil {
				t.Fatalf("offset %d: Publish: %v", off, err)
			}
			fxWaitDown(t, c, 3*time.Second)
			el := time.Since(start)
			fxWaitUp(t, c, 3*time.Second)
			if el >= cfg.ResponseTime {
				t.Errorf("offset %d: Down after %v: the truncated PUBLISH was waited on", off, el)
			}
			want := "ok-" + strconv.Itoa(off)
			if err := c.Publish(fxCtx(t, 5*time.Second), "tc/pub/y", []byte(want), 1, false); err != nil {
				t.Fatalf("offset %d: Publish after reconnect: %v", off, err)
			}
			for {
				m := fxRecv(t, c, 3*time.Second)
				if string(m.Payload) == want {
					break
				}
				if m.Topic != "tc/pub/x" {
					t.Errorf("offset %d: unexpected message %q %q", off, m.Topic, m.Payload)
				}
			}
		}
		t.Logf("stats %+v", c.Stats())
	})
}

// fxFakeBroker is a scripted MQTT 3.1.1 broker on a raw listener, for what a
// real broker never sends: malformed and oversized packets. Connection k
// is handed to script(k); it answers like a broker otherwise.
type fxFakeBroker struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex // guards conns, pubs and errs
	conns  map[net.Conn]struct{}
	pubs   map[string]int // payloads of the PUBLISHes received, counted
	errs   []error        // reads that ended other than by EOF, close or reset
	n      atomic.Int64
	script func(k int, ev string) []byte // raw bytes to send instead of the normal answer to ev, or nil
}

func fxStartFakeBroker(t testing.TB, script func(k int, ev string) []byte) *fxFakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return fxServeFakeBroker(t, ln, script)
}

// fxServeFakeBroker serves the fake broker on ln (a TLS listener, say).
func fxServeFakeBroker(t testing.TB, ln net.Listener, script func(k int, ev string) []byte) *fxFakeBroker {
	t.Helper()
	f := &fxFakeBroker{ln: ln, conns: map[net.Conn]struct{}{}, pubs: map[string]int{}, script: script}
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
			k := int(f.n.Add(1) - 1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(k, nc)
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

func (f *fxFakeBroker) serve(k int, nc net.Conn) {
	rd := packet.NewReader(nc, 1<<20)
	var subs []string
	send := func(p packet.Packet) bool {
		b, err := p.AppendTo(nil, packet.V311)
		if err != nil {
			panic(err)
		}
		_, err = nc.Write(b)
		return err == nil
	}
	// answer sends the scripted bytes for ev if there are any, else the
	// normal answer; it reports false when the connection should end.
	answer := func(ev string, normal func() bool) bool {
		if raw := f.script(k, ev); raw != nil {
			_, err := nc.Write(raw)
			return err == nil
		}
		return normal()
	}
	for {
		h, body, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
			return
		}
		p, err := packet.Decode(h, body, packet.V311)
		if err != nil {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
			return
		}
		var ok bool
		switch p := p.(type) {
		case *packet.Connect:
			ok = answer("CONNECT", func() bool { return send(&packet.Connack{}) })
		case *packet.Pingreq:
			ok = answer("PINGREQ", func() bool { return send(&packet.Pingresp{}) })
		case *packet.Subscribe:
			codes := make([]packet.ReasonCode, len(p.Subscriptions))
			for i, s := range p.Subscriptions {
				codes[i] = packet.ReasonCode(s.QoS)
				subs = append(subs, strings.Clone(s.Filter)) // the body is reused by the next read
			}
			id := p.PacketID
			ok = answer("SUBSCRIBE", func() bool { return send(&packet.Suback{PacketID: id, ReasonCodes: codes}) })
		case *packet.Publish:
			pub := *p
			f.mu.Lock()
			f.pubs[string(pub.Payload)]++
			f.mu.Unlock()
			ok = answer("PUBLISH", func() bool {
				switch pub.QoS {
				case 1:
					if !send(&packet.Puback{PacketID: pub.PacketID}) {
						return false
					}
				case 2:
					if !send(&packet.Pubrec{PacketID: pub.PacketID}) {
						return false
					}
				}
				for _, s := range subs {
					if packet.MatchTopic(s, pub.Topic) {
						return send(&packet.Publish{Topic: pub.Topic, Payload: pub.Payload})
					}
				}
				return true
			})
		case *packet.Pubrel:
			ok = send(&packet.Pubcomp{PacketID: p.PacketID})
		case *packet.Disconnect:
			return
		default:
			ok = true
		}
		if !ok {
			return
		}
	}
}

// TestReaderSurvivesMalformedPacket: a malformed packet, a packet of a type
// a broker never sends, or one above MaxPacketSize ends the connection
// cleanly; the client reconnects and keeps working, its reader never dies
// (mqtt_as's known bugs; paho #19 row: a hostile length costs nothing).
func TestReaderSurvivesMalformedPacket(t *testing.T) {
	cases := []struct {
		name string
		raw  []byte
	}{
		{"reserved type 0", []byte{0x00, 0x00}},
		{"reserved type 15 (AUTH in 3.1.1)", []byte{0xF0, 0x00}},
		{"second CONNACK", []byte{0x20, 0x02, 0x00, 0x00}},
		{"PUBLISH QoS 3", append([]byte{0x36, 0x07, 0x00, 0x03}, "m/t\x00\x01"...)},
		{"PUBLISH wildcard topic", append([]byte{0x30, 0x05, 0x00, 0x03}, "m/+"...)},
		{"PUBLISH invalid UTF-8 topic", []byte{0x30, 0x04, 0x00, 0x02, 0xFF, 0xFE}},
		{"PUBLISH topic longer than packet", append([]byte{0x30, 0x04, 0x00, 0x09}, "m/"...)},
		{"remaining length over four bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
		{"hostile length 200 MiB", []byte{0x30, 0x80, 0x80, 0x80, 0x64}},
		{"SUBACK return code 3", []byte{0x90, 0x03, 0x00, 0x01, 0x03}},
		{"PUBACK too short", []byte{0x40, 0x01, 0x00}},
		{"PUBREL with wrong flags", []byte{0x60, 0x02, 0x00, 0x01}},
		{"PINGRESP with a body", []byte{0xD0, 0x01, 0x00}},
		{"PINGRESP with reserved flags", []byte{0xD2, 0x00}},
		{"UNSUBACK with reserved flags", []byte{0xB1, 0x02, 0x00, 0x01}},
		{"server DISCONNECT", []byte{0xE0, 0x00}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The first connection answers the first SUBSCRIBE with the bad
			// packet; later ones behave.
			fb := fxStartFakeBroker(t, func(k int, ev string) []byte {
				if k == 0 && ev == "SUBSCRIBE" {
					return tc.raw
				}
				return nil
			})
			logs := fxNewLogSink(t)
			c := fxNewClient(t, mqttas.Config{
				Server: fb.ln.Addr().String(), KeepAlive: fxKeepAlive, PingInterval: fxPingInterval,
				ResponseTime: 2 * time.Second, ReconnectMin: fxReconnectMin, ReconnectMax: fxReconnectMax,
				MaxPacketSize: 64 << 10, Logger: logs.logger(),
			})
			if err := c.Connect(fxCtx(t, 3*time.Second)); err != nil {
				t.Fatal(err)
			}
			fxWaitUp(t, c, time.Second)
			start := time.Now()
			if err := c.Subscribe(fxCtx(t, 5*time.Second), "m/#", 0); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			fxWaitDown(t, c, time.Second)
			fxWaitUp(t, c, time.Second)
			if el := time.Since(start); el >= 2*time.Second || logs.contains("unacknowledged") {
				t.Errorf("recovered after %v: the bad packet was accepted as valid; the link failed only when the SUBACK wait ran out (ResponseTime)", el)
			}
			if err := c.Publish(fxCtx(t, 3*time.Second), "m/x", []byte("still working"), 1, false); err != nil {
				t.Fatalf("Publish after the bad packet: %v", err)
			}
			if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "still working" {
				t.Errorf("received %q", m.Payload)
			}
			if st := c.Stats(); st.Outages != 1 || fb.n.Load() != 2 {
				t.Errorf("stats %+v after %d connections, want one outage and one reconnect", st, fb.n.Load())
			}
		})
	}

	t.Run("incoming PUBLISH above MaxPacketSize", func(t *testing.T) {
		r := fxNewRig(t)
		cfg := r.config()
		cfg.MaxPacketSize = 4 << 10
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "os/#", 1); err != nil {
			t.Fatal(err)
		}
		if err := r.broker.Publish("os/big", make([]byte, 8<<10), 1, false); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
		if err := c.Publish(fxCtx(t, 3*time.Second), "os/small", []byte("small"), 1, false); err != nil {
			t.Fatal(err)
		}
		if m := fxRecv(t, c, 3*time.Second); m.Topic != "os/small" {
			t.Errorf("received %q (%d bytes), want os/small", m.Topic, len(m.Payload))
		}
		if !r.logs.contains("too large") && !r.logs.contains("exceeds") {
			t.Error("the log does not say the packet was too large")
		}
	})

	t.Run("many packets in one read", func(t *testing.T) {
		// The fake broker answers SUBSCRIBE with SUBACK followed by fifty
		// PUBLISHes in one write.
		var burst []byte
		burst, _ = (&packet.Suback{PacketID: 1, ReasonCodes: []packet.ReasonCode{0}}).AppendTo(burst, packet.V311)
		for i := range 50 {
			burst, _ = (&packet.Publish{Topic: "m/burst", Payload: []byte(strconv.Itoa(i))}).AppendTo(burst, packet.V311)
		}
		fb := fxStartFakeBroker(t, func(k int, ev string) []byte {
			if ev == "SUBSCRIBE" {
				return burst
			}
			return nil
		})
		c := fxNewClient(t, mqttas.Config{Server: fb.ln.Addr().String(), KeepAlive: fxKeepAlive, ResponseTime: fxResponseTime, Logger: fxNewLogSink(t).logger()})
		if err := c.Connect(fxCtx(t, 3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "m/#", 0); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		for i := range 50 {
			if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("message %d: %q", i, m.Payload)
			}
		}
		if st := c.Stats(); st.Outages != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestAckWrittenBeforeDelivery: the application reads an incoming QoS 1 or
// 2 message and at once calls Disconnect. The PUBACK (PUBREC) must already
// be on the wire ahead of the DISCONNECT, or a persistent session gets the
// message again. With the acknowledgement written after delivery this was
// lost about one round in twenty; forty rounds make it show.
func TestAckWrittenBeforeDelivery(t *testing.T) {
	r := fxNewRig(t)
	var w fxWire
	r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, nil))
	for round := range 40 {
		qos := byte(1 + round%2)
		cfg := r.config()
		// A fresh identifier each round: mochi may still be tearing down
		// the previous round's clean session, and with the same identifier
		// that would take the new subscription with it.
		cfg.ClientID = fmt.Sprintf("ackfirst%d", round)
		c := r.connect(cfg)
		ctx := fxCtx(t, 5*time.Second)
		if err := c.Subscribe(ctx, "af/t", qos); err != nil {
			t.Fatal(err)
		}
		if err := r.broker.Publish("af/t", []byte("x"), qos, false); err != nil {
			t.Fatal(err)
		}
		fxRecv(t, c, 3*time.Second)
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		// Once the proxy has closed the connection it has seen every packet.
		if err := r.proxy.WaitConns(ctx, 0); err != nil {
			t.Fatal(err)
		}
		ev := w.events()
		start := 0
		for i, e := range ev {
			if e.typ == packet.CONNECT {
				start = i
			}
		}
		want := map[byte]packet.Type{1: packet.PUBACK, 2: packet.PUBREC}[qos]
		acked := false
		for _, e := range ev[start:] {
			if e.typ == want {
				acked = true
			}
			if e.typ == packet.DISCONNECT {
				break
			}
		}
		if !acked {
			t.Fatalf("round %d, QoS %d: DISCONNECT went out with no %v before it: %v", round, qos, want, ev[start:])
		}
	}
}
