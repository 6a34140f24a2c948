package packet

import (
	"bytes"
	"testing"
)

// goldenV5Cases covers MQTT 5.0, chapter 3 of the 5.0 specification.
// Properties are written in the order this package's encoder uses (single
// properties by ascending identifier, then Subscription Identifiers, then
// User Properties); section 2.2.2 lets them come in any order, and the
// decoder must accept every order, but AppendTo must be deterministic for
// the byte comparison to mean anything.
var goldenV5Cases = []goldenCase{
	{
		name: "v5 CONNECT all properties will user password",
		v:    V5,
		pkt: &Connect{
			Version: V5, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 30,
			Properties: goldenMarked(Properties{
				SessionExpiry:       3600,
				AuthMethod:          "SCRAM",
				AuthData:            []byte{0x01, 0x02},
				RequestResponseInfo: 1,
				ReceiveMaximum:      20,
				TopicAliasMaximum:   10,
				MaximumPacketSize:   65536,
				User:                []UserProperty{{"k", "v"}},
			}, PropRequestProblemInfo),
			ClientID: "cli",
			Will: &Will{
				QoS: 2, Topic: "will/t", Payload: []byte("gone"),
				Properties: Properties{
					PayloadFormat:   1,
					MessageExpiry:   120,
					ContentType:     "text/plain",
					ResponseTopic:   "r/1",
					CorrelationData: []byte{0xca, 0xfe},
					WillDelay:       5,
					User:            []UserProperty{{"w", "1"}},
				},
			},
			Username: "user", UsernameFlag: true, Password: []byte("pass"), PasswordFlag: true,
		},
		wire: []byte{
			0x10, 0x7e, // CONNECT, remaining 126
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name (3.1.2.1)
			0x05,       // protocol level 5
			0xd6,       // flags: user 0x80 | password 0x40 | will QoS 2 0x10 | will 0x04 | clean start 0x02
			0x00, 0x1e, // keep alive 30
			0x28,                         // property length 40 (3.1.2.11)
			0x11, 0x00, 0x00, 0x0e, 0x10, // Session Expiry Interval 3600
			0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M', // Authentication Method
			0x16, 0x00, 0x02, 0x01, 0x02, // Authentication Data
			0x17, 0x00, // Request Problem Information 0
			0x19, 0x01, // Request Response Information 1
			0x21, 0x00, 0x14, // Receive Maximum 20
			0x22, 0x00, 0x0a, // Topic Alias Maximum 10
			0x27, 0x00, 0x01, 0x00, 0x00, // Maximum Packet Size 65536
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // User Property k=v
			0x00, 0x03, 'c', 'l', 'i', // client identifier
			0x2b,       // will property length 43 (3.1.3.2)
			0x01, 0x01, // Payload Format Indicator 1
			0x02, 0x00, 0x00, 0x00, 0x78, // Message Expiry Interval 120
			0x03, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', // Content Type
			0x08, 0x00, 0x03, 'r', '/', '1', // Response Topic
			0x09, 0x00, 0x02, 0xca, 0xfe, // Correlation Data
			0x18, 0x00, 0x00, 0x00, 0x05, // Will Delay Interval 5
			0x26, 0x00, 0x01, 'w', 0x00, 0x01, '1', // User Property w=1
			0x00, 0x06, 'w', 'i', 'l', 'l', '/', 't', // will topic
			0x00, 0x04, 'g', 'o', 'n', 'e', // will payload
			0x00, 0x04, 'u', 's', 'e', 'r', // user name
			0x00, 0x04, 'p', 'a', 's', 's', // password
		},
	},
	{
		name: "v5 CONNECT empty client id password without user name",
		v:    V5,
		pkt: &Connect{
			Version: V5, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 60,
			Password: []byte("tok"), PasswordFlag: true,
		},
		wire: []byte{
			0x10, 0x12, // CONNECT, remaining 18
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol level 5
			0x42,       // flags: password 0x40 | clean start 0x02 (5.0 allows a password alone, 3.1.2.9)
			0x00, 0x3c, // keep alive 60
			0x00,       // property length 0
			0x00, 0x00, // client identifier, empty
			0x00, 0x03, 't', 'o', 'k', // password
		},
	},
	{
		name: "v5 CONNACK server properties",
		v:    V5,
		pkt: &Connack{
			SessionPresent: true,
			Properties: goldenMarked(Properties{
				SessionExpiry:        300,
				AssignedClientID:     "auto-1",
				ServerKeepAlive:      120,
				ResponseInfo:         "resp",
				ReceiveMaximum:       100,
				TopicAliasMaximum:    16,
				MaximumPacketSize:    1 << 20,
				WildcardSubAvailable: 1,
				SharedSubAvailable:   1,
				User:                 []UserProperty{{"srv", "x"}},
			}, PropMaximumQoS, PropRetainAvailable, PropSubscriptionIDAvailable),
		},
		wire: []byte{
			0x20, 0x39, // CONNACK, remaining 57
			0x01,                         // acknowledge flags: session present
			0x00,                         // reason code success
			0x36,                         // property length 54
			0x11, 0x00, 0x00, 0x01, 0x2c, // Session Expiry Interval 300
			0x12, 0x00, 0x06, 'a', 'u', 't', 'o', '-', '1', // Assigned Client Identifier
			0x13, 0x00, 0x78, // Server Keep Alive 120
			0x1a, 0x00, 0x04, 'r', 'e', 's', 'p', // Response Information
			0x21, 0x00, 0x64, // Receive Maximum 100
			0x22, 0x00, 0x10, // Topic Alias Maximum 16
			0x24, 0x00, // Maximum QoS 0
			0x25, 0x00, // Retain Available 0
			0x27, 0x00, 0x10, 0x00, 0x00, // Maximum Packet Size 1 MiB
			0x28, 0x01, // Wildcard Subscription Available 1
			0x29, 0x00, // Subscription Identifiers Available 0
			0x2a, 0x01, // Shared Subscription Available 1
			0x26, 0x00, 0x03, 's', 'r', 'v', 0x00, 0x01, 'x', // User Property srv=x
		},
	},
	{
		name: "v5 CONNACK success no properties",
		v:    V5,
		pkt:  &Connack{},
		wire: []byte{
			0x20, 0x03, // CONNACK, remaining 3
			0x00, // acknowledge flags
			0x00, // reason code success
			0x00, // property length 0
		},
	},
	{
		name: "v5 CONNACK refused with reason string",
		v:    V5,
		pkt:  &Connack{ReasonCode: NotAuthorized, Properties: Properties{ReasonString: "no"}},
		wire: []byte{
			0x20, 0x08, // CONNACK, remaining 8
			0x00,                       // acknowledge flags
			0x87,                       // reason code not authorized
			0x05,                       // property length 5
			0x1f, 0x00, 0x02, 'n', 'o', // Reason String
		},
	},
	{
		name: "v5 PUBLISH all properties",
		v:    V5,
		pkt: &Publish{
			QoS: 1, Topic: "sensors/t1", PacketID: 0x0102,
			Properties: Properties{
				PayloadFormat:   1,
				MessageExpiry:   60,
				ResponseTopic:   "reply/1",
				CorrelationData: []byte{0xde, 0xad, 0xbe, 0xef},
				TopicAlias:      3,
				SubscriptionIDs: []uint32{5, 300},
				User:            []UserProperty{{"a", "1"}, {"a", "2"}},
			},
			Payload: []byte("21.5"),
		},
		wire: []byte{
			0x32, 0x41, // PUBLISH QoS 1, remaining 65
			0x00, 0x0a, 's', 'e', 'n', 's', 'o', 'r', 's', '/', 't', '1', // topic name
			0x01, 0x02, // packet identifier 0x0102
			0x2e,       // property length 46
			0x01, 0x01, // Payload Format Indicator 1
			0x02, 0x00, 0x00, 0x00, 0x3c, // Message Expiry Interval 60
			0x08, 0x00, 0x07, 'r', 'e', 'p', 'l', 'y', '/', '1', // Response Topic
			0x09, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // Correlation Data
			0x23, 0x00, 0x03, // Topic Alias 3
			0x0b, 0x05, // Subscription Identifier 5
			0x0b, 0xac, 0x02, // Subscription Identifier 300 = 0x2c|0x80, 2
			0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1', // User Property a=1
			0x26, 0x00, 0x01, 'a', 0x00, 0x01, '2', // User Property a=2, same name again
			'2', '1', '.', '5', // payload
		},
	},
	{
		name: "v5 PUBLISH empty topic with alias",
		v:    V5,
		pkt:  &Publish{Properties: Properties{TopicAlias: 3}, Payload: []byte("x")},
		wire: []byte{
			0x30, 0x07, // PUBLISH QoS 0, remaining 7
			0x00, 0x00, // topic name, empty (3.3.2.1 with 3.3.2.3.4)
			0x03,             // property length 3
			0x23, 0x00, 0x03, // Topic Alias 3
			'x', // payload
		},
	},
	{
		name: "v5 PUBLISH QoS2 dup retain no properties",
		v:    V5,
		pkt:  &Publish{Dup: true, QoS: 2, Retain: true, Topic: "t", PacketID: 9},
		wire: []byte{
			0x3d, 0x06, // PUBLISH dup | QoS 2 | retain, remaining 6
			0x00, 0x01, 't', // topic name
			0x00, 0x09, // packet identifier 9
			0x00, // property length 0; no payload
		},
	},
	{
		name: "v5 PUBACK short",
		v:    V5,
		pkt:  &Puback{PacketID: 1},
		wire: []byte{0x40, 0x02, 0x00, 0x01}, // PUBACK, remaining 2: success, no properties (3.4.2.1)
	},
	{
		name: "v5 PUBACK reason only",
		v:    V5,
		pkt:  &Puback{PacketID: 1, ReasonCode: NoMatchingSubscribers},
		wire: []byte{
			0x40, 0x03, // PUBACK, remaining 3
			0x00, 0x01, // packet identifier 1
			0x10, // reason code no matching subscribers; property length left off (3.4.2.2.1)
		},
	},
	{
		name: "v5 PUBACK full",
		v:    V5,
		pkt: &Puback{PacketID: 1, ReasonCode: NotAuthorized, Properties: Properties{
			ReasonString: "denied", User: []UserProperty{{"k", "v"}},
		}},
		wire: []byte{
			0x40, 0x14, // PUBACK, remaining 20
			0x00, 0x01, // packet identifier 1
			0x87,                                           // reason code not authorized
			0x10,                                           // property length 16
			0x1f, 0x00, 0x06, 'd', 'e', 'n', 'i', 'e', 'd', // Reason String
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // User Property k=v
		},
	},
	{
		name: "v5 PUBREC short",
		v:    V5,
		pkt:  &Pubrec{PacketID: 2},
		wire: []byte{0x50, 0x02, 0x00, 0x02}, // PUBREC, remaining 2, packet identifier 2
	},
	{
		name: "v5 PUBREC reason only",
		v:    V5,
		pkt:  &Pubrec{PacketID: 2, ReasonCode: UnspecifiedError},
		wire: []byte{
			0x50, 0x03, // PUBREC, remaining 3
			0x00, 0x02, // packet identifier 2
			0x80, // reason code unspecified error
		},
	},
	{
		name: "v5 PUBREC success with properties",
		v:    V5,
		pkt:  &Pubrec{PacketID: 2, Properties: Properties{ReasonString: "ok"}},
		wire: []byte{
			0x50, 0x09, // PUBREC, remaining 9
			0x00, 0x02, // packet identifier 2
			0x00,                       // reason code success, needed because properties follow
			0x05,                       // property length 5
			0x1f, 0x00, 0x02, 'o', 'k', // Reason String
		},
	},
	{
		name: "v5 PUBREL short",
		v:    V5,
		pkt:  &Pubrel{PacketID: 3},
		wire: []byte{0x62, 0x02, 0x00, 0x03}, // PUBREL flags 0010, remaining 2, packet identifier 3
	},
	{
		name: "v5 PUBREL reason only",
		v:    V5,
		pkt:  &Pubrel{PacketID: 3, ReasonCode: PacketIdentifierNotFound},
		wire: []byte{
			0x62, 0x03, // PUBREL, remaining 3
			0x00, 0x03, // packet identifier 3
			0x92, // reason code packet identifier not found
		},
	},
	{
		name: "v5 PUBREL full",
		v:    V5,
		pkt:  &Pubrel{PacketID: 3, ReasonCode: PacketIdentifierNotFound, Properties: Properties{ReasonString: "gone"}},
		wire: []byte{
			0x62, 0x0b, // PUBREL, remaining 11
			0x00, 0x03, // packet identifier 3
			0x92,                                 // reason code packet identifier not found
			0x07,                                 // property length 7
			0x1f, 0x00, 0x04, 'g', 'o', 'n', 'e', // Reason String
		},
	},
	{
		name: "v5 PUBCOMP short",
		v:    V5,
		pkt:  &Pubcomp{PacketID: 4},
		wire: []byte{0x70, 0x02, 0x00, 0x04}, // PUBCOMP, remaining 2, packet identifier 4
	},
	{
		name: "v5 PUBCOMP reason only",
		v:    V5,
		pkt:  &Pubcomp{PacketID: 4, ReasonCode: PacketIdentifierNotFound},
		wire: []byte{
			0x70, 0x03, // PUBCOMP, remaining 3
			0x00, 0x04, // packet identifier 4
			0x92, // reason code packet identifier not found
		},
	},
	{
		name: "v5 PUBCOMP success with user property",
		v:    V5,
		pkt:  &Pubcomp{PacketID: 4, Properties: Properties{User: []UserProperty{{"x", "y"}}}},
		wire: []byte{
			0x70, 0x0b, // PUBCOMP, remaining 11
			0x00, 0x04, // packet identifier 4
			0x00,                                   // reason code success
			0x07,                                   // property length 7
			0x26, 0x00, 0x01, 'x', 0x00, 0x01, 'y', // User Property x=y
		},
	},
	{
		name: "v5 SUBSCRIBE all options",
		v:    V5,
		pkt: &Subscribe{
			PacketID: 10,
			Properties: Properties{
				SubscriptionIDs: []uint32{16384},
				User:            []UserProperty{{"s", "1"}},
			},
			Subscriptions: []Subscription{
				{Filter: "a/b", QoS: 1, NoLocal: true},
				{Filter: "c/#", QoS: 2, RetainAsPublished: true, RetainHandling: 1},
				{Filter: "$share/g/d", RetainHandling: 2},
				{Filter: "e", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
			},
		},
		wire: []byte{
			0x82, 0x2b, // SUBSCRIBE flags 0010, remaining 43
			0x00, 0x0a, // packet identifier 10
			0x0b,                   // property length 11
			0x0b, 0x80, 0x80, 0x01, // Subscription Identifier 16384 (three-byte varint)
			0x26, 0x00, 0x01, 's', 0x00, 0x01, '1', // User Property s=1
			0x00, 0x03, 'a', '/', 'b', 0x05, // options: no local 0x04 | QoS 1 (3.8.3.1)
			0x00, 0x03, 'c', '/', '#', 0x1a, // options: retain handling 1 0x10 | retain as published 0x08 | QoS 2
			0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'd', 0x20, // options: retain handling 2, QoS 0
			0x00, 0x01, 'e', 0x2d, // options: retain handling 2 | retain as published | no local | QoS 1
		},
	},
	{
		name: "v5 SUBACK mixed codes",
		v:    V5,
		pkt: &Suback{
			PacketID:   10,
			Properties: Properties{ReasonString: "partial"},
			ReasonCodes: []ReasonCode{GrantedQoS1, GrantedQoS2, GrantedQoS0, NotAuthorized,
				SharedSubscriptionsNotSupported, SubscriptionIdentifiersNotSupported},
		},
		wire: []byte{
			0x90, 0x13, // SUBACK, remaining 19
			0x00, 0x0a, // packet identifier 10
			0x0a,                                                // property length 10
			0x1f, 0x00, 0x07, 'p', 'a', 'r', 't', 'i', 'a', 'l', // Reason String
			0x01, 0x02, 0x00, // granted QoS 1, 2, 0
			0x87, 0x9e, 0xa1, // not authorized, shared subs not supported, subscription ids not supported
		},
	},
	{
		name: "v5 UNSUBSCRIBE",
		v:    V5,
		pkt: &Unsubscribe{
			PacketID:   11,
			Properties: Properties{User: []UserProperty{{"u", "1"}}},
			Filters:    []string{"a/b", "$share/g/d"},
		},
		wire: []byte{
			0xa2, 0x1b, // UNSUBSCRIBE flags 0010, remaining 27
			0x00, 0x0b, // packet identifier 11
			0x07,                                   // property length 7
			0x26, 0x00, 0x01, 'u', 0x00, 0x01, '1', // User Property u=1
			0x00, 0x03, 'a', '/', 'b', // filter
			0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'd', // filter
		},
	},
	{
		name: "v5 UNSUBACK with codes",
		v:    V5,
		pkt:  &Unsuback{PacketID: 11, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted, TopicFilterInvalid}},
		wire: []byte{
			0xb0, 0x06, // UNSUBACK, remaining 6
			0x00, 0x0b, // packet identifier 11
			0x00,             // property length 0
			0x00, 0x11, 0x8f, // success, no subscription existed, topic filter invalid
		},
	},
	{
		name: "v5 PINGREQ",
		v:    V5,
		pkt:  &Pingreq{},
		wire: []byte{0xc0, 0x00}, // PINGREQ, remaining 0
	},
	{
		name: "v5 PINGRESP",
		v:    V5,
		pkt:  &Pingresp{},
		wire: []byte{0xd0, 0x00}, // PINGRESP, remaining 0
	},
	{
		name: "v5 DISCONNECT empty",
		v:    V5,
		pkt:  &Disconnect{},
		wire: []byte{0xe0, 0x00}, // DISCONNECT, remaining 0: normal disconnection (3.14.2.1)
	},
	{
		name: "v5 DISCONNECT reason only",
		v:    V5,
		pkt:  &Disconnect{ReasonCode: DisconnectWithWillMessage},
		wire: []byte{
			0xe0, 0x01, // DISCONNECT, remaining 1
			0x04, // reason code disconnect with will message; no property length (3.14.2.2.1)
		},
	},
	{
		name: "v5 DISCONNECT reason and properties",
		v:    V5,
		pkt: &Disconnect{ReasonCode: UseAnotherServer, Properties: Properties{
			SessionExpiry: 10, ServerReference: "other:1883", ReasonString: "moving",
		}},
		wire: []byte{
			0xe0, 0x1d, // DISCONNECT, remaining 29
			0x9c,                         // reason code use another server
			0x1b,                         // property length 27
			0x11, 0x00, 0x00, 0x00, 0x0a, // Session Expiry Interval 10
			0x1c, 0x00, 0x0a, 'o', 't', 'h', 'e', 'r', ':', '1', '8', '8', '3', // Server Reference
			0x1f, 0x00, 0x06, 'm', 'o', 'v', 'i', 'n', 'g', // Reason String
		},
	},
	{
		name: "v5 AUTH empty",
		v:    V5,
		pkt:  &Auth{},
		wire: []byte{0xf0, 0x00}, // AUTH, remaining 0: success, no properties (3.15.2.1)
	},
	{
		name: "v5 AUTH continue with method and data",
		v:    V5,
		pkt: &Auth{ReasonCode: ContinueAuthentication, Properties: Properties{
			AuthMethod: "SCRAM", AuthData: []byte{0x11, 0x22, 0x33},
		}},
		wire: []byte{
			0xf0, 0x10, // AUTH, remaining 16
			0x18,                                      // reason code continue authentication
			0x0e,                                      // property length 14
			0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M', // Authentication Method
			0x16, 0x00, 0x03, 0x11, 0x22, 0x33, // Authentication Data
		},
	},
}

