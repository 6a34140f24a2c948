package mqttas

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// writer is a connection's write side. Packets are encoded into a shared
// buffer under mu, and whoever finds no write in progress writes the
// buffer out (group commit): a lone packet goes out at once, in its own
// Write, while packets queued during a Write all go out together in the
// next one. Many publishers then cost one syscall per batch rather than
// one per packet, with no goroutine of its own and no timer.
//
// The order in the buffer is the order on the wire, and a packet decided
// from session state is decided and queued under mu in one step, so the
// reader, which answers acknowledgements through the same lock, cannot
// advance an exchange between the two (a QoS 2 PUBLISH decided before its
// PUBREC arrived is queued before the PUBREL). Lock order: mu, then
// session.mu.
type writer struct {
	mu       sync.Mutex
	cond     sync.Cond // on mu: broadcast when a Write finishes
	buf      []byte    // queued packets, not yet taken by the flusher
	spare    []byte    // the flusher's buffer, swapped with buf
	flushing bool      // a goroutine is writing; buf non-empty implies it
	queued   uint64    // bytes ever committed to the queue
	written  uint64    // bytes ever written
	counted  int       // the part of buf already in queued
	failed   bool      // a Write failed: nothing more goes out
	// Whether senders are queueing behind each other: packets were queued
	// during the current Write (behind), or goroutines woken by a Write
	// have not yet run to return (waiters). busy is their verdict at the
	// end of the last Write.
	waiters int
	behind  bool
	busy    bool
	// acked counts exchanges the reader completed since the last Write
	// began: their publishers, just woken, are likely to send again.
	acked atomic.Int32
}

// keepBuf caps the buffers a connection keeps between bursts; one huge
// packet must not pin its size for the life of the connection.
const keepBuf = 64 << 10

// lockW takes the write lock for queueing packets, or reports that the
// connection is dead; on error the lock is not held.
//
// While a Write is in progress and keepBuf bytes are already queued behind
// it, it waits for that Write first: the queue then never holds more than
// keepBuf plus one packet, whatever the number of publishers or the size
// of their payloads.
func (cn *conn) lockW() error { return cn.lockWRoom(true) }

// lockWRoom is lockW; without room it queues however much is queued
// already, for the reader, which must never wait on the socket's write
// side (see writeAck).
func (cn *conn) lockWRoom(room bool) error {
	w := &cn.w
	w.mu.Lock()
	for room && w.flushing && len(w.buf) >= keepBuf && !w.failed {
		w.waiters++
		w.cond.Wait()
		w.waiters--
	}
	if w.failed || cn.dead() {
		w.mu.Unlock()
		return errLinkDown
	}
	return nil
}

// appendLocked encodes p onto the queue. An encoding error, or a packet
// over the broker's Maximum Packet Size, leaves the queue as it was.
func (cn *conn) appendLocked(p packet.Packet) error {
	n := len(cn.w.buf)
	buf, err := p.AppendTo(cn.w.buf, cn.c.version)
	return cn.checkAppended(buf, n, p.Type(), err)
}

// appendPublishLocked is appendLocked for a PUBLISH, with the connection's
// outgoing topic aliases applied. Its concrete type keeps pub off the heap.
func (cn *conn) appendPublishLocked(pub *packet.Publish) error {
	var newAlias uint16
	var aliased packet.Publish
	out := pub
	if cn.link.TopicAliasMaximum > 0 && cn.c.cfg.TopicAliases {
		var use bool
		if use, newAlias = cn.aliasLocked(pub, &aliased); use {
			out = &aliased
		}
	}
	n := len(cn.w.buf)
	buf, err := out.AppendTo(cn.w.buf, cn.c.version)
	if err := cn.checkAppended(buf, n, packet.PUBLISH, err); err != nil {
		return err
	}
	if newAlias != 0 {
		// The PUBLISH defining it is queued ahead of any use of it.
		if cn.outAliases == nil {
			cn.outAliases = make(map[string]uint16)
		}
		cn.outAliases[pub.Topic] = newAlias
	}
	return nil
}

// appendAckLocked queues one of the four publish acknowledgements with
// success and no properties, which both versions encode in four bytes.
func (cn *conn) appendAckLocked(t packet.Type, id uint16) {
	flags := byte(0)
	if t == packet.PUBREL {
		flags = 0x02
	}
	cn.w.buf = append(cn.w.buf, byte(t)<<4|flags, 2, byte(id>>8), byte(id))
}

