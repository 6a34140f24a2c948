package mqttas

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mqttas/mqttas/packet"
)

// What an in-flight entry is waiting for.
type pendingKind byte

const (
	awaitPuback  pendingKind = iota + 1 // QoS 1 PUBLISH sent
	awaitPubrec                         // QoS 2 PUBLISH sent
	awaitPubcomp                        // QoS 2 PUBREL sent: the PUBLISH is never sent again
	awaitSuback
	awaitUnsuback
)

// pending is one packet identifier in use: an outgoing QoS 1 or 2 message,
// or a SUBSCRIBE/UNSUBSCRIBE awaiting its ack. Fields after id are guarded
// by session.mu.
type pending struct {
	id   uint16
	seq  uint64 // order of creation: resends after a reconnect keep it
	kind pendingKind
	pub  packet.Publish      // the message, for awaitPuback/awaitPubrec/awaitPubcomp
	sub  *packet.Subscribe   // for awaitSuback
	uns  *packet.Unsubscribe // for awaitUnsuback

	conn  *conn // the connection it was last sent on
	sends int   // sends on that connection
	// orphan marks a message whose Publish gave up (ctx, Close) after it
	// was sent: nobody waits for it any more, but it keeps its identifier
	// and its Receive Maximum slot until the broker answers, and a resumed
	// session completes its exchange, so the broker never sees the
	// identifier reused while it still holds the message.
	orphan bool
	// once is set when the broker's Maximum QoS made this a QoS 0
	// message: it is done as soon as it is written.
	once bool

	done   chan struct{} // closed when the exchange is over
	err    error         // its outcome, set before done is closed
	codes  []packet.ReasonCode
	reason string // the ack's MQTT 5.0 Reason String
}

// session is the client's half of the MQTT session: the packet identifiers
// in use and the incoming QoS 2 messages awaiting PUBREL. It outlives
// connections, which is what lets a resumed session resend with the
// original identifiers.
type session struct {
	repubs     *atomic.Uint64 // the client's Stats.Repubs
	maxOrphans int            // MaxInflight: orphans never crowd out the identifier space
	mu         sync.Mutex
	orphans    int
	next       uint16
	seq        uint64
	byID       map[uint16]*pending
	rxQoS2     map[uint16]struct{} // delivered, PUBREL not yet received
}

func newSession(repubs *atomic.Uint64, maxOrphans int) *session {
	return &session{repubs: repubs, maxOrphans: maxOrphans, byID: make(map[uint16]*pending), rxQoS2: make(map[uint16]struct{})}
}

// newIDLocked returns the next identifier not in use. Callers bound the
// number in use (MaxInflight for publishes) well below 65,535, so the loop
// always finds one.
func (s *session) newIDLocked() uint16 {
	for {
		s.next++
		if s.next == 0 {
			s.next = 1
		}
		if _, used := s.byID[s.next]; !used {
			return s.next
		}
	}
}

// add registers p under a fresh identifier.
func (s *session) add(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.id = s.newIDLocked()
	s.seq++
	p.seq = s.seq
	p.done = make(chan struct{})
	s.byID[p.id] = p
}

// finishLocked ends p's exchange with err and frees its identifier, and
// its Receive Maximum slot with it.
func (s *session) finishLocked(p *pending, err error) {
	if s.byID[p.id] == p {
		delete(s.byID, p.id)
		if p.kind <= awaitPubcomp && p.conn != nil {
			p.conn.releaseLocked()
		}
		if p.orphan {
			s.orphans--
		}
	}
	select {
	case <-p.done:
	default:
		p.err = err
		close(p.done)
	}
}

// abandon ends the wait on p with err, for a caller that gives up. A
// message already sent becomes an orphan instead of being forgotten.
func (s *session) abandon(p *pending, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[p.id] != p || p.conn == nil || p.kind > awaitPubcomp || s.orphans >= s.maxOrphans {
		// Never sent, not a message, or too many orphans already: a
		// broker that never answers must not exhaust the identifiers.
		s.finishLocked(p, err)
		return
	}
	p.orphan = true
	s.orphans++
	select {
	case <-p.done:
	default:
		p.err = err
		close(p.done)
	}
}

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

func (s *session) finish(p *pending, err error) {
	s.mu.Lock()
	s.finishLocked(p, err)
	s.mu.Unlock()
}

