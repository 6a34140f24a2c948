package mqttas_test

// Hostile PUBLISH content on a live link, in 3.1.1 and 5.0: fields the
// specification forbids, and 5.0 properties that break its rules. Each is
// a protocol error that ends the connection: Down with the decoder's
// error in LastError, then Up. The message is never delivered and never
// acknowledged.

import (
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

type hbBadPublish struct {
	name   string
	v      packet.Version
	bytes  []byte
	target error
	says   string
	tweak  func(*mqttas.Config)
}

func hbBody(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func hbAliasMax(n uint16) func(*mqttas.Config) {
	return func(cfg *mqttas.Config) { cfg.ConnectProperties = &mqttas.Properties{TopicAliasMaximum: n} }
}

var hbBadPublishes = []hbBadPublish{
	// 3.1.1: fixed header 0x30 | DUP<<3 | QoS<<1 | RETAIN.
	{name: "QoS3", v: packet.V311, target: packet.ErrMalformed, says: "both QoS bits are set",
		bytes: hbFrame(0x36, hbBody(hbStr("t"), []byte{0, 1}, []byte("x"))...)},
	{name: "InvalidUTF8Topic", v: packet.V311, target: packet.ErrMalformed, says: "topic",
		bytes: hbFrame(0x30, hbBody(hbStr("a/\xff\xfe"), []byte("x"))...)},
	{name: "NulInTopic", v: packet.V311, target: packet.ErrMalformed, says: "topic",
		bytes: hbFrame(0x30, hbBody(hbStr("a\x00b"), []byte("x"))...)},
	{name: "SurrogateInTopic", v: packet.V311, target: packet.ErrMalformed, says: "topic",
		bytes: hbFrame(0x30, hbBody(hbStr("a/\xed\xa0\x80"), []byte("x"))...)},
	{name: "WildcardPlusInTopic", v: packet.V311, target: packet.ErrProtocolViolation, says: "wildcard",
		bytes: hbFrame(0x30, hbBody(hbStr("a/+/b"), []byte("x"))...)},
	{name: "WildcardHashInTopic", v: packet.V311, target: packet.ErrProtocolViolation, says: "wildcard",
		bytes: hbFrame(0x30, hbBody(hbStr("a/#"), []byte("x"))...)},
	{name: "EmptyTopic311", v: packet.V311, target: packet.ErrProtocolViolation, says: "topic name",
		bytes: hbFrame(0x30, hbBody(hbStr(""), []byte("x"))...)},
	{name: "QoS1PacketID0", v: packet.V311, target: packet.ErrProtocolViolation, says: "packet identifier",
		bytes: hbFrame(0x32, hbBody(hbStr("t"), []byte{0, 0}, []byte("x"))...)},
	{name: "QoS2PacketID0", v: packet.V311, target: packet.ErrProtocolViolation, says: "packet identifier",
		bytes: hbFrame(0x34, hbBody(hbStr("t"), []byte{0, 0}, []byte("x"))...)},
	{name: "DupAtQoS0", v: packet.V311, target: packet.ErrProtocolViolation, says: "DUP",
		bytes: hbFrame(0x38, hbBody(hbStr("t"), []byte("x"))...)},
	{name: "TopicLongerThanPacket", v: packet.V311, target: packet.ErrMalformed, says: "PUBLISH",
		bytes: hbFrame(0x30, 0x00, 0x40, 't')},

	// 5.0: topic, then the property block (length, properties), payload.
	{name: "V5UnknownPropertyID", v: packet.V5, target: packet.ErrMalformed, says: "unknown property identifier 0x4",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{2, 0x04, 0x00}, []byte("x"))...)},
	{name: "V5PropertyNotForPublish", v: packet.V5, target: packet.ErrMalformed, says: "not valid in this packet",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{3, 0x21, 0x00, 0x0a}, []byte("x"))...)}, // Receive Maximum
	{name: "V5DuplicateMessageExpiry", v: packet.V5, target: packet.ErrProtocolViolation, says: "included more than once",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{10, 0x02, 0, 0, 0, 5, 0x02, 0, 0, 0, 6}, []byte("x"))...)},
	{name: "V5DuplicatePayloadFormat", v: packet.V5, target: packet.ErrProtocolViolation, says: "included more than once",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{4, 0x01, 1, 0x01, 1}, []byte("x"))...)},
	{name: "V5DuplicateTopicAlias", v: packet.V5, target: packet.ErrProtocolViolation, says: "included more than once",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{6, 0x23, 0, 1, 0x23, 0, 1}, []byte("x"))...), tweak: hbAliasMax(4)},
	{name: "V5TopicAlias0", v: packet.V5, target: packet.ErrProtocolViolation, says: "must not be 0",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{3, 0x23, 0, 0}, []byte("x"))...), tweak: hbAliasMax(4)},
	{name: "V5TopicAliasAboveMaximum", v: packet.V5, says: "topic alias 5, over the maximum 2",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{3, 0x23, 0, 5}, []byte("x"))...), tweak: hbAliasMax(2)},
	{name: "V5TopicAliasNoneAnnounced", v: packet.V5, says: "topic alias 1, over the maximum 0",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{3, 0x23, 0, 1}, []byte("x"))...)},
	{name: "V5TopicAliasUndefined", v: packet.V5, says: "topic alias 2 without defining it",
		bytes: hbFrame(0x30, hbBody(hbStr(""), []byte{3, 0x23, 0, 2}, []byte("x"))...), tweak: hbAliasMax(4)},
	{name: "V5PropertyLengthPastEnd", v: packet.V5, target: packet.ErrMalformed, says: "property length",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{50, 0x01, 1})...)},
	{name: "V5SubscriptionID0", v: packet.V5, target: packet.ErrProtocolViolation, says: "must not be 0",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{2, 0x0b, 0}, []byte("x"))...)},
	{name: "V5InvalidUTF8InUserProperty", v: packet.V5, target: packet.ErrMalformed, says: "User Property",
		bytes: hbFrame(0x30, hbBody(hbStr("t"), []byte{7, 0x26}, hbStr("k"), hbStr("\xc0"), []byte("x"))...)},
}

func TestHostileBadPublish(t *testing.T) {
	for _, tc := range hbBadPublishes {
		t.Run(tc.name, func(t *testing.T) {
			in := hbInject(t, tc.v, tc.bytes, false, nil)
			c := hbConnect(t, in.hbBroker, tc.tweak)
			close(in.fire)
			err := hbOutage(t, c)
			if tc.target != nil {
				hbIs(t, err, tc.target, "bad PUBLISH")
			}
			hbIs(t, err, nil, tc.says)
			select {
			case got := <-in.got:
				for _, typ := range got {
					if typ == packet.PUBACK || typ == packet.PUBREC {
						t.Fatalf("the client acknowledged the bad PUBLISH: %v", got)
					}
				}
			case <-time.After(hbWait):
				t.Fatal("the first connection did not end")
			}
			if s := c.Stats(); s.Outages != 1 || s.Reconnects != 1 {
				t.Fatalf("stats %+v, want one outage and one reconnect", s)
			}
			hbRoundTrip(t, c)
			hbNoMessage(t, c)
		})
	}
}
