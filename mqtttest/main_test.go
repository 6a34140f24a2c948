package mqtttest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas/packet"
)

// TestMain fails the run if a test leaves a goroutine behind: every helper
// in this package promises that Close stops all of its goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silence is how long a test listens to be sure that something does not
// arrive. It bounds an assertion of absence; it never orders events.
const silence = 250 * time.Millisecond

// testCtx bounds a test's waits for events.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// timeout is a context for an assertion of absence.
func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// rawClient is an MQTT client made of the packet codec and a net.Conn,
// driven step by step by the test.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *packet.Reader
	v    packet.Version
}

func dialRaw(t *testing.T, addr string, v packet.Version) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := packet.NewReader(conn, 1<<20)
	r.SetVersion(v)
	return &rawClient{t: t, conn: conn, r: r, v: v}
}

// write sends p and returns the error.
func (c *rawClient) write(p packet.Packet) error {
	b, err := p.AppendTo(nil, c.v)
	if err != nil {
		c.t.Fatalf("encode %v: %v", p.Type(), err)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = c.conn.Write(b)
	return err
}

func (c *rawClient) send(p packet.Packet) {
	c.t.Helper()
	if err := c.write(p); err != nil {
		c.t.Fatalf("send %v: %v", p.Type(), err)
	}
}

// read returns the next packet or the error, waiting up to d.
func (c *rawClient) read(d time.Duration) (packet.Packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	return c.r.ReadPacket()
}

func (c *rawClient) recv() packet.Packet {
	c.t.Helper()
	p, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return p
}

// expectSilence asserts that nothing arrives for a while. The Reader is
// unusable afterwards.
func (c *rawClient) expectSilence() {
	c.t.Helper()
	p, err := c.read(silence)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("expected nothing, got %v, %v", p, err)
	}
}

// expectEnd asserts that the connection ends and returns how.
func (c *rawClient) expectEnd() error {
	c.t.Helper()
	for {
		p, err := c.read(5 * time.Second)
		if err == nil {
			if _, ok := p.(*packet.Disconnect); ok {
				continue // mochi may say goodbye first
			}
			c.t.Fatalf("expected the connection to end, got %T", p)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.t.Fatal("connection still open")
		}
		return err
	}
}

func (c *rawClient) connect(p *packet.Connect) *packet.Connack {
	c.t.Helper()
	c.send(p)
	ack, ok := c.recv().(*packet.Connack)
	if !ok {
		c.t.Fatal("first packet is not CONNACK")
	}
	return ack
}

// connectRaw dials addr and opens an MQTT session, failing unless accepted.
func connectRaw(t *testing.T, addr string, v packet.Version, id string, clean bool) (*rawClient, *packet.Connack) {
	t.Helper()
	c := dialRaw(t, addr, v)
	p := &packet.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30}
	if v == packet.V5 && !clean {
		p.Properties.SessionExpiry = 3600
	}
	ack := c.connect(p)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", byte(ack.ReasonCode))
	}
	return c, ack
}

func (c *rawClient) subscribe(filter string, qos byte) {
	c.t.Helper()
	c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	ack, ok := c.recv().(*packet.Suback)
	if !ok || len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0].IsError() {
		c.t.Fatalf("SUBACK %+v", ack)
	}
}

// recvPublish reads the next packet and requires a PUBLISH.
func (c *rawClient) recvPublish() *packet.Publish {
	c.t.Helper()
	p := c.recv()
	pub, ok := p.(*packet.Publish)
	if !ok {
		c.t.Fatalf("got %v, want PUBLISH", p.Type())
	}
	return pub
}

// versions runs f for MQTT 3.1.1 and 5.0.
func versions(t *testing.T, f func(t *testing.T, v packet.Version)) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run("v"+v.String(), func(t *testing.T) { f(t, v) })
	}
}

// startEcho runs a TCP echo server until the test ends.
func startEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
