package packet

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// goldenCase is one packet and the bytes the specification says it is on the
// wire. Every byte sequence in this file and in golden_v5_test.go was derived
// by hand from the OASIS MQTT 3.1.1 and 5.0 texts, never by running the
// encoder, so the tests below check the codec against the specification
// rather than against itself. The fuzz targets seed from this table.
type goldenCase struct {
	name string
	v    Version
	pkt  Packet
	wire []byte
}

// goldenCases holds every case of both protocol versions.
var goldenCases = slices.Concat(goldenV311Cases, goldenV5Cases)

// goldenFill returns n deterministic payload bytes.
func goldenFill(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

var (
	goldenPayload200   = goldenFill(200)
	goldenPayload16377 = goldenFill(16377)
)

// goldenV311Cases covers MQTT 3.1.1 (and the 3.1 CONNECT), chapter 3 of the
// 3.1.1 specification.
var goldenV311Cases = []goldenCase{
	{
		name: "v311 CONNECT minimal",
		v:    V311,
		pkt:  &Connect{Version: V311, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 60, ClientID: "c1"},
		wire: []byte{
			0x10, 0x0e, // CONNECT, remaining 14
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name (3.1.2.1)
			0x04,       // protocol level 4
			0x02,       // connect flags: clean session
			0x00, 0x3c, // keep alive 60
			0x00, 0x02, 'c', '1', // client identifier
		},
	},
	{
		name: "v311 CONNECT will QoS1 retain user password no clean session",
		v:    V311,
		pkt: &Connect{
			Version: V311, ProtocolName: "MQTT", KeepAlive: 10, ClientID: "dev",
			Will:     &Will{QoS: 1, Retain: true, Topic: "dead", Payload: []byte("bye")},
			Username: "u", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true,
		},
		wire: []byte{
			0x10, 0x21, // CONNECT, remaining 33
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x04,       // protocol level 4
			0xec,       // flags: user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 0x08 | will 0x04
			0x00, 0x0a, // keep alive 10
			0x00, 0x03, 'd', 'e', 'v', // client identifier
			0x00, 0x04, 'd', 'e', 'a', 'd', // will topic
			0x00, 0x03, 'b', 'y', 'e', // will message
			0x00, 0x01, 'u', // user name
			0x00, 0x02, 'p', 'w', // password
		},
	},
	{
		name: "v311 CONNECT will QoS2 empty message",
		v:    V311,
		pkt: &Connect{
			Version: V311, ProtocolName: "MQTT", CleanStart: true, ClientID: "w",
			Will: &Will{QoS: 2, Topic: "x/y"},
		},
		wire: []byte{
			0x10, 0x14, // CONNECT, remaining 20
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x04,       // protocol level 4
			0x16,       // flags: will QoS 2 0x10 | will 0x04 | clean session 0x02
			0x00, 0x00, // keep alive off
			0x00, 0x01, 'w', // client identifier
			0x00, 0x03, 'x', '/', 'y', // will topic
			0x00, 0x00, // will message, zero length
		},
	},
	{
		name: "v31 CONNECT MQIsdp",
		v:    V31,
		pkt:  &Connect{Version: V31, ProtocolName: "MQIsdp", CleanStart: true, KeepAlive: 30, ClientID: "old"},
		wire: []byte{
			0x10, 0x11, // CONNECT, remaining 17
			0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', // MQTT 3.1 protocol name
			0x03,       // protocol level 3
			0x02,       // flags: clean session
			0x00, 0x1e, // keep alive 30
			0x00, 0x03, 'o', 'l', 'd', // client identifier
		},
	},
	{
		name: "v311 CONNACK session present",
		v:    V311,
		pkt:  &Connack{SessionPresent: true},
		wire: []byte{
			0x20, 0x02, // CONNACK, remaining 2
			0x01, // acknowledge flags: session present
			0x00, // return code 0, accepted
		},
	},
	{
		name: "v311 CONNACK refused not authorized",
		v:    V311,
		pkt:  &Connack{ReasonCode: ReasonCode(RefusedNotAuthorized)},
		wire: []byte{
			0x20, 0x02, // CONNACK, remaining 2
			0x00, // acknowledge flags
			0x05, // return code 5, not authorized (3.2.2.3)
		},
	},
	{
		name: "v311 PUBLISH QoS0",
		v:    V311,
		pkt:  &Publish{Topic: "a/b", Payload: []byte("hi")},
		wire: []byte{
			0x30, 0x07, // PUBLISH QoS 0, remaining 7
			0x00, 0x03, 'a', '/', 'b', // topic name
			'h', 'i', // payload
		},
	},
	{
		name: "v311 PUBLISH QoS1",
		v:    V311,
		pkt:  &Publish{QoS: 1, Topic: "a/b", PacketID: 10, Payload: []byte("hi")},
		wire: []byte{
			0x32, 0x09, // PUBLISH QoS 1, remaining 9
			0x00, 0x03, 'a', '/', 'b', // topic name
			0x00, 0x0a, // packet identifier 10
			'h', 'i', // payload
		},
	},
	{
		name: "v311 PUBLISH QoS2 dup retain",
		v:    V311,
		pkt:  &Publish{Dup: true, QoS: 2, Retain: true, Topic: "t", PacketID: 0x1234, Payload: []byte("x")},
		wire: []byte{
			0x3d, 0x06, // PUBLISH dup 0x08 | QoS 2 0x04 | retain 0x01, remaining 6
			0x00, 0x01, 't', // topic name
			0x12, 0x34, // packet identifier
			'x', // payload
		},
	},
	{
		name: "v311 PUBLISH retain empty payload",
		v:    V311,
		pkt:  &Publish{Retain: true, Topic: "s"},
		wire: []byte{
			0x31, 0x03, // PUBLISH QoS 0 retain, remaining 3
			0x00, 0x01, 's', // topic name; no payload
		},
	},
	{
		name: "v311 PUBLISH 200 byte payload",
		v:    V311,
		pkt:  &Publish{Topic: "big", Payload: goldenPayload200},
		wire: append([]byte{
			0x30, 0xcd, 0x01, // PUBLISH QoS 0, remaining 205 = 0x4d|0x80, 1 (two-byte varint)
			0x00, 0x03, 'b', 'i', 'g', // topic name
		}, goldenPayload200...),
	},
	{
		name: "v311 PUBLISH remaining length 16384",
		v:    V311,
		pkt:  &Publish{QoS: 1, Topic: "big", PacketID: 7, Payload: goldenPayload16377},
		wire: append([]byte{
			0x32, 0x80, 0x80, 0x01, // PUBLISH QoS 1, remaining 16384 = 0|0x80, 0|0x80, 1 (three-byte varint)
			0x00, 0x03, 'b', 'i', 'g', // topic name
			0x00, 0x07, // packet identifier 7
		}, goldenPayload16377...),
	},
	{
		name: "v311 PUBACK",
		v:    V311,
		pkt:  &Puback{PacketID: 10},
		wire: []byte{0x40, 0x02, 0x00, 0x0a}, // PUBACK, remaining 2, packet identifier 10
	},
	{
		name: "v311 PUBREC",
		v:    V311,
		pkt:  &Pubrec{PacketID: 0x1234},
		wire: []byte{0x50, 0x02, 0x12, 0x34}, // PUBREC, remaining 2, packet identifier
	},
	{
		name: "v311 PUBREL",
		v:    V311,
		pkt:  &Pubrel{PacketID: 0x1234},
		wire: []byte{0x62, 0x02, 0x12, 0x34}, // PUBREL with reserved flags 0010, remaining 2, packet identifier
	},
	{
		name: "v311 PUBCOMP",
		v:    V311,
		pkt:  &Pubcomp{PacketID: 0x1234},
		wire: []byte{0x70, 0x02, 0x12, 0x34}, // PUBCOMP, remaining 2, packet identifier
	},
	{
		name: "v311 SUBSCRIBE",
		v:    V311,
		pkt: &Subscribe{PacketID: 1, Subscriptions: []Subscription{
			{Filter: "a/+"}, {Filter: "b/#", QoS: 1}, {Filter: "c", QoS: 2},
		}},
		wire: []byte{
			0x82, 0x12, // SUBSCRIBE with reserved flags 0010, remaining 18
			0x00, 0x01, // packet identifier 1
			0x00, 0x03, 'a', '/', '+', 0x00, // filter, requested QoS 0
			0x00, 0x03, 'b', '/', '#', 0x01, // filter, requested QoS 1
			0x00, 0x01, 'c', 0x02, // filter, requested QoS 2
		},
	},
	{
		name: "v311 SUBACK with failure",
		v:    V311,
		pkt:  &Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError}},
		wire: []byte{
			0x90, 0x06, // SUBACK, remaining 6
			0x00, 0x01, // packet identifier 1
			0x00, 0x01, 0x02, 0x80, // return codes: QoS 0, 1, 2, failure (3.9.3)
		},
	},
	{
		name: "v311 UNSUBSCRIBE",
		v:    V311,
		pkt:  &Unsubscribe{PacketID: 2, Filters: []string{"a/+", "c"}},
		wire: []byte{
			0xa2, 0x0a, // UNSUBSCRIBE with reserved flags 0010, remaining 10
			0x00, 0x02, // packet identifier 2
			0x00, 0x03, 'a', '/', '+', // filter
			0x00, 0x01, 'c', // filter
		},
	},
	{
		name: "v311 UNSUBACK",
		v:    V311,
		pkt:  &Unsuback{PacketID: 2},
		wire: []byte{0xb0, 0x02, 0x00, 0x02}, // UNSUBACK, remaining 2, packet identifier 2
	},
	{
		name: "v311 PINGREQ",
		v:    V311,
		pkt:  &Pingreq{},
		wire: []byte{0xc0, 0x00}, // PINGREQ, remaining 0
	},
	{
		name: "v311 PINGRESP",
		v:    V311,
		pkt:  &Pingresp{},
		wire: []byte{0xd0, 0x00}, // PINGRESP, remaining 0
	},
	{
		name: "v311 DISCONNECT",
		v:    V311,
		pkt:  &Disconnect{},
		wire: []byte{0xe0, 0x00}, // DISCONNECT, remaining 0
	},
}

