package packet

// Malformed-input rows, part one: the fields every packet shares. Fixed
// header flags, the remaining length, length prefixes, UTF-8 strings, topic
// names and filters, shared subscriptions, QoS 3 and packet identifier 0.
// The harness that runs them is in malformed_decode_test.go.

// malFieldCases are the rows about fields common to many packets.
var malFieldCases = []malCase{
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
}
