// Command callbacks shows Config.OnMessage, the callback alternative to the
// Messages channel, and publishing from inside the callback: the program is
// a small responder that answers each request on <topic>/request with the
// upper-cased text on <topic>/reply, and sends itself a few requests to
// answer.
//
// Run it with nothing installed but Go:
//
//	go run ./examples/callbacks
//
// It starts an embedded broker on loopback, sends three requests, prints
// the replies and exits. To use a real broker instead:
//
//	go run ./examples/callbacks -server broker.local:1883 -count 5
//
// While it runs, anyone may publish to <topic>/request and get an answer.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// options are the command-line flags.
type options struct {
	server string // "": start an embedded broker
	topic  string // the prefix of the request and reply topics
	count  int    // how many requests to send
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "", "the broker, `host:port` (default: an embedded broker)")
	flag.StringVar(&o.topic, "topic", "mqttas/examples/callbacks", "the `prefix` of the request and reply topics")
	flag.IntVar(&o.count, "count", 3, "how many requests to send before exiting")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "callbacks: unexpected argument %q; the broker is given with -server host:port\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "callbacks:", err)
		os.Exit(1)
	}
}

// run is the whole program. It prints to out, which must be safe for
// concurrent writes (os.Stdout is): the callback prints too.
func run(ctx context.Context, o options, out io.Writer) error {
	if o.count < 1 {
		return fmt.Errorf("-count %d: send at least one request", o.count)
	}
	if o.server == "" {
		b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{})
		if err != nil {
			return fmt.Errorf("start the embedded broker: %w", err)
		}
		defer b.Close()
		o.server = b.Addr()
		fmt.Fprintf(out, "Embedded broker listening on %s.\n", o.server)
	}
	// The whole exchange gets a minute; a broker that stops answering
	// ends the program with an error instead of a hang.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	reqTopic, replyTopic := o.topic+"/request", o.topic+"/reply"
	replies := make(chan []byte, 16) // from the callback to run

	// The callback needs the client to publish with, so c is declared
	// first. It is set before Connect, and no message arrives before then.
	var c *mqttas.Client
	onMessage := func(m mqttas.Message) {
		// The rules of OnMessage:
		//   - It runs on a goroutine of its own, never on the client's
		//     reader, so a slow callback cannot stall the connection.
		//   - It gets one message at a time, in order; while it runs, the
		//     next messages wait in a queue of Config.QueueLen, which drops
		//     the oldest (counted in Stats.Discards) when full. So do not
		//     block here for long.
		//   - It may call Publish, Subscribe and Unsubscribe. Publish at
		//     QoS 1 waits for the PUBACK, and through an outage for the
		//     link, so give it a context with a deadline.
		//   - m is the callback's to keep: the client never touches it again.
		switch m.Topic {
		case reqTopic:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			answer := bytes.ToUpper(m.Payload)
			if err := c.Publish(pctx, replyTopic, answer, 1, false); err != nil {
				fmt.Fprintf(out, "responder: reply to %q failed: %v\n", m.Payload, err)
				return
			}
			fmt.Fprintf(out, "responder: %q -> %q\n", m.Payload, answer)
		case replyTopic:
			select {
			case replies <- m.Payload:
			case <-ctx.Done(): // run has given up; never block the callback for good
			}
		}
	}
	c, err := mqttas.New(mqttas.Config{Server: o.server, OnMessage: onMessage})
	if err != nil {
		return fmt.Errorf("bad -server: %w", err)
	}
	defer disconnect(c)
	if err := c.Connect(ctx); err != nil {
		return fmt.Errorf("cannot connect: %w (is the broker running, and is -server right?)", err)
	}
	for _, f := range []string{reqTopic, replyTopic} {
		if err := c.Subscribe(ctx, f, 1); err != nil {
			return fmt.Errorf("subscribe to %s: %w", f, err)
		}
	}

	for i := 1; i <= o.count; i++ {
		req := fmt.Appendf(nil, "hello %d", i)
		fmt.Fprintf(out, "request %q\n", req)
		if err := c.Publish(ctx, reqTopic, req, 1, false); err != nil {
			return fmt.Errorf("publish request %d: %w", i, err)
		}
		if err := awaitReply(ctx, replies, bytes.ToUpper(req)); err != nil {
			return fmt.Errorf("no reply to %q: %w", req, err)
		}
		fmt.Fprintf(out, "reply %q\n", bytes.ToUpper(req))
	}
	return nil
}

// awaitReply waits for want on replies. QoS 1 may deliver a message twice,
// and on a shared broker another responder may answer too, so anything
// else is skipped.
func awaitReply(ctx context.Context, replies <-chan []byte, want []byte) error {
	for {
		select {
		case got := <-replies:
			if bytes.Equal(got, want) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
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
