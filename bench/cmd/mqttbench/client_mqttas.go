package main

import (
	"context"
	"sync"
	"time"

	"github.com/mqttas/mqttas"
)

// mqttasFloodWorkers is how many goroutines publish at QoS 0 at once.
// Publish blocks until its packet is written, so throughput comes from
// calling it from many goroutines, whose writes the client batches.
const mqttasFloodWorkers = 32

// mqttasLib drives the mqttas client in the parent module, over MQTT
// 3.1.1, through its public API only.
type mqttasLib struct{}

func (mqttasLib) name() string { return "mqttas" }

type mqttasClient struct {
	c       *mqttas.Client
	readers sync.WaitGroup // the goroutines reading Messages and Up
}

func (mqttasLib) connect(ctx context.Context, o connOpts) (client, error) {
	cfg := mqttas.Config{Server: o.addr, ClientID: o.id}
	if !o.defaults {
		cfg.MaxInflight = max(o.inflight, 64)
		cfg.QueueLen = max(o.queue, 64)
	}
	c, err := mqttas.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	mc := &mqttasClient{c: c}
	if o.onMsg != nil {
		mc.readers.Go(func() {
			for range c.Messages() {
				o.onMsg()
			}
		})
	}
	if o.onUp != nil {
		// Up holds one signal for the connection just made; only later
		// ones are reconnections.
		select {
		case <-c.Up():
		case <-ctx.Done():
			mc.close()
			return nil, ctx.Err()
		}
		mc.readers.Go(func() {
			for range c.Up() {
				o.onUp()
			}
		})
	}
	return mc, nil
}

func (m *mqttasClient) subscribe(ctx context.Context, filter string, qos byte) error {
	return m.c.Subscribe(ctx, filter, qos)
}

func (m *mqttasClient) publish(ctx context.Context, topic string, payload []byte, qos byte, n, window int) error {
	pub := func(ctx context.Context) error { return m.c.Publish(ctx, topic, payload, qos, false) }
	switch {
	case window == 1:
		for range n {
			if err := pub(ctx); err != nil {
				return err
			}
		}
		return nil
	case window == 0:
		return fanOut(ctx, mqttasFloodWorkers, n, pub)
	default:
		return fanOut(ctx, window, n, pub)
	}
}

func (m *mqttasClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = m.c.Disconnect(ctx)
	m.readers.Wait() // Close closes Messages and Up
}

// stats reports the client's counters, for the check that the subscriber
// dropped nothing.
func (m *mqttasClient) stats() mqttas.Stats { return m.c.Stats() }
