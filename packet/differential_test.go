package packet

// Differential test against mochi-mqtt's packets package (v2.7.9), an
// independent codec used as an oracle. Every input goes through both
// decoders: where both accept, every field must agree; where they part, the
// input must be listed in mochiCases with the side that rejects and the side
// the specification supports; the generated corpus (fzCorpus) must agree
// throughout. mochi's side is what its broker runs: the fixed header, the
// type's Decode method, then the type's Validate method where it has one.
//
// Disagreements found (each input, with its section, is in mochiCases):
//   - mochi accepts, we reject, the specification is with us: trailing bytes
//     (CONNECT, CONNACK, PUBACK, UNSUBACK; 3.1.1 PINGREQ and DISCONNECT
//     bodies); reason codes not valid for the packet; duplicated properties;
//     zero, out-of-range or wildcard property values; a property running
//     past the Property Length; reserved bits in CONNACK flags and 5.0
//     subscription options; Retain Handling 3; No Local on a shared
//     subscription; two Subscription Identifiers in a SUBSCRIBE; malformed
//     topic filters and will topics; Will QoS without the Will Flag; a 3.1.1
//     password without a user name; a non-minimal 5.0 remaining length; a
//     SUBACK without codes; AUTH in 3.1.1 or without its method.
//   - mochi rejects, we accept, the specification is with us: a zero-length
//     will payload or password; an empty 5.0 AUTH.
//   - mochi panics (index out of range) on a 5.0 SUBSCRIBE whose last filter
//     has no options byte; we reject it as malformed.
//   - Both accept but mochi loses data, the specification is with us: it
//     ignores the reason code of a 5.0 DISCONNECT whose remaining length is
//     1, and its encoder drops a PUBACK or PUBREC reason code below 0x80
//     when there are no properties.
//   - Fixed since: we held a 3.1.1 topic filter that starts "$share/" to
//     the 5.0 shared-subscription rules, refusing the valid 3.1.1 filters
//     "$share//x" and "$share/g"; both codecs now accept them.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2/packets"
)

// The ways the two codecs can part on one input.
const (
	oursRejects  = "ours rejects"
	mochiRejects = "mochi rejects"
	mochiPanics  = "mochi panics"
	fieldsDiffer = "fields differ: "             // followed by the field names
	mochiReenc   = "mochi re-encoding differs: " // mochi's encoder lost these fields
)

// mochiCase is one hand-made input. differ is "" when both codecs must agree;
// otherwise it is the expected disagreement and spec says who is right.
type mochiCase struct {
	name         string
	v            Version
	wire         []byte
	differ, spec string
}