// TestGoldenDecodeAnyPropertyOrder: section 2.2.2 does not fix the order of
// properties, and User Properties and Subscription Identifiers may be
// interleaved with the rest. The decoder must accept any order; encoding the
// result gives the canonical order of the table above.
func TestGoldenDecodeAnyPropertyOrder(t *testing.T) {
	cases := []struct {
		name      string
		pkt       Packet
		wire      []byte // as a peer might send it
		canonical []byte // as AppendTo writes it
	}{
		{
			name: "PUBLISH",
			pkt: &Publish{Topic: "t", Payload: []byte("x"), Properties: Properties{
				PayloadFormat: 1, TopicAlias: 3, SubscriptionIDs: []uint32{5, 300},
				User: []UserProperty{{"a", "1"}, {"a", "2"}},
			}},
			wire: []byte{
				0x30, 0x1d, // PUBLISH QoS 0, remaining 29
				0x00, 0x01, 't', // topic name
				0x18,                                   // property length 24
				0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1', // User Property a=1
				0x0b, 0x05, // Subscription Identifier 5
				0x23, 0x00, 0x03, // Topic Alias 3
				0x26, 0x00, 0x01, 'a', 0x00, 0x01, '2', // User Property a=2
				0x0b, 0xac, 0x02, // Subscription Identifier 300
				0x01, 0x01, // Payload Format Indicator 1
				'x', // payload
			},
			canonical: []byte{
				0x30, 0x1d, // PUBLISH QoS 0, remaining 29
				0x00, 0x01, 't', // topic name
				0x18,       // property length 24
				0x01, 0x01, // Payload Format Indicator 1
				0x23, 0x00, 0x03, // Topic Alias 3
				0x0b, 0x05, // Subscription Identifier 5
				0x0b, 0xac, 0x02, // Subscription Identifier 300
				0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1', // User Property a=1
				0x26, 0x00, 0x01, 'a', 0x00, 0x01, '2', // User Property a=2
				'x', // payload
			},
		},
		{
			name: "CONNACK zero values present",
			pkt: &Connack{Properties: goldenMarked(Properties{MaximumQoS: 1},
				PropRetainAvailable, PropSessionExpiry)},
			wire: []byte{
				0x20, 0x0c, // CONNACK, remaining 12
				0x00, 0x00, // flags, reason code success
				0x09,       // property length 9
				0x24, 0x01, // Maximum QoS 1
				0x25, 0x00, // Retain Available 0
				0x11, 0x00, 0x00, 0x00, 0x00, // Session Expiry Interval 0
			},
			canonical: []byte{
				0x20, 0x0c, // CONNACK, remaining 12
				0x00, 0x00, // flags, reason code success
				0x09,                         // property length 9
				0x11, 0x00, 0x00, 0x00, 0x00, // Session Expiry Interval 0
				0x24, 0x01, // Maximum QoS 1
				0x25, 0x00, // Retain Available 0
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.wire), 0)
			r.SetVersion(V5)
			got, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("ReadPacket: %v", err)
			}
			if !goldenEqual(got, c.pkt) {
				t.Errorf("decoded\n%+v\nwant\n%+v", goldenCanon(got), goldenCanon(c.pkt))
			}
			out, err := got.AppendTo(nil, V5)
			if err != nil {
				t.Fatalf("AppendTo: %v", err)
			}
			if !bytes.Equal(out, c.canonical) {
				t.Errorf("re-encoded\n% x\nwant\n% x", out, c.canonical)
			}
		})
	}
}