// goldenMarked returns p with ids marked present, for properties whose zero
// value is sent on the wire.
func goldenMarked(p Properties, ids ...PropID) Properties {
	for _, id := range ids {
		p.MarkPresent(id)
	}
	return p
}

// goldenCanonProps puts p in a form where two Properties that encode the
// same compare equal with reflect.DeepEqual: a present bit is kept only for
// a field holding zero (a non-zero field is present anyway), and empty
// slices become nil.
func goldenCanonProps(p *Properties) {
	q := *p
	q.present = 0
	p.present &^= q.setMask()
	p.CorrelationData = goldenNilIfEmpty(p.CorrelationData)
	p.AuthData = goldenNilIfEmpty(p.AuthData)
	if len(p.User) == 0 {
		p.User = nil
	}
	if len(p.SubscriptionIDs) == 0 {
		p.SubscriptionIDs = nil
	}
}

func goldenNilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// goldenCanon returns a normalised copy of p (see goldenCanonProps); p is
// left untouched, so table values can be passed.
func goldenCanon(p Packet) Packet {
	switch x := p.(type) {
	case *Connect:
		c := *x
		goldenCanonProps(&c.Properties)
		c.Password = goldenNilIfEmpty(c.Password)
		if c.Will != nil {
			w := *c.Will
			goldenCanonProps(&w.Properties)
			w.Payload = goldenNilIfEmpty(w.Payload)
			c.Will = &w
		}
		return &c
	case *Connack:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Publish:
		c := *x
		goldenCanonProps(&c.Properties)
		c.Payload = goldenNilIfEmpty(c.Payload)
		return &c
	case *Puback:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Pubrec:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Pubrel:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Pubcomp:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Subscribe:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Suback:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Unsubscribe:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Unsuback:
		c := *x
		goldenCanonProps(&c.Properties)
		if len(c.ReasonCodes) == 0 {
			c.ReasonCodes = nil
		}
		return &c
	case *Disconnect:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	case *Auth:
		c := *x
		goldenCanonProps(&c.Properties)
		return &c
	}
	return p // Pingreq, Pingresp: nothing to normalise
}

