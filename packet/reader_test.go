package packet

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// Reader behaviour: how it frames packets out of a byte stream whatever the
// source's Read does, how it reports the stream's end and errors, and how
// much memory it keeps.

// rdrWire encodes packets back to back for version v.
func rdrWire(tb testing.TB, v Version, ps ...Packet) []byte {
	tb.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.AppendTo(b, v); err != nil {
			tb.Fatalf("encoding %T: %v", p, err)
		}
	}
	return b
}

// rdrPublish returns a QoS 0 PUBLISH whose encoding is exactly total bytes
// long in MQTT 3.1.1 (total >= 5), with a payload derived from seed.
func rdrPublish(total int, seed byte) *Publish {
	rl := total - 2
	for 1+varintLen(rl)+rl > total {
		rl--
	}
	payload := make([]byte, rl-3) // topic "t" takes three bytes
	for i := range payload {
		payload[i] = seed + byte(i)
	}
	return &Publish{Topic: "t", Payload: payload}
}

// rdrStream is a mixed stream of small packets and the headers and bodies
// Next must return for it.
func rdrStream(tb testing.TB, v Version, n int) (wire []byte, want []rdrPacket) {
	tb.Helper()
	for i := range n {
		var p Packet
		switch i % 4 {
		case 0:
			p = &Publish{Topic: "sensors/" + itoa(i), QoS: 1, PacketID: uint16(i + 1), Payload: []byte(strings.Repeat("x", i))}
		case 1:
			p = &Puback{PacketID: uint16(i)}
		case 2:
			p = &Pingreq{}
		case 3:
			p = &Subscribe{PacketID: uint16(i), Subscriptions: []Subscription{{Filter: "a/+/" + itoa(i), QoS: 2}}}
		}
		b := rdrWire(tb, v, p)
		wire = append(wire, b...)
		want = append(want, rdrSplit(tb, b, v))
	}
	return wire, want
}

// rdrPacket is one expected result of Next.
type rdrPacket struct {
	h    FixedHeader
	body []byte
}

// rdrSplit parses the fixed header of one encoded packet.
func rdrSplit(tb testing.TB, b []byte, v Version) rdrPacket {
	tb.Helper()
	n, used := parseVarint(b[1:], v == V5)
	if used <= 0 || len(b) != 1+used+n {
		tb.Fatalf("bad test packet % X", b)
	}
	return rdrPacket{FixedHeader{Type: Type(b[0] >> 4), Flags: b[0] & 0x0f, RemainingLength: n}, b[1+used:]}
}

// rdrReadAll calls Next until it fails, checking each packet against want,
// and returns the error that ended the stream.
func rdrReadAll(t *testing.T, r *Reader, want []rdrPacket) error {
	t.Helper()
	for i := 0; ; i++ {
		h, body, err := r.Next()
		if err != nil {
			if i != len(want) {
				t.Errorf("stream ended after %d of %d packets: %v", i, len(want), err)
			}
			return err
		}
		if i >= len(want) {
			t.Fatalf("packet %d beyond the %d written: %+v", i, len(want), h)
		}
		if h != want[i].h || !bytes.Equal(body, want[i].body) {
			t.Fatalf("packet %d: got %+v % X, want %+v % X", i, h, body, want[i].h, want[i].body)
		}
		if _, err := Decode(h, body, r.Version()); err != nil {
			t.Fatalf("packet %d: Decode: %v", i, err)
		}
	}
}

// rdrCounting counts the Read calls made on it.
type rdrCounting struct {
	r     io.Reader
	reads int
}

func (c *rdrCounting) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestReaderManyPacketsOneRead(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		t.Run(v.String(), func(t *testing.T) {
			wire, want := rdrStream(t, v, 60)
			if len(wire) > DefaultBufferSize {
				t.Fatalf("stream of %d bytes does not fit one buffer", len(wire))
			}
			src := &rdrCounting{r: bytes.NewReader(wire)}
			r := NewReader(src, 0)
			r.SetVersion(v)
			if _, _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
			if src.reads != 1 {
				t.Fatalf("first packet took %d reads", src.reads)
			}
			if err := rdrReadAll(t, r, want[1:]); err != io.EOF {
				t.Errorf("end of stream: %v, want io.EOF", err)
			}
			// One Read brought all 60 packets; the second found the end.
			if src.reads != 2 {
				t.Errorf("%d Read calls for %d packets, want 2", src.reads, len(want))
			}
		})
	}
}

