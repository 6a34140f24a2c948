package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// rawLib is the physical limit the libraries are measured against: MQTT
// 3.1.1 over a bare *net.TCPConn with 64 KiB buffers each way, packets
// encoded once up front (only the packet identifier is patched per
// message), acknowledgements read inline on the publishing goroutine, and
// nothing else: no keep-alive, no resends, no reconnects, no checks
// beyond the packet types. A subscriber that is not also publishing reads
// on one goroutine of its own.
type rawLib struct{}

func (rawLib) name() string { return "raw" }

const rawBufSize = 64 << 10

type rawClient struct {
	nc    *net.TCPConn
	r     *bufio.Reader
	w     *bufio.Writer
	onMsg func()
	body  []byte // scratch for packets larger than r's buffer

	reading sync.WaitGroup // the subscriber's reader goroutine
}

func (rawLib) connect(ctx context.Context, o connOpts) (client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{
		nc:    nc.(*net.TCPConn),
		r:     bufio.NewReaderSize(nc, rawBufSize),
		w:     bufio.NewWriterSize(nc, rawBufSize),
		onMsg: o.onMsg,
	}
	done := c.deadline(ctx)
	defer done()
	// Keep-alive off: the raw client never pings, and must not be
	// disconnected for it while idle.
	if err := c.send(&packet.Connect{ClientID: o.id, CleanStart: true}); err != nil {
		nc.Close()
		return nil, err
	}
	t, body, err := c.next()
	if err == nil && (t != packet.CONNACK || len(body) != 2 || body[1] != 0) {
		err = fmt.Errorf("raw: got %v % x, want CONNACK accepted", t, body)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// deadline applies ctx's deadline to the socket until the returned
// function is called.
func (c *rawClient) deadline(ctx context.Context) func() {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
		return func() { _ = c.nc.SetDeadline(time.Time{}) }
	}
	return func() {}
}

// send encodes p, writes it and flushes. It is for the few packets that
// are not on a measured path.
func (c *rawClient) send(p packet.Packet) error {
	b, err := p.AppendTo(nil, packet.V311)
	if err != nil {
		return err
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.w.Flush()
}

// next reads one packet. The body is valid until the next call.
func (c *rawClient) next() (packet.Type, []byte, error) {
	first, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, shift := 0, 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n |= int(b&0x7f) << shift
		if b < 0x80 {
			break
		}
		if shift += 7; shift > 21 {
			return 0, nil, errors.New("raw: malformed remaining length")
		}
	}
	t := packet.Type(first >> 4)
	if n <= c.r.Size() {
		body, err := c.r.Peek(n)
		if err != nil {
			return 0, nil, err
		}
		_, _ = c.r.Discard(n)
		return t, body, nil
	}
	if cap(c.body) < n {
		c.body = make([]byte, n)
	}
	body := c.body[:n]
	_, err = io.ReadFull(c.r, body)
	return t, body, err
}

// encoded is a PUBLISH encoded once, with the offset of its packet
// identifier so that each message can patch its own.
type encoded struct {
	b    []byte
	idAt int // -1 at QoS 0
}

func encodePublish(topic string, payload []byte, qos byte) (encoded, error) {
	p := &packet.Publish{Topic: topic, Payload: payload, QoS: qos}
	if qos > 0 {
		p.PacketID = 1
	}
	b, err := p.AppendTo(nil, packet.V311)
	if err != nil {
		return encoded{}, err
	}
	e := encoded{b: b, idAt: -1}
	if qos > 0 {
		// After the fixed header and the length-prefixed topic, which
		// end len(payload)+2 bytes before the end.
		e.idAt = len(b) - len(payload) - 2
	}
	return e, nil
}

// write buffers one copy of e with packet identifier id.
func (c *rawClient) write(e encoded, id uint16) error {
	if e.idAt >= 0 {
		e.b[e.idAt], e.b[e.idAt+1] = byte(id>>8), byte(id)
	}
	_, err := c.w.Write(e.b)
	return err
}

// nextID returns the identifier of the i-th message: 1 to 65535, round
// and round. A window is far smaller than 65,535, so no identifier is
// reused while still in flight.
func nextID(i int) uint16 { return uint16(i%65535 + 1) }

func (c *rawClient) subscribe(ctx context.Context, filter string, qos byte) error {
	done := c.deadline(ctx)
	sub := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}
	if err := c.send(sub); err != nil {
		done()
		return err
	}
	t, body, err := c.next()
	done()
	if err != nil {
		return err
	}
	if t != packet.SUBACK || len(body) != 3 || body[2] > 2 {
		return fmt.Errorf("raw: got %v % x, want SUBACK granted", t, body)
	}
	if c.onMsg != nil {
		c.reading.Go(c.readLoop)
	}
	return nil
}

