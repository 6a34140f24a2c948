package packet_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mqttas/mqttas/packet"
)

// The benchmark packets are shaped like a busy client's traffic: a QoS 1
// telemetry PUBLISH with a 64-byte payload, the CONNECT that opens the
// session and a three-filter SUBSCRIBE. alloc_test.go asserts the
// allocation budgets of the same packets.

var benchPayload = []byte(strings.Repeat("0123456789abcdef", 4)) // 64 bytes

const benchTopic = "sensors/eu-west/building-7/floor-3/temperature"

// benchPublish returns the QoS 1 PUBLISH; for V5 it carries three
// properties, the common ones of a request/response or telemetry message.
func benchPublish(v packet.Version) *packet.Publish {
	p := &packet.Publish{QoS: 1, PacketID: 4242, Topic: benchTopic, Payload: benchPayload}
	if v == packet.V5 {
		p.Properties.MessageExpiry = 3600
		p.Properties.ContentType = "application/json"
		p.Properties.User = []packet.UserProperty{{Key: "trace-id", Value: "4bf92f3577b34da6"}}
	}
	return p
}

// benchConnect returns a CONNECT with a will, a user name and a password;
// for V5 the connection and the will carry properties too.
func benchConnect(v packet.Version) *packet.Connect {
	c := &packet.Connect{
		CleanStart: true,
		KeepAlive:  30,
		ClientID:   "mqttas-bench-client-0001",
		Will: &packet.Will{
			QoS:     1,
			Retain:  true,
			Topic:   "clients/mqttas-bench-client-0001/status",
			Payload: []byte("offline"),
		},
		Username: "bench-user",
		Password: []byte("s3cr3t-passw0rd"),
	}
	if v == packet.V5 {
		c.Properties.SessionExpiry = 3600
		c.Properties.ReceiveMaximum = 100
		c.Will.Properties.WillDelay = 5
	}
	return c
}

// benchSubscribe returns a SUBSCRIBE with three filters: a single-level
// wildcard, a multi-level wildcard and a plain topic.
func benchSubscribe() *packet.Subscribe {
	return &packet.Subscribe{
		PacketID: 7,
		Subscriptions: []packet.Subscription{
			{Filter: "sensors/+/building-7/+/temperature", QoS: 1},
			{Filter: "alerts/eu-west/#", QoS: 2},
			{Filter: "clients/mqttas-bench-client-0001/commands", QoS: 0},
		},
	}
}

// benchCase is one packet in one protocol version.
type benchCase struct {
	name string
	v    packet.Version
	p    packet.Packet
}

func benchCases() []benchCase {
	return []benchCase{
		{"PublishV311", packet.V311, benchPublish(packet.V311)},
		{"PublishV5", packet.V5, benchPublish(packet.V5)},
		{"ConnectV311", packet.V311, benchConnect(packet.V311)},
		{"ConnectV5", packet.V5, benchConnect(packet.V5)},
		{"SubscribeV311", packet.V311, benchSubscribe()},
		{"SubscribeV5", packet.V5, benchSubscribe()},
	}
}

// benchWire encodes p or fails tb.
func benchWire(tb testing.TB, p packet.Packet, v packet.Version) []byte {
	tb.Helper()
	wire, err := p.AppendTo(nil, v)
	if err != nil {
		tb.Fatalf("encode %v %v: %v", p.Type(), v, err)
	}
	return wire
}

// benchSplit separates an encoded packet into its fixed header and body.
func benchSplit(tb testing.TB, wire []byte, v packet.Version) (packet.FixedHeader, []byte) {
	tb.Helper()
	r := packet.NewReader(bytes.NewReader(wire), 0)
	r.SetVersion(v)
	h, body, err := r.Next()
	if err != nil {
		tb.Fatalf("split %x: %v", wire, err)
	}
	return h, body
}

// benchLoopReader is an endless stream that replays buf, a whole number of
// packets, from the start each time it runs out. Every Read fills p.
type benchLoopReader struct {
	buf []byte
	off int
}

func (r *benchLoopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.buf[r.off:])
		n += c
		r.off += c
		if r.off == len(r.buf) {
			r.off = 0
		}
	}
	return n, nil
}

// newBenchLoopReader repeats wire until the stream's period is at least
// the Reader's buffer size, so one Read costs a copy or two rather than one
// per packet.
func newBenchLoopReader(wire []byte) *benchLoopReader {
	buf := bytes.Repeat(wire, packet.DefaultBufferSize/len(wire)+1)
	return &benchLoopReader{buf: buf}
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			dst := benchWire(b, c.p, c.v)
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = c.p.AppendTo(dst[:0], c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode decodes a body that is already in memory, the cost left
// once Reader.Next has framed the packet.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			wire := benchWire(b, c.p, c.v)
			h, body := benchSplit(b, wire, c.v)
			p := packet.New(h.Type)
			// The first decode sizes the reused slices (user properties,
			// subscriptions); the loop measures the steady state.
			if err := p.Decode(h.Flags, body, c.v); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Decode(h.Flags, body, c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStream is the receive path of a connection: Reader.Next frames
// each PUBLISH of an endless stream and Publish.Decode fills one reused
// struct. One op is one packet.
func BenchmarkStream(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		b.Run("Publish"+benchVersionName(v), func(b *testing.B) {
			wire := benchWire(b, benchPublish(v), v)
			r := packet.NewReader(newBenchLoopReader(wire), 0)
			r.SetVersion(v)
			var p packet.Publish
			next := func() {
				h, body, err := r.Next()
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Decode(h.Flags, body, v); err != nil {
					b.Fatal(err)
				}
			}
			next() // allocates the read buffer and the user property slice
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				next()
			}
		})
	}
}

func benchVersionName(v packet.Version) string {
	if v == packet.V5 {
		return "V5"
	}
	return "V311"
}
