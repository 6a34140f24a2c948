// Command range-demo is mqtt_as's range test (range.py, range_ex.py) for
// mqttas: walk a device away from the access point and back, and see the
// link go down and up while nothing published is lost.
//
// With no flags it needs nothing installed: it starts an embedded broker on
// loopback, puts a simulated flaky radio link between it and the client
// (-link good, edge-of-range or awful), and runs mqtt_as's "PC side" in the
// same process: a publisher to foo_topic and a watcher of shed, which is
// how the end-of-run summary knows that lost is 0.
//
//	go run ./cmd/range-demo
//	go run ./cmd/range-demo -link awful -duration 2m -report range.html
//	go run ./cmd/range-demo -server broker.local:1883 -user u -password p
//
// Every -interval (5 s) the client publishes to shed at QoS 1 a line such as
//
//	12 repubs: 0 outages: 1 discards: 0 mem: 1052312 rssi: -56 dBm reconnects: 1 last_outage: 3.2s puback: 0.41ms id: rangedemo1a2b3c4d
//
// (a JSON object with -json), prints "We are connected to broker." and
// "WiFi or broker is down." as the link changes, and prints each message on
// foo_topic as mqtt_as does. RSSI comes from /proc/net/wireless where Linux
// has it. On Ctrl-C or after -duration it heals the link, waits for the last
// PUBACK and prints a summary: published, acknowledged, received by the
// watcher, lost, duplicates, outages, repubs, reconnects and PUBACK latency.
// -report writes the run's timeline as a self-contained HTML page.
//
// The exit status is 0 for a clean run, 1 when something failed (including
// any lost message), and 2 for a bad command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its environment passed in; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "range-demo: %v\nrun 'range-demo -h' to see the flags\n", err)
		return 2
	}

	// The first Ctrl-C ends the run gracefully; a second one stops waiting.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	hurryCtx, hurry := context.WithCancel(context.Background())
	defer hurry()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		for _, cancel := range []context.CancelFunc{stop, hurry} {
			select {
			case <-sig:
				cancel()
			case <-finished:
				return
			}
		}
	}()

	var logTo io.Writer
	if o.verbose {
		logTo = stderr
	}
	if _, err := runDemo(ctx, hurryCtx, o, stdout, logTo); err != nil {
		fmt.Fprintf(stderr, "range-demo: %v\n", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}
