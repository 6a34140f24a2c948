package mqttas

import "sync/atomic"

// Stats is a snapshot of the client's counters.
type Stats struct {
	// Discards counts incoming messages dropped because the Messages
	// channel (or the queue in front of OnMessage) was full.
	Discards uint64
	// Repubs counts resends: DUP resends on a live link and resends after
	// a reconnect.
	Repubs uint64
	// Reconnects counts successful reconnections after an outage.
	Reconnects uint64
	// Outages counts established connections lost.
	Outages uint64
	// InFlight is the number of QoS 1 and 2 messages awaiting
	// acknowledgement.
	InFlight int
	// UnsentBytes is the topic and payload size of messages accepted by
	// Publish but not yet written to the network (waiting for the link or
	// for an in-flight slot).
	UnsentBytes int64
}

type counters struct {
	repubs, reconnects, outages atomic.Uint64
	unsent                      atomic.Int64
}

// Stats returns the current counters.
func (c *Client) Stats() Stats {
	return Stats{
		Discards:    c.msgs.discards.Load(),
		Repubs:      c.stats.repubs.Load(),
		Reconnects:  c.stats.reconnects.Load(),
		Outages:     c.stats.outages.Load(),
		InFlight:    c.sess.inFlight(),
		UnsentBytes: c.stats.unsent.Load(),
	}
}
