package mqttas

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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

	// done receives one value when the exchange is over; only the one
	// caller waiting on the entry receives from it. A buffered channel
	// rather than a closed one lets a finished entry be reused.
	done     chan struct{}
	finished bool
	err      error // its outcome, set before done is signalled
	codes    []packet.ReasonCode
	reason   string // the ack's MQTT 5.0 Reason String

	timer *time.Timer // the caller's resend timer, kept with the entry
}

// Publishes reuse their entries, channel and timer included, so a QoS 1
// or 2 message in steady state allocates nothing for its bookkeeping.
var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// newPending returns a fresh entry of kind for the message pub.
func newPending(kind pendingKind, pub *packet.Publish) *pending {
	p := pendingPool.Get().(*pending)
	p.kind = kind
	p.pub = *pub
	return p
}

// recycle returns p to the pool. Only its waiter may call it, after it
// received the done signal: the entry has then left the session, and
// nothing else holds it except snapshots that check the session first.
func (p *pending) recycle() {
	*p = pending{done: p.done, timer: p.timer, codes: p.codes[:0]}
	pendingPool.Put(p)
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
	ids        idTable
	rxQoS2     map[uint16]struct{} // delivered, PUBREL not yet received
}

func newSession(repubs *atomic.Uint64, maxOrphans int) *session {
	return &session{repubs: repubs, maxOrphans: maxOrphans, rxQoS2: make(map[uint16]struct{})}
}

// idTable holds the entries in use, each in the slot its identifier picks
// (id modulo the table size). The client chooses its identifiers, so it
// chooses only those whose slot is free, and a lookup is one index with
// no hashing. The table doubles when half full; doubling keeps entries
// apart, since identifiers in different slots differ in their low bits.
type idTable struct {
	slots []*pending
	n     int
}

func (t *idTable) get(id uint16) *pending {
	if len(t.slots) == 0 {
		return nil
	}
	if p := t.slots[int(id)&(len(t.slots)-1)]; p != nil && p.id == id {
		return p
	}
	return nil
}

func (t *idTable) free(id uint16) bool {
	return len(t.slots) > 0 && t.slots[int(id)&(len(t.slots)-1)] == nil
}

func (t *idTable) put(p *pending) {
	t.slots[int(p.id)&(len(t.slots)-1)] = p
	t.n++
}

func (t *idTable) del(p *pending) {
	t.slots[int(p.id)&(len(t.slots)-1)] = nil
	t.n--
}

// reserve makes room for one more entry.
func (t *idTable) reserve() {
	if 2*(t.n+1) <= len(t.slots) {
		return
	}
	size := max(64, 2*len(t.slots))
	if size > 1<<16 {
		return // every identifier has its own slot already
	}
	slots := make([]*pending, size)
	for _, p := range t.slots {
		if p != nil {
			slots[int(p.id)&(size-1)] = p
		}
	}
	t.slots = slots
}

// newIDLocked returns the next identifier not in use whose slot is free.
// Callers bound the number in use (MaxInflight for publishes) well below
// 65,535, and the table is at most half full, so the loop ends within
// one table's length.
func (s *session) newIDLocked() uint16 {
	s.ids.reserve()
	for {
		s.next++
		if s.next == 0 {
			s.next = 1
		}
		if s.ids.free(s.next) {
			return s.next
		}
	}
}

// add registers p under a fresh identifier.
func (s *session) add(p *pending) {
	if p.done == nil {
		p.done = make(chan struct{}, 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.id = s.newIDLocked()
	s.seq++
	p.seq = s.seq
	s.ids.put(p)
}

// has reports whether p is still in the session under its identifier.
func (s *session) hasLocked(p *pending) bool { return s.ids.get(p.id) == p }

// signalLocked ends the wait on p with err, once.
func (p *pending) signalLocked(err error) {
	if !p.finished {
		p.finished = true
		p.err = err
		p.done <- struct{}{}
	}
}

// finishLocked ends p's exchange with err and frees its identifier, and
// its Receive Maximum slot with it.
func (s *session) finishLocked(p *pending, err error) {
	if s.hasLocked(p) {
		s.ids.del(p)
		if p.kind <= awaitPubcomp && p.conn != nil {
			p.conn.releaseLocked()
		}
		if p.orphan {
			s.orphans--
		}
	}
	p.signalLocked(err)
}

func (s *session) finish(p *pending, err error) {
	s.mu.Lock()
	s.finishLocked(p, err)
	s.mu.Unlock()
}

// abandon ends the wait on p with err, for a caller that gives up. A
// message already sent becomes an orphan instead of being forgotten.
func (s *session) abandon(p *pending, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasLocked(p) || p.conn == nil || p.kind > awaitPubcomp || s.orphans >= s.maxOrphans {
		// Never sent, not a message, or too many orphans already: a
		// broker that never answers must not exhaust the identifiers.
		s.finishLocked(p, err)
		return
	}
	p.orphan = true
	s.orphans++
	p.signalLocked(err)
}

// lookupLocked returns the entry for id if it awaits one of kinds.
func (s *session) lookupLocked(id uint16, kinds ...pendingKind) *pending {
	p := s.ids.get(id)
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
	for _, p := range s.ids.slots {
		if p != nil && p.kind <= awaitPubcomp {
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
	for _, p := range s.ids.slots {
		if p != nil && p.kind <= awaitPubcomp {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
	return ps
}

// closeAll ends every exchange with err.
func (s *session) closeAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.ids.slots {
		if p != nil {
			s.finishLocked(p, err)
		}
	}
}
