package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
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

var malCases = []malCase{
	// Fixed header flags: every type but PUBLISH has a fixed flag nibble
	// (3.1.1 section 2.2.2 [MQTT-2.2.2-1/2]; 5.0 section 2.1.3).
	{name: "PUBREL flags 0000", v: V311, in: `
		60    // PUBREL, flags 0000 (must be 0010)
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrMalformed, typ: PUBREL, field: "fixed header flags"},
	{name: "PUBREL flags 0011 v5", v: V5, in: `
		63    // PUBREL, flags 0011
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrMalformed, typ: PUBREL, field: "fixed header flags"},
	{name: "SUBSCRIBE flags 0000", v: V311, in: `
		80       // SUBSCRIBE, flags 0000 (must be 0010)
		06       // remaining length
		00 01    // packet identifier
		00 01 61 // topic filter "a"
		00       // options: QoS 0`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "fixed header flags"},
	{name: "UNSUBSCRIBE flags 0000", v: V311, in: `
		A0       // UNSUBSCRIBE, flags 0000 (must be 0010)
		05       // remaining length
		00 01    // packet identifier
		00 01 61 // topic filter "a"`,
		kind: ErrMalformed, typ: UNSUBSCRIBE, field: "fixed header flags"},
	{name: "UNSUBSCRIBE flags 1010 v5", v: V5, in: `
		AA       // UNSUBSCRIBE, flags 1010
		06       // remaining length
		00 01    // packet identifier
		00       // property length
		00 01 61 // topic filter "a"`,
		kind: ErrMalformed, typ: UNSUBSCRIBE, field: "fixed header flags"},
	{name: "PUBACK flags 0010", v: V311, in: `
		42    // PUBACK, flags 0010 (must be 0000)
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrMalformed, typ: PUBACK, field: "fixed header flags"},
	{name: "PUBCOMP flags 0001 v5", v: V5, in: `
		71    // PUBCOMP, flags 0001
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrMalformed, typ: PUBCOMP, field: "fixed header flags"},
	{name: "CONNECT flags 0001", v: V311, in: `
		11 // CONNECT, flags 0001 (must be 0000)
		0D // remaining length 13
		` + malConnV311 + `
		00 01 61 // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "fixed header flags"},
	{name: "CONNACK flags 0100", v: V311, in: `
		24    // CONNACK, flags 0100
		02    // remaining length
		00 00 // acknowledge flags, return code`,
		kind: ErrMalformed, typ: CONNACK, field: "fixed header flags"},
	{name: "PINGREQ flags 1000", v: V311, in: `
		C8 // PINGREQ, flags 1000
		00 // remaining length`,
		kind: ErrMalformed, typ: PINGREQ, field: "fixed header flags"},

	// Remaining length (3.1.1 section 2.2.3; 5.0 sections 1.5.5, 2.1.4).
	{name: "remaining length with a fifth byte", v: V311, in: `
		30             // PUBLISH
		FF FF FF FF 7F // five length bytes: at most four are allowed`,
		kind: ErrMalformed, typ: PUBLISH, field: "remaining length"},
	{name: "remaining length 0x80 0x00 in v5", v: V5, in: `
		C0    // PINGREQ
		80 00 // 0 in two bytes: not the minimum encoding [MQTT-1.5.5-1]`,
		kind: ErrMalformed, typ: PINGREQ, field: "remaining length"},
	{name: "remaining length 0x85 0x80 0x00 in v5", v: V5, in: `
		30       // PUBLISH
		85 80 00 // 5 in three bytes
		00 01 61 // topic "a"
		00       // property length
		21       // payload`,
		kind: ErrMalformed, typ: PUBLISH, field: "remaining length"},
	{name: "remaining length over the maximum packet size", v: V311, max: 16, in: `
		30 // PUBLISH
		7F // remaining length 127: 129 bytes in all, the body never sent`,
		kind: ErrPacketTooLarge, typ: PUBLISH, field: "remaining length"},
	{name: "total size one over the maximum packet size", v: V5, max: 10, in: `
		30                         // PUBLISH
		09                         // remaining length: 11 bytes in all
		00 01 61                   // topic "a"
		00                         // property length
		68 65 6C 6C 6F             // payload "hello"`,
		kind: ErrPacketTooLarge, typ: PUBLISH, field: "remaining length"},
	{name: "packet type 0", v: V311, in: `
		00 // reserved type 0
		00 // remaining length`,
		kind: ErrMalformed, typ: 0, field: "packet type"},

	// A length prefix longer than what follows.
	{name: "PUBLISH topic length past the body", v: V311, in: `
		30          // PUBLISH QoS 0
		05          // remaining length
		00 0A       // topic length 10
		61 62 63    // only three bytes`,
		kind: ErrMalformed, typ: PUBLISH, field: "topic name"},
	{name: "CONNECT client identifier length past the body", v: V311, in: `
		10 // CONNECT
		0D // remaining length 13
		` + malConnV311 + `
		00 05 61 // client identifier: length 5, one byte`,
		kind: ErrMalformed, typ: CONNECT, field: "client identifier"},
	{name: "SUBSCRIBE filter length past the body", v: V311, in: `
		82       // SUBSCRIBE
		05       // remaining length
		00 01    // packet identifier
		00 09 61 // topic filter: length 9, one byte`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "topic filter"},
	{name: "user property value past the property length", v: V5, in: `
		30       // PUBLISH QoS 0
		0B       // remaining length 11
		00 01 61 // topic "a"
		07       // property length 7
		26       // User Property
		00 01 6B // name "k"
		00 05 76 // value: length 5, one byte left in the properties`,
		kind: ErrMalformed, typ: PUBLISH, field: "User Property"},

	// Ill-formed UTF-8 ([MQTT-1.5.3-1/2] in 3.1.1, [MQTT-1.5.4-1/2] in 5.0).
	{name: "topic with byte 0xFF", v: V311, in: `
		30          // PUBLISH QoS 0
		06          // remaining length
		00 02 61 FF // topic "a\xff"
		68 69       // payload "hi"`,
		kind: ErrMalformed, typ: PUBLISH, field: "topic name"},
	{name: "topic with overlong C0 AF", v: V311, in: `
		30          // PUBLISH QoS 0
		04          // remaining length
		00 02 C0 AF // topic: "/" encoded in two bytes`,
		kind: ErrMalformed, typ: PUBLISH, field: "topic name"},
	{name: "topic with surrogate ED A0 80", v: V5, in: `
		30             // PUBLISH QoS 0
		06             // remaining length
		00 03 ED A0 80 // topic: U+D800, a UTF-16 surrogate
		00             // property length`,
		kind: ErrMalformed, typ: PUBLISH, field: "topic name"},
	{name: "topic with U+0000", v: V311, in: `
		30             // PUBLISH QoS 0
		05             // remaining length
		00 03 61 00 62 // topic "a\x00b"`,
		kind: ErrMalformed, typ: PUBLISH, field: "topic name"},
	{name: "client identifier with byte 0xFF", v: V311, in: `
		10 // CONNECT
		0D // remaining length 13
		` + malConnV311 + `
		00 01 FF // client identifier "\xff"`,
		kind: ErrMalformed, typ: CONNECT, field: "client identifier"},
	{name: "client identifier with overlong E0 80 AF", v: V311, in: `
		10 // CONNECT
		0F // remaining length 15
		` + malConnV311 + `
		00 03 E0 80 AF // client identifier: "/" encoded in three bytes`,
		kind: ErrMalformed, typ: CONNECT, field: "client identifier"},
	{name: "client identifier with surrogate ED B0 80", v: V5, in: `
		10 // CONNECT
		10 // remaining length 16
		` + malConnV5 + `
		00             // property length
		00 03 ED B0 80 // client identifier: U+DC00`,
		kind: ErrMalformed, typ: CONNECT, field: "client identifier"},
	{name: "client identifier with U+0000", v: V311, in: `
		10 // CONNECT
		0D // remaining length 13
		` + malConnV311 + `
		00 01 00 // client identifier "\x00"`,
		kind: ErrMalformed, typ: CONNECT, field: "client identifier"},
	{name: "PUBLISH user property name with byte 0xFF", v: V5, in: `
		30       // PUBLISH QoS 0
		0B       // remaining length 11
		00 01 61 // topic "a"
		07       // property length
		26       // User Property
		00 01 FF // name "\xff"
		00 01 76 // value "v"`,
		kind: ErrMalformed, typ: PUBLISH, field: "User Property"},
	{name: "CONNECT user property value with surrogate", v: V5, in: `
		10 // CONNECT
		17 // remaining length 23
		` + malConnV5 + `
		09             // property length
		26             // User Property
		00 01 6B       // name "k"
		00 03 ED A0 80 // value: U+D800
		00 01 61       // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "User Property"},
	{name: "SUBSCRIBE user property name with U+0000", v: V5, in: `
		82       // SUBSCRIBE
		0E       // remaining length 14
		00 01    // packet identifier
		07       // property length
		26       // User Property
		00 01 00 // name "\x00"
		00 01 76 // value "v"
		00 01 61 // topic filter "a"
		00       // options`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "User Property"},
	{name: "PUBACK user property name with overlong C0 80", v: V5, in: `
		40          // PUBACK
		0C          // remaining length 12
		00 01       // packet identifier
		00          // reason code: success
		08          // property length
		26          // User Property
		00 02 C0 80 // name: U+0000 in two bytes
		00 01 76    // value "v"`,
		kind: ErrMalformed, typ: PUBACK, field: "User Property"},

	// Topic names: no wildcards, never empty except with a Topic Alias in
	// 5.0 ([MQTT-3.3.2-2], [MQTT-4.7.3-1]; 5.0 section 3.3.2.1).
	{name: "PUBLISH topic a/+", v: V311, in: `
		30             // PUBLISH QoS 0
		05             // remaining length
		00 03 61 2F 2B // topic "a/+"`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "topic name"},
	{name: "PUBLISH topic sport/# v5", v: V5, in: `
		30                            // PUBLISH QoS 0
		0A                            // remaining length
		00 07 73 70 6F 72 74 2F 23    // topic "sport/#"
		00                            // property length`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "topic name"},
	{name: "PUBLISH QoS 1 topic +", v: V311, in: `
		32       // PUBLISH QoS 1
		05       // remaining length
		00 01 2B // topic "+"
		00 07    // packet identifier`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "topic name"},
	{name: "PUBLISH empty topic 3.1.1", v: V311, in: `
		30    // PUBLISH QoS 0
		02    // remaining length
		00 00 // topic ""`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "topic name"},
	{name: "PUBLISH empty topic v5 without topic alias", v: V5, in: `
		30    // PUBLISH QoS 0
		03    // remaining length
		00 00 // topic ""
		00    // property length`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "topic name"},
	{name: "PUBLISH empty topic v5 with properties but no topic alias", v: V5, in: `
		30                // PUBLISH QoS 0
		08                // remaining length
		00 00             // topic ""
		05                // property length
		02 00 00 00 3C    // Message Expiry Interval 60`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "topic name"},

	// Topic filters: "+" a whole level, "#" the whole last level
	// ([MQTT-4.7.1-1/2/3]).
	{name: "SUBSCRIBE filter a/#/b", v: V311, in: `
		82                // SUBSCRIBE
		0A                // remaining length
		00 01             // packet identifier
		00 05 61 2F 23 2F 62 // topic filter "a/#/b"
		00                // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "SUBSCRIBE filter a#", v: V311, in: `
		82          // SUBSCRIBE
		07          // remaining length
		00 01       // packet identifier
		00 02 61 23 // topic filter "a#"
		00          // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "SUBSCRIBE filter a+/b", v: V311, in: `
		82                // SUBSCRIBE
		09                // remaining length
		00 01             // packet identifier
		00 04 61 2B 2F 62 // topic filter "a+/b"
		00                // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "SUBSCRIBE filter #/a", v: V5, in: `
		82             // SUBSCRIBE
		09             // remaining length
		00 01          // packet identifier
		00             // property length
		00 03 23 2F 61 // topic filter "#/a"
		00             // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "SUBSCRIBE filter +a", v: V311, in: `
		82          // SUBSCRIBE
		07          // remaining length
		00 01       // packet identifier
		00 02 2B 61 // topic filter "+a"
		00          // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE filter a/#/b", v: V311, in: `
		A2                   // UNSUBSCRIBE
		09                   // remaining length
		00 01                // packet identifier
		00 05 61 2F 23 2F 62 // topic filter "a/#/b"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE filter a#", v: V311, in: `
		A2          // UNSUBSCRIBE
		06          // remaining length
		00 01       // packet identifier
		00 02 61 23 // topic filter "a#"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE filter a+/b", v: V5, in: `
		A2                // UNSUBSCRIBE
		09                // remaining length
		00 01             // packet identifier
		00                // property length
		00 04 61 2B 2F 62 // topic filter "a+/b"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE filter #/a", v: V311, in: `
		A2             // UNSUBSCRIBE
		07             // remaining length
		00 01          // packet identifier
		00 03 23 2F 61 // topic filter "#/a"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE filter +a as second filter", v: V311, in: `
		A2          // UNSUBSCRIBE
		09          // remaining length
		00 01       // packet identifier
		00 01 62    // topic filter "b" (valid)
		00 02 2B 61 // topic filter "+a"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},

	// Shared subscriptions (5.0 section 4.8.2): a non-empty share name
	// followed by a topic filter.
	{name: "SUBSCRIBE $share//a: empty share name", v: V5, in: `
		82                                // SUBSCRIBE
		0F                                // remaining length 15
		00 01                             // packet identifier
		00                                // property length
		00 09 24 73 68 61 72 65 2F 2F 61  // topic filter "$share//a"
		00                                // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "SUBSCRIBE $share/g: no topic filter", v: V5, in: `
		82                             // SUBSCRIBE
		0E                             // remaining length 14
		00 01                          // packet identifier
		00                             // property length
		00 08 24 73 68 61 72 65 2F 67  // topic filter "$share/g"
		00                             // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE $share/g/: empty topic filter", v: V5, in: `
		A2                                // UNSUBSCRIBE
		0E                                // remaining length 14
		00 01                             // packet identifier
		00                                // property length
		00 09 24 73 68 61 72 65 2F 67 2F  // topic filter "$share/g/"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},
	{name: "UNSUBSCRIBE $share//a: empty share name", v: V5, in: `
		A2                                // UNSUBSCRIBE
		0E                                // remaining length 14
		00 01                             // packet identifier
		00                                // property length
		00 09 24 73 68 61 72 65 2F 2F 61  // topic filter "$share//a"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "topic filter"},

	// QoS 3 is malformed wherever a QoS is carried ([MQTT-3.3.1-4],
	// [MQTT-3.1.2-14], [MQTT-3-8.3-4]).
	{name: "PUBLISH QoS 3", v: V311, in: `
		36       // PUBLISH, flags 0110: both QoS bits
		05       // remaining length
		00 01 61 // topic "a"
		00 01    // packet identifier`,
		kind: ErrMalformed, typ: PUBLISH, field: "QoS"},
	{name: "CONNECT will QoS 3", v: V311, in: `
		10                  // CONNECT
		12                  // remaining length 18
		00 04 4D 51 54 54   // protocol name "MQTT"
		04                  // protocol level 4
		1E                  // flags: will QoS 3, will, clean session
		00 3C               // keep alive
		00 01 61            // client identifier "a"
		00 01 77            // will topic "w"
		00 00               // will payload ""`,
		kind: ErrMalformed, typ: CONNECT, field: "will QoS"},
	{name: "SUBSCRIBE options QoS 3", v: V311, in: `
		82       // SUBSCRIBE
		06       // remaining length
		00 01    // packet identifier
		00 01 61 // topic filter "a"
		03       // options: QoS 3`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "subscription options"},
	// In 5.0 the same options byte is a Protocol Error: "It is a Protocol
	// Error if the Maximum QoS field has the value 3" (section 3.8.3.1).
	{name: "SUBSCRIBE options QoS 3 v5", v: V5, in: `
		82       // SUBSCRIBE
		07       // remaining length
		00 01    // packet identifier
		00       // property length
		00 01 61 // topic filter "a"
		03       // options: Maximum QoS 3`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "subscription options"},
	{name: "PUBLISH DUP at QoS 0", v: V311, in: `
		38       // PUBLISH, flags 1000: DUP at QoS 0 [MQTT-3.3.1-2]
		03       // remaining length
		00 01 61 // topic "a"`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "DUP"},

	// Packet identifier 0 ([MQTT-2.3.1-1]; 5.0 section 2.2.1).
	{name: "PUBLISH QoS 1 packet identifier 0", v: V311, in: `
		32       // PUBLISH QoS 1
		05       // remaining length
		00 01 61 // topic "a"
		00 00    // packet identifier 0`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "packet identifier"},
	{name: "PUBLISH QoS 2 packet identifier 0 v5", v: V5, in: `
		34       // PUBLISH QoS 2
		06       // remaining length
		00 01 61 // topic "a"
		00 00    // packet identifier 0
		00       // property length`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "packet identifier"},
	{name: "PUBACK packet identifier 0", v: V311, in: `
		40    // PUBACK
		02    // remaining length
		00 00 // packet identifier 0`,
		kind: ErrProtocolViolation, typ: PUBACK, field: "packet identifier"},
	{name: "PUBREC packet identifier 0 v5", v: V5, in: `
		50    // PUBREC
		02    // remaining length
		00 00 // packet identifier 0`,
		kind: ErrProtocolViolation, typ: PUBREC, field: "packet identifier"},
	{name: "SUBSCRIBE packet identifier 0", v: V311, in: `
		82       // SUBSCRIBE
		06       // remaining length
		00 00    // packet identifier 0
		00 01 61 // topic filter "a"
		00       // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "packet identifier"},
	{name: "UNSUBSCRIBE packet identifier 0", v: V311, in: `
		A2       // UNSUBSCRIBE
		05       // remaining length
		00 00    // packet identifier 0
		00 01 61 // topic filter "a"`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "packet identifier"},
	{name: "SUBACK packet identifier 0", v: V311, in: `
		90    // SUBACK
		03    // remaining length
		00 00 // packet identifier 0
		00    // granted QoS 0`,
		kind: ErrProtocolViolation, typ: SUBACK, field: "packet identifier"},
	{name: "UNSUBACK packet identifier 0 v5", v: V5, in: `
		B0    // UNSUBACK
		04    // remaining length
		00 00 // packet identifier 0
		00    // property length
		00    // success`,
		kind: ErrProtocolViolation, typ: UNSUBACK, field: "packet identifier"},

	// Properties in the wrong packet. MQTT 5.0 section 2.2.2.2: "A Control
	// Packet which contains an Identifier which is not valid for its packet
	// type ... is a Malformed Packet" (reason code 0x81), unlike a property
	// given twice, which each property's section makes a Protocol Error.
	{name: "Topic Alias in CONNECT", v: V5, in: `
		10 // CONNECT
		11 // remaining length 17
		` + malConnV5 + `
		03       // property length
		23 00 01 // Topic Alias 1
		00 01 61 // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "=Topic Alias"},
	{name: "Session Expiry Interval in PUBLISH", v: V5, in: `
		30             // PUBLISH QoS 0
		09             // remaining length
		00 01 61       // topic "a"
		05             // property length
		11 00 00 00 0A // Session Expiry Interval 10`,
		kind: ErrMalformed, typ: PUBLISH, field: "Session Expiry Interval"},
	{name: "Will Delay Interval in CONNECT properties", v: V5, in: `
		10 // CONNECT
		13 // remaining length 19
		` + malConnV5 + `
		05             // property length
		18 00 00 00 0A // Will Delay Interval 10: a will property only
		00 01 61       // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "=Will Delay Interval"},
	{name: "Session Expiry Interval in will properties", v: V5, in: `
		10                // CONNECT
		19                // remaining length 25
		00 04 4D 51 54 54 // protocol name "MQTT"
		05                // protocol level 5
		06                // flags: will, clean start
		00 3C             // keep alive
		00                // property length
		00 01 61          // client identifier "a"
		05                // will property length
		11 00 00 00 0A    // Session Expiry Interval: not a will property
		00 01 77          // will topic "w"
		00 00             // will payload ""`,
		kind: ErrMalformed, typ: CONNECT, field: "will property Session Expiry Interval"},
	{name: "Reason String in PUBLISH", v: V5, in: `
		30          // PUBLISH QoS 0
		08          // remaining length
		00 01 61    // topic "a"
		04          // property length
		1F 00 01 78 // Reason String "x"`,
		kind: ErrMalformed, typ: PUBLISH, field: "Reason String"},
	{name: "Subscription Identifier in UNSUBSCRIBE", v: V5, in: `
		A2       // UNSUBSCRIBE
		08       // remaining length
		00 01    // packet identifier
		02       // property length
		0B 01    // Subscription Identifier 1
		00 01 61 // topic filter "a"`,
		kind: ErrMalformed, typ: UNSUBSCRIBE, field: "Subscription Identifier"},

	// Single-valued properties given twice, and values out of range.
	{name: "two Message Expiry Intervals", v: V5, in: `
		30             // PUBLISH QoS 0
		0E             // remaining length 14
		00 01 61       // topic "a"
		0A             // property length 10
		02 00 00 00 0A // Message Expiry Interval 10
		02 00 00 00 0B // Message Expiry Interval 11`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "Message Expiry Interval"},
	{name: "two Receive Maximums in CONNACK", v: V5, in: `
		20       // CONNACK
		09       // remaining length
		00 00    // acknowledge flags, success
		06       // property length
		21 00 0A // Receive Maximum 10
		21 00 0B // Receive Maximum 11`,
		kind: ErrProtocolViolation, typ: CONNACK, field: "Receive Maximum"},
	{name: "two Subscription Identifiers in SUBSCRIBE", v: V5, in: `
		82       // SUBSCRIBE
		0B       // remaining length 11
		00 01    // packet identifier
		04       // property length
		0B 01    // Subscription Identifier 1
		0B 02    // Subscription Identifier 2
		00 01 61 // topic filter "a"
		00       // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "Subscription Identifier"},
	{name: "Subscription Identifier 0 in SUBSCRIBE", v: V5, in: `
		82       // SUBSCRIBE
		09       // remaining length
		00 01    // packet identifier
		02       // property length
		0B 00    // Subscription Identifier 0
		00 01 61 // topic filter "a"
		00       // options`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "Subscription Identifier"},
	{name: "Subscription Identifier 0 in PUBLISH", v: V5, in: `
		30       // PUBLISH QoS 0
		06       // remaining length
		00 01 61 // topic "a"
		02       // property length
		0B 00    // Subscription Identifier 0`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "Subscription Identifier"},
	{name: "Topic Alias 0", v: V5, in: `
		30       // PUBLISH QoS 0
		07       // remaining length
		00 01 61 // topic "a"
		03       // property length
		23 00 00 // Topic Alias 0`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "Topic Alias"},
	{name: "Receive Maximum 0 in CONNECT", v: V5, in: `
		10 // CONNECT
		11 // remaining length 17
		` + malConnV5 + `
		03       // property length
		21 00 00 // Receive Maximum 0
		00 01 61 // client identifier "a"`,
		kind: ErrProtocolViolation, typ: CONNECT, field: "Receive Maximum"},
	{name: "Maximum Packet Size 0 in CONNACK", v: V5, in: `
		20             // CONNACK
		08             // remaining length
		00 00          // acknowledge flags, success
		05             // property length
		27 00 00 00 00 // Maximum Packet Size 0`,
		kind: ErrProtocolViolation, typ: CONNACK, field: "Maximum Packet Size"},
	{name: "Payload Format Indicator 2", v: V5, in: `
		30       // PUBLISH QoS 0
		06       // remaining length
		00 01 61 // topic "a"
		02       // property length
		01 02    // Payload Format Indicator 2`,
		kind: ErrProtocolViolation, typ: PUBLISH, field: "Payload Format Indicator"},
	{name: "unknown property 0x7F", v: V5, in: `
		30       // PUBLISH QoS 0
		06       // remaining length
		00 01 61 // topic "a"
		02       // property length
		7F 00    // property 0x7F does not exist`,
		kind: ErrMalformed, typ: PUBLISH, field: "properties"},
	{name: "unknown property 0x00 in DISCONNECT", v: V5, in: `
		E0 // DISCONNECT
		03 // remaining length
		00 // reason code: normal disconnection
		01 // property length
		00 // property 0x00 does not exist`,
		kind: ErrMalformed, typ: DISCONNECT, field: "properties"},
	{name: "property length past the body", v: V5, in: `
		30       // PUBLISH QoS 0
		05       // remaining length
		00 01 61 // topic "a"
		0A       // property length 10
		01       // one byte left`,
		kind: ErrMalformed, typ: PUBLISH, field: "property length"},
	{name: "property length 0x80 0x00", v: V5, in: `
		30       // PUBLISH QoS 0
		05       // remaining length
		00 01 61 // topic "a"
		80 00    // property length 0 in two bytes`,
		kind: ErrMalformed, typ: PUBLISH, field: "property length"},
	{name: "four-byte property cut by the property length", v: V5, in: `
		30       // PUBLISH QoS 0
		09       // remaining length
		00 01 61 // topic "a"
		03       // property length 3
		02 00 00 // Message Expiry Interval with two of its four bytes
		00 00    // payload`,
		kind: ErrMalformed, typ: PUBLISH, field: "Message Expiry Interval"},

	// CONNECT (3.1.1 section 3.1.2; 5.0 section 3.1.2).
	{name: "CONNECT protocol name MQTX", v: V311, in: `
		10                // CONNECT
		0D                // remaining length 13
		00 04 4D 51 54 58 // protocol name "MQTX"
		04                // protocol level 4
		02                // flags: clean session
		00 3C             // keep alive
		00 01 61          // client identifier "a"`,
		kind: ErrUnsupportedVersion, typ: CONNECT, field: "protocol"},
	{name: "CONNECT protocol level 6", v: V311, in: `
		10                // CONNECT
		0D                // remaining length 13
		00 04 4D 51 54 54 // protocol name "MQTT"
		06                // protocol level 6
		02                // flags: clean session
		00 3C             // keep alive
		00 01 61          // client identifier "a"`,
		kind: ErrUnsupportedVersion, typ: CONNECT, field: "protocol"},
	{name: "CONNECT MQIsdp with level 4", v: V311, in: `
		10                      // CONNECT
		0F                      // remaining length 15
		00 06 4D 51 49 73 64 70 // protocol name "MQIsdp"
		04                      // protocol level 4: MQIsdp is only level 3
		02                      // flags: clean session
		00 3C                   // keep alive
		00 01 61                // client identifier "a"`,
		kind: ErrUnsupportedVersion, typ: CONNECT, field: "protocol"},
	{name: "CONNECT reserved flag bit", v: V311, in: `
		10                // CONNECT
		0D                // remaining length 13
		00 04 4D 51 54 54 // protocol name "MQTT"
		04                // protocol level 4
		03                // flags: clean session and reserved bit 0 [MQTT-3.1.2-3]
		00 3C             // keep alive
		00 01 61          // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "connect flags"},
	{name: "CONNECT will retain without will flag", v: V311, in: `
		10                // CONNECT
		0D                // remaining length 13
		00 04 4D 51 54 54 // protocol name "MQTT"
		04                // protocol level 4
		22                // flags: will retain, clean session; no will [MQTT-3.1.2-15]
		00 3C             // keep alive
		00 01 61          // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "connect flags"},
	{name: "CONNECT will QoS 1 without will flag v5", v: V5, in: `
		10                // CONNECT
		0E                // remaining length 14
		00 04 4D 51 54 54 // protocol name "MQTT"
		05                // protocol level 5
		0A                // flags: will QoS 1, clean start; no will [MQTT-3.1.2-11]
		00 3C             // keep alive
		00                // property length
		00 01 61          // client identifier "a"`,
		kind: ErrMalformed, typ: CONNECT, field: "connect flags"},
	{name: "CONNECT password without user name 3.1.1", v: V311, in: `
		10                // CONNECT
		10                // remaining length 16
		00 04 4D 51 54 54 // protocol name "MQTT"
		04                // protocol level 4
		42                // flags: password, clean session; no user name [MQTT-3.1.2-22]
		00 3C             // keep alive
		00 01 61          // client identifier "a"
		00 01 70          // password "p"`,
		kind: ErrProtocolViolation, typ: CONNECT, field: "password"},
	{name: "CONNECT will topic with wildcard", v: V311, in: `
		10                // CONNECT
		12                // remaining length 18
		00 04 4D 51 54 54 // protocol name "MQTT"
		04                // protocol level 4
		06                // flags: will, clean session
		00 3C             // keep alive
		00 01 61          // client identifier "a"
		00 01 23          // will topic "#"
		00 00             // will payload ""`,
		kind: ErrProtocolViolation, typ: CONNECT, field: "will topic"},
	{name: "CONNECT trailing byte", v: V311, in: `
		10 // CONNECT
		0E // remaining length 14
		` + malConnV311 + `
		00 01 61 // client identifier "a"
		FF       // nothing may follow`,
		kind: ErrMalformed, typ: CONNECT, field: "packet"},

	// CONNACK (3.1.1 section 3.2; 5.0 section 3.2).
	{name: "CONNACK reserved acknowledge flag bit 1", v: V311, in: `
		20 // CONNACK
		02 // remaining length
		02 // acknowledge flags: reserved bit 1 [MQTT-3.2.2-1]
		00 // accepted`,
		kind: ErrMalformed, typ: CONNACK, field: "acknowledge flags"},
	{name: "CONNACK reserved acknowledge flag bit 7 v5", v: V5, in: `
		20 // CONNACK
		03 // remaining length
		80 // acknowledge flags: reserved bit 7
		00 // success
		00 // property length`,
		kind: ErrMalformed, typ: CONNACK, field: "acknowledge flags"},
	{name: "CONNACK session present with return code 5", v: V311, in: `
		20 // CONNACK
		02 // remaining length
		01 // session present
		05 // not authorized: session present must be 0 [MQTT-3.2.2-4]`,
		kind: ErrProtocolViolation, typ: CONNACK, field: "session present"},
	{name: "CONNACK session present with reason 0x87 v5", v: V5, in: `
		20 // CONNACK
		03 // remaining length
		01 // session present
		87 // not authorized [MQTT-3.2.2-6]
		00 // property length`,
		kind: ErrProtocolViolation, typ: CONNACK, field: "session present"},
	{name: "CONNACK reason 0x10 v5", v: V5, in: `
		20 // CONNACK
		03 // remaining length
		00 // acknowledge flags
		10 // no matching subscribers: not a CONNACK code
		00 // property length`,
		kind: ErrProtocolViolation, typ: CONNACK, field: "reason code"},
	{name: "CONNACK trailing byte 3.1.1", v: V311, in: `
		20    // CONNACK
		03    // remaining length 3 (must be 2)
		00 00 // acknowledge flags, accepted
		00    // extra`,
		kind: ErrMalformed, typ: CONNACK, field: "packet"},

	// Reason codes not defined for the packet (5.0 section 2.4).
	{name: "PUBACK reason 0x92", v: V5, in: `
		40    // PUBACK
		03    // remaining length
		00 01 // packet identifier
		92    // packet identifier not found: PUBREL/PUBCOMP only`,
		kind: ErrProtocolViolation, typ: PUBACK, field: "reason code"},
	{name: "PUBREL reason 0x10", v: V5, in: `
		62    // PUBREL
		03    // remaining length
		00 01 // packet identifier
		10    // no matching subscribers: PUBACK/PUBREC only`,
		kind: ErrProtocolViolation, typ: PUBREL, field: "reason code"},
	{name: "AUTH reason 0x80", v: V5, in: `
		F0 // AUTH
		02 // remaining length
		80 // unspecified error: AUTH allows 0x00, 0x18, 0x19
		00 // property length`,
		kind: ErrProtocolViolation, typ: AUTH, field: "reason code"},
	{name: "DISCONNECT reason 0x05", v: V5, in: `
		E0 // DISCONNECT
		01 // remaining length
		05 // undefined reason code`,
		kind: ErrProtocolViolation, typ: DISCONNECT, field: "reason code"},
	{name: "SUBACK return code 0x03 3.1.1", v: V311, in: `
		90    // SUBACK
		03    // remaining length
		00 01 // packet identifier
		03    // return code 3: reserved [MQTT-3.9.3-2]`,
		kind: ErrProtocolViolation, typ: SUBACK, field: "return code"},
	{name: "SUBACK reason 0x03 v5", v: V5, in: `
		90    // SUBACK
		04    // remaining length
		00 01 // packet identifier
		00    // property length
		03    // undefined reason code`,
		kind: ErrProtocolViolation, typ: SUBACK, field: "reason code"},
	{name: "UNSUBACK reason 0x01 v5", v: V5, in: `
		B0    // UNSUBACK
		04    // remaining length
		00 01 // packet identifier
		00    // property length
		01    // granted QoS 1: a SUBACK code`,
		kind: ErrProtocolViolation, typ: UNSUBACK, field: "reason code"},

	// Empty payloads where one is required ([MQTT-3.8.3-3], [MQTT-3.10.3-2]).
	{name: "SUBSCRIBE without filters", v: V311, in: `
		82    // SUBSCRIBE
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "payload"},
	{name: "SUBSCRIBE without filters v5", v: V5, in: `
		82    // SUBSCRIBE
		03    // remaining length
		00 01 // packet identifier
		00    // property length`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "payload"},
	{name: "UNSUBSCRIBE without filters", v: V311, in: `
		A2    // UNSUBSCRIBE
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "payload"},
	{name: "UNSUBSCRIBE without filters v5", v: V5, in: `
		A2    // UNSUBSCRIBE
		03    // remaining length
		00 01 // packet identifier
		00    // property length`,
		kind: ErrProtocolViolation, typ: UNSUBSCRIBE, field: "payload"},
	{name: "SUBACK without return codes", v: V311, in: `
		90    // SUBACK
		02    // remaining length
		00 01 // packet identifier`,
		kind: ErrProtocolViolation, typ: SUBACK, field: "payload"},

	// Subscription options (3.1.1 section 3.8.3.1; 5.0 section 3.8.3.1).
	{name: "SUBSCRIBE No Local in 3.1.1", v: V311, in: `
		82       // SUBSCRIBE
		06       // remaining length
		00 01    // packet identifier
		00 01 61 // topic filter "a"
		04       // options: bit 2, reserved in 3.1.1 [MQTT-3.8.3-4]`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "subscription options"},
	{name: "SUBSCRIBE retain handling bits in 3.1.1", v: V311, in: `
		82       // SUBSCRIBE
		06       // remaining length
		00 01    // packet identifier
		00 01 61 // topic filter "a"
		11       // options: bit 4 (reserved in 3.1.1), QoS 1`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "subscription options"},
	{name: "SUBSCRIBE reserved option bit 6 v5", v: V5, in: `
		82       // SUBSCRIBE
		07       // remaining length
		00 01    // packet identifier
		00       // property length
		00 01 61 // topic filter "a"
		40       // options: reserved bit 6 [MQTT-3.8.3-5]`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "subscription options"},
	{name: "SUBSCRIBE reserved option bit 7 v5", v: V5, in: `
		82       // SUBSCRIBE
		07       // remaining length
		00 01    // packet identifier
		00       // property length
		00 01 61 // topic filter "a"
		81       // options: reserved bit 7, QoS 1`,
		kind: ErrMalformed, typ: SUBSCRIBE, field: "subscription options"},
	{name: "SUBSCRIBE retain handling 3 v5", v: V5, in: `
		82       // SUBSCRIBE
		07       // remaining length
		00 01    // packet identifier
		00       // property length
		00 01 61 // topic filter "a"
		30       // options: retain handling 3`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "subscription options"},
	{name: "SUBSCRIBE No Local on a shared subscription", v: V5, in: `
		82                                   // SUBSCRIBE
		10                                   // remaining length 16
		00 01                                // packet identifier
		00                                   // property length
		00 0A 24 73 68 61 72 65 2F 67 2F 61  // topic filter "$share/g/a"
		04                                   // options: No Local [MQTT-3.8.3-4]`,
		kind: ErrProtocolViolation, typ: SUBSCRIBE, field: "subscription options"},

	// Bytes after the last field.
	{name: "PINGREQ with a body", v: V311, in: `
		C0 // PINGREQ
		01 // remaining length 1 (must be 0)
		00 // extra`,
		kind: ErrMalformed, typ: PINGREQ, field: "remaining length"},
	{name: "PINGRESP with a body v5", v: V5, in: `
		D0 // PINGRESP
		01 // remaining length 1
		00 // extra`,
		kind: ErrMalformed, typ: PINGRESP, field: "remaining length"},
	{name: "DISCONNECT with a body 3.1.1", v: V311, in: `
		E0 // DISCONNECT
		01 // remaining length 1: 3.1.1 has no reason code
		00 // extra`,
		kind: ErrMalformed, typ: DISCONNECT, field: "remaining length"},
	{name: "PUBACK with a reason code 3.1.1", v: V311, in: `
		40    // PUBACK
		03    // remaining length 3 (must be 2 in 3.1.1)
		00 01 // packet identifier
		00    // extra`,
		kind: ErrMalformed, typ: PUBACK, field: "packet"},
	{name: "UNSUBACK with a code 3.1.1", v: V311, in: `
		B0    // UNSUBACK
		03    // remaining length 3 (must be 2 in 3.1.1)
		00 01 // packet identifier
		00    // extra`,
		kind: ErrMalformed, typ: UNSUBACK, field: "packet"},
	{name: "AUTH in 3.1.1", v: V311, in: `
		F0 // AUTH: type 15 is reserved in 3.1.1
		00 // remaining length`,
		kind: ErrProtocolViolation, typ: AUTH, field: "packet type"},

	// The stream ending: inside a packet is io.ErrUnexpectedEOF, between
	// packets io.EOF.
	{name: "stream ends after the type byte", v: V311, in: `
		30 // PUBLISH, then nothing`,
		kind: io.ErrUnexpectedEOF},
	{name: "stream ends inside the remaining length", v: V311, in: `
		30 // PUBLISH
		80 // a continuation byte, then nothing`,
		kind: io.ErrUnexpectedEOF},
	{name: "stream ends inside a three-byte remaining length", v: V5, in: `
		30    // PUBLISH
		FF FF // two continuation bytes, then nothing`,
		kind: io.ErrUnexpectedEOF},
	{name: "stream ends inside the body", v: V311, in: `
		30       // PUBLISH
		05       // remaining length 5
		00 01 61 // topic "a", then two bytes missing`,
		kind: io.ErrUnexpectedEOF},
	{name: "stream ends inside the CONNECT protocol name", v: V5, in: `
		10          // CONNECT
		0D          // remaining length 13
		00 04 4D 51 // half of "MQTT"`,
		kind: io.ErrUnexpectedEOF},
	{name: "stream ends before any packet", v: V311, in: ``,
		kind: io.EOF},
}

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

// malEncodeCase is an invalid struct that AppendTo must refuse.
type malEncodeCase struct {
	name  string
	v     Version
	p     Packet
	kind  error
	typ   Type
	field string
}

// malEncodeCases refuse what the decoder refuses, with the same class: a
// property outside its packets is ErrMalformed here too (MQTT 5.0 section
// 2.2.2.2), and a subscription's Maximum QoS 3 is ErrMalformed in 3.1.1 but
// ErrProtocolViolation in 5.0 (section 3.8.3.1).
func malEncodeCases() []malEncodeCase {
	long := strings.Repeat("x", 65536)
	marked := func(p Properties, id PropID) Properties { p.MarkPresent(id); return p }
	return []malEncodeCase{
		{"PUBLISH QoS 3", V311, &Publish{QoS: 3, Topic: "a", PacketID: 1}, ErrMalformed, PUBLISH, "QoS"},
		{"PUBLISH QoS 3 v5", V5, &Publish{QoS: 3, Topic: "a", PacketID: 1}, ErrMalformed, PUBLISH, "QoS"},
		{"PUBLISH topic a/+", V311, &Publish{Topic: "a/+"}, ErrProtocolViolation, PUBLISH, "topic name"},
		{"PUBLISH topic #", V5, &Publish{Topic: "#", Properties: Properties{TopicAlias: 1}}, ErrProtocolViolation, PUBLISH, "topic name"},
		{"PUBLISH empty topic 3.1.1", V311, &Publish{Properties: Properties{TopicAlias: 1}}, ErrProtocolViolation, PUBLISH, "topic name"},
		{"PUBLISH empty topic v5 without alias", V5, &Publish{}, ErrProtocolViolation, PUBLISH, "topic name"},
		{"PUBLISH topic of 65,536 bytes", V311, &Publish{Topic: long}, ErrMalformed, PUBLISH, "topic name"},
		{"PUBLISH topic with 0xFF", V311, &Publish{Topic: "a\xff"}, ErrMalformed, PUBLISH, "topic name"},
		{"PUBLISH topic with U+0000", V5, &Publish{Topic: "a\x00"}, ErrMalformed, PUBLISH, "topic name"},
		{"PUBLISH QoS 1 packet identifier 0", V311, &Publish{QoS: 1, Topic: "a"}, ErrProtocolViolation, PUBLISH, "packet identifier"},
		{"PUBLISH DUP at QoS 0", V311, &Publish{Dup: true, Topic: "a"}, ErrProtocolViolation, PUBLISH, "DUP"},
		{"PUBLISH Session Expiry Interval", V5, &Publish{Topic: "a", Properties: Properties{SessionExpiry: 10}}, ErrMalformed, PUBLISH, "Session Expiry Interval"},
		{"PUBLISH Topic Alias 0 marked present", V5, &Publish{Topic: "a", Properties: marked(Properties{}, PropTopicAlias)}, ErrProtocolViolation, PUBLISH, "Topic Alias"},
		{"PUBLISH Payload Format Indicator 2", V5, &Publish{Topic: "a", Properties: Properties{PayloadFormat: 2}}, ErrProtocolViolation, PUBLISH, "Payload Format Indicator"},
		{"PUBLISH Subscription Identifier 0", V5, &Publish{Topic: "a", Properties: Properties{SubscriptionIDs: []uint32{0}}}, ErrProtocolViolation, PUBLISH, "Subscription Identifier"},
		{"PUBLISH user property name of 65,536 bytes", V5, &Publish{Topic: "a", Properties: Properties{User: []UserProperty{{long, "v"}}}}, ErrMalformed, PUBLISH, "User Property"},
		{"PUBLISH user property value with surrogate", V5, &Publish{Topic: "a", Properties: Properties{User: []UserProperty{{"k", "\xed\xa0\x80"}}}}, ErrMalformed, PUBLISH, "User Property"},
		{"PUBLISH correlation data of 65,536 bytes", V5, &Publish{Topic: "a", Properties: Properties{CorrelationData: []byte(long)}}, ErrMalformed, PUBLISH, "Correlation Data"},
		{"PUBLISH version 6", 6, &Publish{Topic: "a"}, ErrUnsupportedVersion, PUBLISH, "protocol version"},
		{"PUBACK packet identifier 0", V311, &Puback{}, ErrProtocolViolation, PUBACK, "packet identifier"},
		{"PUBCOMP packet identifier 0 v5", V5, &Pubcomp{}, ErrProtocolViolation, PUBCOMP, "packet identifier"},
		{"PUBACK reason 0x92", V5, &Puback{PacketID: 1, ReasonCode: 0x92}, ErrProtocolViolation, PUBACK, "reason code"},
		{"PUBREL Topic Alias", V5, &Pubrel{PacketID: 1, Properties: Properties{TopicAlias: 1}}, ErrMalformed, PUBREL, "Topic Alias"},
		{"SUBSCRIBE packet identifier 0", V311, &Subscribe{Subscriptions: []Subscription{{Filter: "a"}}}, ErrProtocolViolation, SUBSCRIBE, "packet identifier"},
		{"SUBSCRIBE without filters", V5, &Subscribe{PacketID: 1}, ErrProtocolViolation, SUBSCRIBE, "payload"},
		{"SUBSCRIBE No Local in 3.1.1", V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", NoLocal: true}}}, ErrProtocolViolation, SUBSCRIBE, "subscription options"},
		{"SUBSCRIBE retain handling in 3.1.1", V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 1}}}, ErrProtocolViolation, SUBSCRIBE, "subscription options"},
		{"SUBSCRIBE retain handling 3", V5, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 3}}}, ErrProtocolViolation, SUBSCRIBE, "subscription options"},
		{"SUBSCRIBE QoS 3", V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}}, ErrMalformed, SUBSCRIBE, "subscription options"},
		{"SUBSCRIBE QoS 3 v5", V5, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}}, ErrProtocolViolation, SUBSCRIBE, "subscription options"},
		{"UNSUBSCRIBE Subscription Identifier", V5, &Unsubscribe{PacketID: 1, Properties: Properties{SubscriptionIDs: []uint32{1}}, Filters: []string{"a"}}, ErrMalformed, UNSUBSCRIBE, "Subscription Identifier"},
		{"PINGREQ version 6", 6, &Pingreq{}, ErrUnsupportedVersion, PINGREQ, "protocol version"},
		{"SUBSCRIBE No Local on $share", V5, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "$share/g/a", NoLocal: true}}}, ErrProtocolViolation, SUBSCRIBE, "subscription options"},
		{"SUBSCRIBE filter a/#/b", V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}, {Filter: "a/#/b"}}}, ErrProtocolViolation, SUBSCRIBE, "topic filter"},
		{"SUBSCRIBE filter of 65,536 bytes", V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: long}}}, ErrMalformed, SUBSCRIBE, "topic filter"},
		{"SUBSCRIBE two Subscription Identifiers", V5, &Subscribe{PacketID: 1, Properties: Properties{SubscriptionIDs: []uint32{1, 2}}, Subscriptions: []Subscription{{Filter: "a"}}}, ErrProtocolViolation, SUBSCRIBE, "Subscription Identifier"},
		{"UNSUBSCRIBE packet identifier 0", V311, &Unsubscribe{Filters: []string{"a"}}, ErrProtocolViolation, UNSUBSCRIBE, "packet identifier"},
		{"UNSUBSCRIBE without filters", V311, &Unsubscribe{PacketID: 1}, ErrProtocolViolation, UNSUBSCRIBE, "payload"},
		{"UNSUBSCRIBE filter a+", V5, &Unsubscribe{PacketID: 1, Filters: []string{"a+"}}, ErrProtocolViolation, UNSUBSCRIBE, "topic filter"},
		{"UNSUBSCRIBE empty filter", V311, &Unsubscribe{PacketID: 1, Filters: []string{""}}, ErrProtocolViolation, UNSUBSCRIBE, "topic filter"},
		{"SUBACK packet identifier 0", V311, &Suback{ReasonCodes: []ReasonCode{0}}, ErrProtocolViolation, SUBACK, "packet identifier"},
		{"SUBACK return code 3 in 3.1.1", V311, &Suback{PacketID: 1, ReasonCodes: []ReasonCode{3}}, ErrProtocolViolation, SUBACK, "return code"},
		{"UNSUBACK without codes v5", V5, &Unsuback{PacketID: 1}, ErrProtocolViolation, UNSUBACK, "payload"},
		{"CONNECT Topic Alias", V5, &Connect{ClientID: "a", Properties: Properties{TopicAlias: 1}}, ErrMalformed, CONNECT, "Topic Alias"},
		{"CONNECT Will Delay Interval outside the will", V5, &Connect{ClientID: "a", Properties: Properties{WillDelay: 1}}, ErrMalformed, CONNECT, "=Will Delay Interval"},
		{"CONNECT Receive Maximum 0", V5, &Connect{ClientID: "a", Properties: marked(Properties{}, PropReceiveMaximum)}, ErrProtocolViolation, CONNECT, "Receive Maximum"},
		{"CONNECT will Session Expiry Interval", V5, &Connect{ClientID: "a", Will: &Will{Topic: "w", Properties: Properties{SessionExpiry: 1}}}, ErrMalformed, CONNECT, "will property Session Expiry Interval"},
		{"CONNECT will QoS 3", V311, &Connect{ClientID: "a", Will: &Will{QoS: 3, Topic: "w"}}, ErrMalformed, CONNECT, "will QoS"},
		{"CONNECT will topic +", V311, &Connect{ClientID: "a", Will: &Will{Topic: "+"}}, ErrProtocolViolation, CONNECT, "will topic"},
		{"CONNECT password without user name 3.1.1", V311, &Connect{ClientID: "a", Password: []byte("p")}, ErrProtocolViolation, CONNECT, "password"},
		{"CONNECT client identifier of 65,536 bytes", V311, &Connect{ClientID: long}, ErrMalformed, CONNECT, "client identifier"},
		{"CONNECT client identifier with U+0000", V5, &Connect{ClientID: "\x00"}, ErrMalformed, CONNECT, "client identifier"},
		{"CONNECT level 6", 6, &Connect{ClientID: "a"}, ErrUnsupportedVersion, CONNECT, "protocol version"},
		{"CONNACK session present with return code 5", V311, &Connack{SessionPresent: true, ReasonCode: 5}, ErrProtocolViolation, CONNACK, "session present"},
		{"CONNACK reason 0x10", V5, &Connack{ReasonCode: 0x10}, ErrProtocolViolation, CONNACK, "reason code"},
		{"CONNACK Maximum Packet Size 0", V5, &Connack{Properties: marked(Properties{}, PropMaximumPacketSize)}, ErrProtocolViolation, CONNACK, "Maximum Packet Size"},
		{"DISCONNECT reason 0x05", V5, &Disconnect{ReasonCode: 5}, ErrProtocolViolation, DISCONNECT, "reason code"},
		{"AUTH in 3.1.1", V311, &Auth{}, ErrProtocolViolation, AUTH, "packet type"},
		{"AUTH reason 0x80", V5, &Auth{ReasonCode: 0x80}, ErrProtocolViolation, AUTH, "reason code"},
	}
}

