package mqttas

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// PublishOption adjusts one Publish. The options arrive with MQTT 5.0
// support (message properties); a 3.1.1 publish needs none.
type PublishOption func(*packet.Publish)

// SubscribeOption adjusts one Subscribe. The options arrive with MQTT 5.0
// support (No Local, Retain As Published, Retain Handling).
type SubscribeOption func(*packet.Subscription)

// Publish sends a message and returns only when it is done: for QoS 0 once
// the whole packet is written, for QoS 1 once the broker's PUBACK arrives,
// for QoS 2 once its PUBCOMP does. Through an outage it waits for the link.
//
// An unacknowledged QoS 1 message is resent with DUP set every ResponseTime,
// MaxRepubs times; then the client declares the link dead, reconnects and
// publishes the message again (as mqtt_as does). A QoS 2 message is never
// published again once the broker's PUBREC has arrived: only its PUBREL is
// resent, so the broker sees it once. Exactly-once across an outage needs
// Config.PersistentSession: if the broker has lost the session when the
// client returns, a QoS 2 message it had acknowledged with PUBREC is
// counted as done, since publishing it again could deliver it twice. Publish returns early only when ctx
// ends or the client closes; a message abandoned that way may still reach
// the broker. payload must not be modified until Publish returns.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool, opts ...PublishOption) error {
	if c.stopping.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if qos > 2 {
		return fmt.Errorf("mqttas: publish to %q: QoS %d is not 0, 1 or 2", topic, qos)
	}
	if err := packet.TopicNameError(topic); err != nil {
		return fmt.Errorf("mqttas: publish: %w", err)
	}
	pub := packet.Publish{Topic: topic, Payload: payload, QoS: qos, Retain: retain}
	for _, o := range opts {
		o(&pub)
	}
	size := int64(len(topic) + len(payload))
	c.stats.unsent.Add(size)
	unsent := &c.stats.unsent
	if qos == 0 {
		defer unsent.Add(-size)
		for {
			cn, err := c.waitLink(ctx)
			if err != nil {
				return err
			}
			if err := cn.write(&pub); !errors.Is(err, errLinkDown) {
				return err // nil, or content the codec refused
			}
		}
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		unsent.Add(-size)
		return ctx.Err()
	case <-c.closing:
		unsent.Add(-size)
		return ErrClosed
	}
	defer func() { <-c.slots }()
	p := &pending{kind: awaitPuback, pub: pub}
	if qos == 2 {
		p.kind = awaitPubrec
	}
	c.sess.add(p)
	return c.await(ctx, p, c.cfg.MaxRepubs, unsent, size)
}

// await sends p, and resends it, until its exchange completes. On a live
// link it resends every ResponseTime up to limit times and then fails the
// link; after an outage the supervisor or this loop sends it on the new
// link. unsent is debited by size once p has been written.
func (c *Client) await(ctx context.Context, p *pending, limit int, unsent *atomic.Int64, size int64) (err error) {
	defer func() {
		if size > 0 {
			unsent.Add(-size)
		}
		c.sess.finish(p, err) // frees the id if the caller gave up
	}()
	timer := time.NewTimer(c.cfg.ResponseTime)
	defer timer.Stop()
	for {
		cn, err := c.waitLink(ctx)
		if err != nil {
			return err
		}
		err = cn.send(func() packet.Packet {
			pkt, _ := c.sess.claimSend(p, cn)
			return pkt
		})
		if err != nil && !errors.Is(err, errLinkDown) {
			return err
		}
		if size > 0 {
			unsent.Add(-size)
			size = 0
		}
	wait:
		for {
			timer.Reset(c.cfg.ResponseTime)
			select {
			case <-p.done:
				return p.err
			case <-cn.done:
				break wait
			case <-timer.C:
				resent := false
				cn.send(func() packet.Packet {
					pkt := c.sess.resend(p, cn, limit)
					resent = pkt != nil
					return pkt
				})
				if resent {
					c.stats.repubs.Add(1)
					c.log.Info("mqttas: no acknowledgement, resending", "id", p.id)
					continue
				}
				cn.fail(fmt.Errorf("%w: packet id %d unacknowledged after %d sends", ErrTimeout, p.id, limit+1))
			case <-ctx.Done():
				return ctx.Err()
			case <-c.closing:
				return ErrClosed
			}
		}
	}
}

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

// BrokerUp reports whether the broker is answering: true at once if
// anything arrived in the last second, else it sends PINGREQ and waits up
// to ResponseTime (or ctx) for any packet. False during an outage.
func (c *Client) BrokerUp(ctx context.Context) bool {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil || cn.dead() {
		return false
	}
	if time.Duration(c.now()-cn.lastRx.Load()) < time.Second {
		return true
	}
	rx := cn.rxSignal()
	if cn.write(&packet.Pingreq{}) != nil {
		return false
	}
	t := time.NewTimer(c.cfg.ResponseTime)
	defer t.Stop()
	select {
	case <-rx:
		return true
	case <-cn.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Stats is a snapshot of the client's counters.
type Stats struct {
	// Discards counts incoming messages dropped because the Messages
	// channel (or the queue in front of OnMessage) was full.
	Discards uint64
	// Repubs counts resends: DUP resends on a live link and resends after
	// a reconnect.
	Repubs uint64
	// Reconnects counts successful reconnections after an outage.
	Reconnects uint64
	// Outages counts established connections lost.
	Outages uint64
	// InFlight is the number of QoS 1 and 2 messages awaiting
	// acknowledgement.
	InFlight int
	// UnsentBytes is the topic and payload size of messages accepted by
	// Publish but not yet written to the network (waiting for the link or
	// for an in-flight slot).
	UnsentBytes int64
}

type counters struct {
	repubs, reconnects, outages atomic.Uint64
	unsent                      atomic.Int64
}

// Stats returns the current counters.
func (c *Client) Stats() Stats {
	return Stats{
		Discards:    c.msgs.discards.Load(),
		Repubs:      c.stats.repubs.Load(),
		Reconnects:  c.stats.reconnects.Load(),
		Outages:     c.stats.outages.Load(),
		InFlight:    c.sess.inFlight(),
		UnsentBytes: c.stats.unsent.Load(),
	}
}
