// Command persistent-session shows Config.PersistentSession and
// Config.ResumeOnStart: with a persistent session the broker keeps the
// client's subscriptions, and queues the QoS 1 and 2 messages that arrive
// for it, while the client is away; they are delivered when it comes back.
//
// It plays two scenes, with a second client publishing while the first is
// away:
//
//  1. An outage: the network between the client and the broker fails (a
//     fault-injecting proxy from mqttas/mqtttest plays the network) and
//     comes back. The client reconnects by itself, the broker reports the
//     session present, and the messages sent meanwhile arrive.
//  2. A restart: the program's client goes away and a new one starts with
//     the same ClientID and ResumeOnStart, as a device does after a reboot.
//     It gets the backlog too, without subscribing again.
//
// Run it with nothing installed but Go:
//
//	go run ./examples/persistent-session
//
// It starts an embedded broker on loopback, plays both scenes and exits.
// To use a real broker (plain TCP) instead:
//
//	go run ./examples/persistent-session -server broker.local:1883
//
// The client's own log is printed too: look for session_present=true.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// options are the command-line flags.
type options struct {
	server string // "": start an embedded broker
	topic  string
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "", "the broker, `host:port` (default: an embedded broker)")
	flag.StringVar(&o.topic, "topic", "mqttas/examples/persistent-session", "the `topic` the client subscribes to")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "persistent-session: unexpected argument %q; the broker is given with -server host:port\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "persistent-session:", err)
		os.Exit(1)
	}
}