var mochiCases = []mochiCase{
	// Valid packets at the edges of the specification.
	{"v31 CONNECT MQIsdp", V31, mochiRaw(0x10, "MQIsdp", 3, 0x02, 0, 30, "c31"), "", ""},
	{"v311 non-minimal remaining length", V311, []byte{0xc0, 0x80, 0x00}, "", ""},
	{"v5 PUBLISH empty topic with Topic Alias", V5, mochiRaw(0x30, "", 3, 0x23, 0, 5, 'x'), "", ""},
	{"v5 PUBACK reason code and empty properties", V5, mochiRaw(0x40, 0, 1, 0x00, 0x00), "", ""},
	{"v5 PUBCOMP packet identifier not found", V5, mochiRaw(0x70, 0, 1, 0x92), "", ""},
	{"v5 DISCONNECT empty", V5, mochiRaw(0xe0), "", ""},
	{"v311 CONNECT zero-length will payload", V311, mochiRaw(0x10, "MQTT", 4, 0x06, 0, 60, "c", "w/t", ""),
		mochiRejects, "ours: 3.1.1 3.1.3.3, the Will Message is zero or more bytes"},
	{"v5 CONNECT zero-length will payload", V5, mochiRaw(0x10, "MQTT", 5, 0x06, 0, 60, 0, "c", 0, "w/t", ""),
		mochiRejects, "ours: 5.0 3.1.3.4 and 1.5.6, Binary Data may be empty"},
	{"v311 CONNECT zero-length password", V311, mochiRaw(0x10, "MQTT", 4, 0xc2, 0, 60, "c", "u", ""),
		mochiRejects, "ours: 3.1.1 3.1.3.5, the password is 0 to 65535 bytes"},
	{"v5 AUTH empty", V5, mochiRaw(0xf0),
		mochiRejects, "ours: 5.0 3.15.2.1, Success without properties may omit both fields"},
	{"v5 DISCONNECT reason code only", V5, mochiRaw(0xe0, 0x04),
		fieldsDiffer + "reason", "ours: 5.0 3.14.2.1 and 3.14.2.2.1, a remaining length of 1 is the reason code alone"},
	{"v5 PUBACK reason code only", V5, mochiRaw(0x40, 0, 1, 0x10),
		mochiReenc + "reason", "ours: 5.0 3.4.2.1, only reason 0x00 may be left off"},
	{"v311 SUBSCRIBE $share with empty level", V311, mochiRaw(0x82, 0, 1, "$share//x", 0),
		"", "3.1.1 4.7.1.1 allows empty levels; shared subscriptions are 5.0 only"},
	{"v311 SUBSCRIBE $share/g", V311, mochiRaw(0x82, 0, 1, "$share/g", 1),
		"", "3.1.1 4.7, \"$share/g\" is an ordinary two-level filter"},

	// Fixed header.
	{"v5 non-minimal remaining length", V5, []byte{0xc0, 0x80, 0x00}, oursRejects, "ours: 5.0 [MQTT-1.5.5-1]"},
	{"five-byte remaining length", V311, []byte{0xc0, 0xff, 0xff, 0xff, 0xff, 0x7f}, "", ""},
	{"reserved packet type 0", V311, []byte{0x00, 0x00}, "", ""},

	// PUBLISH.
	{"v311 PUBLISH wildcard topic", V311, mochiRaw(0x30, "a/+", 'x'), "", ""},
	{"v311 PUBLISH QoS 3", V311, mochiRaw(0x36, "a", 0, 1), "", ""},
	{"v311 PUBLISH ill-formed UTF-8 topic", V311, mochiRaw(0x30, "a\xc3\x28"), "", ""},
	{"v311 PUBLISH U+0000 in topic", V311, mochiRaw(0x30, "a\x00b"), "", ""},
	{"v311 PUBLISH QoS 1 packet identifier 0", V311, mochiRaw(0x32, "a", 0, 0), "", ""},
	{"v311 PUBLISH DUP at QoS 0", V311, mochiRaw(0x38, "a"), "", ""},
	{"v311 PUBLISH empty topic", V311, mochiRaw(0x30, ""), "", ""},
	{"v311 PUBLISH truncated topic", V311, mochiRaw(0x30, 0, 5, 'a'), "", ""},
	{"v5 PUBLISH Topic Alias 0", V5, mochiRaw(0x30, "a", 3, 0x23, 0, 0), "", ""},
	{"v5 PUBLISH unknown property", V5, mochiRaw(0x30, "a", 2, 0x05, 0), "", ""},
	{"v5 PUBLISH Session Expiry", V5, mochiRaw(0x30, "a", 5, 0x11, 0, 0, 0, 1), "", ""},
	{"v5 PUBLISH ill-formed UTF-8 user property", V5, mochiRaw(0x30, "a", 7, 0x26, "k", "\xff"), "", ""},
	{"v5 PUBLISH property identifier non-minimal", V5, mochiRaw(0x30, "a", 3, 0x81, 0x00, 1), "", ""},
	{"v5 PUBLISH duplicated Content Type", V5, mochiRaw(0x30, "a", 8, 0x03, "t", 0x03, "u"),
		oursRejects, "ours: 5.0 3.3.2.3.9, a Protocol Error to include it more than once"},
	{"v5 PUBLISH property overruns Property Length", V5, mochiRaw(0x30, "a", 1, 0x23, 0, 5),
		oursRejects, "ours: 5.0 2.2.2.1, the properties end where the Property Length says"},
	{"v5 PUBLISH Subscription Identifier 0", V5, mochiRaw(0x30, "a", 2, 0x0b, 0),
		oursRejects, "ours: 5.0 3.3.2.3.8, a value of 0 is a Protocol Error"},
	{"v5 PUBLISH Response Topic with wildcard", V5, mochiRaw(0x30, "a", 6, 0x08, "r/#"),
		oursRejects, "ours: 5.0 [MQTT-3.3.2-14]"},

	// CONNECT.
	{"v311 CONNECT reserved flag", V311, mochiRaw(0x10, "MQTT", 4, 0x03, 0, 60, "c"), "", ""},
	{"v311 CONNECT Will QoS 3", V311, mochiRaw(0x10, "MQTT", 4, 0x1e, 0, 60, "c", "w", "x"), "", ""},
	{"v311 CONNECT Will Retain without Will Flag", V311, mochiRaw(0x10, "MQTT", 4, 0x22, 0, 60, "c"), "", ""},
	{"CONNECT protocol name MQTX", V311, mochiRaw(0x10, "MQTX", 4, 0x02, 0, 60, "c"), "", ""},
	{"CONNECT protocol level 6", V311, mochiRaw(0x10, "MQTT", 6, 0x02, 0, 60, "c"), "", ""},
	{"CONNECT MQTT with level 3", V311, mochiRaw(0x10, "MQTT", 3, 0x02, 0, 60, "c"), "", ""},
	{"v311 CONNECT ill-formed UTF-8 client id", V311, mochiRaw(0x10, "MQTT", 4, 0x02, 0, 60, "\xc3"), "", ""},
	{"v311 CONNECT user name flag without user name", V311, mochiRaw(0x10, "MQTT", 4, 0x82, 0, 60, "c"), "", ""},
	{"v5 CONNECT Will Delay among CONNECT properties", V5, mochiRaw(0x10, "MQTT", 5, 0x02, 0, 60, 5, 0x18, 0, 0, 0, 1, "c"), "", ""},
	{"v311 CONNECT Will QoS without Will Flag", V311, mochiRaw(0x10, "MQTT", 4, 0x0a, 0, 60, "c"),
		oursRejects, "ours: 3.1.1 [MQTT-3.1.2-13]"},
	{"v311 CONNECT password without user name", V311, mochiRaw(0x10, "MQTT", 4, 0x42, 0, 60, "c", "pw"),
		oursRejects, "ours: 3.1.1 [MQTT-3.1.2-22]"},
	{"v311 CONNECT will topic with wildcard", V311, mochiRaw(0x10, "MQTT", 4, 0x06, 0, 60, "c", "w/#", "x"),
		oursRejects, "ours: 3.1.1 [MQTT-4.7.1-1], no wildcards in a topic name"},
	{"v311 CONNECT trailing byte", V311, mochiRaw(0x10, "MQTT", 4, 0x02, 0, 60, "c", 0xaa),
		oursRejects, "ours: 3.1.1 3.1.3, the payload holds only the fields the flags announce"},
	{"v5 CONNECT duplicated Session Expiry", V5, mochiRaw(0x10, "MQTT", 5, 0x02, 0, 60, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, "c"),
		oursRejects, "ours: 5.0 3.1.2.11.2, a Protocol Error to include it more than once"},
	{"v5 CONNECT Receive Maximum 0", V5, mochiRaw(0x10, "MQTT", 5, 0x02, 0, 60, 3, 0x21, 0, 0, "c"),
		oursRejects, "ours: 5.0 3.1.2.11.3, a value of 0 is a Protocol Error"},
	{"v5 CONNECT Request Problem Information 2", V5, mochiRaw(0x10, "MQTT", 5, 0x02, 0, 60, 2, 0x17, 2, "c"),
		oursRejects, "ours: 5.0 3.1.2.11.7, a value other than 0 or 1 is a Protocol Error"},

	// CONNACK.
	{"v311 CONNACK reserved flag bits", V311, mochiRaw(0x20, 0x02, 0),
		oursRejects, "ours: 3.1.1 3.2.2.1, bits 7-1 are reserved and must be 0"},
	{"v311 CONNACK session present with refusal", V311, mochiRaw(0x20, 1, 5),
		oursRejects, "ours: 3.1.1 [MQTT-3.2.2-4]"},
	{"v311 CONNACK trailing byte", V311, mochiRaw(0x20, 0, 0, 0),
		oursRejects, "ours: 3.1.1 3.2.1, the remaining length is 2"},
	{"v5 CONNACK reason code 0x05", V5, mochiRaw(0x20, 0, 0x05, 0),
		oursRejects, "ours: 5.0 3.2.2.2, not a Connect Reason Code"},
	{"v5 CONNACK Maximum QoS 2", V5, mochiRaw(0x20, 0, 0, 2, 0x24, 2),
		oursRejects, "ours: 5.0 3.2.2.3.4, a value other than 0 or 1 is a Protocol Error"},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{"v311 PUBACK truncated", V311, mochiRaw(0x40, 0), "", ""},
	{"v311 PUBREL flags 0000", V311, mochiRaw(0x60, 0, 1), "", ""},
	{"v5 PUBREC reason code 0x92", V5, mochiRaw(0x50, 0, 1, 0x92), "", ""},
	{"v311 PUBACK trailing byte", V311, mochiRaw(0x40, 0, 1, 0),
		oursRejects, "ours: 3.1.1 3.4.1, the remaining length is 2"},
	{"v311 PUBACK packet identifier 0", V311, mochiRaw(0x40, 0, 0),
		oursRejects, "ours: 3.1.1 [MQTT-2.3.1-1] and 2.3.1, an ack echoes a non-zero identifier"},
	{"v5 PUBACK reason code 0x01", V5, mochiRaw(0x40, 0, 1, 0x01),
		oursRejects, "ours: 5.0 [MQTT-3.4.2-1]"},

	// SUBSCRIBE, SUBACK.
	{"v311 SUBSCRIBE flags 0000", V311, mochiRaw(0x80, 0, 1, "a", 0), "", ""},
	{"v311 SUBSCRIBE QoS 3", V311, mochiRaw(0x82, 0, 1, "a", 3), "", ""},
	{"v311 SUBSCRIBE reserved option bits", V311, mochiRaw(0x82, 0, 1, "a", 0x04), "", ""},
	{"v311 SUBSCRIBE no filters", V311, mochiRaw(0x82, 0, 1), "", ""},
	{"v311 SUBSCRIBE packet identifier 0", V311, mochiRaw(0x82, 0, 0, "a", 0), "", ""},
	{"v311 SUBSCRIBE # not last", V311, mochiRaw(0x82, 0, 1, "a/#/b", 0),
		oursRejects, "ours: 3.1.1 [MQTT-4.7.1-2]"},
	{"v311 SUBSCRIBE + inside a level", V311, mochiRaw(0x82, 0, 1, "a+", 0),
		oursRejects, "ours: 3.1.1 [MQTT-4.7.1-3]"},
	{"v5 SUBSCRIBE Retain Handling 3", V5, mochiRaw(0x82, 0, 1, 0, "a", 0x30),
		oursRejects, "ours: 5.0 3.8.3.1, Retain Handling 3 is a Protocol Error"},
	{"v5 SUBSCRIBE reserved option bits", V5, mochiRaw(0x82, 0, 1, 0, "a", 0x40),
		oursRejects, "ours: 5.0 [MQTT-3.8.3-5]"},
	{"v5 SUBSCRIBE No Local on shared subscription", V5, mochiRaw(0x82, 0, 1, 0, "$share/g/a", 0x04),
		oursRejects, "ours: 5.0 [MQTT-3.8.3-4]"},
	{"v5 SUBSCRIBE two Subscription Identifiers", V5, mochiRaw(0x82, 0, 1, 4, 0x0b, 1, 0x0b, 2, "a", 0),
		oursRejects, "ours: 5.0 3.8.2.1.2, a Protocol Error to include it more than once"},
	{"v5 SUBSCRIBE Subscription Identifier 0", V5, mochiRaw(0x82, 0, 1, 2, 0x0b, 0, "a", 0),
		oursRejects, "ours: 5.0 3.8.2.1.2, a value of 0 is a Protocol Error"},
	{"v5 SUBSCRIBE empty share name", V5, mochiRaw(0x82, 0, 1, 0, "$share//a", 0),
		oursRejects, "ours: 5.0 [MQTT-4.8.2-1]"},
	{"v5 SUBSCRIBE filter without options byte", V5, mochiRaw(0x82, 0, 1, 0, "a"),
		mochiPanics, "ours: 5.0 3.8.3, every filter is followed by its options (mochi indexes past the end)"},
	{"v311 SUBACK return code 3", V311, mochiRaw(0x90, 0, 1, 3),
		oursRejects, "ours: 3.1.1 [MQTT-3.9.3-2]"},
	{"v311 SUBACK no return codes", V311, mochiRaw(0x90, 0, 1),
		oursRejects, "ours: 3.1.1 3.9.3, one return code per filter of the SUBSCRIBE"},
	{"v5 SUBACK reason code 0x10", V5, mochiRaw(0x90, 0, 1, 0, 0x10),
		oursRejects, "ours: 5.0 3.9.3, 0x10 is not a Subscribe Reason Code"},

	// UNSUBSCRIBE, UNSUBACK.
	{"v311 UNSUBSCRIBE no filters", V311, mochiRaw(0xa2, 0, 1), "", ""},
	{"v311 UNSUBSCRIBE ill-formed UTF-8 filter", V311, mochiRaw(0xa2, 0, 1, "\xc3"), "", ""},
	{"v311 UNSUBSCRIBE # inside a level", V311, mochiRaw(0xa2, 0, 1, "a#"),
		oursRejects, "ours: 3.1.1 [MQTT-4.7.1-2]"},
	{"v311 UNSUBACK trailing byte", V311, mochiRaw(0xb0, 0, 1, 0),
		oursRejects, "ours: 3.1.1 3.11.1, the remaining length is 2"},
	{"v5 UNSUBACK reason code 0x01", V5, mochiRaw(0xb0, 0, 1, 0, 0x01),
		oursRejects, "ours: 5.0 3.11.3, 0x01 is not an Unsubscribe Reason Code"},

	// PINGREQ, PINGRESP, DISCONNECT, AUTH.
	{"v311 PINGRESP flags 0001", V311, mochiRaw(0xd1), "", ""},
	{"v5 AUTH reason code 0x01", V5, mochiRaw(0xf0, 0x01, 0), "", ""},
	{"v5 AUTH flags 0001", V5, mochiRaw(0xf1, 0, 0), "", ""},
	{"v5 AUTH reason code only", V5, mochiRaw(0xf0, 0x18), "", ""},
	{"v5 AUTH without Authentication Method", V5, mochiRaw(0xf0, 0x18, 0),
		oursRejects, "ours: 5.0 3.15.2.2.2, omitting the Authentication Method is a Protocol Error"},
	{"v311 PINGREQ with a body", V311, mochiRaw(0xc0, 0),
		oursRejects, "ours: 3.1.1 3.12, PINGREQ has no variable header and no payload"},
	{"v311 DISCONNECT with a body", V311, mochiRaw(0xe0, 0),
		oursRejects, "ours: 3.1.1 3.14, DISCONNECT has no variable header and no payload"},
	{"v5 DISCONNECT reason code 0x01", V5, mochiRaw(0xe0, 0x01, 0),
		oursRejects, "ours: 5.0 [MQTT-3.14.2-1]"},
	{"v311 AUTH", V311, mochiRaw(0xf0, 0, 0),
		oursRejects, "ours: 3.1.1 2.2.1, packet type 15 is reserved"},
}

