package packet

// Malformed-input rows, part two: MQTT 5.0 properties (in the wrong packet,
// given twice, out of range) and each packet's own rules: CONNECT, CONNACK,
// reason codes, required payloads, subscription options, bytes after the
// last field, and the stream ending. The harness that runs them is in
// malformed_decode_test.go.

import "io"

// malPacketCases are the rows about properties and single packet types.
var malPacketCases = []malCase{
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
