package mqttas

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mqttas/mqttas/packet"
)

// Subscribe subscribes to filter with maximum QoS qos and waits for the
// broker's SUBACK. A refusal is an *AckError (errors.Is ErrNotAuthorized,
// ErrRefused). The subscription is remembered: after any reconnect on which
// the broker has no session for the client, it is restored before Up is
// signalled. Through an outage Subscribe waits for the link; a SUBACK that
// does not come within ResponseTime fails the link, and the SUBSCRIBE is
// sent again on the next one.
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte, opts ...SubscribeOption) error {
	if c.stopping.Load() {
		return ErrClosed
	}
	if qos > 2 {
		return fmt.Errorf("mqttas: subscribe to %q: QoS %d is not 0, 1 or 2", filter, qos)
	}
	if err := packet.TopicFilterError(filter); err != nil {
		return fmt.Errorf("mqttas: subscribe: %w", err)
	}
	s := subscription{Subscription: packet.Subscription{Filter: filter, QoS: qos}}
	for _, o := range opts {
		o(&s)
	}
	if err := c.checkSubscription(s); err != nil {
		return err
	}
	// Remember it first, so a reconnect while the SUBACK is outstanding
	// restores it too; a refusal puts back what it replaced.
	c.mu.Lock()
	i := slices.IndexFunc(c.subs, func(x subscription) bool { return x.Filter == filter })
	var prev *subscription
	if i >= 0 {
		old := c.subs[i]
		prev = &old
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	p := &pending{kind: awaitSuback, sub: s.packet([]subscription{s})}
	c.sess.add(p)
	_, err := c.await(ctx, p, 0, nil, 0)
	if err == nil && len(p.codes) > 0 && p.codes[0].IsError() {
		err = &AckError{Op: "subscribe", Target: filter, Code: p.codes[0], Reason: p.reason}
	}
	if err != nil {
		c.forget(s, prev)
		return err
	}
	return nil
}

// forget drops a remembered subscription after its Subscribe failed and
// restores the one it replaced, unless a later Subscribe to the same filter
// has replaced it in turn.
func (c *Client) forget(s subscription, prev *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.subs, func(x subscription) bool { return x == s })
	if i < 0 {
		return
	}
	if prev != nil {
		c.subs[i] = *prev
	} else {
		c.subs = slices.Delete(c.subs, i, i+1)
	}
}

// Unsubscribe removes the subscription to filter and waits for the
// broker's UNSUBACK. Unsubscribing from a filter never subscribed to
// succeeds, as MQTT specifies.
func (c *Client) Unsubscribe(ctx context.Context, filter string) error {
	if c.stopping.Load() {
		return ErrClosed
	}
	if err := packet.TopicFilterError(filter); err != nil {
		return fmt.Errorf("mqttas: unsubscribe: %w", err)
	}
	c.mu.Lock()
	c.subs = slices.DeleteFunc(c.subs, func(x subscription) bool { return x.Filter == filter })
	c.mu.Unlock()
	p := &pending{kind: awaitUnsuback, uns: &packet.Unsubscribe{Filters: []string{filter}}}
	c.sess.add(p)
	if _, err := c.await(ctx, p, 0, nil, 0); err != nil {
		return err
	}
	// MQTT 5.0's "no subscription existed" (0x11) is not an error.
	if len(p.codes) > 0 && p.codes[0].IsError() {
		return &AckError{Op: "unsubscribe", Target: filter, Code: p.codes[0], Reason: p.reason}
	}
	return nil
}

// packet builds the SUBSCRIBE for subs, which share s's identifier.
func (s subscription) packet(subs []subscription) *packet.Subscribe {
	p := &packet.Subscribe{Subscriptions: make([]packet.Subscription, len(subs))}
	for i, x := range subs {
		p.Subscriptions[i] = x.Subscription
	}
	if s.id != 0 {
		p.Properties.SubscriptionIDs = []uint32{s.id}
	}
	return p
}

// checkSubscription refuses, before anything is sent, options the
// protocol version or the broker's grant rules out.
func (c *Client) checkSubscription(s subscription) error {
	v5 := s.NoLocal || s.RetainAsPublished || s.RetainHandling != 0 || s.id != 0
	if v5 && c.version != packet.V5 {
		return fmt.Errorf("mqttas: subscribe to %q: No Local, Retain As Published, Retain Handling and subscription identifiers are MQTT 5.0 options: set Config.MQTTv5", s.Filter)
	}
	if s.RetainHandling > 2 {
		return fmt.Errorf("mqttas: subscribe to %q: Retain Handling %d is not 0, 1 or 2", s.Filter, s.RetainHandling)
	}
	if s.id > 268435455 {
		return fmt.Errorf("mqttas: subscribe to %q: subscription identifier %d is over the maximum 268,435,455", s.Filter, s.id)
	}
	if _, _, shared := packet.ParseShared(s.Filter); shared && s.NoLocal {
		return fmt.Errorf("mqttas: subscribe to %q: No Local is not allowed on a shared subscription", s.Filter)
	}
	c.mu.Lock()
	l := &c.link
	idOK, wildOK, sharedOK := l.SubscriptionIDAvailable, l.WildcardSubAvailable, l.SharedSubAvailable
	known := l.Version == 5
	c.mu.Unlock()
	if !known {
		return nil
	}
	_, _, shared := packet.ParseShared(s.Filter)
	switch {
	case s.id != 0 && !idOK:
		return fmt.Errorf("mqttas: subscribe to %q: %w", s.Filter, ErrSubscriptionIDsNotSupported)
	case !wildOK && strings.ContainsAny(s.Filter, "+#"):
		return fmt.Errorf("mqttas: subscribe to %q: the broker does not support wildcard subscriptions (CONNACK Wildcard Subscription Available 0)", s.Filter)
	case !sharedOK && shared:
		return fmt.Errorf("mqttas: subscribe to %q: the broker does not support shared subscriptions (CONNACK Shared Subscription Available 0)", s.Filter)
	}
	return nil
}
