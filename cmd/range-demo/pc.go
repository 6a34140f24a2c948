package main

import (
	"context"
	"fmt"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// pcSide is mqtt_as's "PC side" of the range test: something on the wired
// side of the broker that publishes to foo_topic (pubtest) and watches what
// the device publishes to shed. It never crosses the simulated link, so
// what it sees is what the broker really delivered.
type pcSide interface {
	// pubtest publishes one message to foo_topic.
	pubtest(ctx context.Context, payload []byte) error
	// shed delivers the payloads published to shed; it is closed by close.
	shed() <-chan []byte
	close()
}

// embeddedPC watches and publishes inside the embedded broker, with no
// network connection at all.
type embeddedPC struct {
	b   *mqtttest.Broker
	sub *mqtttest.Subscription
	ch  chan []byte
}

func newEmbeddedPC(b *mqtttest.Broker) (*embeddedPC, error) {
	sub, err := b.Subscribe("shed")
	if err != nil {
		return nil, err
	}
	pc := &embeddedPC{b: b, sub: sub, ch: make(chan []byte)}
	go func() {
		defer close(pc.ch)
		for m := range sub.C() {
			pc.ch <- m.Payload
		}
	}()
	return pc, nil
}

func (pc *embeddedPC) pubtest(_ context.Context, payload []byte) error {
	return pc.b.Publish("foo_topic", payload, 1, false)
}

func (pc *embeddedPC) shed() <-chan []byte { return pc.ch }

// close ends the subscription; the caller must drain shed until it closes.
func (pc *embeddedPC) close() {
	pc.sub.Close()
}

// clientPC is the PC side against a real broker: a second mqttas client,
// connected straight to it.
type clientPC struct {
	c  *mqttas.Client
	ch chan []byte
}

func newClientPC(ctx context.Context, cfg mqttas.Config) (*clientPC, error) {
	cfg.ClientID += "-pc"
	cfg.Will = nil
	cfg.QueueLen = 4096 // the watcher must not be the one losing messages
	c, err := mqttas.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("PC side: %w", err)
	}
	if err := c.Subscribe(ctx, "shed", 1); err != nil {
		c.Close()
		return nil, fmt.Errorf("PC side: subscribe to shed: %w", err)
	}
	pc := &clientPC{c: c, ch: make(chan []byte)}
	go func() {
		defer close(pc.ch)
		for m := range c.Messages() {
			pc.ch <- m.Payload
		}
	}()
	return pc, nil
}

func (pc *clientPC) pubtest(ctx context.Context, payload []byte) error {
	return pc.c.Publish(ctx, "foo_topic", payload, 1, false)
}

func (pc *clientPC) shed() <-chan []byte { return pc.ch }

func (pc *clientPC) close() {
	ctx, cancel := context.WithTimeout(context.Background(), defaultStopWait)
	defer cancel()
	pc.c.Disconnect(ctx)
}