func TestReaderOneBytePerRead(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		t.Run(v.String(), func(t *testing.T) {
			wire, want := rdrStream(t, v, 20)
			// A packet larger than the initial buffer, so the buffer grows
			// while the bytes trickle in.
			big := rdrWire(t, v, &Publish{Topic: "big", Payload: bytes.Repeat([]byte{0xA5}, 3*DefaultBufferSize)})
			wire = append(wire, big...)
			want = append(want, rdrSplit(t, big, v))
			src := &rdrCounting{r: iotest.OneByteReader(bytes.NewReader(wire))}
			r := NewReader(src, 0)
			r.SetVersion(v)
			if err := rdrReadAll(t, r, want); err != io.EOF {
				t.Errorf("end of stream: %v, want io.EOF", err)
			}
			if src.reads != len(wire)+1 {
				t.Errorf("%d Read calls for %d bytes", src.reads, len(wire))
			}
		})
	}
}

// rdrDataEOF returns up to chunk bytes per Read and io.EOF together with the
// last of them, as io.Reader allows.
type rdrDataEOF struct {
	b     []byte
	chunk int
	err   error // returned with the last bytes; io.EOF if nil
}

func (s *rdrDataEOF) Read(p []byte) (int, error) {
	n := copy(p, s.b[:min(len(s.b), s.chunk)])
	s.b = s.b[n:]
	if len(s.b) == 0 {
		if s.err != nil {
			return n, s.err
		}
		return n, io.EOF
	}
	return n, nil
}

