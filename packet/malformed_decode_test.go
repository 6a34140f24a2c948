package packet

// Decoding malformed input: the harness for the malformed-input table (its
// row type, hex reader and error check), the tests that run every row
// through the Reader and Decode, the near misses the specification allows,
// refusals of oversized packets on their header alone, and the *Error
// message format. The rows themselves are in malformed_fields_test.go and
// malformed_packets_test.go.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// The malformed-input tables: every row is a hand-written packet that a
// receiver must refuse, with the precise class of refusal (the sentinel and,
// for content errors, the packet and field an *Error names). The bytes are
// written as annotated hex so that each row can be checked against the
// specification field by field.

// malHex turns an annotated hex dump into bytes. Everything after "//" on a
// line is a comment; whitespace is ignored.
func malHex(tb testing.TB, s string) []byte {
	tb.Helper()
	var clean strings.Builder
	for line := range strings.Lines(s) {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		for _, f := range strings.Fields(line) {
			clean.WriteString(f)
		}
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		tb.Fatalf("bad hex in test table: %v\n%s", err, s)
	}
	return b
}

// malCase is one malformed input. kind is the sentinel the error must wrap.
// For content errors (kind is one of the four packet sentinels) typ and field
// describe the *Error: field is a substring of Error.Field, or with a leading
// "=" the whole of it. io errors carry no *Error.
type malCase struct {
	name  string
	v     Version
	max   int // maximum packet size given to NewReader; 0 for the protocol's
	in    string
	kind  error
	typ   Type
	field string
}

// CONNECT variable headers shared by many rows (remaining length 10 or 11
// bytes before the payload).
const (
	malConnV311 = `00 04 4D 51 54 54 // protocol name "MQTT"
		04                  // protocol level 4 (3.1.1)
		02                  // connect flags: clean session
		00 3C               // keep alive 60`
	malConnV5 = `00 04 4D 51 54 54 // protocol name "MQTT"
		05                  // protocol level 5
		02                  // connect flags: clean start
		00 3C               // keep alive 60`
)

// malCases is the whole malformed-input table: the fields every packet
// shares (malFieldCases), then properties and each packet's own rules
// (malPacketCases), in that order.
var malCases = slices.Concat(malFieldCases, malPacketCases)

// malRead feeds b through a Reader and Decode, returning the first error.
func malRead(b []byte, v Version, max int) error {
	r := NewReader(bytes.NewReader(b), max)
	r.SetVersion(v)
	h, body, err := r.Next()
	if err != nil {
		return err
	}
	_, err = Decode(h, body, v)
	return err
}

// malReasonFor is the MQTT 5.0 reason code each error class maps to.
var malReasonFor = map[error]ReasonCode{
	ErrMalformed:          0x81,
	ErrProtocolViolation:  0x82,
	ErrPacketTooLarge:     0x95,
	ErrUnsupportedVersion: 0x84,
}

// malCheck asserts that err is the error the row describes.
func malCheck(t *testing.T, err, kind error, typ Type, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q does not wrap %v", err, kind)
	}
	var pe *Error
	if _, content := malReasonFor[kind]; !content {
		if errors.As(err, &pe) {
			t.Fatalf("stream error %q unexpectedly carries an *Error", err)
		}
		return
	}
	if !errors.As(err, &pe) {
		t.Fatalf("error %q (%T) is not an *Error", err, err)
	}
	if pe.Kind != kind {
		t.Errorf("Kind = %v, want %v", pe.Kind, kind)
	}
	for _, other := range []error{ErrMalformed, ErrProtocolViolation, ErrPacketTooLarge, ErrUnsupportedVersion} {
		if other != kind && errors.Is(err, other) {
			t.Errorf("error %q wraps %v as well as %v", err, other, kind)
		}
	}
	if pe.Packet != typ {
		t.Errorf("Packet = %v, want %v (error %q)", pe.Packet, typ, err)
	}
	if exact, ok := strings.CutPrefix(field, "="); ok {
		if pe.Field != exact {
			t.Errorf("Field = %q, want %q (error %q)", pe.Field, exact, err)
		}
	} else if !strings.Contains(pe.Field, field) {
		t.Errorf("Field = %q, want it to contain %q (error %q)", pe.Field, field, err)
	}
	if pe.Detail == "" {
		t.Errorf("Detail is empty (error %q)", err)
	}
	// The message is for people: it names the class, the packet and the
	// field, and says what is wrong.
	msg := err.Error()
	want := []string{kind.Error(), pe.Field, pe.Detail}
	if typ != 0 {
		want = append(want, typ.String())
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("Error() = %q does not mention %q", msg, w)
		}
	}
	if got := pe.ReasonCode(); got != malReasonFor[kind] {
		t.Errorf("ReasonCode() = %#x, want %#x", byte(got), byte(malReasonFor[kind]))
	}
}

