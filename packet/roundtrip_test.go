package packet

import (
	"bytes"
	"errors"
	"io"
	"slices"
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

// TestPacketTypes checks Type() of every packet struct and New.
func TestPacketTypes(t *testing.T) {
	for typ := CONNECT; typ <= AUTH; typ++ {
		p := New(typ)
		if p == nil {
			t.Errorf("New(%v) = nil", typ)
			continue
		}
		if p.Type() != typ {
			t.Errorf("New(%v).Type() = %v", typ, p.Type())
		}
	}
	for _, typ := range []Type{0, 16, 255} {
		if p := New(typ); p != nil {
			t.Errorf("New(%d) = %T, want nil", typ, p)
		}
	}
	for _, c := range goldenCases {
		if got, want := c.pkt.Type(), Type(c.wire[0]>>4); got != want {
			t.Errorf("%s: Type() = %v, first byte says %v", c.name, got, want)
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	for i, s := range want {
		if got := Type(i).String(); got != s {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, s)
		}
	}
	if got := Type(16).String(); got != "Type(16)" {
		t.Errorf("Type(16).String() = %q", got)
	}
}

func TestVersionString(t *testing.T) {
	for v, s := range map[Version]string{V31: "3.1", V311: "3.1.1", V5: "5.0", 0: "Version(0)", 6: "Version(6)"} {
		if got := v.String(); got != s {
			t.Errorf("Version(%d).String() = %q, want %q", byte(v), got, s)
		}
	}
}

func TestReasonCodeString(t *testing.T) {
	for r, s := range map[ReasonCode]string{
		Success:                           "success",
		GrantedQoS1:                       "granted QoS 1",
		ContinueAuthentication:            "continue authentication",
		NotAuthorized:                     "not authorized",
		QoSNotSupported:                   "QoS not supported",
		WildcardSubscriptionsNotSupported: "wildcard subscriptions not supported",
		0x42:                              "reason code 0x42",
		0xff:                              "reason code 0xff",
	} {
		if got := r.String(); got != s {
			t.Errorf("ReasonCode(0x%02x).String() = %q, want %q", byte(r), got, s)
		}
	}
	if NormalDisconnection.String() != "success" || GrantedQoS0.String() != "success" {
		t.Errorf("aliases of 0x00 should read as success")
	}
	if Success.IsError() || ReasonCode(0x7f).IsError() || !UnspecifiedError.IsError() || !ReasonCode(0xff).IsError() {
		t.Errorf("IsError does not split at 0x80")
	}
}

func TestConnectReturnCodeReason(t *testing.T) {
	// MQTT 3.1.1 table 3.1 against the 5.0 codes with the same meaning
	// (5.0 section 3.2.2.2).
	for c, want := range map[ConnectReturnCode]ReasonCode{
		Accepted:                     Success,
		RefusedProtocolVersion:       UnsupportedProtocolVersion,
		RefusedIdentifierRejected:    ClientIdentifierNotValid,
		RefusedServerUnavailable:     ServerUnavailable,
		RefusedBadUserNameOrPassword: BadUserNameOrPassword,
		RefusedNotAuthorized:         NotAuthorized,
		6:                            UnspecifiedError,
		255:                          UnspecifiedError,
	} {
		if got := c.Reason(); got != want {
			t.Errorf("ConnectReturnCode(%d).Reason() = %v, want %v", byte(c), got, want)
		}
	}
	if got := RefusedNotAuthorized.String(); got != "not authorized" {
		t.Errorf("RefusedNotAuthorized.String() = %q", got)
	}
	if got := ConnectReturnCode(9).String(); got != "connect return code 9" {
		t.Errorf("ConnectReturnCode(9).String() = %q", got)
	}
	if got := (&Connack{ReasonCode: 5}).ReturnCode(); got != RefusedNotAuthorized {
		t.Errorf("Connack.ReturnCode() = %v", got)
	}
}

// TestReasonCodeValidFor compares ValidFor for every code and packet type
// with the lists of MQTT 5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1,
// 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1 and 3.15.2.1, written out here again.
func TestReasonCodeValidFor(t *testing.T) {
	spec := map[Type][]byte{
		CONNACK: {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c,
			0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f},
		PUBACK:   {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
		PUBREC:   {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
		PUBREL:   {0x00, 0x92},
		PUBCOMP:  {0x00, 0x92},
		SUBACK:   {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2},
		UNSUBACK: {0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91},
		DISCONNECT: {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f,
			0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2},
		AUTH: {0x00, 0x18, 0x19},
	}
	for typ := Type(0); typ < 16; typ++ {
		for r := 0; r < 256; r++ {
			want := slices.Contains(spec[typ], byte(r))
			if got := ReasonCode(r).ValidFor(typ); got != want {
				t.Errorf("ReasonCode(0x%02x).ValidFor(%v) = %v, want %v", r, typ, got, want)
			}
		}
	}
	if Success.ValidFor(Type(16)) || Success.ValidFor(Type(255)) {
		t.Errorf("ValidFor accepts a type beyond AUTH")
	}
}

// TestPropIDAllowedIn compares AllowedIn and AllowedInWill for every
// identifier and packet type with MQTT 5.0 section 2.2.2.2, written out here
// again; "will" stands for the will properties of CONNECT (3.1.3.2).
func TestPropIDAllowedIn(t *testing.T) {
	const will = Type(0xff)
	spec := map[PropID][]Type{
		0x01: {PUBLISH, will},
		0x02: {PUBLISH, will},
		0x03: {PUBLISH, will},
		0x08: {PUBLISH, will},
		0x09: {PUBLISH, will},
		0x0b: {PUBLISH, SUBSCRIBE},
		0x11: {CONNECT, CONNACK, DISCONNECT},
		0x12: {CONNACK},
		0x13: {CONNACK},
		0x15: {CONNECT, CONNACK, AUTH},
		0x16: {CONNECT, CONNACK, AUTH},
		0x17: {CONNECT},
		0x18: {will},
		0x19: {CONNECT},
		0x1a: {CONNACK},
		0x1c: {CONNACK, DISCONNECT},
		0x1f: {CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH},
		0x21: {CONNECT, CONNACK},
		0x22: {CONNECT, CONNACK},
		0x23: {PUBLISH},
		0x24: {CONNACK},
		0x25: {CONNACK},
		0x26: {CONNECT, CONNACK, PUBLISH, will, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
			UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH},
		0x27: {CONNECT, CONNACK},
		0x28: {CONNACK},
		0x29: {CONNACK},
		0x2a: {CONNACK},
	}
	for i := 0; i < 256; i++ {
		id := PropID(i)
		for typ := Type(0); typ < 20; typ++ {
			want := slices.Contains(spec[id], typ)
			if got := id.AllowedIn(typ); got != want {
				t.Errorf("PropID(0x%02x).AllowedIn(%v) = %v, want %v", i, typ, got, want)
			}
		}
		if got, want := id.AllowedInWill(), slices.Contains(spec[id], will); got != want {
			t.Errorf("PropID(0x%02x).AllowedInWill() = %v, want %v", i, got, want)
		}
	}
	if got := PropTopicAlias.String(); got != "Topic Alias" {
		t.Errorf("PropTopicAlias.String() = %q", got)
	}
	if got := PropID(0x05).String(); got != "property 0x5" {
		t.Errorf("PropID(0x05).String() = %q", got)
	}
}