// mochiRaw assembles a packet from its first byte and its body: an int is
// one byte, a string a length-prefixed string (ill-formed UTF-8 included).
func mochiRaw(first byte, parts ...any) []byte {
	var body []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			body = append(body, byte(p))
		case string:
			body = appendString(body, p)
		}
	}
	return append(appendVarint([]byte{first}, len(body)), body...)
}

func TestMochiDifferential(t *testing.T) {
	var gen []mochiCase
	for _, c := range fzCorpus(t) {
		gen = append(gen, mochiCase{name: c.name, v: c.v, wire: c.wire})
	}
	if len(gen) < 60 {
		t.Fatalf("generated corpus has %d packets, want at least 60", len(gen))
	}
	want := map[string]string{}
	got := map[string]string{}
	for _, c := range slices.Concat(gen, mochiCases) {
		if c.differ != "" {
			want[c.name] = c.differ
		}
		for name, d := range mochiCompare(t, c.name, c.v, c.wire, true) {
			got[name] = d
		}
	}
	for name, d := range got {
		if want[name] != d {
			t.Errorf("%s: new disagreement %q (expected %q)", name, d, want[name])
		}
	}
	for name, d := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: expected disagreement %q did not happen", name, d)
		}
	}
	t.Logf("%d generated and %d hand-made inputs, %d disagreements", len(gen), len(mochiCases), len(got))
}

