package mqttas

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// Publish sends a message and returns only when it is done: for QoS 0 once
// the whole packet is written, for QoS 1 once the broker's PUBACK arrives,
// for QoS 2 once its PUBCOMP does. Through an outage it waits for the link.
//
// An unacknowledged QoS 1 message is resent with DUP set every ResponseTime,
// MaxRepubs times; then the client declares the link dead, reconnects and
// sends the message again: with its original identifier and DUP when the
// broker kept the session, as a new publish on a new identifier when it
// did not (as mqtt_as does). A QoS 2 message is never
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
	if len(opts) > 0 {
		// Options run on a copy: handing them pub itself would move it to
		// the heap for every publish, options or not.
		withOpts := new(packet.Publish)
		*withOpts = pub
		for _, o := range opts {
			o(withOpts)
		}
		pub = *withOpts
	}
	if c.version != packet.V5 && !pub.Properties.Empty() {
		return fmt.Errorf("mqttas: publish to %q: message properties are MQTT 5.0: set Config.MQTTv5", topic)
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
			if retain && cn.link.Version == 5 && !cn.link.RetainAvailable {
				return fmt.Errorf("mqttas: publish to %q: %w", topic, ErrRetainNotSupported)
			}
			if err := cn.writePublish(&pub); !errors.Is(err, errLinkDown) {
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
	kind := awaitPuback
	if qos == 2 {
		kind = awaitPubrec
	}
	p := newPending(kind, &pub)
	c.sess.add(p)
	reuse, err := c.await(ctx, p, c.cfg.MaxRepubs, unsent, size)
	if reuse {
		p.recycle()
	}
	return err
}

// await sends p, and resends it, until its exchange completes. On a live
// link it resends every ResponseTime up to limit times and then fails the
// link; after an outage the supervisor or this loop sends it on the new
// link. unsent is debited by size once p has been queued on a link (or
// when await returns). reuse reports
// that the exchange ended while this caller was waiting for it, so the
// entry is free for reuse.
func (c *Client) await(ctx context.Context, p *pending, limit int, unsent *atomic.Int64, size int64) (reuse bool, err error) {
	defer func() {
		if size > 0 {
			unsent.Add(-size)
		}
		if !reuse {
			c.sess.abandon(p, err) // frees the id if the caller gave up before sending
		}
	}()
	if p.timer == nil {
		p.timer = time.NewTimer(c.cfg.ResponseTime)
		p.timer.Stop() // armed only while waiting for an answer
	}
	timer := p.timer
	defer timer.Stop()
	for {
		cn, err := c.waitLink(ctx)
		if err != nil {
			return false, err
		}
		res, err := cn.sendPending(p, sendClaim, 0, false)
		if err != nil && !errors.Is(err, errLinkDown) {
			c.sess.finish(p, err) // refused before it was written: nothing to wait for
			<-p.done
			return true, err
		}
		if err == nil && res.sent {
			c.sess.doneIfOnce(p)
		}
		if res.freed != nil {
			// The broker's Receive Maximum is reached: wait for one of
			// the messages in flight to finish, then claim again.
			select {
			case <-res.freed:
			case <-cn.done:
			case <-p.done:
				return true, p.err
			case <-ctx.Done():
				return false, ctx.Err()
			case <-c.closing:
				return false, ErrClosed
			}
			continue
		}
		if size > 0 && err == nil {
			unsent.Add(-size) // queued: no longer waiting for a link
			size = 0
		}
	wait:
		for {
			timer.Reset(c.cfg.ResponseTime)
			select {
			case <-p.done:
				return true, p.err
			case <-cn.done:
				break wait
			case <-timer.C:
				res, _ := cn.sendPending(p, sendAgain, limit, false)
				if res.sent {
					c.stats.repubs.Add(1)
					c.log.Info("mqttas: no acknowledgement, resending", "id", p.id)
				}
				if res.again {
					continue
				}
				cn.fail(fmt.Errorf("%w: packet id %d unacknowledged after %d rounds of ResponseTime", ErrTimeout, p.id, limit+1))
			case <-ctx.Done():
				return false, ctx.Err()
			case <-c.closing:
				return false, ErrClosed
			}
		}
	}
}