// readLoop counts incoming PUBLISH packets until the connection closes.
// It sends nothing, so a subscriber that reads here receives at QoS 0.
func (c *rawClient) readLoop() {
	for {
		t, _, err := c.next()
		if err != nil {
			return // closed; a loss shows as messages missing
		}
		if t == packet.PUBLISH {
			c.onMsg()
		}
	}
}

func (c *rawClient) publish(ctx context.Context, topic string, payload []byte, qos byte, n, window int) error {
	e, err := encodePublish(topic, payload, qos)
	if err != nil {
		return err
	}
	done := c.deadline(ctx)
	defer done()
	if qos == 0 {
		for range n {
			if err := c.write(e, 0); err != nil {
				return err
			}
			if window == 1 {
				if err := c.w.Flush(); err != nil {
					return err
				}
			}
		}
		return c.w.Flush()
	}
	pubrel := []byte{0x62, 2, 0, 0}
	window = max(window, 1)
	sent, out, finished := 0, 0, 0
	for finished < n {
		for out < window && sent < n {
			if err := c.write(e, nextID(sent)); err != nil {
				return err
			}
			sent++
			out++
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
		// Read at least one acknowledgement, then whatever others have
		// already arrived, before topping the window up again.
		for {
			t, body, err := c.next()
			if err != nil {
				return err
			}
			switch {
			case t == packet.PUBACK && qos == 1, t == packet.PUBCOMP && qos == 2:
				out--
				finished++
			case t == packet.PUBREC && qos == 2 && len(body) >= 2:
				pubrel[2], pubrel[3] = body[0], body[1]
				if _, err := c.w.Write(pubrel); err != nil {
					return err
				}
			default:
				return fmt.Errorf("raw: unexpected %v while publishing at QoS %d", t, qos)
			}
			if c.r.Buffered() == 0 {
				break
			}
		}
	}
	return nil
}

// roundTrip connects and subscribes without a reader goroutine, so that
// the round trips can read the socket inline.
func (l rawLib) roundTrip(ctx context.Context, o connOpts, topic string, payload []byte, n int) ([]int64, error) {
	o.onMsg = nil
	cl, err := l.connect(ctx, o)
	if err != nil {
		return nil, err
	}
	c := cl.(*rawClient)
	defer c.close()
	if err := c.subscribe(ctx, topic, 1); err != nil {
		return nil, err
	}
	return c.roundTrips(ctx, topic, payload, n)
}

// roundTrips publishes at QoS 1 to a topic the client is subscribed to at
// QoS 1, and reads until both its PUBACK and the message itself are in,
// n times. The PUBACK for the incoming message goes out with the next
// publish.
func (c *rawClient) roundTrips(ctx context.Context, topic string, payload []byte, n int) ([]int64, error) {
	e, err := encodePublish(topic, payload, 1)
	if err != nil {
		return nil, err
	}
	done := c.deadline(ctx)
	defer done()
	puback := []byte{0x40, 2, 0, 0}
	rtts := make([]int64, 0, n)
	for i := range n {
		start := time.Now()
		if err := c.write(e, nextID(i)); err != nil {
			return nil, err
		}
		if err := c.w.Flush(); err != nil {
			return nil, err
		}
		acked, got := false, false
		for !acked || !got {
			t, body, err := c.next()
			if err != nil {
				return nil, err
			}
			switch t {
			case packet.PUBACK:
				acked = true
			case packet.PUBLISH:
				rtts = append(rtts, int64(time.Since(start)))
				got = true
				// The identifier follows the topic.
				if len(body) < 2 {
					return nil, errors.New("raw: short PUBLISH")
				}
				at := 2 + (int(body[0])<<8 | int(body[1]))
				if len(body) < at+2 {
					return nil, errors.New("raw: short PUBLISH")
				}
				puback[2], puback[3] = body[at], body[at+1]
				if _, err := c.w.Write(puback); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("raw: unexpected %v in a round trip", t)
			}
		}
	}
	return rtts, c.w.Flush()
}

func (c *rawClient) close() {
	_, _ = c.w.Write([]byte{0xe0, 0}) // DISCONNECT
	_ = c.w.Flush()
	c.nc.Close()
	c.reading.Wait()
}