// mochiCompare runs one input through both codecs and returns the
// disagreements, keyed by input name. When both accept and reenc is set, it
// also feeds mochi's re-encoding of the packet back to both decoders.
func mochiCompare(t *testing.T, name string, v Version, wire []byte, reenc bool) map[string]string {
	out := map[string]string{}
	ours, oerr := mochiDecodeOurs(wire, v)
	pk, merr := mochiDecode(wire, v)
	switch {
	case errors.Is(merr, errMochiPanic):
		out[name] = mochiPanics
		t.Logf("%s: %v", name, merr)
	case oerr != nil && merr == nil:
		out[name] = oursRejects
		t.Logf("%s: ours rejects: %v", name, oerr)
	case oerr == nil && merr != nil:
		out[name] = mochiRejects
		t.Logf("%s: mochi rejects: %v", name, merr)
	case oerr == nil && merr == nil:
		if keys := ours.diff(mochiView(pk)); keys != nil {
			out[name] = fieldsDiffer + strings.Join(keys, ",")
			t.Logf("%s: ours %v, mochi %v", name, ours, mochiView(pk))
			break
		}
		if !reenc {
			break
		}
		rewire, err := mochiEncode(pk)
		if err != nil {
			t.Errorf("%s: mochi cannot re-encode what it decoded: %v", name, err)
			break
		}
		renamed := name + " (mochi-encoded)"
		for n, d := range mochiCompare(t, renamed, v, rewire, false) {
			out[n] = d
		}
		if again, err := mochiDecodeOurs(rewire, v); err == nil {
			if keys := ours.diff(again); keys != nil {
				out[name] = mochiReenc + strings.Join(keys, ",")
				t.Logf("%s: mochi re-encoded % x as % x", name, wire, rewire)
			}
		}
	}
	return out
}

