package main

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// autopahoFloodWorkers is how many goroutines publish at QoS 0 at once.
// paho.golang writes each QoS 0 PUBLISH to the socket from the calling
// goroutine, one write system call per message under the connection's
// mutex, so more goroutines only queue on that lock: with 4 or 32 the
// QoS 0 row was no faster than with one (5 interleaved rounds each, on
// the machine the README's numbers come from).
const autopahoFloodWorkers = 1

// autopahoLib drives paho.golang's autopaho (MQTT 5.0 only), the
// reconnecting connection manager over paho.golang's client. Its Publish
// blocks until the exchange completes, so a window of w QoS 1 publishes
// is w goroutines publishing. The library caps publishes in flight at the
// broker's Receive Maximum; mosquitto, with max_inflight_messages 0,
// sends none in CONNACK, which means 65,535. The defaults stay as they
// are (reconnect back-off: a constant 10 s), except keep-alive, which
// autopaho leaves off unless set: 60 s here, as mqttas's default.
type autopahoLib struct{}

func (autopahoLib) name() string { return "paho.golang" }

type autopahoClient struct {
	cm     *autopaho.ConnectionManager
	cancel context.CancelFunc
}

func (autopahoLib) connect(ctx context.Context, o connOpts) (client, error) {
	u, err := url.Parse("mqtt://" + o.addr)
	if err != nil {
		return nil, err
	}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     60,
		CleanStartOnInitialConnection: true,
		ClientConfig:                  paho.ClientConfig{ClientID: o.id},
	}
	if onMsg := o.onMsg; onMsg != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(paho.PublishReceived) (bool, error) { onMsg(); return true, nil },
		}
	}
	if onUp := o.onUp; onUp != nil {
		// OnConnectionUp runs after the first connection too: skip that one.
		var connects atomic.Int64
		cfg.OnConnectionUp = func(*autopaho.ConnectionManager, *paho.Connack) {
			if connects.Add(1) > 1 {
				onUp()
			}
		}
	}
	// The context given to NewConnection bounds the connection's whole
	// life, not the connect.
	life, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(life, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	a := &autopahoClient{cm: cm, cancel: cancel}
	if err := cm.AwaitConnection(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *autopahoClient) subscribe(ctx context.Context, filter string, qos byte) error {
	ack, err := a.cm.Subscribe(ctx, &paho.Subscribe{
		Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}},
	})
	if err != nil {
		return err
	}
	if len(ack.Reasons) != 1 || ack.Reasons[0] > 2 {
		return fmt.Errorf("paho.golang: subscription to %q refused: %v", filter, ack.Reasons)
	}
	return nil
}

func (a *autopahoClient) publish(ctx context.Context, topic string, payload []byte, qos byte, n, window int) error {
	pub := func(ctx context.Context) error {
		_, err := a.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
		return err
	}
	switch {
	case window == 1:
		for range n {
			if err := pub(ctx); err != nil {
				return err
			}
		}
		return nil
	case window == 0:
		return fanOut(ctx, autopahoFloodWorkers, n, pub)
	default:
		return fanOut(ctx, window, n, pub)
	}
}

func (a *autopahoClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.cm.Disconnect(ctx)
	a.cancel()
	<-a.cm.Done()
}