func TestMalformedInputs(t *testing.T) {
	if len(malCases) < 50 {
		t.Fatalf("only %d malformed cases", len(malCases))
	}
	seen := make(map[string]bool)
	for _, tc := range malCases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			b := malHex(t, tc.in)
			malCheck(t, malRead(b, tc.v, tc.max), tc.kind, tc.typ, tc.field)
		})
	}
}

// TestMalformedDecodeDirect decodes every content-error row without the
// Reader, straight from its bytes, and expects the same error: Decode must
// not rely on the Reader having validated anything but the fixed header.
func TestMalformedDecodeDirect(t *testing.T) {
	for _, tc := range malCases {
		if _, content := malReasonFor[tc.kind]; !content || tc.kind == ErrPacketTooLarge {
			continue
		}
		b := malHex(t, tc.in)
		n, used := parseVarint(b[1:], tc.v == V5)
		if used <= 0 || b[0]>>4 == 0 {
			continue // a fixed header error: only the Reader sees it
		}
		t.Run(tc.name, func(t *testing.T) {
			body := b[1+used:]
			if len(body) != n {
				t.Fatalf("row's remaining length %d does not match its %d body bytes", n, len(body))
			}
			_, err := Decode(FixedHeader{Type: Type(b[0] >> 4), Flags: b[0] & 0x0f, RemainingLength: n}, body, tc.v)
			malCheck(t, err, tc.kind, tc.typ, tc.field)
		})
	}
}

// TestMalformedReaderBodyLengths checks the rows whose error comes from the
// body: each must carry exactly its remaining length, so that a failure is
// caused by the field under test and not by a miscounted header.
func TestMalformedReaderBodyLengths(t *testing.T) {
	for _, tc := range malCases {
		if tc.kind == ErrPacketTooLarge || tc.field == "remaining length" || tc.field == "packet type" {
			continue
		}
		if _, content := malReasonFor[tc.kind]; !content {
			continue
		}
		b := malHex(t, tc.in)
		n, used := parseVarint(b[1:], false)
		if used <= 0 || len(b) != 1+used+n {
			t.Errorf("%s: %d bytes, header says %d", tc.name, len(b), 1+used+n)
		}
	}
}

