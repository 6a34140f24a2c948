package mqttas_test

// The hostile broker: a scripted fake that speaks 3.1.1 or 5.0 through
// package packet and misbehaves on purpose (issue 6). Each accepted
// connection runs the script on a goroutine of its own with its index k,
// counting from 0; the connection is closed when the script returns.
// Cleanup closes the listener and every connection, closes quit for
// scripts that wait on a channel, and waits for every goroutine.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// Short timings: every wait in the hostile tests is bounded by a few
// multiples of hbResponse.
const (
	hbResponse     = 400 * time.Millisecond
	hbReconnectMin = 10 * time.Millisecond
	hbReconnectMax = 40 * time.Millisecond
	hbWait         = 3 * time.Second // bound on any single wait for an event
)

type hbBroker struct {
	ln     net.Listener
	v      packet.Version
	script func(hc *hbConn)
	n      atomic.Int64
	quit   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex // guards conns
	conns  map[net.Conn]struct{}
}

// hbConn is one connection to the hostile broker.
type hbConn struct {
	k    int
	v    packet.Version
	nc   net.Conn
	rd   *packet.Reader
	quit <-chan struct{} // closed at cleanup
}

func hbStart(t testing.TB, v packet.Version, script func(hc *hbConn)) *hbBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &hbBroker{ln: ln, v: v, script: script, quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[nc] = struct{}{}
			b.mu.Unlock()
			hc := &hbConn{k: int(b.n.Add(1) - 1), v: v, nc: nc, rd: packet.NewReader(nc, 1<<20), quit: b.quit}
			hc.rd.SetVersion(v)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.script(hc)
				nc.Close()
				b.mu.Lock()
				delete(b.conns, nc)
				b.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(b.quit)
		b.mu.Lock()
		for nc := range b.conns {
			nc.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *hbBroker) addr() string { return b.ln.Addr().String() }

// accepted is the number of connections accepted so far.
func (b *hbBroker) accepted() int { return int(b.n.Load()) }

// next reads the next packet, decoded with the connection's version; it
// owns its memory.
func (hc *hbConn) next() (packet.Packet, error) {
	h, body, err := hc.rd.Next()
	if err != nil {
		return nil, err
	}
	return packet.Decode(h, bytes.Clone(body), hc.v)
}

// nextOf reads until a packet of type t, answering PINGREQ on the way and
// failing on anything else.
func (hc *hbConn) nextOf(t packet.Type) (packet.Packet, error) {
	for {
		p, err := hc.next()
		if err != nil {
			return nil, err
		}
		switch {
		case p.Type() == t:
			return p, nil
		case p.Type() == packet.PINGREQ:
			if err := hc.send(&packet.Pingresp{}); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("hostile broker: got %v, want %v", p.Type(), t)
		}
	}
}

// send writes p; a packet the codec refuses is a bug in the test.
func (hc *hbConn) send(p packet.Packet) error { return hc.raw(hbBytes(p, hc.v)) }

// raw writes bytes as they are: the way to send what the codec refuses.
func (hc *hbConn) raw(b []byte) error {
	_, err := hc.nc.Write(b)
	return err
}

// accept reads the CONNECT and answers it with ack, or with a plain
// success when ack is nil.
func (hc *hbConn) accept(ack *packet.Connack) (*packet.Connect, error) {
	return acceptConnect(hc.next, hc.send, ack)
}

// answer gives p the reply an obliging broker would. It reports false when
// the connection should end.
func (hc *hbConn) answer(p packet.Packet) bool {
	reply, ok := obligingReply(p)
	return ok && (reply == nil || hc.send(reply) == nil)
}

// serveRest answers like a broker until the connection ends.
func (hc *hbConn) serveRest() {
	for {
		p, err := hc.next()
		if err != nil || !hc.answer(p) {
			return
		}
	}
}

// serve is the whole script of a well-behaved connection.
func (hc *hbConn) serve() {
	if _, err := hc.accept(nil); err == nil {
		hc.serveRest()
	}
}

// hbBytes encodes p for v; a packet the codec refuses is a bug in the test.
func hbBytes(p packet.Packet, v packet.Version) []byte {
	b, err := p.AppendTo(nil, v)
	if err != nil {
		panic(fmt.Sprintf("hostile broker: encode %v: %v", p.Type(), err))
	}
	return b
}

// hbFrame builds a packet by hand: a fixed header byte, the remaining
// length (below 128), and body.
func hbFrame(first byte, body ...byte) []byte {
	if len(body) > 127 {
		panic("hbFrame: body too long")
	}
	return append([]byte{first, byte(len(body))}, body...)
}

// hbStr is an MQTT string or binary field: a two-byte length, then s.
func hbStr(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// hbClient is a client of the hostile broker with short timings, closed
// when the test ends; its log is printed if the test fails.
type hbClient struct {
	*mqttas.Client
	logs *fxLogSink
}

func hbConfig(b *hbBroker) mqttas.Config {
	return mqttas.Config{
		Server:       b.addr(),
		ClientID:     "hostile",
		ResponseTime: hbResponse,
		ReconnectMin: hbReconnectMin,
		ReconnectMax: hbReconnectMax,
		MQTTv5:       b.v == packet.V5,
	}
}

func hbNew(t *testing.T, cfg mqttas.Config) *hbClient {
	t.Helper()
	logs := fxNewLogSink(t)
	if cfg.Logger == nil {
		cfg.Logger = logs.logger()
	}
	return &hbClient{Client: fxNewClient(t, cfg), logs: logs}
}

// hbConnect returns a client of b connected, its first Up consumed.
func hbConnect(t *testing.T, b *hbBroker, tweak func(*mqttas.Config)) *hbClient {
	t.Helper()
	cfg := hbConfig(b)
	if tweak != nil {
		tweak(&cfg)
	}
	c := hbNew(t, cfg)
	if err := c.Connect(fxCtx(t, hbWait)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	fxWaitUp(t, c.Client, hbWait)
	return c
}

// hbConnectErr runs Connect on a fresh client of b and returns its error.
func hbConnectErr(t *testing.T, b *hbBroker, tweak func(*mqttas.Config)) error {
	t.Helper()
	cfg := hbConfig(b)
	if tweak != nil {
		tweak(&cfg)
	}
	return hbNew(t, cfg).Connect(fxCtx(t, hbWait))
}

// hbOutage waits for the Down of the live link and the Up of the next
// one, and returns LastError, which says why the link went down.
func hbOutage(t *testing.T, c *hbClient) error {
	t.Helper()
	fxWaitDown(t, c.Client, hbWait)
	err := c.LastError()
	fxWaitUp(t, c.Client, hbWait)
	if err == nil {
		t.Fatal("Down, but LastError is nil")
	}
	return err
}

// hbNoMessage fails if a message is waiting on c's Messages channel.
func hbNoMessage(t *testing.T, c *hbClient) {
	t.Helper()
	select {
	case m := <-c.Messages():
		t.Fatalf("unexpected message %q %q", m.Topic, m.Payload)
	default:
	}
}

// hbIs fails unless errors.Is(err, target) and err mentions each of subs.
func hbIs(t *testing.T, err, target error, subs ...string) {
	t.Helper()
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %v: does not match %v", err, target)
	}
	if err == nil {
		t.Fatal("error is nil")
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}
