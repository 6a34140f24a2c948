package main

import (
	"fmt"
	"slices"
	"syscall"

	"github.com/mqttas/mqttas/internal/mosquitto"
)

// brokerLimits are the lines added to the generated mosquitto.conf. They
// take away every limit mosquitto 2.0 would otherwise apply, so that what
// is measured is the client, not the broker's flow control (see
// mosquitto.conf(5)):
//
//   - max_inflight_messages 0: no cap on outgoing QoS 1 and 2 messages in
//     flight to one client (default 20).
//   - max_queued_messages 0: no cap on messages queued for one client
//     (default 1000). mosquitto 2.0 counts QoS 0 messages waiting to be
//     written to a slow subscriber against it too, and silently drops
//     them beyond it, which would make the QoS 0 row count the broker's
//     losses as the client's.
//   - max_connections -1: any number of clients (the default, written out
//     because -scaling connects 1,000).
//   - set_tcp_nodelay: see brokerNoDelay.
//   - sys_interval 0: no $SYS publishing in the background.
//
// max_packet_size, max_inflight_bytes, max_queued_bytes and memory_limit
// are left unset, which means no limit. The broker also logs only errors
// and warnings (Options.Quiet): with mosquitto's per-packet log, writing
// the log would be most of the broker's work.
var brokerLimits = []string{
	"max_inflight_messages 0",
	"max_queued_messages 0",
	"max_connections -1",
	"sys_interval 0",
}

// brokerNoDelay is the one line that makes the second broker. mosquitto's
// default leaves Nagle's algorithm on: it holds a small packet back while
// an earlier one is unacknowledged, so a stream of small packets reaches a
// subscriber a few dozen per segment. That suits throughput, and it is
// what a default deployment does, so the throughput rows use it. But when
// the broker writes two packets in a row to a client that has nothing to
// send (a PUBACK, then the client's own message coming back), the second
// waits for the client's delayed ACK, up to 40 ms, and the round trip
// measures the kernel's timer rather than the client. The latency rows
// therefore use a broker with set_tcp_nodelay true, and so does one
// extra QoS 0 row, to show what per-packet segments cost every client.
const brokerNoDelay = "set_tcp_nodelay true"

// startBroker runs mosquitto on a free loopback port with brokerLimits,
// and with TCP_NODELAY when noDelay is set.
func startBroker(noDelay bool) (*mosquitto.Broker, error) {
	extra := brokerLimits
	if noDelay {
		extra = append(slices.Clone(extra), brokerNoDelay)
	}
	return mosquitto.New(mosquitto.Options{Quiet: true, Extra: extra})
}

// raiseFileLimit raises this process's soft limit on open files to at
// least want, up to the hard limit. mosquitto, started afterwards,
// inherits it: 1,000 connections need 1,000 descriptors on each side.
func raiseFileLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < want {
		return fmt.Errorf("open files limited to %d by the hard limit, want %d", lim.Cur, want)
	}
	return nil
}
