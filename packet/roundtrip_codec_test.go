package packet

// Round trips through the codec on the golden packets: encode then decode
// then encode again, Decode into a reused value (replacing every field,
// reusing its slices), the package-level Decode, and framing kept intact
// when a multi-valued property is marked present.

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unsafe"
)

// rtBody returns the fixed header and body of a golden image, split by the
// hand-written parser in golden_test.go rather than by Reader.
func rtBody(t *testing.T, c goldenCase) (FixedHeader, []byte) {
	t.Helper()
	typ, flags, remaining, hdr := goldenSplit(t, c.wire)
	return FixedHeader{Type: typ, Flags: flags, RemainingLength: remaining}, c.wire[hdr:]
}

// rtDecode decodes a golden image into a new value of its type.
func rtDecode(t *testing.T, c goldenCase) Packet {
	t.Helper()
	h, body := rtBody(t, c)
	p := New(h.Type)
	if err := p.Decode(h.Flags, body, c.v); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return p
}

// TestRoundTripReencode encodes each golden packet, decodes the result and
// encodes that again: all three byte strings must be the golden image.
func TestRoundTripReencode(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			first, err := c.pkt.AppendTo(nil, c.v)
			if err != nil {
				t.Fatalf("first AppendTo: %v", err)
			}
			h, body, err := NewReader(bytes.NewReader(first), 0).Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			p := New(h.Type)
			if err := p.Decode(h.Flags, body, c.v); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			second, err := p.AppendTo(nil, c.v)
			if err != nil {
				t.Fatalf("second AppendTo: %v", err)
			}
			if !bytes.Equal(first, second) {
				t.Errorf("re-encoding changed the bytes\nfirst  % x\nsecond % x", goldenTrim(first), goldenTrim(second))
			}
			if !bytes.Equal(second, c.wire) {
				t.Errorf("round trip left the golden image\ngot  % x\nwant % x", goldenTrim(second), goldenTrim(c.wire))
			}
			// Decoding the golden image directly and encoding it must also
			// reproduce it: the decoder keeps everything the encoder needs
			// (in particular the present marks of zero-valued properties).
			again, err := rtDecode(t, c).AppendTo(nil, c.v)
			if err != nil {
				t.Fatalf("AppendTo of the decoded image: %v", err)
			}
			if !bytes.Equal(again, c.wire) {
				t.Errorf("decode then encode\ngot  % x\nwant % x", goldenTrim(again), goldenTrim(c.wire))
			}
		})
	}
}

// rtDonor returns another golden case of the same packet type whose bytes
// differ from c's, preferring one of a different version; ok is false when
// there is none (PINGREQ, PINGRESP).
func rtDonor(c goldenCase) (goldenCase, bool) {
	var found goldenCase
	ok := false
	for _, d := range goldenCases {
		if d.pkt.Type() != c.pkt.Type() || bytes.Equal(d.wire, c.wire) {
			continue
		}
		if !ok || (found.v == c.v && d.v != c.v) {
			found, ok = d, true
		}
	}
	return found, ok
}

// TestDecodeReplacesPrevious decodes each golden image into a value that
// already holds a different packet of the same type: nothing of the old
// packet may survive.
func TestDecodeReplacesPrevious(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			donor, ok := rtDonor(c)
			if !ok {
				t.Skip("no other packet of this type in the table")
			}
			p := rtDecode(t, donor)
			if goldenEqual(p, c.pkt) {
				t.Fatalf("donor %q decodes to the same packet", donor.name)
			}
			h, body := rtBody(t, c)
			if err := p.Decode(h.Flags, body, c.v); err != nil {
				t.Fatalf("Decode over %q: %v", donor.name, err)
			}
			if !goldenEqual(p, c.pkt) {
				t.Errorf("Decode over %q gave\n%+v\nwant\n%+v", donor.name, goldenCanon(p), goldenCanon(c.pkt))
			}
		})
	}
}

