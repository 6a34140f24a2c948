package packet

// Encoding invalid structs: AppendTo refuses what the decoder refuses, with
// the same error class, and leaves dst untouched; and a PUBLISH too large
// for the four-byte remaining length.

import (
	"strings"
	"testing"
)

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