// TestMalformedAcceptedCounterparts are the near misses of the rows above
// that the specification allows; they keep the table honest about where
// each line is drawn.
func TestMalformedAcceptedCounterparts(t *testing.T) {
	cases := []struct {
		name  string
		v     Version
		in    string
		check func(t *testing.T, p Packet)
	}{
		{name: "remaining length 0x80 0x00 in 3.1.1", v: V311, in: `
			C0    // PINGREQ
			80 00 // 0 in two bytes: 3.1.1 has no minimum-length rule`,
			check: func(t *testing.T, p Packet) {
				if _, ok := p.(*Pingreq); !ok {
					t.Errorf("got %T, want *Pingreq", p)
				}
			}},
		{name: "remaining length 0x86 0x00 PUBLISH in 3.1.1", v: V311, in: `
			30       // PUBLISH QoS 0
			86 00    // remaining length 6 in two bytes
			00 01 61 // topic "a"
			68 69 21 // payload "hi!"`,
			check: func(t *testing.T, p Packet) {
				pub := p.(*Publish)
				if pub.Topic != "a" || string(pub.Payload) != "hi!" {
					t.Errorf("got topic %q payload %q", pub.Topic, pub.Payload)
				}
			}},
		{name: "empty topic with Topic Alias v5", v: V5, in: `
			30       // PUBLISH QoS 0
			06       // remaining length
			00 00    // topic ""
			03       // property length
			23 00 07 // Topic Alias 7`,
			check: func(t *testing.T, p Packet) {
				pub := p.(*Publish)
				if pub.Topic != "" || pub.Properties.TopicAlias != 7 {
					t.Errorf("got topic %q alias %d", pub.Topic, pub.Properties.TopicAlias)
				}
			}},
		{name: "password without user name v5", v: V5, in: `
			10                // CONNECT
			11                // remaining length 17
			00 04 4D 51 54 54 // protocol name "MQTT"
			05                // protocol level 5
			42                // flags: password, clean start; allowed in 5.0
			00 3C             // keep alive
			00                // property length
			00 01 61          // client identifier "a"
			00 01 70          // password "p"`,
			check: func(t *testing.T, p Packet) {
				c := p.(*Connect)
				if c.Username != "" || string(c.Password) != "p" || !c.PasswordFlag || c.UsernameFlag {
					t.Errorf("got user %q/%v password %q/%v", c.Username, c.UsernameFlag, c.Password, c.PasswordFlag)
				}
			}},
		{name: "Will Delay Interval in will properties", v: V5, in: `
			10                // CONNECT
			19                // remaining length 25
			00 04 4D 51 54 54 // protocol name "MQTT"
			05                // protocol level 5
			06                // flags: will, clean start
			00 3C             // keep alive
			00                // property length
			00 01 61          // client identifier "a"
			05                // will property length
			18 00 00 00 0A    // Will Delay Interval 10
			00 01 77          // will topic "w"
			00 00             // will payload ""`,
			check: func(t *testing.T, p Packet) {
				c := p.(*Connect)
				if c.Will == nil || c.Will.Properties.WillDelay != 10 || c.Will.Topic != "w" {
					t.Errorf("got will %+v", c.Will)
				}
			}},
		{name: "several Subscription Identifiers in PUBLISH", v: V5, in: `
			30       // PUBLISH QoS 0
			08       // remaining length
			00 01 61 // topic "a"
			04       // property length
			0B 01    // Subscription Identifier 1
			0B 02    // Subscription Identifier 2`,
			check: func(t *testing.T, p Packet) {
				if ids := p.(*Publish).Properties.SubscriptionIDs; len(ids) != 2 {
					t.Errorf("got subscription identifiers %v", ids)
				}
			}},
		{name: "No Local on an ordinary filter v5", v: V5, in: `
			82       // SUBSCRIBE
			07       // remaining length
			00 01    // packet identifier
			00       // property length
			00 01 61 // topic filter "a"
			2E       // options: retain handling 2, RAP, No Local, QoS 2`,
			check: func(t *testing.T, p Packet) {
				s := p.(*Subscribe).Subscriptions[0]
				if !s.NoLocal || !s.RetainAsPublished || s.RetainHandling != 2 || s.QoS != 2 {
					t.Errorf("got %+v", s)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(malHex(t, tc.in)), 0)
			r.SetVersion(tc.v)
			h, body, err := r.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			p, err := Decode(h, body, tc.v)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tc.check(t, p)
		})
	}
}

// TestMalformedConnectVersionReported checks that a CONNECT refused for its
// level still reports the level read, which a broker needs to pick the
// CONNACK it answers with.
func TestMalformedConnectVersionReported(t *testing.T) {
	b := malHex(t, `
		00 04 4D 51 54 54 // protocol name "MQTT"
		06                // protocol level 6
		02 00 3C 00 01 61 // flags, keep alive, client identifier "a"`)
	var c Connect
	err := c.Decode(0, b, V311)
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("Decode: %v, want ErrUnsupportedVersion", err)
	}
	if c.Version != 6 {
		t.Errorf("Version = %d, want 6", c.Version)
	}
}

// malSource hands out a fixed header, one Read at a time if oneByte, and
// fails the test if the Reader asks for anything after it: a packet too
// large must be refused on its header alone.
type malSource struct {
	t       *testing.T
	hdr     []byte
	oneByte bool
}

