package packet

// Reader limits and memory: the maximum packet size, how large the buffer
// may grow, what Next and ReadPacket return aliasing that buffer, and zero
// allocations on the warm receive path.

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

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

// NewReaderSize's first buffer is the size asked for; small packets never
// grow it, and a packet larger than it still arrives whole.
func TestReaderSize(t *testing.T) {
	wire, want := rdrStream(t, V311, 200)
	r := NewReaderSize(&rdrRandReader{b: wire, rng: rand.New(rand.NewPCG(3, 4))}, 1<<20, 512)
	if err := rdrReadAll(t, r, want); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
	if c := cap(r.buf); c != 512 {
		t.Errorf("buffer capacity %d, want 512", c)
	}
	big := rdrWire(t, V311, &Publish{Topic: "big", Payload: bytes.Repeat([]byte{1}, 3000)})
	r = NewReaderSize(bytes.NewReader(big), 1<<20, 512)
	if _, body, err := r.Next(); err != nil || len(body) != len(big)-3 {
		t.Fatalf("big packet: %d bytes, %v", len(body), err)
	}
}
