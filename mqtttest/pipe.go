package mqtttest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// queueLen bounds the chunks a direction holds between its reader and its
// writer. Past it the reader stops reading, so a receiver that stops
// reading still pushes back on its sender through the proxy.
const queueLen = 256

// rawReadSize is the read size once a connection has fallen back to plain
// byte forwarding.
const rawReadSize = 32 << 10

// pconn is one proxied connection: two sockets and, per direction, a reader
// goroutine that parses and judges and a writer goroutine that delays,
// chunks and writes. Direction 0 (ToBroker) reads sock[0] and writes
// sock[1]; direction 1 (ToClient) the reverse.
type pconn struct {
	p    *Proxy
	sock [2]*net.TCPConn // client side, broker side
	q    [2]chan item

	done     chan struct{} // closed by abort; every goroutine of the connection then exits
	doneOnce sync.Once

	closing atomic.Bool    // FIN sent both ways: discard everything from now on
	hole    [2]atomic.Bool // latched by BlackholeFrom, cleared by Heal
	raw     atomic.Bool    // a direction met bytes that are not MQTT: forward bytes, skip rules
}

type itemKind int

const (
	itemData itemKind = iota
	itemEOF           // the sender half-closed: pass the FIN on
	itemFIN           // write data, then close the connection with FIN
	itemRST           // reset the connection instead of writing
	itemQuit          // the sender is gone but its FIN was swallowed: stop quietly
)

// item is one unit of work for a writer.
type item struct {
	kind itemKind
	data []byte
	due  time.Time
}

func newPconn(p *Proxy, client, broker *net.TCPConn) *pconn {
	return &pconn{
		p:    p,
		sock: [2]*net.TCPConn{client, broker},
		q:    [2]chan item{make(chan item, queueLen), make(chan item, queueLen)},
		done: make(chan struct{}),
	}
}

// run forwards until all four goroutines have finished, then closes both
// sockets.
func (c *pconn) run() {
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(2)
		go func() { defer wg.Done(); c.exit(c.readLoop(i)) }()
		go func() { defer wg.Done(); c.exit(c.writeLoop(i)) }()
	}
	wg.Wait()
	c.abort(false)
}

// exit tears the connection down after a loop failed, passing a reset on as
// a reset.
func (c *pconn) exit(err error) {
	if err != nil {
		c.abort(errors.Is(err, syscall.ECONNRESET))
	}
}

// abort closes both sockets at once (with RST if rst) and stops every
// goroutine of the connection.
func (c *pconn) abort(rst bool) {
	c.doneOnce.Do(func() {
		for _, s := range c.sock {
			if rst {
				_ = s.SetLinger(0)
			}
			_ = s.Close()
		}
		close(c.done)
	})
}

// fin sends FIN to both peers. The readers keep draining (and discarding)
// until each peer closes its end, so no unread data turns the close into a
// reset.
func (c *pconn) fin() {
	if c.closing.CompareAndSwap(false, true) {
		_ = c.sock[0].CloseWrite()
		_ = c.sock[1].CloseWrite()
	}
}

// discarding reports whether direction i throws data away now.
func (c *pconn) discarding(i int, s *settings) bool {
	return c.closing.Load() || c.hole[i].Load() || s.mode[i] == modeBlackhole
}

// hold blocks while direction i is told to stop reading and returns the
// settings that released it, or nil when the connection ended.
func (c *pconn) hold(i int) *settings {
	for {
		s := c.p.cur.Load()
		if s.mode[i] != modeStopReading || c.closing.Load() {
			return s
		}
		select {
		case <-s.next:
		case <-c.done:
			return nil
		}
	}
}

func (c *pconn) enqueue(i int, it item) bool {
	select {
	case c.q[i] <- it:
		return true
	case <-c.done:
		return false
	}
}

// readLoop reads direction i packet by packet (or chunk by chunk after a
// fallback), applies the faults and rules in force when each one arrives,
// and queues the result for the writer.
func (c *pconn) readLoop(i int) error {
	f := &framer{src: c.sock[i], dir: i, first: true, wait: func() bool { return c.hold(i) != nil }}
	f.r = packet.NewReader(f, 0)
	for {
		if c.hold(i) == nil {
			return nil
		}
		if c.raw.Load() {
			f.raw = true
		}
		ch, err := f.next()
		if f.raw {
			c.raw.Store(true)
		}
		if err == io.EOF {
			kind := itemEOF
			if s := c.p.cur.Load(); c.discarding(i, s) && !c.closing.Load() {
				kind = itemQuit // a blackhole swallows the FIN as well
			}
			c.enqueue(i, item{kind: kind})
			return nil
		}
		if err != nil {
			return err
		}
		// Settings may have changed while the read was blocked: data read
		// after StopReading is held, not sent.
		s := c.hold(i)
		if s == nil {
			return nil
		}
		if c.discarding(i, s) {
			continue
		}
		var act Action
		if ch.packet {
			act = judge(s.rules[i], ch.h, ch.data)
		}
		it := item{data: ch.data, due: time.Now().Add(s.delay())}
		switch act.kind {
		case actDrop:
			continue
		case actBlackhole:
			c.hole[i].Store(true)
			continue
		case actDuplicate:
			if !c.enqueue(i, it) {
				return nil
			}
		case actDelay:
			it.due = it.due.Add(act.delay)
		case actTruncate:
			it.kind, it.data = itemFIN, it.data[:min(act.n, len(it.data))]
		case actReset:
			it.kind, it.data = itemRST, nil
		}
		if !c.enqueue(i, it) {
			return nil
		}
	}
}

