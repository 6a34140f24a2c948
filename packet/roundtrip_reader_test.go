package packet

// Round trips through the Reader on the golden packets: each image alone
// through ReadPacket, the version adopted from a CONNECT, and every image
// of one version read back from a single stream however the source splits
// it.

import (
	"bytes"
	"io"
	"slices"
	"testing"
)

// TestReaderReadPacket reads each image alone through Reader.ReadPacket.
func TestReaderReadPacket(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.wire), 0)
			r.SetVersion(c.v)
			p, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("ReadPacket: %v", err)
			}
			if !goldenEqual(p, c.pkt) {
				t.Errorf("ReadPacket gave\n%+v\nwant\n%+v", goldenCanon(p), goldenCanon(c.pkt))
			}
			if r.Version() != c.v {
				t.Errorf("Version() = %v after the packet, want %v", r.Version(), c.v)
			}
			if _, err := r.ReadPacket(); err != io.EOF {
				t.Errorf("ReadPacket at the end: %v, want io.EOF", err)
			}
		})
	}
}

// TestReaderAdoptsConnectVersion: a Reader left at its default takes the
// version of the CONNECT it reads, so the next packet decodes as 5.0.
func TestReaderAdoptsConnectVersion(t *testing.T) {
	var stream []byte
	var want []goldenCase
	for _, name := range []string{"v5 CONNECT all properties will user password", "v5 PUBLISH all properties"} {
		for _, c := range goldenCases {
			if c.name == name {
				stream = append(stream, c.wire...)
				want = append(want, c)
			}
		}
	}
	if len(want) != 2 {
		t.Fatalf("found %d of the 2 cases", len(want))
	}
	r := NewReader(bytes.NewReader(stream), 0)
	if r.Version() != V311 {
		t.Errorf("default Version() = %v, want 3.1.1", r.Version())
	}
	for _, c := range want {
		p, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("%s: ReadPacket: %v", c.name, err)
		}
		if !goldenEqual(p, c.pkt) {
			t.Errorf("%s: ReadPacket gave\n%+v\nwant\n%+v", c.name, goldenCanon(p), goldenCanon(c.pkt))
		}
	}
}

// rtByteReader hands out one byte per Read call.
type rtByteReader struct{ b []byte }

func (r *rtByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

// rtGreedyReader returns as much as fits in each call and io.EOF together
// with the last bytes, as io.Reader allows.
type rtGreedyReader struct{ b []byte }

func (r *rtGreedyReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// rtStreams returns the golden cases of each version in table order and the
// concatenation of their images; the 3.1 CONNECT travels with 3.1.1.
func rtStreams() map[Version][]goldenCase {
	m := map[Version][]goldenCase{}
	for _, c := range goldenCases {
		v := c.v
		if v == V31 {
			v = V311
		}
		m[v] = append(m[v], c)
	}
	return m
}

// TestReaderStream reads all the golden packets of one version from a single
// stream, through sources that deliver it a byte at a time, greedily with a
// final io.EOF, and as bytes.Reader does, with Next+Decode and ReadPacket.
func TestReaderStream(t *testing.T) {
	sources := []struct {
		name string
		new  func([]byte) io.Reader
	}{
		{"one byte per read", func(b []byte) io.Reader { return &rtByteReader{b} }},
		{"all at once with EOF", func(b []byte) io.Reader { return &rtGreedyReader{b} }},
		{"bytes.Reader", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	}
	for v, cases := range rtStreams() {
		var stream []byte
		for _, c := range cases {
			stream = append(stream, c.wire...)
		}
		for _, src := range sources {
			t.Run(v.String()+"/"+src.name+"/Next", func(t *testing.T) {
				r := NewReader(src.new(slices.Clone(stream)), 0)
				r.SetVersion(v)
				for _, c := range cases {
					h, body, err := r.Next()
					if err != nil {
						t.Fatalf("%s: Next: %v", c.name, err)
					}
					p := New(h.Type)
					if p == nil {
						t.Fatalf("%s: Next returned type %v", c.name, h.Type)
					}
					if err := p.Decode(h.Flags, body, c.v); err != nil {
						t.Fatalf("%s: Decode: %v", c.name, err)
					}
					if !goldenEqual(p, c.pkt) {
						t.Fatalf("%s: got\n%+v\nwant\n%+v", c.name, goldenCanon(p), goldenCanon(c.pkt))
					}
				}
				if _, _, err := r.Next(); err != io.EOF {
					t.Errorf("Next after the last packet: %v, want io.EOF", err)
				}
			})
			t.Run(v.String()+"/"+src.name+"/ReadPacket", func(t *testing.T) {
				r := NewReader(src.new(slices.Clone(stream)), 0)
				r.SetVersion(v)
				for _, c := range cases {
					p, err := r.ReadPacket()
					if err != nil {
						t.Fatalf("%s: ReadPacket: %v", c.name, err)
					}
					if !goldenEqual(p, c.pkt) {
						t.Fatalf("%s: got\n%+v\nwant\n%+v", c.name, goldenCanon(p), goldenCanon(c.pkt))
					}
				}
				if _, err := r.ReadPacket(); err != io.EOF {
					t.Errorf("ReadPacket after the last packet: %v, want io.EOF", err)
				}
			})
			t.Run(v.String()+"/"+src.name+"/truncated", func(t *testing.T) {
				r := NewReader(src.new(slices.Clone(stream[:len(stream)-1])), 0)
				r.SetVersion(v)
				for i := range cases {
					_, _, err := r.Next()
					if i < len(cases)-1 && err != nil {
						t.Fatalf("%s: Next: %v", cases[i].name, err)
					}
					if i == len(cases)-1 && err != io.ErrUnexpectedEOF {
						t.Fatalf("%s cut short by one byte: Next error %v, want io.ErrUnexpectedEOF", cases[i].name, err)
					}
				}
			})
		}
	}
}
