package packet

// Reader framing: how it cuts packets out of a byte stream whatever the
// source's Read does (many packets per Read, one byte per Read, data with
// io.EOF), and how it reports the stream's end and the source's errors.
// Also the rdr* helpers the other reader_*_test.go files use.

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

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