// goldenEqual reports whether got and want hold the same packet.
func goldenEqual(got, want Packet) bool {
	return reflect.DeepEqual(goldenCanon(got), goldenCanon(want))
}

// goldenSplit returns the fixed header of a hand-written wire image, read
// without the codec: type, flags and the remaining length varint.
func goldenSplit(t *testing.T, wire []byte) (typ Type, flags byte, remaining, hdr int) {
	t.Helper()
	if len(wire) < 2 {
		t.Fatalf("wire image of %d bytes", len(wire))
	}
	mult := 1
	for i := 1; i < len(wire) && i <= 4; i++ {
		remaining += int(wire[i]&0x7f) * mult
		mult *= 128
		if wire[i] < 0x80 {
			return Type(wire[0] >> 4), wire[0] & 0x0f, remaining, i + 1
		}
	}
	t.Fatalf("wire image has no complete remaining length")
	return
}

// TestGoldenTable checks the hand-written table itself, with no codec code:
// each remaining length matches the bytes that follow it, names are unique,
// the packet's Type matches the first byte, and every packet type appears
// in both versions (AUTH only in 5.0).
func TestGoldenTable(t *testing.T) {
	names := map[string]bool{}
	seen := map[Version]map[Type]int{V311: {}, V5: {}}
	for _, c := range goldenCases {
		if names[c.name] {
			t.Errorf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		typ, _, remaining, hdr := goldenSplit(t, c.wire)
		if hdr+remaining != len(c.wire) {
			t.Errorf("%s: remaining length says %d body bytes, the image has %d", c.name, remaining, len(c.wire)-hdr)
		}
		if typ != c.pkt.Type() {
			t.Errorf("%s: first byte says %v, the packet is %v", c.name, typ, c.pkt.Type())
		}
		v := c.v
		if v == V31 {
			v = V311
		}
		seen[v][typ]++
	}
	for _, v := range []Version{V311, V5} {
		for typ := CONNECT; typ <= AUTH; typ++ {
			want := typ != AUTH || v == V5
			if got := seen[v][typ] > 0; got != want {
				t.Errorf("version %v: %v covered = %v, want %v", v, typ, got, want)
			}
		}
		t.Logf("version %v: %d golden cases", v, goldenCount(seen[v]))
	}
}

func goldenCount(m map[Type]int) int {
	n := 0
	for _, k := range m {
		n += k
	}
	return n
}

// TestGoldenEncode checks that AppendTo writes exactly the specified bytes,
// appending to what dst already holds.
func TestGoldenEncode(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte{0xaa, 0xbb}
			got, err := c.pkt.AppendTo(slices.Clone(prefix), c.v)
			if err != nil {
				t.Fatalf("AppendTo: %v", err)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("AppendTo overwrote dst: % x", got[:min(len(got), 2)])
			}
			if got = got[len(prefix):]; !bytes.Equal(got, c.wire) {
				t.Errorf("AppendTo wrote\n% x\nwant\n% x", goldenTrim(got), goldenTrim(c.wire))
			}
		})
	}
}

