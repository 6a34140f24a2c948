package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// pahomqttLib drives paho.mqtt.golang (MQTT 3.1.1). Publish returns a
// token at once and the library writes from its own goroutine, so one
// goroutine can keep as many publishes outstanding as it likes: at QoS 0
// it publishes without waiting for tokens, and for a window of w it waits
// for the token of the publish w places back before issuing the next.
//
// Nothing here needs raising: the library has no cap on publishes in
// flight on a live connection (MaxResumePubInFlight applies only to
// resending after a reconnect), and it hands each message to the
// subscription's callback as it is read, with no queue to overflow. Its
// defaults stay as they are, AutoReconnect included, except the protocol
// version, pinned to 3.1.1 rather than negotiated down from it.
type pahomqttLib struct{}

func (pahomqttLib) name() string { return "paho.mqtt.golang" }

type pahomqttClient struct {
	c     pahomqtt.Client
	onMsg func()
}

func (pahomqttLib) connect(ctx context.Context, o connOpts) (client, error) {
	opts := pahomqtt.NewClientOptions().
		AddBroker("tcp://" + o.addr).
		SetClientID(o.id).
		SetProtocolVersion(4)
	if o.onUp != nil {
		// OnConnect runs after the first connection too: skip that one.
		var connects atomic.Int64
		opts.SetOnConnectHandler(func(pahomqtt.Client) {
			if connects.Add(1) > 1 {
				o.onUp()
			}
		})
	}
	c := pahomqtt.NewClient(opts)
	if err := waitToken(ctx, c.Connect()); err != nil {
		c.Disconnect(0)
		return nil, err
	}
	return &pahomqttClient{c: c, onMsg: o.onMsg}, nil
}

// waitToken waits for t to complete, or for ctx to end.
func waitToken(ctx context.Context, t pahomqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pahomqttClient) subscribe(ctx context.Context, filter string, qos byte) error {
	onMsg := p.onMsg
	if onMsg == nil {
		return errors.New("paho.mqtt.golang: subscribe needs connOpts.onMsg")
	}
	t := p.c.Subscribe(filter, qos, func(pahomqtt.Client, pahomqtt.Message) { onMsg() })
	if err := waitToken(ctx, t); err != nil {
		return err
	}
	// A refusal completes the token without an error.
	if st, ok := t.(*pahomqtt.SubscribeToken); ok {
		if code := st.Result()[filter]; code > 2 {
			return fmt.Errorf("paho.mqtt.golang: subscription to %q refused (0x%02x)", filter, code)
		}
	}
	return nil
}

func (p *pahomqttClient) publish(ctx context.Context, topic string, payload []byte, qos byte, n, window int) error {
	if window == 0 {
		// Flood: fire and forget, then wait for the last one, which the
		// library writes after all the others.
		var last pahomqtt.Token
		for range n {
			last = p.c.Publish(topic, qos, false, payload)
		}
		if last == nil {
			return nil
		}
		return waitToken(ctx, last)
	}
	ring := make([]pahomqtt.Token, window)
	for i := range n {
		if t := ring[i%window]; t != nil {
			if err := waitToken(ctx, t); err != nil {
				return err
			}
		}
		ring[i%window] = p.c.Publish(topic, qos, false, payload)
	}
	for _, t := range ring {
		if t != nil {
			if err := waitToken(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *pahomqttClient) close() { p.c.Disconnect(250) }