func TestMalformedEncode(t *testing.T) {
	for _, tc := range malEncodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			// dst has spare capacity filled with a marker: a refused packet
			// leaves both the visible bytes and the spare capacity alone.
			dst := make([]byte, 3, 64)
			copy(dst, "pre")
			for i := 3; i < cap(dst); i++ {
				dst[:cap(dst)][i] = 0xEE
			}
			out, err := tc.p.AppendTo(dst, tc.v)
			malCheck(t, err, tc.kind, tc.typ, tc.field)
			if string(out) != "pre" || cap(out) != cap(dst) || &out[0] != &dst[0] {
				t.Errorf("AppendTo changed dst: got %q (cap %d)", out, cap(out))
			}
			for i, c := range dst[3:cap(dst)] {
				if c != 0xEE {
					t.Errorf("AppendTo wrote %#x into the spare capacity at %d", c, 3+i)
					break
				}
			}
		})
	}
}

// TestMalformedEncodeTooLarge builds the smallest PUBLISH whose body passes
// the 268,435,455 bytes of the four-byte remaining length. It allocates one
// 256 MiB payload, so it is skipped with -short.
func TestMalformedEncodeTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MiB")
	}
	p := &Publish{Topic: "a", Payload: make([]byte, 268_435_456)}
	for _, v := range []Version{V311, V5} {
		dst := []byte("pre")
		out, err := p.AppendTo(dst, v)
		malCheck(t, err, ErrPacketTooLarge, PUBLISH, "remaining length")
		if string(out) != "pre" {
			t.Errorf("%v: AppendTo changed dst to %d bytes", v, len(out))
		}
	}
	// One byte over is enough: with the three bytes of topic ("a" and its
	// length) this body is 268,435,456 bytes.
	p.Payload = p.Payload[:268_435_455-3+1]
	out, err := p.AppendTo(nil, V311)
	malCheck(t, err, ErrPacketTooLarge, PUBLISH, "remaining length")
	if out != nil {
		t.Errorf("AppendTo(nil) returned %d bytes", len(out))
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
