package mqttas

import (
	"bytes"
	"slices"

	"github.com/mqttas/mqttas/packet"
)

// Properties are the MQTT 5.0 properties of a message, a will or a
// connection: payload format, message expiry, content type, response topic,
// correlation data, subscription identifiers, user properties (any number,
// in order) and the rest of the specification's list. MQTT 3.1.1
// connections never send them and never set them on a Message.
type Properties = packet.Properties

// UserProperty is one name/value pair of Properties.User. Names may repeat;
// order is kept end to end.
type UserProperty = packet.UserProperty

// PublishOption adjusts one Publish.
type PublishOption func(*packet.Publish)

// WithProperties sends the message with MQTT 5.0 properties p. They are
// copied, so p may be reused at once. Without Config.MQTTv5, Publish
// refuses them. The client manages Topic Alias itself: a value set here is
// ignored.
func WithProperties(p *Properties) PublishOption {
	cp := cloneProperties(p)
	cp.TopicAlias = 0
	cp.Clear(packet.PropTopicAlias)
	return func(pub *packet.Publish) { pub.Properties = cp }
}

// SubscribeOption adjusts one Subscribe. The options are MQTT 5.0's
// subscription options; on a 3.1.1 connection Subscribe refuses them.
type SubscribeOption func(*subscription)

// subscription is a remembered Subscribe: the filter with its options and
// its subscription identifier, which travels in the SUBSCRIBE's properties.
type subscription struct {
	packet.Subscription
	id uint32 // 0: none
}

// NoLocal asks the broker not to send the client the messages it publishes
// itself to matching topics. Not allowed on shared subscriptions.
func NoLocal() SubscribeOption {
	return func(s *subscription) { s.NoLocal = true }
}

// RetainAsPublished keeps the retain flag of forwarded messages as the
// publisher set it, instead of clearing it.
func RetainAsPublished() SubscribeOption {
	return func(s *subscription) { s.RetainAsPublished = true }
}

// RetainHandling chooses when the broker sends retained messages on
// subscribing: 0 always (the default), 1 only if the subscription is new,
// 2 never. Other values make Subscribe fail.
func RetainHandling(h byte) SubscribeOption {
	return func(s *subscription) { s.RetainHandling = h }
}

// SubscriptionID tags the subscription with an identifier (1 to
// 268,435,455) that the broker echoes in Message.Properties.SubscriptionIDs
// of every message it matches, so an application can route by subscription
// instead of by topic.
func SubscriptionID(id uint32) SubscribeOption {
	return func(s *subscription) { s.id = id }
}

// cloneProperties deep-copies p; nil gives the zero value.
func cloneProperties(p *Properties) Properties {
	if p == nil {
		return Properties{}
	}
	cp := *p
	cp.User = slices.Clone(p.User)
	cp.SubscriptionIDs = slices.Clone(p.SubscriptionIDs)
	cp.CorrelationData = bytes.Clone(p.CorrelationData)
	cp.AuthData = bytes.Clone(p.AuthData)
	return cp
}