// mochiDecodeOurs decodes one whole packet through a Reader set to v.
func mochiDecodeOurs(wire []byte, v Version) (diffView, error) {
	r := NewReader(bytes.NewReader(wire), 0)
	r.SetVersion(v)
	p, err := r.ReadPacket()
	if err != nil {
		return nil, err
	}
	if _, _, err := r.Next(); err != io.EOF {
		return nil, fmt.Errorf("after the packet: %v", err)
	}
	return ourView(p), nil
}

var errMochiPanic = errors.New("mochi panics")

// mochiDecode decodes one whole packet with mochi as its broker does.
func mochiDecode(wire []byte, v Version) (pk *mochi.Packet, err error) {
	defer func() {
		if e := recover(); e != nil {
			pk, err = nil, fmt.Errorf("%w: %v", errMochiPanic, e)
		}
	}()
	pk = &mochi.Packet{ProtocolVersion: byte(v)}
	if err := pk.FixedHeader.Decode(wire[0]); err != nil {
		return nil, err
	}
	n, used, err := mochi.DecodeLength(bytes.NewReader(wire[1:]))
	if err != nil {
		return nil, err
	}
	body := wire[1+used:]
	if n != len(body) {
		return nil, fmt.Errorf("remaining length %d but %d bytes follow", n, len(body))
	}
	pk.FixedHeader.Remaining = n
	code := mochi.CodeSuccess
	switch pk.FixedHeader.Type {
	case mochi.Connect:
		if err = pk.ConnectDecode(body); err == nil {
			code = pk.ConnectValidate()
		}
	case mochi.Connack:
		err = pk.ConnackDecode(body)
	case mochi.Publish:
		if err = pk.PublishDecode(body); err == nil {
			// PublishValidate refuses Subscription Identifiers, which only a
			// client may not send; a codec does not know the direction.
			c := *pk
			c.Properties.SubscriptionIdentifier = nil
			code = c.PublishValidate(math.MaxUint16)
		}
	case mochi.Puback, mochi.Pubrec, mochi.Pubrel, mochi.Pubcomp: // one decoder serves all four
		if err = pk.PubackDecode(body); err == nil && !pk.ReasonCodeValid() {
			code = mochi.ErrProtocolViolationInvalidReason
		}
	case mochi.Subscribe:
		if err = pk.SubscribeDecode(body); err == nil {
			code = pk.SubscribeValidate()
		}
	case mochi.Suback:
		err = pk.SubackDecode(body)
	case mochi.Unsubscribe:
		if err = pk.UnsubscribeDecode(body); err == nil {
			code = pk.UnsubscribeValidate()
		}
	case mochi.Unsuback:
		err = pk.UnsubackDecode(body)
	case mochi.Pingreq, mochi.Pingresp:
	case mochi.Disconnect:
		err = pk.DisconnectDecode(body)
	case mochi.Auth:
		if err = pk.AuthDecode(body); err == nil {
			code = pk.AuthValidate()
		}
	default:
		err = errors.New("reserved packet type")
	}
	if err == nil && code != mochi.CodeSuccess {
		err = code
	}
	if err != nil {
		return nil, err
	}
	return pk, nil
}

