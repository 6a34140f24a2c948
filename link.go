package mqttas

import (
	"fmt"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// Link describes the most recent connection as the broker granted it in
// CONNACK. With MQTT 5.0 these are the limits the client honours: it never
// has more QoS 1 and 2 publishes in flight than ReceiveMaximum, sends
// nothing larger than MaximumPacketSize, publishes at most at MaximumQoS
// (asking for more quietly downgrades, as Mongoose OS's set_max_qos does),
// and refuses retain when RetainAvailable is false. With 3.1.1 the broker
// grants nothing and the fields hold the protocol's fixed values.
type Link struct {
	// Version is the protocol level in use: 4 for 3.1.1, 5 for 5.0; 0
	// before the first connection.
	Version        byte
	SessionPresent bool
	// ClientID is the identifier in use: the configured or generated one,
	// or the one an MQTT 5.0 broker assigned, which the client keeps for
	// every later connection.
	ClientID string
	// KeepAlive is the keep-alive in force: the broker's Server Keep Alive
	// when it sent one, which the client adopts, else Config.KeepAlive.
	KeepAlive time.Duration
	// SessionExpiry is the session expiry in force, as the broker may
	// have shortened it (MQTT 5.0).
	SessionExpiry     time.Duration
	ReceiveMaximum    uint16 // 65,535 when not limited
	MaximumQoS        byte
	RetainAvailable   bool
	MaximumPacketSize uint32 // 0: no limit announced
	// TopicAliasMaximum is how many topic aliases the broker accepts from
	// the client.
	TopicAliasMaximum       uint16
	WildcardSubAvailable    bool
	SubscriptionIDAvailable bool
	SharedSubAvailable      bool
	// ResponseInformation and ServerReference are passed on as the broker
	// sent them.
	ResponseInformation string
	ServerReference     string
	// Properties are all the CONNACK's properties, user properties
	// included; empty for 3.1.1.
	Properties Properties
}

// Link returns what the broker granted on the current connection, or on
// the last one during an outage. The zero Link means no connection yet.
func (c *Client) Link() Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link
}

// newLink reads a successful CONNACK.
func newLink(v packet.Version, ack *packet.Connack, clientID string, keepAlive time.Duration, expiry uint32) Link {
	l := Link{
		Version: byte(v), SessionPresent: ack.SessionPresent, ClientID: clientID, KeepAlive: keepAlive,
		ReceiveMaximum: 65535, MaximumQoS: 2, RetainAvailable: true,
		WildcardSubAvailable: true, SubscriptionIDAvailable: true, SharedSubAvailable: true,
	}
	if v != packet.V5 {
		return l
	}
	p := &ack.Properties
	l.Properties = cloneProperties(p)
	if p.Has(packet.PropAssignedClientID) && p.AssignedClientID != "" {
		l.ClientID = p.AssignedClientID
	}
	if p.Has(packet.PropServerKeepAlive) {
		l.KeepAlive = time.Duration(p.ServerKeepAlive) * time.Second
	}
	if p.Has(packet.PropSessionExpiry) {
		expiry = p.SessionExpiry
	}
	l.SessionExpiry = time.Duration(expiry) * time.Second
	if p.Has(packet.PropReceiveMaximum) {
		l.ReceiveMaximum = p.ReceiveMaximum
	}
	if p.Has(packet.PropMaximumQoS) {
		l.MaximumQoS = p.MaximumQoS
	}
	l.RetainAvailable = !p.Has(packet.PropRetainAvailable) || p.RetainAvailable == 1
	l.MaximumPacketSize = p.MaximumPacketSize
	l.TopicAliasMaximum = p.TopicAliasMaximum
	l.WildcardSubAvailable = !p.Has(packet.PropWildcardSubAvailable) || p.WildcardSubAvailable == 1
	l.SubscriptionIDAvailable = !p.Has(packet.PropSubscriptionIDAvailable) || p.SubscriptionIDAvailable == 1
	l.SharedSubAvailable = !p.Has(packet.PropSharedSubAvailable) || p.SharedSubAvailable == 1
	l.ResponseInformation = p.ResponseInfo
	l.ServerReference = p.ServerReference
	return l
}

// admitLocked fits message p to what cn's broker granted, before its
// first send there: retain is refused where the broker has none, and the
// QoS lowered to its Maximum QoS, as Mongoose OS's set_max_qos does. A
// QoS 2 message lowered to 1 then awaits a PUBACK; one lowered to 0 is
// done once written. Limits are the new connection's, not those in force
// when Publish was called: a message waiting through an outage may meet a
// different broker. Called with session.mu held.
func (cn *conn) admitLocked(p *pending) error {
	l := &cn.link
	if l.Version != 5 || p.kind == awaitPubcomp {
		return nil
	}
	if p.pub.Retain && !l.RetainAvailable {
		return fmt.Errorf("mqttas: publish to %q: %w", p.pub.Topic, ErrRetainNotSupported)
	}
	if p.pub.QoS > l.MaximumQoS {
		p.pub.QoS = l.MaximumQoS
		switch p.pub.QoS {
		case 1:
			p.kind = awaitPuback
		case 0:
			p.once = true
		}
	}
	return nil
}
