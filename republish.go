package mqttas

import (
	"errors"

	"github.com/mqttas/mqttas/packet"
)

// The broker's Receive Maximum (MQTT 5.0) caps the QoS 1 and 2 messages
// in flight on a connection, from PUBLISH to PUBACK or PUBCOMP. Each conn
// counts its own, under session.mu: a message is counted on the
// connection it was last sent on, so an outage resets the count and the
// resends after it are counted afresh. quota 0 means no limit (3.1.1).

// full reports whether cn can take no more messages, with a channel
// closed when one finishes.
func (cn *conn) fullLocked() (bool, <-chan struct{}) {
	if cn.quota == 0 || cn.inflight < cn.quota {
		return false, nil
	}
	if cn.freed == nil {
		cn.freed = make(chan struct{})
	}
	return true, cn.freed
}

// moveLocked makes cn the connection p is counted on.
func (s *session) moveLocked(p *pending, cn *conn) {
	if p.conn == cn {
		return
	}
	if p.conn != nil && p.kind <= awaitPubcomp {
		p.conn.releaseLocked()
	}
	p.conn = cn
	if p.kind <= awaitPubcomp {
		cn.inflight++
	}
}

func (cn *conn) releaseLocked() {
	cn.inflight--
	if cn.freed != nil {
		close(cn.freed)
		cn.freed = nil
	}
}

// outPacket is what a send decision produced, by value, so that deciding
// and encoding a message allocates nothing.
type outPacket struct {
	t   packet.Type // 0: nothing to send
	pub packet.Publish
	id  uint16 // PUBREL's identifier
}

// packetLocked fills out with what sending p now means: PUBREL once
// PUBREC has arrived, else the PUBLISH, with DUP set when this identifier
// has been sent before. Called with s.mu held.
func (p *pending) packetLocked(dup bool, out *outPacket) {
	switch p.kind {
	case awaitPubcomp:
		out.t, out.id = packet.PUBREL, p.id
		return
	case awaitSuback:
		p.sub.PacketID = p.id
		out.t = packet.SUBSCRIBE
		return
	case awaitUnsuback:
		p.uns.PacketID = p.id
		out.t = packet.UNSUBSCRIBE
		return
	}
	out.t, out.pub = packet.PUBLISH, p.pub
	if out.pub.QoS > 0 {
		out.pub.PacketID, out.pub.Dup = p.id, dup
	}
}

// How sendPending chooses what to send.
type sendMode byte

const (
	sendClaim  sendMode = iota // the caller's first send on a connection
	sendAgain                  // the caller's resend after ResponseTime
	sendResume                 // the supervisor's resend on a new connection
)

// sendResult is what sendPending did besides queueing.
type sendResult struct {
	freed <-chan struct{} // the Receive Maximum is reached: wait on this
	again bool            // sendAgain: keep waiting
	sent  bool            // something was queued
}

// sendPending decides, under the write lock, what sending p on cn means
// now, and queues it; see writer for why deciding and queueing are one
// step. wait is commitLocked's. An encoding error that makes the message
// unsendable is returned as it is; a dead link returns errLinkDown.
func (cn *conn) sendPending(p *pending, mode sendMode, limit int, wait bool) (sendResult, error) {
	var res sendResult
	if err := cn.lockW(); err != nil {
		return res, err
	}
	var out outPacket
	s := cn.c.sess
	s.mu.Lock()
	switch mode {
	case sendClaim:
		res.freed = s.claimLocked(p, cn, &out)
	case sendAgain:
		res.again = s.resendLocked(p, cn, limit, cn.c.version == packet.V5, &out)
	case sendResume:
		s.resumeLocked(p, cn, &out)
	}
	wait = wait || p.once // done once written: wait for the write
	var sub *packet.Subscribe
	var uns *packet.Unsubscribe
	switch out.t {
	case packet.SUBSCRIBE:
		sub = p.sub
	case packet.UNSUBSCRIBE:
		uns = p.uns
	}
	s.mu.Unlock()
	var err error
	switch out.t {
	case 0:
		cn.w.mu.Unlock()
		return res, nil
	case packet.PUBLISH:
		err = cn.appendPublishLocked(&out.pub)
	case packet.PUBREL:
		cn.appendAckLocked(packet.PUBREL, out.id)
	case packet.SUBSCRIBE:
		err = cn.appendLocked(sub)
	case packet.UNSUBSCRIBE:
		err = cn.appendLocked(uns)
	}
	if err != nil {
		cn.w.mu.Unlock()
		return res, err
	}
	res.sent = true
	return res, cn.commitLocked(wait)
}