// mochiEncode writes pk with mochi's encoder, allowing every property.
func mochiEncode(pk *mochi.Packet) ([]byte, error) {
	var buf bytes.Buffer
	pk.Mods.AllowResponseInfo = true
	enc := map[byte]func(*bytes.Buffer) error{
		mochi.Connect: pk.ConnectEncode, mochi.Connack: pk.ConnackEncode, mochi.Publish: pk.PublishEncode,
		mochi.Puback: pk.PubackEncode, mochi.Pubrec: pk.PubrecEncode, mochi.Pubrel: pk.PubrelEncode,
		mochi.Pubcomp: pk.PubcompEncode, mochi.Subscribe: pk.SubscribeEncode, mochi.Suback: pk.SubackEncode,
		mochi.Unsubscribe: pk.UnsubscribeEncode, mochi.Unsuback: pk.UnsubackEncode, mochi.Pingreq: pk.PingreqEncode,
		mochi.Pingresp: pk.PingrespEncode, mochi.Disconnect: pk.DisconnectEncode, mochi.Auth: pk.AuthEncode,
	}[pk.FixedHeader.Type]
	err := enc(&buf)
	return buf.Bytes(), err
}

// diffView is a decoded packet flattened to field name → value, so that the
// two codecs' results compare field by field.
type diffView map[string]string