func (cn *conn) checkAppended(buf []byte, n int, t packet.Type, err error) error {
	if err != nil {
		cn.w.buf = buf[:n]
		return err
	}
	if size := len(buf) - n; cn.maxOut > 0 && size > cn.maxOut {
		// Sending it would only get the connection closed (0x95).
		cn.w.buf = buf[:n]
		return fmt.Errorf("mqttas: %s of %d bytes exceeds the broker's Maximum Packet Size of %d: %w", t, size, cn.maxOut, ErrPacketTooLarge)
	}
	cn.w.buf = buf
	return nil
}

// commitLocked sends what is queued and releases the write lock. With
// wait it returns once the bytes queued so far are written, or
// errLinkDown if the connection failed first; without, it may return
// while another goroutine's Write carries them, and a failure shows as
// the connection's death. Either way the bytes are never left behind: the
// flusher writes until the queue is empty.
func (cn *conn) commitLocked(wait bool) error {
	w := &cn.w
	w.queued += uint64(len(w.buf) - w.counted)
	w.counted = len(w.buf)
	mine := w.queued
	if len(w.buf) == 0 && !w.flushing {
		w.mu.Unlock() // nothing was queued
		return nil
	}
	if w.flushing {
		if !wait {
			w.behind = true
			w.mu.Unlock()
			return nil
		}
		w.waiters++
		for w.written < mine && !w.failed {
			w.cond.Wait()
		}
		w.waiters--
		failed := w.written < mine
		w.mu.Unlock()
		if failed {
			return errLinkDown
		}
		return nil
	}
	w.flushing = true
	if w.acked.Swap(0) > 1 || w.busy {
		// Others were queueing behind the last Write, or several
		// publishers were just woken by their acknowledgements: they are
		// about to queue again, so let them, and this Write carries their
		// packets too instead of this one alone. With nobody else
		// runnable Gosched returns at once, so a lone publish is not
		// delayed; one acknowledgement alone (a sequential publisher)
		// does not count.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	var werr error
	for len(w.buf) > 0 && !w.failed {
		out := w.buf
		w.buf, w.spare, w.counted = w.spare[:0], nil, 0
		w.mu.Unlock()
		werr = cn.writeOut(out)
		w.mu.Lock()
		if cap(out) <= keepBuf {
			w.spare = out
		}
		if werr != nil {
			w.failed = true // nothing more goes out: the waiters are released
		} else {
			w.written += uint64(len(out))
		}
		if w.waiters > 0 {
			w.cond.Broadcast() // written, and room in the queue
		}
	}
	if w.failed {
		w.buf, w.counted = w.buf[:0], 0
	}
	if cap(w.buf) > keepBuf {
		w.buf = nil
	}
	w.flushing = false
	w.busy, w.behind = w.behind || w.waiters > 0, false
	w.cond.Broadcast()
	failed := w.written < mine
	w.mu.Unlock()
	if failed {
		return errLinkDown
	}
	return nil
}

// writeOut writes one batch within ResponseTime; a failure kills the link.
func (cn *conn) writeOut(b []byte) error {
	cn.nc.SetWriteDeadline(time.Now().Add(cn.c.cfg.ResponseTime))
	if _, err := cn.nc.Write(b); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			err = fmt.Errorf("broker stopped reading: write not finished within ResponseTime %v", cn.c.cfg.ResponseTime)
		}
		cn.fail(fmt.Errorf("write: %w", err))
		return err
	}
	cn.lastTx.Store(cn.c.now())
	return nil
}

// write sends one packet and waits until it is written. An encoding error
// is returned as it is and leaves the link alone; a write error kills the
// link and returns errLinkDown.
func (cn *conn) write(p packet.Packet) error {
	if err := cn.lockW(); err != nil {
		return err
	}
	if err := cn.appendLocked(p); err != nil {
		cn.w.mu.Unlock()
		return err
	}
	return cn.commitLocked(true)
}

// writePublish is write for a PUBLISH; see appendPublishLocked.
func (cn *conn) writePublish(pub *packet.Publish) error {
	if err := cn.lockW(); err != nil {
		return err
	}
	if err := cn.appendPublishLocked(pub); err != nil {
		cn.w.mu.Unlock()
		return err
	}
	return cn.commitLocked(true)
}

// writeAck queues a publish acknowledgement for the reader, which sends
// them all, and does not wait for a Write in progress to finish: a reader
// blocked on the write side would stop reading, and a broker whose writes
// to the client then fill up may stop reading in turn, which no deadline
// short of ResponseTime would break. Whatever the application does next
// (Disconnect, a publish) is queued behind the acknowledgement, so it
// still reaches the broker first.
func (cn *conn) writeAck(t packet.Type, id uint16) error {
	if err := cn.lockWRoom(false); err != nil {
		return err
	}
	cn.appendAckLocked(t, id)
	return cn.commitLocked(false)
}