// goldenTrim keeps failure messages readable for the big payloads.
func goldenTrim(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}

// TestGoldenDecode reads each image through a Reader and decodes the body
// into a fresh value of the packet's type.
func TestGoldenDecode(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.wire), 0)
			r.SetVersion(c.v)
			h, body, err := r.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			typ, flags, remaining, hdr := goldenSplit(t, c.wire)
			if want := (FixedHeader{Type: typ, Flags: flags, RemainingLength: remaining}); h != want {
				t.Errorf("fixed header %+v, want %+v", h, want)
			}
			if h.Size() != hdr {
				t.Errorf("FixedHeader.Size() = %d, want %d", h.Size(), hdr)
			}
			if !bytes.Equal(body, c.wire[hdr:]) {
				t.Errorf("body differs from the image after the fixed header")
			}
			got := New(h.Type)
			if got == nil {
				t.Fatalf("New(%v) = nil", h.Type)
			}
			if err := got.Decode(h.Flags, body, c.v); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !goldenEqual(got, c.pkt) {
				t.Errorf("Decode gave\n%+v\nwant\n%+v", goldenCanon(got), goldenCanon(c.pkt))
			}
			if _, _, err := r.Next(); err == nil {
				t.Errorf("Next after the only packet: no error, want io.EOF")
			}
		})
	}
}

// TestGoldenAuthNeedsV5 checks that AUTH, which MQTT 3.1.1 does not have, is
// refused as a protocol violation in both directions.
func TestGoldenAuthNeedsV5(t *testing.T) {
	for _, v := range []Version{V31, V311} {
		a := &Auth{}
		out, err := a.AppendTo([]byte{0x01}, v)
		if !errors.Is(err, ErrProtocolViolation) {
			t.Errorf("AppendTo(%v) error = %v, want ErrProtocolViolation", v, err)
		}
		if !bytes.Equal(out, []byte{0x01}) {
			t.Errorf("AppendTo(%v) changed dst to % x", v, out)
		}
		for _, body := range [][]byte{{}, {0x18, 0x00}} {
			if err := new(Auth).Decode(0, body, v); !errors.Is(err, ErrProtocolViolation) {
				t.Errorf("Decode(% x, %v) error = %v, want ErrProtocolViolation", body, v, err)
			}
		}
		if _, err := Decode(FixedHeader{Type: AUTH}, nil, v); !errors.Is(err, ErrProtocolViolation) {
			t.Errorf("packet.Decode(AUTH, %v) error = %v, want ErrProtocolViolation", v, err)
		}
	}
}