// resumeLocked is the supervisor's decision for p on a new connection
// cn; see resendAll.
func (s *session) resumeLocked(p *pending, cn *conn, out *outPacket) {
	if !s.hasLocked(p) {
		return // finished meanwhile
	}
	if !cn.sessionPresent && p.kind == awaitPubcomp {
		// The broker took the message (PUBREC) and has since lost the
		// session that would answer a PUBREL. Publishing it again could
		// duplicate it; there is nothing left to complete.
		s.finishLocked(p, nil)
		return
	}
	if p.orphan && !cn.sessionPresent {
		s.finishLocked(p, nil) // given up on, and forgotten by the broker
		return
	}
	if full, _ := cn.fullLocked(); full {
		return // its own Publish sends it when a slot frees
	}
	if err := cn.admitLocked(p); err != nil {
		s.finishLocked(p, err)
		return
	}
	if !cn.sessionPresent {
		s.ids.del(p)
		p.id = s.newIDLocked()
		s.ids.put(p)
	}
	// A message published during the outage was never sent: this is
	// its first transmission, not a resend, so no DUP and no repub.
	s.sendLocked(p, cn, out)
}

// resendAll is run by the supervisor on a new connection before it is
// published as up. With the session resumed, MQTT 3.1.1 section 4.4 wants
// every unacknowledged PUBLISH and PUBREL resent with its original
// identifier, in order. Without it the broker has forgotten them: messages
// are published again as new ones, on new identifiers (mqtt_as's rule, which
// "proved necessary for Mosquitto"), except that a QoS 2 message whose
// PUBREC arrived is never published again; its PUBREL is resent.
func (c *Client) resendAll(cn *conn) error {
	s := c.sess
	for _, p := range s.outgoing() {
		_, err := cn.sendPending(p, sendResume, 0, false)
		if err == nil {
			s.doneIfOnce(p)
		}
		if errors.Is(err, ErrPacketTooLarge) {
			// The new broker's limit is below this message: it can never
			// be sent there, and must not hold up the rest.
			s.finish(p, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// claimLocked decides whether the caller waiting on p must send it on cn:
// not when the supervisor already resent it there. When cn's Receive
// Maximum is reached it sends nothing and returns a channel to wait on.
func (s *session) claimLocked(p *pending, cn *conn, out *outPacket) <-chan struct{} {
	if p.conn == cn || !s.hasLocked(p) {
		return nil
	}
	if p.kind <= awaitPubcomp {
		if full, freed := cn.fullLocked(); full {
			return freed
		}
		if err := cn.admitLocked(p); err != nil {
			s.finishLocked(p, err)
			return nil
		}
	}
	s.sendLocked(p, cn, out)
	return nil
}

// sendLocked is p's first send on cn: a first transmission, or a resend
// of a message sent on an earlier connection (DUP when the broker kept the
// session, and counted in Stats.Repubs either way).
func (s *session) sendLocked(p *pending, cn *conn, out *outPacket) {
	resend := p.conn != nil
	s.moveLocked(p, cn)
	p.sends = 1
	if !resend || p.kind > awaitPubcomp {
		p.packetLocked(false, out)
		return
	}
	s.repubs.Add(1)
	p.packetLocked(cn.sessionPresent && p.kind != awaitPubcomp, out)
}

// doneIfOnce ends a message the broker's Maximum QoS turned into QoS 0,
// once it has been written.
func (s *session) doneIfOnce(p *pending) {
	s.mu.Lock()
	if p.once && p.conn != nil {
		s.finishLocked(p, nil)
	}
	s.mu.Unlock()
}

// resendLocked is the caller's retry on a live link after ResponseTime
// without an answer: it fills out with the packet to send again and
// reports whether to keep waiting; false when p is no longer on cn or its
// rounds are used up. MQTT 5.0 forbids resending on a live link
// [MQTT-4.4.0-1], so there the rounds only measure how long to wait
// before declaring the link dead, and nothing is sent.
func (s *session) resendLocked(p *pending, cn *conn, limit int, v5 bool, out *outPacket) bool {
	if p.conn != cn || !s.hasLocked(p) || p.sends > limit {
		return false
	}
	p.sends++
	if !v5 {
		p.packetLocked(true, out)
	}
	return true
}