// rtSlices returns the address of the first element of every non-empty
// slice (and the Will) in p, the storage Decode promises to reuse.
func rtSlices(p Packet) map[string]unsafe.Pointer {
	m := map[string]unsafe.Pointer{}
	add := func(name string, ptr unsafe.Pointer, n int) {
		if n > 0 {
			m[name] = ptr
		}
	}
	props := func(prefix string, pr *Properties) {
		add(prefix+"User", unsafe.Pointer(unsafe.SliceData(pr.User)), len(pr.User))
		add(prefix+"SubscriptionIDs", unsafe.Pointer(unsafe.SliceData(pr.SubscriptionIDs)), len(pr.SubscriptionIDs))
	}
	switch x := p.(type) {
	case *Connect:
		props("", &x.Properties)
		if x.Will != nil {
			m["Will"] = unsafe.Pointer(x.Will)
			props("Will.", &x.Will.Properties)
		}
	case *Connack:
		props("", &x.Properties)
	case *Publish:
		props("", &x.Properties)
	case *Puback:
		props("", &x.Properties)
	case *Pubrec:
		props("", &x.Properties)
	case *Pubrel:
		props("", &x.Properties)
	case *Pubcomp:
		props("", &x.Properties)
	case *Subscribe:
		props("", &x.Properties)
		add("Subscriptions", unsafe.Pointer(unsafe.SliceData(x.Subscriptions)), len(x.Subscriptions))
	case *Suback:
		props("", &x.Properties)
		add("ReasonCodes", unsafe.Pointer(unsafe.SliceData(x.ReasonCodes)), len(x.ReasonCodes))
	case *Unsubscribe:
		props("", &x.Properties)
		add("Filters", unsafe.Pointer(unsafe.SliceData(x.Filters)), len(x.Filters))
	case *Unsuback:
		props("", &x.Properties)
		add("ReasonCodes", unsafe.Pointer(unsafe.SliceData(x.ReasonCodes)), len(x.ReasonCodes))
	case *Disconnect:
		props("", &x.Properties)
	case *Auth:
		props("", &x.Properties)
	}
	return m
}

// TestDecodeReusesSlices decodes each image twice into one value: the second
// decode must land in the slices (and Will) the first one allocated.
func TestDecodeReusesSlices(t *testing.T) {
	reused := 0
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			p := rtDecode(t, c)
			before := rtSlices(p)
			h, body := rtBody(t, c)
			if err := p.Decode(h.Flags, body, c.v); err != nil {
				t.Fatalf("second Decode: %v", err)
			}
			after := rtSlices(p)
			for name, ptr := range before {
				if after[name] != ptr {
					t.Errorf("%s was reallocated by the second Decode", name)
				}
				reused++
			}
			if !goldenEqual(p, c.pkt) {
				t.Errorf("second Decode gave\n%+v\nwant\n%+v", goldenCanon(p), goldenCanon(c.pkt))
			}
		})
	}
	if reused == 0 {
		t.Error("no golden case has a slice to reuse")
	}
}

// TestPackageDecode decodes every image with the package-level Decode.
func TestPackageDecode(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			h, body := rtBody(t, c)
			p, err := Decode(h, body, c.v)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.Type() != h.Type {
				t.Errorf("Decode returned a %v for a %v header", p.Type(), h.Type)
			}
			if !goldenEqual(p, c.pkt) {
				t.Errorf("Decode gave\n%+v\nwant\n%+v", goldenCanon(p), goldenCanon(c.pkt))
			}
		})
	}
	if _, err := Decode(FixedHeader{}, nil, V311); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decode of reserved type 0: error %v, want ErrMalformed", err)
	}
}

// TestMarkPresentMultiValuedKeepsFraming: MarkPresent is documented for
// single-valued properties, but nothing stops a caller marking User Property
// or Subscription Identifier. Whatever AppendTo then does, it must not emit
// a packet whose Remaining Length (MQTT 5.0 section 2.1.4) or Property
// Length (section 2.2.2.1) disagrees with the bytes that follow: either an
// error, or a packet that reads back with the same payload and nothing left
// over.
func TestMarkPresentMultiValuedKeepsFraming(t *testing.T) {
	for _, id := range []PropID{PropUserProperty, PropSubscriptionID} {
		t.Run(id.String(), func(t *testing.T) {
			p := &Publish{Topic: "t", Payload: []byte("P"), Properties: Properties{MessageExpiry: 1}}
			p.Properties.MarkPresent(id)
			wire, err := p.AppendTo(nil, V5)
			if err != nil {
				return // refusing the marked value is acceptable
			}
			_, _, remaining, hdr := goldenSplit(t, wire)
			if hdr+remaining != len(wire) {
				t.Errorf("AppendTo wrote % x: remaining length %d, but %d bytes follow the fixed header", wire, remaining, len(wire)-hdr)
			}
			r := NewReader(bytes.NewReader(wire), 0)
			r.SetVersion(V5)
			got, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("ReadPacket of % x: %v", wire, err)
			}
			if pl := got.(*Publish).Payload; !bytes.Equal(pl, p.Payload) {
				t.Errorf("payload read back as %q, want %q", pl, p.Payload)
			}
			if _, err := r.ReadPacket(); err != io.EOF {
				t.Errorf("bytes left after the packet: ReadPacket gave %v, want io.EOF", err)
			}
		})
	}
}