// take returns the entry for id if it awaits one of kinds.
func (s *session) lookupLocked(id uint16, kinds ...pendingKind) *pending {
	p := s.byID[id]
	if p == nil || !slices.Contains(kinds, p.kind) {
		return nil
	}
	return p
}

// inFlight counts the messages awaiting acknowledgement.
func (s *session) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.byID {
		if p.kind <= awaitPubcomp {
			n++
		}
	}
	return n
}

// outgoing returns the unfinished message entries in the order they were
// first sent, for resending after a reconnect.
func (s *session) outgoing() []*pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*pending
	for _, p := range s.byID {
		if p.kind <= awaitPubcomp {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
	return ps
}

// packetFor builds what sending p now means: PUBREL once PUBREC has
// arrived, else the PUBLISH, with DUP set when this identifier has been
// sent before. Called with s.mu held.
func (p *pending) packetLocked(dup bool) packet.Packet {
	switch p.kind {
	case awaitPubcomp:
		return &packet.Pubrel{PacketID: p.id}
	case awaitSuback:
		p.sub.PacketID = p.id
		return p.sub
	case awaitUnsuback:
		p.uns.PacketID = p.id
		return p.uns
	}
	pub := p.pub
	if pub.QoS > 0 {
		pub.PacketID, pub.Dup = p.id, dup
	}
	return &pub
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
		err := cn.send(func() packet.Packet {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.byID[p.id] != p {
				return nil // finished meanwhile
			}
			if !cn.sessionPresent && p.kind == awaitPubcomp {
				// The broker took the message (PUBREC) and has since lost the
				// session that would answer a PUBREL. Publishing it again could
				// duplicate it; there is nothing left to complete.
				s.finishLocked(p, nil)
				return nil
			}
			if p.orphan && !cn.sessionPresent {
				s.finishLocked(p, nil) // given up on, and forgotten by the broker
				return nil
			}
			if full, _ := cn.fullLocked(); full {
				return nil // its own Publish sends it when a slot frees
			}
			if err := cn.admitLocked(p); err != nil {
				s.finishLocked(p, err)
				return nil
			}
			if !cn.sessionPresent {
				delete(s.byID, p.id)
				p.id = s.newIDLocked()
				s.byID[p.id] = p
			}
			// A message published during the outage was never sent: this is
			// its first transmission, not a resend, so no DUP and no repub.
			return s.sendLocked(p, cn)
		})
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

// claimSend decides whether the caller waiting on p must send it on cn:
// not when the supervisor already resent it there. When cn's Receive
// Maximum is reached it sends nothing and returns a channel to wait on.
func (s *session) claimSend(p *pending, cn *conn) (packet.Packet, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.conn == cn || s.byID[p.id] != p {
		return nil, nil
	}
	if p.kind <= awaitPubcomp {
		if full, freed := cn.fullLocked(); full {
			return nil, freed
		}
		if err := cn.admitLocked(p); err != nil {
			s.finishLocked(p, err)
			return nil, nil
		}
	}
	return s.sendLocked(p, cn), nil
}

// sendLocked is p's first send on cn: a first transmission, or a resend
// of a message sent on an earlier connection (DUP when the broker kept the
// session, and counted in Stats.Repubs either way).
func (s *session) sendLocked(p *pending, cn *conn) packet.Packet {
	resend := p.conn != nil
	s.moveLocked(p, cn)
	p.sends = 1
	if !resend || p.kind > awaitPubcomp {
		return p.packetLocked(false)
	}
	s.repubs.Add(1)
	return p.packetLocked(cn.sessionPresent && p.kind != awaitPubcomp)
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

// resend is the caller's retry on a live link after ResponseTime without an
// answer: the packet to send again, and whether to keep waiting; false
// when p is no longer on cn or its rounds are used up. MQTT 5.0 forbids
// resending on a live link [MQTT-4.4.0-1], so there the rounds only
// measure how long to wait before declaring the link dead, and nothing is
// sent.
func (s *session) resend(p *pending, cn *conn, limit int, v5 bool) (packet.Packet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.conn != cn || s.byID[p.id] != p || p.sends > limit {
		return nil, false
	}
	p.sends++
	if v5 {
		return nil, true
	}
	return p.packetLocked(true), true
}
