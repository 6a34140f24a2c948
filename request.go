package mqttas

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/mqttas/mqttas/packet"
)

// requests routes MQTT 5.0 replies to the Request calls waiting for them,
// by correlation data. Replies arrive on one response topic per client,
// subscribed on the first Request and restored like any subscription.
type requests struct {
	mu      sync.Mutex
	topic   string                  // "" until the first Request subscribes
	waiting map[string]chan Message // correlation data -> the waiting call
}

// Request is MQTT 5.0's request/response: it publishes payload to topic
// with a Response Topic and fresh Correlation Data, and returns the first
// message that comes back with that correlation data. The responder
// replies with Respond (or by publishing to the request's
// Properties.ResponseTopic with its CorrelationData). ctx bounds the
// whole exchange; a reply that comes after the call has returned is
// dropped, never delivered to Messages. Replies go to one topic per
// client, "mqttas/response/" followed by the client identifier, which
// Request subscribes to at QoS 1 the first time.
func (c *Client) Request(ctx context.Context, topic string, payload []byte, qos byte, opts ...PublishOption) (Message, error) {
	if c.version != packet.V5 {
		return Message{}, fmt.Errorf("mqttas: Request needs MQTT 5.0's response topic and correlation data: set Config.MQTTv5")
	}
	resp, err := c.responseTopic(ctx)
	if err != nil {
		return Message{}, err
	}
	var corr [16]byte
	_, _ = rand.Read(corr[:])
	ch := make(chan Message, 1)
	key := string(corr[:])
	c.req.mu.Lock()
	if c.req.waiting == nil {
		c.req.waiting = make(map[string]chan Message)
	}
	c.req.waiting[key] = ch
	c.req.mu.Unlock()
	defer func() {
		c.req.mu.Lock()
		delete(c.req.waiting, key)
		c.req.mu.Unlock()
	}()
	opts = append(opts, func(p *packet.Publish) {
		p.Properties.ResponseTopic = resp
		p.Properties.CorrelationData = corr[:]
	})
	if err := c.Publish(ctx, topic, payload, qos, false, opts...); err != nil {
		return Message{}, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("mqttas: no reply to the request on %q: %w", topic, ctx.Err())
	case <-c.closing:
		return Message{}, ErrClosed
	}
}

// Respond replies to a request received as req: it publishes payload to
// req's Response Topic with req's Correlation Data, at QoS qos. It fails
// if req carries no Response Topic.
func (c *Client) Respond(ctx context.Context, req Message, payload []byte, qos byte, opts ...PublishOption) error {
	if req.Properties == nil || req.Properties.ResponseTopic == "" {
		return fmt.Errorf("mqttas: Respond: the message on %q carries no Response Topic to reply to", req.Topic)
	}
	corr := req.Properties.CorrelationData
	opts = append(opts, func(p *packet.Publish) { p.Properties.CorrelationData = corr })
	return c.Publish(ctx, req.Properties.ResponseTopic, payload, qos, false, opts...)
}

// responseTopic returns the client's response topic, subscribing to it
// the first time.
func (c *Client) responseTopic(ctx context.Context) (string, error) {
	c.req.mu.Lock()
	t := c.req.topic
	c.req.mu.Unlock()
	if t != "" {
		return t, nil
	}
	c.mu.Lock()
	id := c.clientID
	c.mu.Unlock()
	if id == "" {
		// A broker that took an empty identifier without assigning one:
		// the topic must still be this client's alone.
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = fmt.Sprintf("%x", b)
	}
	t = "mqttas/response/" + id
	if err := c.Subscribe(ctx, t, 1); err != nil {
		return "", fmt.Errorf("mqttas: Request: subscribe to the response topic: %w", err)
	}
	c.req.mu.Lock()
	c.req.topic = t
	c.req.mu.Unlock()
	return t, nil
}

// reply hands m to the Request waiting for it, and reports whether m was
// a reply (to a call still waiting or not); the reader calls it for every
// MQTT 5.0 message before queueing.
func (c *Client) reply(m Message) bool {
	if m.Properties == nil || m.Properties.CorrelationData == nil {
		return false
	}
	c.req.mu.Lock()
	defer c.req.mu.Unlock()
	if c.req.topic == "" || m.Topic != c.req.topic {
		return false
	}
	if ch, ok := c.req.waiting[string(m.Properties.CorrelationData)]; ok {
		select {
		case ch <- m:
		default: // a duplicate (QoS 1): the first copy already answered
		}
	}
	return true
}

// deliver queues an incoming message for the application, unless it is a
// reply for Request.
func (c *Client) deliver(m Message) {
	if m.Properties != nil && c.reply(m) {
		return
	}
	c.msgs.push(m)
}