func (s *malSource) Read(p []byte) (int, error) {
	if len(s.hdr) == 0 {
		s.t.Errorf("Read called after the fixed header of a packet that is too large")
		return 0, io.ErrClosedPipe
	}
	n := len(s.hdr)
	if s.oneByte {
		n = 1
	}
	n = copy(p, s.hdr[:n])
	s.hdr = s.hdr[n:]
	return n, nil
}

func TestMalformedTooLargeBeforeBody(t *testing.T) {
	cases := []struct {
		name string
		max  int
		hdr  string
	}{
		{"one-byte length", 100, `30 7F // PUBLISH, 129 bytes in all`},
		{"four-byte length", 1 << 20, `30 80 80 80 60 // PUBLISH, remaining length 201,326,592`},
		{"largest length", 1 << 20, `32 FF FF FF 7F // PUBLISH QoS 1, remaining length 268,435,455`},
		{"one over", 129, `82 80 01 // SUBSCRIBE, 128 + 3 = 131 bytes in all`},
	}
	for _, tc := range cases {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			if oneByte {
				name += "/one byte per Read"
			}
			t.Run(name, func(t *testing.T) {
				hdr := malHex(t, tc.hdr)
				r := NewReader(&malSource{t: t, hdr: hdr, oneByte: oneByte}, tc.max)
				h, body, err := r.Next()
				if !errors.Is(err, ErrPacketTooLarge) {
					t.Fatalf("Next = %v, want ErrPacketTooLarge", err)
				}
				if body != nil {
					t.Errorf("body = %d bytes, want nil", len(body))
				}
				var pe *Error
				if errors.As(err, &pe) && (pe.Packet != Type(hdr[0]>>4) || pe.Field != "remaining length") {
					t.Errorf("error names %v %q", pe.Packet, pe.Field)
				}
				if h.Type != Type(hdr[0]>>4) {
					t.Errorf("header type %v", h.Type)
				}
				// Nothing was set aside for the body.
				if c := cap(r.buf); c > max(tc.max, 5) || c > DefaultBufferSize {
					t.Errorf("buffer grew to %d bytes for a refused packet", c)
				}
			})
		}
	}
}

func TestMalformedErrorMessages(t *testing.T) {
	cases := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: ErrProtocolViolation, Packet: PUBLISH, Field: "topic name", Detail: "contains a wildcard"},
			"packet: protocol violation: PUBLISH topic name: contains a wildcard"},
		{&Error{Kind: ErrMalformed, Packet: 0, Field: "packet type", Detail: "reserved type 0"},
			"packet: malformed packet: packet type: reserved type 0"},
		{&Error{Kind: ErrPacketTooLarge, Packet: SUBSCRIBE, Field: "remaining length", Detail: "too big"},
			"packet: packet too large: SUBSCRIBE remaining length: too big"},
		{&Error{Kind: ErrUnsupportedVersion, Packet: CONNECT, Field: "protocol", Detail: "level 6"},
			"packet: unsupported protocol version: CONNECT protocol: level 6"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if tc.err.Unwrap() != tc.err.Kind {
			t.Errorf("Unwrap() = %v, want %v", tc.err.Unwrap(), tc.err.Kind)
		}
		if got, want := tc.err.ReasonCode(), malReasonFor[tc.err.Kind]; got != want {
			t.Errorf("%v: ReasonCode() = %#x, want %#x", tc.err.Kind, byte(got), byte(want))
		}
	}
	// The mapping uses the names of section 2.4 too.
	for kind, want := range map[error]ReasonCode{
		ErrMalformed: MalformedPacket, ErrProtocolViolation: ProtocolError,
		ErrPacketTooLarge: PacketTooLarge, ErrUnsupportedVersion: UnsupportedProtocolVersion,
	} {
		if got := (&Error{Kind: kind}).ReasonCode(); got != want {
			t.Errorf("%v: ReasonCode() = %v, want %v", kind, got, want)
		}
	}

	// A real one, end to end.
	err := malRead(malHex(t, `30 05 00 03 61 2F 2B // PUBLISH "a/+"`), V311, 0)
	if got, want := err.Error(), "packet: protocol violation: PUBLISH topic name: contains a wildcard (+ or #)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
