// Command events shows the event interface of mqttas: the Up and Down
// channels, which report the link coming and going, and the Messages
// channel, which carries incoming messages. It is the Go version of
// mqtt_as's range.py: it subscribes to a topic, publishes a counter to it at
// QoS 1 and prints everything that happens.
//
// Run it with nothing installed but Go:
//
//	go run ./examples/events
//
// It starts an embedded broker on loopback, stops the broker for a moment
// part way through so that you see the client ride out an outage, and exits
// once six messages have come back. To talk to a real broker instead, and
// run until Ctrl-C:
//
//	go run ./examples/events -server broker.local:1883
//
// Stop and restart that broker, or unplug the network, to see Down and Up.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// options are the command-line flags.
type options struct {
	server   string        // "": start an embedded broker
	topic    string        // published to and subscribed to
	interval time.Duration // between publishes; 0: the mode's default
	count    int           // stop after this many messages; 0: the mode's default
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "", "the broker, `host:port` (default: an embedded broker with a simulated outage)")
	flag.StringVar(&o.topic, "topic", "mqttas/examples/events", "the `topic` the counter is published to and read back from")
	flag.DurationVar(&o.interval, "interval", 0, "time between publishes (default 500ms embedded, 5s with -server)")
	flag.IntVar(&o.count, "count", 0, "stop after this many messages have come back (default 6 embedded; with -server, run until Ctrl-C)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "events: unexpected argument %q; the broker is given with -server host:port\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

// run is the whole program. It prints to out, which must be safe for
// concurrent writes (os.Stdout is): the publisher prints too.
func run(ctx context.Context, o options, out io.Writer) error {
	// Without -server, start a broker in-process and plan an outage.
	var broker *mqtttest.Broker
	if o.server == "" {
		b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{})
		if err != nil {
			return fmt.Errorf("start the embedded broker: %w", err)
		}
		defer b.Close()
		broker, o.server = b, b.Addr()
		fmt.Fprintf(out, "Embedded broker listening on %s.\n", o.server)
		if o.interval == 0 {
			o.interval = 500 * time.Millisecond
		}
		if o.count == 0 {
			o.count = 6
		}
	}
	if o.interval == 0 {
		o.interval = 5 * time.Second // as range.py
	}

	c, err := mqttas.New(mqttas.Config{Server: o.server})
	if err != nil {
		return fmt.Errorf("bad -server: %w", err)
	}
	defer disconnect(c)
	// Connect returns the first failure. Bound it: a host that drops
	// packets would otherwise hold the TCP dial for the system's timeout.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.Connect(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot connect: %w (is the broker running, and is -server right?)", err)
	}
	// Subscribe once. range.py subscribes again on every up event; mqttas
	// restores its subscriptions by itself before it signals Up.
	if err := c.Subscribe(ctx, o.topic, 1); err != nil {
		return fmt.Errorf("subscribe to %s: %w", o.topic, err)
	}

	// Publish returns only when the broker has acknowledged the message,
	// waiting through outages, so it runs on a goroutine of its own and the
	// loop below stays free to report events.
	pubCtx, stopPub := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { publishCounter(pubCtx, c, o.topic, o.interval, out) })
	defer wg.Wait()
	defer stopPub()

	seen := make(map[string]bool) // with -count; QoS 1 is at least once, so a message may come twice
	outage := broker != nil       // one simulated outage, embedded mode only
	for {
		select {
		case <-c.Up():
			fmt.Fprintln(out, "We are connected to broker.")
		case <-c.Down():
			fmt.Fprintln(out, "WiFi or broker is down.")
			if broker != nil {
				if err := broker.Start(); err != nil { // end of the outage
					return fmt.Errorf("restart the embedded broker: %w", err)
				}
			}
		case m := <-c.Messages():
			fmt.Fprintf(out, "Topic: %q Message: %q Retained: %v\n", m.Topic, m.Payload, m.Retained)
			if o.count == 0 {
				continue // run until Ctrl-C
			}
			seen[string(m.Payload)] = true
			if len(seen) >= o.count {
				return nil
			}
			if outage && len(seen) == 2 {
				outage = false
				fmt.Fprintln(out, "(Stopping the broker for a moment.)")
				if err := broker.Stop(); err != nil {
					return fmt.Errorf("stop the embedded broker: %w", err)
				}
			}
		case <-ctx.Done():
			if o.count > 0 {
				return fmt.Errorf("stopped after %d of %d messages: %w", len(seen), o.count, ctx.Err())
			}
			return nil // Ctrl-C
		}
	}
}

// publishCounter publishes 0, 1, 2... to topic at QoS 1, one every interval,
// until ctx ends.
func publishCounter(ctx context.Context, c *mqttas.Client, topic string, interval time.Duration, out io.Writer) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(out, "publish", n)
		if err := c.Publish(ctx, topic, fmt.Appendf(nil, "%d", n), 1, false); err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(out, "publish %d failed: %v\n", n, err)
			}
			return
		}
	}
}

// disconnect ends the session politely, waiting at most a few seconds for
// a broker that has gone away.
func disconnect(c *mqttas.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}