// run is the whole program. It prints to out, which must be safe for
// concurrent writes (os.Stdout is): the client logs to it too.
func run(ctx context.Context, o options, out io.Writer) error {
	if o.server == "" {
		b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{})
		if err != nil {
			return fmt.Errorf("start the embedded broker: %w", err)
		}
		defer b.Close()
		o.server = b.Addr()
		fmt.Fprintf(out, "Embedded broker listening on %s.\n", o.server)
	} else if !isHostPort(o.server) {
		return fmt.Errorf("-server %q: want host:port, such as broker.local:1883", o.server)
	}
	// The whole demo gets a minute; a broker that stops answering ends
	// the program with an error instead of a hang.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	// Someone else publishes while our client is away: a second client,
	// connected to the broker directly, with a clean session.
	other, err := mqttas.New(mqttas.Config{Server: o.server})
	if err != nil {
		return fmt.Errorf("bad -server: %w", err)
	}
	defer disconnect(other)
	if err := other.Connect(ctx); err != nil {
		return fmt.Errorf("cannot connect: %w (is the broker running, and is -server right?)", err)
	}

	// The proxy stands for the network between the client and the broker,
	// so that the demo can cut it. In real life the network does that.
	network, err := mqtttest.NewProxy(o.server)
	if err != nil {
		return fmt.Errorf("start the proxy: %w", err)
	}
	defer network.Close()

	// The session lives at the broker under the ClientID, so a client that
	// means to resume one sets its own (unique: two clients with one ID
	// keep throwing each other off).
	cfg := mqttas.Config{
		Server:            network.Addr(),
		ClientID:          "mqttas-example-" + rand.Text()[:8],
		PersistentSession: true,
		Logger:            slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: noTime})),
	}
	client, err := mqttas.New(cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		return fmt.Errorf("connect through the proxy: %w", err)
	}
	if err := wait(ctx, client.Up()); err != nil { // Connect's own Up; the next comes after the outage
		return err
	}
	if err := client.Subscribe(ctx, o.topic, 1); err != nil {
		return fmt.Errorf("subscribe to %s: %w", o.topic, err)
	}
	fmt.Fprintf(out, "Client %s subscribed to %s at QoS 1.\n", cfg.ClientID, o.topic)

	publish := func(texts []string) error {
		for _, s := range texts {
			// Publish returns on the broker's PUBACK: by then the broker
			// has queued the message for our absent client.
			if err := other.Publish(ctx, o.topic, []byte(s), 1, false); err != nil {
				return fmt.Errorf("publish %q: %w", s, err)
			}
			fmt.Fprintf(out, "   Someone published %q.\n", s)
		}
		return nil
	}

	fmt.Fprintln(out, "\n1. The network fails.")
	network.Refuse(true) // no reconnecting until we say so...
	network.Reset()      // ...and the link is cut
	if err := wait(ctx, client.Down()); err != nil {
		return fmt.Errorf("the client did not notice the outage: %w", err)
	}
	away := []string{"sent during the outage 1", "sent during the outage 2", "sent during the outage 3"}
	if err := publish(away); err != nil {
		return err
	}
	fmt.Fprintln(out, "   The network is back; the client reconnects by itself.")
	network.Refuse(false)
	if err := wait(ctx, client.Up()); err != nil {
		return fmt.Errorf("the client did not reconnect: %w", err)
	}
	if err := receive(ctx, client, away, out); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n2. The client goes away; a new one starts with the same ClientID.")
	// Disconnect, unlike Close, tells the broker the client left on
	// purpose; with a persistent session it still keeps the session.
	if err := client.Disconnect(ctx); err != nil {
		return err
	}
	// Wait until the broker has closed its end too, so it knows the client
	// is gone before anyone publishes.
	if err := network.WaitConns(ctx, 0); err != nil {
		return fmt.Errorf("the broker did not close the connection: %w", err)
	}
	off := []string{"sent while it was off 1", "sent while it was off 2"}
	if err := publish(off); err != nil {
		return err
	}
	// ResumeOnStart makes the first connection resume the session. Without
	// it (the default, mqtt_as's clean_init) a new client starts afresh
	// and the backlog is thrown away.
	cfg.ResumeOnStart = true
	restarted, err := mqttas.New(cfg)
	if err != nil {
		return err
	}
	defer restarted.Close()
	if err := restarted.Connect(ctx); err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	if err := receive(ctx, restarted, off, out); err != nil { // no Subscribe: the session has it
		return err
	}
	if err := restarted.Disconnect(ctx); err != nil {
		return err
	}

	// Leave nothing behind: connecting once with a clean session makes
	// the broker delete the stored one.
	cfg.PersistentSession, cfg.Logger = false, nil
	cleanup, err := mqttas.New(cfg)
	if err != nil {
		return err
	}
	defer cleanup.Close()
	if err := cleanup.Connect(ctx); err != nil {
		return fmt.Errorf("delete the session: %w", err)
	}
	fmt.Fprintln(out, "\nDone; the session is deleted from the broker.")
	return cleanup.Disconnect(ctx)
}

// receive prints messages until each of want has arrived. The broker may
// resend a backlog in any order, and QoS 1 is at least once: a message
// whose acknowledgement was lost with the last connection comes again.
func receive(ctx context.Context, c *mqttas.Client, want []string, out io.Writer) error {
	missing := make(map[string]bool)
	for _, s := range want {
		missing[s] = true
	}
	for len(missing) > 0 {
		select {
		case m := <-c.Messages():
			again := ""
			if !missing[string(m.Payload)] {
				again = " again"
			}
			delete(missing, string(m.Payload))
			fmt.Fprintf(out, "   Received %q%s (QoS %d).\n", m.Payload, again, m.QoS)
		case <-ctx.Done():
			return fmt.Errorf("%d queued messages never came: %w", len(missing), ctx.Err())
		}
	}
	return nil
}

// wait waits for a value on ch, or for ctx to end.
func wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// disconnect ends a session politely, waiting at most a few seconds for a
// broker that has gone away.
func disconnect(c *mqttas.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}

// isHostPort reports whether s is a host and a numeric port, which is what
// the proxy dials. (The client alone would also take a URL.)
func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// noTime drops the time from the client's log lines.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}