func TestReaderDataWithEOF(t *testing.T) {
	wire, want := rdrStream(t, V311, 12)
	for _, chunk := range []int{1, 2, 3, 7, 64, len(wire)} {
		t.Run("chunk "+itoa(chunk), func(t *testing.T) {
			r := NewReader(&rdrDataEOF{b: wire, chunk: chunk}, 0)
			if err := rdrReadAll(t, r, want); err != io.EOF {
				t.Errorf("end of stream: %v, want io.EOF", err)
			}
			// The end stays the end.
			if _, _, err := r.Next(); err != io.EOF {
				t.Errorf("Next after the end: %v, want io.EOF", err)
			}
		})
	}
	t.Run("iotest.DataErrReader", func(t *testing.T) {
		r := NewReader(iotest.DataErrReader(bytes.NewReader(wire)), 0)
		if err := rdrReadAll(t, r, want); err != io.EOF {
			t.Errorf("end of stream: %v, want io.EOF", err)
		}
	})
	// io.EOF arriving with the first half of a packet is an unexpected end.
	t.Run("EOF mid-packet", func(t *testing.T) {
		cut := len(wire) - 3
		r := NewReader(&rdrDataEOF{b: wire[:cut], chunk: len(wire)}, 0)
		if err := rdrReadAll(t, r, want[:len(want)-1]); err != io.ErrUnexpectedEOF {
			t.Errorf("end of stream: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	// And with the first byte of a header.
	t.Run("EOF mid-header", func(t *testing.T) {
		r := NewReader(&rdrDataEOF{b: append(wire[:len(wire):len(wire)], 0x30), chunk: 5}, 0)
		if err := rdrReadAll(t, r, want); err != io.ErrUnexpectedEOF {
			t.Errorf("end of stream: %v, want io.ErrUnexpectedEOF", err)
		}
	})
}

// rdrFailing serves chunks, one per Read, then fails with err; withLast
// returns err together with the last chunk instead.
type rdrFailing struct {
	chunks   [][]byte
	err      error
	withLast bool
	reads    int
}

func (s *rdrFailing) Read(p []byte) (int, error) {
	s.reads++
	if len(s.chunks) == 0 {
		return 0, s.err
	}
	n := copy(p, s.chunks[0])
	if n < len(s.chunks[0]) {
		s.chunks[0] = s.chunks[0][n:]
		return n, nil
	}
	s.chunks = s.chunks[1:]
	if len(s.chunks) == 0 && s.withLast {
		return n, s.err
	}
	return n, nil
}

func TestReaderSourceErrorMidPacket(t *testing.T) {
	errLink := errors.New("link down")
	first := rdrWire(t, V311, &Publish{Topic: "a", Payload: []byte("one")})
	second := rdrWire(t, V311, &Publish{Topic: "b", Payload: []byte("two")})
	cases := []struct {
		name     string
		chunks   [][]byte
		withLast bool
		packets  int // returned before the error
	}{
		{"mid-body, error alone", [][]byte{first, second[:4]}, false, 1},
		{"mid-body, error with the data", [][]byte{first, second[:4]}, true, 1},
		{"mid-header, error alone", [][]byte{first, second[:1]}, false, 1},
		{"mid-header, error with the data", [][]byte{append(first[:len(first):len(first)], second[:1]...)}, true, 1},
		{"before any byte", nil, false, 0},
		{"error with the bytes completing a packet", [][]byte{first, second}, true, 2},
		{"between packets", [][]byte{first, second}, false, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chunks := make([][]byte, len(tc.chunks))
			copy(chunks, tc.chunks)
			src := &rdrFailing{chunks: chunks, err: errLink, withLast: tc.withLast}
			r := NewReader(src, 0)
			for i := range tc.packets {
				if _, _, err := r.Next(); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
			_, _, err := r.Next()
			if !errors.Is(err, errLink) {
				t.Fatalf("Next = %v, want the source's error", err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed) {
				t.Errorf("source error reported as %v", err)
			}
			// The error sticks: the stream is out of step and the source
			// is not asked again.
			reads := src.reads
			if _, _, err := r.Next(); !errors.Is(err, errLink) {
				t.Errorf("second Next = %v, want the source's error again", err)
			}
			if src.reads != reads {
				t.Errorf("source read again after failing")
			}
		})
	}
}

// TestReaderNoProgress covers a source that returns neither data nor an
// error: the Reader gives up with io.ErrNoProgress instead of spinning.
func TestReaderNoProgress(t *testing.T) {
	src := &rdrCounting{r: rdrEmpty{}}
	_, _, err := NewReader(src, 0).Next()
	if err != io.ErrNoProgress {
		t.Errorf("Next = %v, want io.ErrNoProgress", err)
	}
	if src.reads < 2 || src.reads > 1000 {
		t.Errorf("%d empty reads before giving up", src.reads)
	}
}

type rdrEmpty struct{}

func (rdrEmpty) Read([]byte) (int, error) { return 0, nil }

// TestReaderMaxPacketSizeBoundary checks the limit at each size of the
// remaining length field: a packet of exactly the maximum is read, one byte
// less refuses it. The limit counts the fixed header, as MQTT 5.0's Maximum
// Packet Size does.
func TestReaderMaxPacketSizeBoundary(t *testing.T) {
	var packets [][]byte
	packets = append(packets, rdrWire(t, V311, &Pingreq{}))
	for _, total := range []int{5, 129, 130, 131, 4096, 4097, 16386, 16387, 16388, 70000, 2_097_156, 2_097_157} {
		packets = append(packets, rdrWire(t, V311, rdrPublish(total, byte(total))))
	}
	for _, wire := range packets {
		total := len(wire)
		want := rdrSplit(t, wire, V311)
		t.Run("size "+itoa(total), func(t *testing.T) {
			r := NewReader(bytes.NewReader(wire), total)
			if r.MaxPacketSize() != total {
				t.Errorf("MaxPacketSize() = %d, want %d", r.MaxPacketSize(), total)
			}
			h, body, err := r.Next()
			if err != nil {
				t.Fatalf("max %d: %v", total, err)
			}
			if h != want.h || !bytes.Equal(body, want.body) {
				t.Errorf("max %d: got %+v, want %+v", total, h, want.h)
			}
			if c := cap(r.buf); c > max(total, 5) {
				t.Errorf("buffer capacity %d exceeds the maximum %d", c, total)
			}

			r = NewReader(bytes.NewReader(wire), total-1)
			_, body, err = r.Next()
			if !errors.Is(err, ErrPacketTooLarge) {
				t.Fatalf("max %d: %v, want ErrPacketTooLarge", total-1, err)
			}
			if body != nil {
				t.Errorf("body returned with the error")
			}
			if c := cap(r.buf); c > max(total-1, 5) {
				t.Errorf("buffer capacity %d exceeds the maximum %d", c, total-1)
			}
		})
	}
}

func TestReaderMaxPacketSizeDefault(t *testing.T) {
	const protocolMax = 1 + 4 + MaxRemainingLength
	for _, m := range []int{0, -1, protocolMax + 1, 1 << 40} {
		if got := NewReader(nil, m).MaxPacketSize(); got != protocolMax {
			t.Errorf("NewReader(_, %d).MaxPacketSize() = %d, want %d", m, got, protocolMax)
		}
	}
	if got := NewReader(nil, protocolMax-1).MaxPacketSize(); got != protocolMax-1 {
		t.Errorf("MaxPacketSize() = %d, want %d", got, protocolMax-1)
	}
}

// rdrRandReader hands out a random number of bytes per Read.
type rdrRandReader struct {
	b   []byte
	rng *rand.Rand
}

func (s *rdrRandReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := 1 + s.rng.IntN(min(len(p), len(s.b)))
	if s.rng.IntN(4) == 0 {
		n = min(len(p), len(s.b)) // sometimes all it can
	}
	n = copy(p, s.b[:n])
	s.b = s.b[n:]
	return n, nil
}

// TestReaderBufferBounded reads streams of random-sized packets, each within
// the maximum M, in random-sized reads, and checks after every packet that
// the buffer never held more than max(M, 5) bytes: the five being the
// longest fixed header, which the Reader must be able to hold to learn a
// packet's size at all.
func TestReaderBufferBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(0x6d717474, 0x6173))
	for _, m := range []int{2, 3, 4, 5, 6, 7, 64, 129, 130, 1000, 4095, 4096, 4097, 5000, 10_000, 70_000} {
		t.Run("max "+itoa(m), func(t *testing.T) {
			n := 150
			if m > 10_000 {
				n = 40
			}
			var wire []byte
			var want []rdrPacket
			for i := range n {
				var b []byte
				switch {
				case m < 5 || rng.IntN(8) == 0:
					b = rdrWire(t, V311, &Pingresp{})
				case i%10 == 0:
					b = rdrWire(t, V311, rdrPublish(m, byte(i))) // exactly the maximum
				default:
					b = rdrWire(t, V311, rdrPublish(5+rng.IntN(m-4), byte(i)))
				}
				if len(b) > m {
					t.Fatalf("test packet of %d bytes over the maximum %d", len(b), m)
				}
				wire = append(wire, b...)
				want = append(want, rdrSplit(t, b, V311))
			}
			r := NewReader(&rdrRandReader{b: wire, rng: rng}, m)
			limit := max(m, 5)
			for i := range want {
				h, body, err := r.Next()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if h != want[i].h || !bytes.Equal(body, want[i].body) {
					t.Fatalf("packet %d: got %+v, want %+v", i, h, want[i].h)
				}
				if c := cap(r.buf); c > limit {
					t.Fatalf("after packet %d (%d bytes): buffer capacity %d exceeds max(M, 5) = %d",
						i, want[i].h.Size()+len(body), c, limit)
				}
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Errorf("end of stream: %v", err)
			}
			if c := cap(r.buf); c > limit {
				t.Errorf("at the end: buffer capacity %d exceeds %d", c, limit)
			}
		})
	}
}

// TestReaderBufferSmallPackets checks that a generous maximum does not make
// the Reader keep a large buffer for a stream of small packets.
func TestReaderBufferSmallPackets(t *testing.T) {
	wire, want := rdrStream(t, V311, 400)
	r := NewReader(&rdrRandReader{b: wire, rng: rand.New(rand.NewPCG(1, 2))}, 1<<20)
	if err := rdrReadAll(t, r, want); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
	if c := cap(r.buf); c > DefaultBufferSize {
		t.Errorf("buffer capacity %d for packets of at most %d bytes", c, len(wire)/len(want)*4)
	}
}

// rdrChunked returns one chunk per Read, the way packets often arrive on a
// network connection.
type rdrChunked struct{ chunks [][]byte }

func (s *rdrChunked) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if n < len(s.chunks[0]) {
		s.chunks[0] = s.chunks[0][n:]
	} else {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

// TestReaderBodyAliasesBuffer documents the contract of Next and
// ReadPacket: what they return lives in the Reader's buffer and is
// overwritten by the next call, so anything kept must be copied first.
func TestReaderBodyAliasesBuffer(t *testing.T) {
	first := rdrWire(t, V311, &Publish{Topic: "aaa", Payload: []byte("first!")})
	second := rdrWire(t, V311, &Publish{Topic: "bbb", Payload: []byte("second")})

	t.Run("Next", func(t *testing.T) {
		r := NewReader(&rdrChunked{chunks: [][]byte{first, second}}, 0)
		_, body1, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		kept := bytes.Clone(body1)
		_, body2, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if &body1[0] != &body2[0] {
			t.Fatalf("bodies at different addresses: the second read did not reuse the buffer")
		}
		if !bytes.Equal(body1, body2) || bytes.Equal(body1, kept) {
			t.Errorf("first body now % X; want it overwritten by the second, % X", body1, body2)
		}
		if !bytes.Equal(kept, first[2:]) {
			t.Errorf("the copy changed: % X", kept)
		}
		// The body's capacity ends with the packet: appending to it cannot
		// scribble over the next packet's bytes.
		if cap(body2) != len(body2) {
			t.Errorf("body capacity %d, length %d", cap(body2), len(body2))
		}
	})

	t.Run("ReadPacket", func(t *testing.T) {
		r := NewReader(&rdrChunked{chunks: [][]byte{first, second}}, 0)
		p1, err := r.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		pub1 := p1.(*Publish)
		topic := strings.Clone(pub1.Topic)
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
		// Even the string changed under us.
		if pub1.Topic != "bbb" || string(pub1.Payload) != "second" {
			t.Errorf("first packet now %q %q; want the second's bytes", pub1.Topic, pub1.Payload)
		}
		if topic != "aaa" {
			t.Errorf("cloned topic %q", topic)
		}
	})
}

func TestReaderSetVersion(t *testing.T) {
	r := NewReader(bytes.NewReader(nil), 0)
	if r.Version() != V311 {
		t.Errorf("default Version() = %v, want 3.1.1", r.Version())
	}
	for _, v := range []Version{V5, V31, V311} {
		r.SetVersion(v)
		if r.Version() != v {
			t.Errorf("after SetVersion(%v): Version() = %v", v, r.Version())
		}
	}

	// The version decides how strictly the remaining length is read: MQTT
	// 5.0 insists on the shortest encoding [MQTT-1.5.5-1].
	loose := []byte{0xC0, 0x80, 0x00, 0xC0, 0x80, 0x80, 0x00} // two PINGREQs, lengths in two and three bytes
	r = NewReader(bytes.NewReader(loose), 0)
	for i := range 2 {
		h, body, err := r.Next()
		if err != nil || h.Type != PINGREQ || len(body) != 0 {
			t.Fatalf("3.1.1 packet %d: %+v %v", i, h, err)
		}
	}
	r = NewReader(bytes.NewReader(loose), 0)
	r.SetVersion(V5)
	if _, _, err := r.Next(); !errors.Is(err, ErrMalformed) {
		t.Errorf("5.0: %v, want ErrMalformed", err)
	}
}

// TestReaderReadPacketAdoptsV5Connect starts a broker-side Reader at its
// default version and feeds it a 5.0 CONNECT followed by 5.0 packets whose
// properties only decode correctly once the Reader has switched.
func TestReaderReadPacketAdoptsV5Connect(t *testing.T) {
	connect := &Connect{ClientID: "c1", CleanStart: true, KeepAlive: 30,
		Properties: Properties{SessionExpiry: 3600, ReceiveMaximum: 20}}
	publish := &Publish{QoS: 1, PacketID: 7, Topic: "a/b", Payload: []byte("hello"),
		Properties: Properties{MessageExpiry: 60, ContentType: "text/plain", TopicAlias: 3,
			User: []UserProperty{{"k", "v"}}}}
	puback := &Puback{PacketID: 9, ReasonCode: NoMatchingSubscribers}
	wire := rdrWire(t, V5, connect, publish, puback)

	r := NewReader(bytes.NewReader(wire), 0)
	if r.Version() != V311 {
		t.Fatalf("initial Version() = %v", r.Version())
	}
	p, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := p.(*Connect)
	if !ok || c.Version != V5 || c.ClientID != "c1" || c.Properties.SessionExpiry != 3600 || c.Properties.ReceiveMaximum != 20 {
		t.Fatalf("CONNECT decoded as %#v", p)
	}
	if r.Version() != V5 {
		t.Fatalf("Version() after a 5.0 CONNECT = %v", r.Version())
	}
	p, err = r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := p.(*Publish)
	if !ok || pub.Topic != "a/b" || pub.PacketID != 7 || string(pub.Payload) != "hello" ||
		pub.Properties.MessageExpiry != 60 || pub.Properties.ContentType != "text/plain" ||
		pub.Properties.TopicAlias != 3 || len(pub.Properties.User) != 1 || pub.Properties.User[0] != (UserProperty{"k", "v"}) {
		t.Fatalf("PUBLISH decoded as %#v", p)
	}
	p, err = r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := p.(*Puback); !ok || ack.PacketID != 9 || ack.ReasonCode != NoMatchingSubscribers {
		t.Fatalf("PUBACK decoded as %#v", p)
	}
	if _, err := r.ReadPacket(); err != io.EOF {
		t.Errorf("end of stream: %v", err)
	}

	// Without the switch the same PUBLISH bytes read as 3.1.1 put the
	// properties into the payload: the version is not guessable from them.
	r = NewReader(bytes.NewReader(rdrWire(t, V5, publish)), 0)
	p, err = r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if string(p.(*Publish).Payload) == "hello" {
		t.Errorf("a 5.0 PUBLISH read as 3.1.1 came out right; the test proves nothing")
	}
}

// TestReaderReadPacketConnectVersions covers the other levels a CONNECT can
// switch to, and a refused CONNECT, which switches nothing.
func TestReaderReadPacketConnectVersions(t *testing.T) {
	for _, v := range []Version{V31, V311} {
		r := NewReader(bytes.NewReader(rdrWire(t, v, &Connect{ClientID: "c"})), 0)
		r.SetVersion(V5)
		p, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if p.(*Connect).Version != v || r.Version() != v {
			t.Errorf("%v CONNECT: packet %v, Reader %v", v, p.(*Connect).Version, r.Version())
		}
	}
	bad := rdrWire(t, V5, &Connect{ClientID: "c"})
	bad[8] = 6 // protocol level
	r := NewReader(bytes.NewReader(bad), 0)
	if _, err := r.ReadPacket(); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("level 6: %v", err)
	}
	if r.Version() != V311 {
		t.Errorf("a refused CONNECT changed the version to %v", r.Version())
	}
}

// rdrCycle is an endless stream repeating data, served in reads of at most
// chunk bytes, so that packets straddle reads and the buffer's end.
type rdrCycle struct {
	data  []byte
	off   int
	chunk int
}

func (c *rdrCycle) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && n < c.chunk {
		m := copy(p[n:min(len(p), c.chunk)], c.data[c.off:])
		n += m
		c.off = (c.off + m) % len(c.data)
	}
	return n, nil
}

// TestReaderNextDecodeZeroAllocs holds the receive path, Next plus
// Publish.Decode into a reused struct, to zero allocations once warm. The
// stream's packets do not divide the buffer evenly and arrive in reads of
// odd sizes, so the measured loop includes refills and the moves of a
// partial packet to the front of the buffer.
func TestReaderNextDecodeZeroAllocs(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		t.Run(v.String(), func(t *testing.T) {
			pubs := []Packet{
				&Publish{QoS: 1, PacketID: 1, Topic: "plant/7/temp", Payload: bytes.Repeat([]byte("21.5;"), 37),
					Properties: Properties{MessageExpiry: 60, ContentType: "text/csv", CorrelationData: []byte{1, 2, 3},
						SubscriptionIDs: []uint32{5, 300}, User: []UserProperty{{"site", "eu"}, {"unit", "C"}}}},
				&Publish{Topic: "t", Payload: []byte{0}},
				&Publish{QoS: 2, PacketID: 65535, Retain: true, Topic: "x/y/z", Payload: bytes.Repeat([]byte{7}, 1000)},
			}
			wire := rdrWire(t, v, pubs...)
			for _, chunk := range []int{13, 1500, DefaultBufferSize + 1} {
				r := NewReader(&rdrCycle{data: wire, chunk: chunk}, 4096)
				r.SetVersion(v)
				var p Publish
				var failed error
				step := func() {
					h, body, err := r.Next()
					if err == nil {
						err = p.Decode(h.Flags, body, v)
					}
					if err != nil && failed == nil {
						failed = err
					}
				}
				for range 2 * len(pubs) { // warm up: buffer, slices of p
					step()
				}
				allocs := testing.AllocsPerRun(500, step)
				if failed != nil {
					t.Fatalf("chunk %d: %v", chunk, failed)
				}
				if allocs != 0 {
					t.Errorf("chunk %d: %v allocations per Next+Decode, want 0", chunk, allocs)
				}
			}
		})
	}
}