// writeLoop writes direction i's queued items to its receiver when they are
// due.
func (c *pconn) writeLoop(i int) error {
	dst := c.sock[1-i]
	timer := time.NewTimer(time.Hour) // armed by Reset for each delayed item
	timer.Stop()
	defer timer.Stop()
	for {
		var it item
		select {
		case it = <-c.q[i]:
		case <-c.done:
			return nil
		}
		if d := time.Until(it.due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-c.done:
				return nil
			}
		}
		s := c.p.cur.Load()
		switch {
		case it.kind == itemEOF:
			_ = dst.CloseWrite()
			return nil
		case it.kind == itemRST:
			c.abort(true)
			return nil
		case it.kind == itemQuit:
			return nil
		case c.discarding(i, s):
		default:
			if err := write(dst, it.data, s.chunk); err != nil {
				return err
			}
		}
		if it.kind == itemFIN {
			c.fin()
		}
	}
}

// write writes data in writes of at most chunk bytes (all at once if chunk
// is 0).
func write(dst net.Conn, data []byte, chunk int) error {
	for len(data) > 0 {
		n := len(data)
		if chunk > 0 {
			n = min(n, chunk)
		}
		if _, err := dst.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// errNotMQTT reports that a stream does not start the way MQTT does.
var errNotMQTT = errors.New("mqtttest: not an MQTT stream")

// chunk is what a framer yields: a whole packet, or bytes that are not one.
type chunk struct {
	h      packet.FixedHeader
	data   []byte
	packet bool
}

// framer splits one direction of a connection into packets. It is the
// packet.Reader's source and records every byte it hands over, so that each
// packet can be forwarded exactly as it was sent and, should the stream turn
// out not to be MQTT, every byte read so far can be forwarded as is.
type framer struct {
	src     io.Reader
	r       *packet.Reader
	dir     int    // 0: client to broker, 1: broker to client
	pending []byte // read from src, not yet returned
	first   bool   // no packet returned yet
	raw     bool   // plain byte forwarding
	err     error  // returned once pending is drained; ends the stream
	buf     []byte
	// wait blocks while the direction must not read, and reports false
	// when the connection is over. It runs before every read, so that
	// StopReading takes hold even in the middle of a large packet.
	wait func() bool
}

// Read implements io.Reader for the packet.Reader.
func (f *framer) Read(p []byte) (int, error) {
	if !f.wait() {
		return 0, net.ErrClosed
	}
	n, err := f.src.Read(p)
	if n > 0 {
		bad := f.first && len(f.pending) == 0 && !firstByteOK(f.dir, p[0])
		f.pending = append(f.pending, p[:n]...)
		if bad {
			// Refuse before the Reader waits for a body whose length is
			// really some other protocol's bytes.
			return n, errNotMQTT
		}
	}
	return n, err
}

func (f *framer) next() (chunk, error) {
	if f.raw || f.err != nil {
		return f.nextRaw()
	}
	h, body, err := f.r.Next()
	switch {
	case err == nil:
		size := headerLen(f.pending) + len(body)
		ch := chunk{h: h, data: bytes.Clone(f.pending[:size]), packet: true}
		f.pending = f.pending[size:]
		if f.first {
			f.first = false
			if !firstPacketOK(f.dir, h, body) {
				f.raw = true
				ch = chunk{data: append(ch.data, f.pending...)}
				f.pending = nil
			}
		}
		return ch, nil
	case err == io.ErrUnexpectedEOF:
		// The sender stopped inside a packet: pass the fragment on, then
		// the end of stream.
		f.err = io.EOF
		return f.nextRaw()
	case errors.Is(err, errNotMQTT), errors.Is(err, packet.ErrMalformed), errors.Is(err, packet.ErrPacketTooLarge):
		f.raw = true
		return f.nextRaw()
	}
	return chunk{}, err
}

func (f *framer) nextRaw() (chunk, error) {
	if len(f.pending) > 0 {
		ch := chunk{data: f.pending}
		f.pending = nil
		return ch, nil
	}
	if f.err != nil {
		return chunk{}, f.err
	}
	if f.buf == nil {
		f.buf = make([]byte, rawReadSize)
	}
	if !f.wait() {
		return chunk{}, net.ErrClosed
	}
	n, err := f.src.Read(f.buf)
	if n > 0 {
		f.err = err
		return chunk{data: bytes.Clone(f.buf[:n])}, nil
	}
	return chunk{}, err
}

// headerLen is the length of the fixed header at the start of b, counted
// from the bytes themselves so that a non-minimal length encoding is
// forwarded as sent.
func headerLen(b []byte) int {
	for i := 1; i < len(b) && i < 5; i++ {
		if b[i]&0x80 == 0 {
			return i + 1
		}
	}
	return len(b)
}

// firstByteOK reports whether b can start direction dir of an MQTT
// connection: CONNECT from the client; CONNACK or AUTH from the broker.
func firstByteOK(dir int, b byte) bool {
	if dir == 0 {
		return b == byte(packet.CONNECT)<<4
	}
	return b == byte(packet.CONNACK)<<4 || b == byte(packet.AUTH)<<4
}

// firstPacketOK checks the first packet of a direction: a CONNECT must name
// the MQTT protocol.
func firstPacketOK(dir int, h packet.FixedHeader, body []byte) bool {
	if !firstByteOK(dir, byte(h.Type)<<4|h.Flags) {
		return false
	}
	return dir == 1 || bytes.HasPrefix(body, []byte("\x00\x04MQTT")) || bytes.HasPrefix(body, []byte("\x00\x06MQIsdp"))
}
