package mqtttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialTimeout bounds the proxy's connection to its target. The target is on
// loopback, so a dial either succeeds or is refused almost at once.
const dialTimeout = 5 * time.Second

// Proxy is a fault-injecting TCP proxy for MQTT. Put it between a client and
// a broker (dial Proxy.Addr instead of the broker) and break the link on
// demand: blackholes, stalls, resets, latency, one-byte writes and
// per-packet rules. See the package documentation for the model.
//
// Every method is safe for concurrent use, and every fault applies at once
// to the connections already open as well as to new ones.
type Proxy struct {
	target string
	ln     net.Listener
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	accepted atomic.Int64
	cur      atomic.Pointer[settings] // the faults in force; replaced, never modified

	mu      sync.Mutex // guards the fields below and serialises settings updates
	conns   map[*pconn]struct{}
	changed chan struct{} // closed and replaced whenever conns changes
	closed  bool
}

// mode is what a direction does with the bytes its sender writes.
type mode int

const (
	modeForward     mode = iota
	modeBlackhole        // read and discard
	modeStopReading      // do not read at all
)

// settings is one immutable snapshot of the faults in force.
type settings struct {
	mode            [2]mode
	rules           [2][]Rule
	latency, jitter time.Duration
	chunk           int
	refuse          bool
	next            chan struct{} // closed when a newer snapshot replaces this one
}

// delay returns the latency one chunk of data gets.
func (s *settings) delay() time.Duration {
	d := s.latency
	if s.jitter > 0 {
		d += rand.N(s.jitter + 1)
	}
	return d
}

// NewProxy listens on a free loopback port and forwards each connection it
// accepts to target, a "host:port" that is dialled afresh for every
// connection. If the dial fails the accepted connection is closed, which
// is what a client sees of a broker that is down.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mqtttest: proxy listen: %w", err)
	}
	p := &Proxy{
		target:  target,
		ln:      ln,
		done:    make(chan struct{}),
		conns:   make(map[*pconn]struct{}),
		changed: make(chan struct{}),
	}
	p.cur.Store(&settings{next: make(chan struct{})})
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// StartProxy is NewProxy for tests: it fails tb at once if the proxy cannot
// start and closes the proxy when the test ends.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := NewProxy(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the proxy's "127.0.0.1:port", the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole makes the proxy read and discard everything sent in direction
// d, keeping both sockets open: the sender's writes succeed, nothing
// arrives, and nothing says so, like a half-open link. A FIN from the
// sender is swallowed too. Blackhole(ToClient) set before a client connects
// is the broker that accepts TCP but never sends CONNACK; Blackhole(ToBroker)
// loses the client's packets, PINGREQ included, while the broker's arrive.
func (p *Proxy) Blackhole(d Direction) {
	p.update(func(s *settings) {
		for _, i := range dirs(d) {
			s.mode[i] = modeBlackhole
		}
	})
}

// StopReading makes the proxy stop reading in direction d. Once the kernel
// buffers in between fill (a few MiB on loopback), the sender's writes
// block: a peer that has stopped reading. Data already read but not sent on
// is held and delivered when the direction is healed.
func (p *Proxy) StopReading(d Direction) {
	p.update(func(s *settings) {
		for _, i := range dirs(d) {
			s.mode[i] = modeStopReading
		}
	})
}

// Heal removes every fault: both directions forward again, latency,
// chunking, rules and Refuse are cleared, and connections silenced by a
// BlackholeFrom rule forward again. Bytes discarded meanwhile stay lost.
func (p *Proxy) Heal() {
	p.update(func(s *settings) {
		*s = settings{next: s.next}
		for c := range p.conns {
			c.hole[0].Store(false)
			c.hole[1].Store(false)
		}
	})
}

// Latency delays every chunk of data (every packet, for MQTT traffic) by d
// plus a random extra of up to jitter, in both directions, preserving
// order. Zero turns it off.
func (p *Proxy) Latency(d, jitter time.Duration) {
	p.update(func(s *settings) { s.latency, s.jitter = max(d, 0), max(jitter, 0) })
}

// Chunk makes the proxy write at most n bytes per Write, so a receiver sees
// packets arrive in pieces (n = 1: one byte at a time). Zero or less turns
// it off.
func (p *Proxy) Chunk(n int) {
	p.update(func(s *settings) { s.chunk = max(n, 0) })
}

// Rule adds r to the rules of the directions in d. Each packet is put to the
// direction's rules in the order they were added; the first answer other
// than Forward decides. Packets already discarded by a blackhole are not
// put to the rules. Heal removes all rules.
func (p *Proxy) Rule(d Direction, r Rule) {
	p.update(func(s *settings) {
		for _, i := range dirs(d) {
			s.rules[i] = append(slices.Clip(s.rules[i]), r)
		}
	})
}

// Refuse, when on, makes the proxy accept each new connection and close it
// at once (the client reads end of stream, or ECONNRESET if its CONNECT
// arrived first): a broker that is unreachable although its port answers.
// Open connections are not affected.
func (p *Proxy) Refuse(on bool) {
	p.update(func(s *settings) { s.refuse = on })
}

// Reset aborts every open connection with RST to both the client and the
// broker: both see ECONNRESET.
func (p *Proxy) Reset() {
	for _, c := range p.snapshot() {
		c.abort(true)
	}
}

// CloseConns closes every open connection with FIN to both peers. Each
// connection is counted by Conns until both peers have closed their ends.
func (p *Proxy) CloseConns() {
	for _, c := range p.snapshot() {
		c.fin()
	}
}

// Conns returns the number of proxied connections open now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted returns the number of connections accepted since the proxy
// started, refused ones included.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// WaitConns waits until exactly n proxied connections are open (n = 0 waits
// for all of them to end) or ctx is done, and returns ctx's error then.
func (p *Proxy) WaitConns(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		k, ch := len(p.conns), p.changed
		p.mu.Unlock()
		if k == n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mqtttest: waiting for %d proxied connections, have %d: %w", n, k, ctx.Err())
		}
	}
}

// Close stops the listener, closes every connection and waits for all of
// the proxy's goroutines to exit. It is idempotent and always returns nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()

	close(p.done)
	_ = p.ln.Close()
	for _, c := range conns {
		c.abort(false)
	}
	p.wg.Wait()
	return nil
}

// update publishes a modified copy of the settings and wakes every reader
// waiting on the old ones.
func (p *Proxy) update(f func(s *settings)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.cur.Load()
	s := *old
	s.next = make(chan struct{})
	f(&s)
	p.cur.Store(&s)
	close(old.next)
}

func (p *Proxy) snapshot() []*pconn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

// track adds or removes c and wakes WaitConns. It reports false, without
// adding, once the proxy is closed.
func (p *Proxy) track(c *pconn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	return true
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return // closed by Close; nothing else makes a loopback Accept fail for good
		}
		p.accepted.Add(1)
		if p.cur.Load().refuse {
			_ = conn.Close()
			continue
		}
		p.wg.Add(1)
		go p.handle(conn.(*net.TCPConn))
	}
}

// handle dials the target for one accepted connection and forwards between
// the two until both are finished.
func (p *Proxy) handle(client *net.TCPConn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		_ = client.Close()
		return
	}
	c := newPconn(p, client, up.(*net.TCPConn))
	if !p.track(c, true) {
		c.abort(false)
		return
	}
	c.run()
	p.track(c, false)
}
