package mqttas

import (
	"context"
	"fmt"
	"slices"

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
	s := packet.Subscription{Filter: filter, QoS: qos}
	for _, o := range opts {
		o(&s)
	}
	// Remember it first, so a reconnect while the SUBACK is outstanding
	// restores it too; a refusal puts back what it replaced.
	c.mu.Lock()
	i := slices.IndexFunc(c.subs, func(x packet.Subscription) bool { return x.Filter == filter })
	var prev *packet.Subscription
	if i >= 0 {
		old := c.subs[i]
		prev = &old
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	p := &pending{kind: awaitSuback, sub: &packet.Subscribe{Subscriptions: []packet.Subscription{s}}}
	c.sess.add(p)
	err := c.await(ctx, p, 0, nil, 0)
	if err == nil && len(p.codes) > 0 && p.codes[0].IsError() {
		err = &AckError{Op: "subscribe", Target: filter, Code: p.codes[0]}
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
func (c *Client) forget(s packet.Subscription, prev *packet.Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.subs, func(x packet.Subscription) bool { return x == s })
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
	c.subs = slices.DeleteFunc(c.subs, func(x packet.Subscription) bool { return x.Filter == filter })
	c.mu.Unlock()
	p := &pending{kind: awaitUnsuback, uns: &packet.Unsubscribe{Filters: []string{filter}}}
	c.sess.add(p)
	return c.await(ctx, p, 0, nil, 0)
}
