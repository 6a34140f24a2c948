package main

import (
	"context"
	"sync"
	"sync/atomic"
)

// library makes clients of one MQTT library. The scenarios talk to the
// libraries through this interface (and raw's round trips through
// roundTripLib), so every library runs the same scenario, while each
// adapter drives its own library the way that library is meant to be
// used at speed: blocking calls from many goroutines for mqttas and
// autopaho, windows of tokens for paho.mqtt.golang, pre-encoded bytes for
// raw.
type library interface {
	name() string
	// connect opens one client and returns once it is connected.
	connect(ctx context.Context, o connOpts) (client, error)
}

// connOpts describes the client a scenario wants.
type connOpts struct {
	addr string // broker host:port
	id   string // client identifier, unique within a run
	// onMsg, if set, is called once for every message the client
	// receives. It may run on any goroutine but is never called
	// concurrently with itself.
	onMsg func()
	// onUp, if set, is called after every reconnection, not after the
	// first connection.
	onUp func()
	// inflight is the number of QoS 1 and 2 publishes the scenario keeps
	// outstanding; an adapter whose library caps them raises the cap to
	// at least this.
	inflight int
	// queue is how many received messages the client must be able to
	// buffer without dropping any, for libraries with a bounded queue.
	queue int
	// defaults asks for the library's configuration as shipped: nothing
	// raised, for the idle-memory and reconnect rows.
	defaults bool
}

// client is one connection made by a library.
type client interface {
	// subscribe subscribes to filter and waits for the SUBACK.
	subscribe(ctx context.Context, filter string, qos byte) error
	// publish publishes n messages to topic and returns when all are
	// done (written for QoS 0, acknowledged for QoS 1 and 2).
	//
	// window is how many may be outstanding at once. 1 means one at a
	// time: each publish is done before the next starts. For QoS 0, 0
	// asks for the library's fastest way of pushing messages out (its
	// flood idiom), whatever that is.
	publish(ctx context.Context, topic string, payload []byte, qos byte, n, window int) error
	// close disconnects and releases everything the client holds.
	close()
}

// libraries lists the clients compared, in the table's column order.
func libraries() []library {
	return []library{mqttasLib{}, pahomqttLib{}, autopahoLib{}, rawLib{}}
}

// fanOut calls fn n times in all, from workers goroutines that share the
// count, and returns the first error. Once fn has failed, or ctx has
// ended, no further calls are started.
func fanOut(ctx context.Context, workers, n int, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := fn(ctx); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