// diff returns the names of the fields that differ, or nil.
func (a diffView) diff(b diffView) []string {
	var keys []string
	for k, av := range a {
		if bv, ok := b[k]; !ok || av != bv {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func ourView(p Packet) diffView {
	m := diffView{"type": fmt.Sprint(byte(p.Type()))}
	var props *Properties
	ack := func(id uint16, r ReasonCode, p *Properties) {
		m["id"], m["reason"], props = fmt.Sprint(id), fmt.Sprint(byte(r)), p
	}
	switch p := p.(type) {
	case *Connect:
		m["connect"] = fmt.Sprintf("%q level=%d clean=%t keepalive=%d id=%q", p.ProtocolName, p.Version, p.CleanStart, p.KeepAlive, p.ClientID)
		m["user"] = fmt.Sprintf("%t %q %t %x", p.UsernameFlag, p.Username, p.PasswordFlag, p.Password)
		m["will"] = "none"
		if w := p.Will; w != nil {
			m["will"] = fmt.Sprintf("qos=%d retain=%t %q %x", w.QoS, w.Retain, w.Topic, w.Payload)
			ourProps(m, "will ", &w.Properties)
		}
		props = &p.Properties
	case *Connack:
		m["session present"], m["reason"], props = fmt.Sprint(p.SessionPresent), fmt.Sprint(byte(p.ReasonCode)), &p.Properties
	case *Publish:
		m["publish"] = fmt.Sprintf("qos=%d dup=%t retain=%t id=%d", p.QoS, p.Dup, p.Retain, p.PacketID)
		m["topic"], m["payload"], props = p.Topic, fmt.Sprintf("%x", p.Payload), &p.Properties
	case *Puback:
		ack(p.PacketID, p.ReasonCode, &p.Properties)
	case *Pubrec:
		ack(p.PacketID, p.ReasonCode, &p.Properties)
	case *Pubrel:
		ack(p.PacketID, p.ReasonCode, &p.Properties)
	case *Pubcomp:
		ack(p.PacketID, p.ReasonCode, &p.Properties)
	case *Subscribe:
		var fs []string
		for _, s := range p.Subscriptions {
			fs = append(fs, fmt.Sprintf("%q qos=%d nl=%t rap=%t rh=%d", s.Filter, s.QoS, s.NoLocal, s.RetainAsPublished, s.RetainHandling))
		}
		m["id"], m["filters"], props = fmt.Sprint(p.PacketID), strings.Join(fs, ", "), &p.Properties
	case *Suback:
		m["id"], m["codes"], props = fmt.Sprint(p.PacketID), fmt.Sprintf("%x", p.ReasonCodes), &p.Properties
	case *Unsubscribe:
		m["id"], m["filters"], props = fmt.Sprint(p.PacketID), fmt.Sprintf("%q", p.Filters), &p.Properties
	case *Unsuback:
		m["id"], m["codes"], props = fmt.Sprint(p.PacketID), fmt.Sprintf("%x", p.ReasonCodes), &p.Properties
	case *Disconnect:
		m["reason"], props = fmt.Sprint(byte(p.ReasonCode)), &p.Properties
	case *Auth:
		m["reason"], props = fmt.Sprint(byte(p.ReasonCode)), &p.Properties
	}
	if props != nil {
		ourProps(m, "", props)
	}
	return m
}

func mochiView(pk *mochi.Packet) diffView {
	m := diffView{"type": fmt.Sprint(pk.FixedHeader.Type)}
	c := &pk.Connect
	switch pk.FixedHeader.Type {
	case mochi.Connect:
		m["connect"] = fmt.Sprintf("%q level=%d clean=%t keepalive=%d id=%q", c.ProtocolName, pk.ProtocolVersion, c.Clean, c.Keepalive, c.ClientIdentifier)
		m["user"] = fmt.Sprintf("%t %q %t %x", c.UsernameFlag, c.Username, c.PasswordFlag, c.Password)
		m["will"] = "none"
		if c.WillFlag {
			m["will"] = fmt.Sprintf("qos=%d retain=%t %q %x", c.WillQos, c.WillRetain, c.WillTopic, c.WillPayload)
			mochiProps(m, "will ", &c.WillProperties)
		}
	case mochi.Connack:
		m["session present"], m["reason"] = fmt.Sprint(pk.SessionPresent), fmt.Sprint(pk.ReasonCode)
	case mochi.Publish:
		h := pk.FixedHeader
		m["publish"] = fmt.Sprintf("qos=%d dup=%t retain=%t id=%d", h.Qos, h.Dup, h.Retain, pk.PacketID)
		m["topic"], m["payload"] = pk.TopicName, fmt.Sprintf("%x", pk.Payload)
	case mochi.Puback, mochi.Pubrec, mochi.Pubrel, mochi.Pubcomp:
		m["id"], m["reason"] = fmt.Sprint(pk.PacketID), fmt.Sprint(pk.ReasonCode)
	case mochi.Subscribe, mochi.Unsubscribe:
		var fs, names []string
		for _, s := range pk.Filters {
			fs = append(fs, fmt.Sprintf("%q qos=%d nl=%t rap=%t rh=%d", s.Filter, s.Qos, s.NoLocal, s.RetainAsPublished, s.RetainHandling))
			names = append(names, s.Filter)
		}
		m["id"], m["filters"] = fmt.Sprint(pk.PacketID), strings.Join(fs, ", ")
		if pk.FixedHeader.Type == mochi.Unsubscribe {
			m["filters"] = fmt.Sprintf("%q", names)
		}
	case mochi.Suback, mochi.Unsuback:
		m["id"], m["codes"] = fmt.Sprint(pk.PacketID), fmt.Sprintf("%x", pk.ReasonCodes)
	case mochi.Disconnect, mochi.Auth:
		m["reason"] = fmt.Sprint(pk.ReasonCode)
	}
	mochiProps(m, "", &pk.Properties)
	return m
}

// mochiPropFields names mochi's Properties field for each single-valued
// property. Where mochi also has a field with "Flag" appended, it records
// presence, so a zero sent on the wire is visible; for the rest it keeps
// only the value, so both sides report those only when non-zero.
var mochiPropFields = map[PropID]string{
	PropPayloadFormat: "PayloadFormat", PropMessageExpiry: "MessageExpiryInterval", PropContentType: "ContentType",
	PropResponseTopic: "ResponseTopic", PropCorrelationData: "CorrelationData", PropSessionExpiry: "SessionExpiryInterval",
	PropAssignedClientID: "AssignedClientID", PropServerKeepAlive: "ServerKeepAlive", PropAuthMethod: "AuthenticationMethod",
	PropAuthData: "AuthenticationData", PropRequestProblemInfo: "RequestProblemInfo", PropWillDelay: "WillDelayInterval",
	PropRequestResponseInfo: "RequestResponseInfo", PropResponseInfo: "ResponseInfo", PropServerReference: "ServerReference",
	PropReasonString: "ReasonString", PropReceiveMaximum: "ReceiveMaximum", PropTopicAliasMaximum: "TopicAliasMaximum",
	PropTopicAlias: "TopicAlias", PropMaximumQoS: "MaximumQos", PropRetainAvailable: "RetainAvailable",
	PropMaximumPacketSize: "MaximumPacketSize", PropWildcardSubAvailable: "WildcardSubAvailable",
	PropSubscriptionIDAvailable: "SubIDAvailable", PropSharedSubAvailable: "SharedSubAvailable",
}

// mochiFlagged reports whether mochi records the presence of property id.
func mochiFlagged(id PropID) bool {
	_, ok := reflect.TypeFor[mochi.Properties]().FieldByName(mochiPropFields[id] + "Flag")
	return ok
}

// propString formats a property value the same way for both codecs and
// reports whether it is the zero value.
func propString(v any) (s string, zero bool) {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v), v == ""
	case []byte:
		return fmt.Sprintf("%x", v), len(v) == 0
	}
	s = fmt.Sprint(v)
	return s, s == "0"
}

func ourProps(m diffView, prefix string, p *Properties) {
	for id := range mochiPropFields {
		ref := p.field(id)
		var v any = ref.num()
		if ref.s != nil {
			v = *ref.s
		} else if ref.bin != nil {
			v = *ref.bin
		}
		if s, zero := propString(v); mochiFlagged(id) && p.Has(id) || !mochiFlagged(id) && !zero {
			m[prefix+id.String()] = s
		}
	}
	if len(p.SubscriptionIDs) > 0 {
		m[prefix+"subscription ids"] = fmt.Sprint(p.SubscriptionIDs)
	}
	for i, u := range p.User {
		m[fmt.Sprintf("%suser property %d", prefix, i)] = fmt.Sprintf("%q=%q", u.Key, u.Value)
	}
}

func mochiProps(m diffView, prefix string, p *mochi.Properties) {
	fields := reflect.ValueOf(p).Elem()
	for id, name := range mochiPropFields {
		s, zero := propString(fields.FieldByName(name).Interface())
		if mochiFlagged(id) && fields.FieldByName(name+"Flag").Bool() || !mochiFlagged(id) && !zero {
			m[prefix+id.String()] = s
		}
	}
	if len(p.SubscriptionIdentifier) > 0 {
		m[prefix+"subscription ids"] = fmt.Sprint(p.SubscriptionIdentifier)
	}
	for i, u := range p.User {
		m[fmt.Sprintf("%suser property %d", prefix, i)] = fmt.Sprintf("%q=%q", u.Key, u.Val)
	}
}
