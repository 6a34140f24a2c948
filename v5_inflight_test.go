package mqttas_test

// The broker's Receive Maximum, checked where it matters: on the broker's
// side of the wire. A scripted broker grants a small Receive Maximum,
// holds its acknowledgements back until the client has been quiet for a
// moment (giving an over-eager client every chance to overshoot), and
// counts the QoS 1 and 2 PUBLISHes it ever had unacknowledged at once.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// v5QuotaBroker is the scripted broker's record.
type v5QuotaBroker struct {
	grant uint16
	quiet time.Duration

	mu   sync.Mutex // guards the fields below
	max  int        // most messages unacknowledged at once
	got  map[string]int
	errs []string
}

func (q *v5QuotaBroker) errorf(format string, args ...any) {
	q.mu.Lock()
	q.errs = append(q.errs, fmt.Sprintf(format, args...))
	q.mu.Unlock()
}

// serve grants Receive Maximum q.grant and completes the exchanges in
// steps, each after q.quiet without a packet from the client: PUBACK for
// QoS 1; PUBREC, then PUBCOMP once PUBREL has come, for QoS 2. A message
// counts as unacknowledged from its PUBLISH to its PUBACK or PUBCOMP.
func (q *v5QuotaBroker) serve(fc *v5Conn) {
	ack := &packet.Connack{}
	ack.Properties.ReceiveMaximum = q.grant
	if _, err := fc.accept(ack); err != nil {
		return
	}
	pkts, stop := fc.stream()
	defer stop()
	type msg struct {
		id       uint16
		qos      byte
		rec, rel bool // PUBREC sent, PUBREL received
	}
	var open []*msg
	quiet := time.NewTimer(q.quiet)
	defer quiet.Stop()
	for {
		select {
		case p, ok := <-pkts:
			if !ok {
				return
			}
			quiet.Reset(q.quiet)
			switch p := p.(type) {
			case *packet.Publish:
				if p.QoS == 0 {
					continue
				}
				for _, m := range open {
					if m.id == p.PacketID {
						q.errorf("PUBLISH id %d while that id was unacknowledged (dup %v)", p.PacketID, p.Dup)
					}
				}
				open = append(open, &msg{id: p.PacketID, qos: p.QoS})
				q.mu.Lock()
				q.max = max(q.max, len(open))
				q.got[string(p.Payload)]++
				q.mu.Unlock()
			case *packet.Pubrel:
				for _, m := range open {
					if m.id == p.PacketID {
						m.rel = true
					}
				}
			default:
				if !fc.answer(p) {
					return
				}
			}
		case <-quiet.C:
			quiet.Reset(q.quiet)
			var still []*msg
			for _, m := range open {
				var reply packet.Packet
				switch {
				case m.qos == 1:
					reply = &packet.Puback{PacketID: m.id}
				case !m.rec:
					reply, m.rec = &packet.Pubrec{PacketID: m.id}, true
					still = append(still, m)
				case m.rel:
					reply = &packet.Pubcomp{PacketID: m.id}
				default:
					still = append(still, m) // PUBREL not here yet
				}
				if fc.send(reply) != nil {
					return
				}
			}
			open = still
		}
	}
}

// TestV5ReceiveMaximumRespected: twenty concurrent Publish calls against a
// broker granting Receive Maximum 2 all succeed, and the broker never has
// more than two of them unacknowledged; for QoS 2, until PUBCOMP.
func TestV5ReceiveMaximumRespected(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run("QoS"+strconv.Itoa(int(qos)), func(t *testing.T) {
			q := &v5QuotaBroker{grant: 2, quiet: 30 * time.Millisecond, got: map[string]int{}}
			f := v5StartFake(t, q.serve)
			// ResponseTime is far beyond the held-back acknowledgements, so
			// the link is never declared dead meanwhile.
			c := v5Connect(t, f.addr(), mqttas.Config{ResponseTime: 10 * time.Second})
			if got := c.Link().ReceiveMaximum; got != 2 {
				t.Fatalf("Link().ReceiveMaximum = %d, want 2", got)
			}
			ctx := fxCtx(t, 20*time.Second)
			const n = 20
			errs := make(chan error, n)
			for i := range n {
				go func() { errs <- c.Publish(ctx, "v5/quota", []byte(strconv.Itoa(i)), qos, false) }()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Errorf("Publish: %v", err)
				}
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.max > 2 || q.max < 2 {
				t.Errorf("broker saw up to %d messages unacknowledged at once, want exactly the 2 it granted", q.max)
			}
			if len(q.got) != n {
				t.Errorf("broker got %d distinct messages, want %d", len(q.got), n)
			}
			for p, k := range q.got {
				if k != 1 {
					t.Errorf("message %s sent %d times on a live link", p, k)
				}
			}
			for _, e := range q.errs {
				t.Error(e)
			}
			if st := c.Stats(); st.Outages != 0 || st.Repubs != 0 || st.InFlight != 0 {
				t.Errorf("stats %+v: want no outage, no resend, nothing in flight", st)
			}
		})
	}
}

// TestV5ResendHeldBackByReceiveMaximum: two QoS 1 messages are
// unacknowledged when the link drops; the broker that comes back has the
// session but grants Receive Maximum 1. The client resends the first at
// once and the second only after the first's PUBACK, and both, being
// re-deliveries, with their original identifiers and DUP set [MQTT-4.4.0-1,
// MQTT-3.3.1-1].
func TestV5ResendHeldBackByReceiveMaximum(t *testing.T) {
	type seen struct {
		id  uint16
		dup bool
		at  int // PUBACKs sent before it arrived
	}
	first := make(chan seen, 2)
	again := make(chan seen, 2)
	f := v5StartFake(t, func(fc *v5Conn) {
		switch fc.k {
		case 0: // takes two messages, acknowledges neither, drops the link
			ack := &packet.Connack{}
			ack.Properties.ReceiveMaximum = 2
			if _, err := fc.accept(ack); err != nil {
				return
			}
			for range 2 {
				p, err := fc.next()
				if err != nil {
					return
				}
				if pub, ok := p.(*packet.Publish); ok {
					first <- seen{id: pub.PacketID, dup: pub.Dup}
				}
			}
		case 1: // acknowledges each message after 50ms of quiet
			ack := &packet.Connack{SessionPresent: true}
			ack.Properties.ReceiveMaximum = 1
			if _, err := fc.accept(ack); err != nil {
				return
			}
			pkts, stop := fc.stream()
			defer stop()
			acks := 0
			var open []uint16
			quiet := time.NewTimer(time.Hour)
			defer quiet.Stop()
			for {
				select {
				case p, ok := <-pkts:
					if !ok {
						return
					}
					quiet.Reset(50 * time.Millisecond)
					if pub, ok := p.(*packet.Publish); ok {
						again <- seen{id: pub.PacketID, dup: pub.Dup, at: acks}
						open = append(open, pub.PacketID)
					} else if !fc.answer(p) {
						return
					}
				case <-quiet.C:
					for _, id := range open {
						fc.send(&packet.Puback{PacketID: id})
						acks++
					}
					open = nil
				}
			}
		}
	})
	c := v5Connect(t, f.addr(), mqttas.Config{PersistentSession: true, ResumeOnStart: true, ResponseTime: 10 * time.Second})
	ctx := fxCtx(t, 10*time.Second)
	errs := make(chan error, 2)
	for _, p := range []string{"a", "b"} {
		go func() { errs <- c.Publish(ctx, "v5/held", []byte(p), 1, false) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	ids := map[uint16]bool{}
	for range 2 {
		ids[(<-first).id] = true
	}
	for i := range 2 {
		s := <-again
		if !ids[s.id] || !s.dup {
			t.Errorf("resend %d: id %d dup %v, want one of the original ids %v with DUP", i+1, s.id, s.dup, ids)
		}
		if s.at != i {
			t.Errorf("resend %d arrived after %d PUBACKs: the Receive Maximum of 1 was not respected", i+1, s.at)
		}
	}
	if st := c.Stats(); st.Repubs != 2 {
		t.Errorf("Stats().Repubs = %d, want 2 resends", st.Repubs)
	}
}

// TestV5AbandonedPublishKeepsItsQuota: a Publish abandoned by its ctx after
// its PUBLISH went out leaves the message unacknowledged at the broker, so
// it still counts against the broker's Receive Maximum [MQTT-3.3.4-7]:
// with Receive Maximum 2 and two abandoned messages, a third is not sent
// until the broker acknowledges one of them (a broker such as mochi
// disconnects with 0x93 otherwise).
func TestV5AbandonedPublishKeepsItsQuota(t *testing.T) {
	arrived := make(chan int, 3) // messages unacknowledged when each arrived
	release := make(chan struct{})
	f := v5StartFake(t, func(fc *v5Conn) {
		ack := &packet.Connack{}
		ack.Properties.ReceiveMaximum = 2
		if _, err := fc.accept(ack); err != nil {
			return
		}
		pkts, stop := fc.stream()
		defer stop()
		var open []uint16
		rel := release
		for {
			select {
			case p, ok := <-pkts:
				if !ok {
					return
				}
				if pub, isPub := p.(*packet.Publish); isPub && pub.QoS == 1 {
					open = append(open, pub.PacketID)
					arrived <- len(open)
					if len(open) > 2 || rel == nil { // answered at once, so the test ends
						open = open[:len(open)-1]
						fc.send(&packet.Puback{PacketID: pub.PacketID})
					}
				} else if !fc.answer(p) {
					return
				}
			case <-rel:
				rel = nil
				for _, id := range open {
					fc.send(&packet.Puback{PacketID: id})
				}
				open = nil
			}
		}
	})
	c := v5Connect(t, f.addr(), mqttas.Config{ResponseTime: 10 * time.Second})
	short, cancel := context.WithCancel(context.Background())
	abandoned := make(chan error, 2)
	for _, p := range []string{"a", "b"} {
		go func() { abandoned <- c.Publish(short, "v5/abandon", []byte(p), 1, false) }()
	}
	<-arrived
	<-arrived
	cancel()
	for range 2 {
		if err := <-abandoned; !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned Publish: %v, want context.Canceled", err)
		}
	}
	third := make(chan error, 1)
	go func() { third <- c.Publish(fxCtx(t, 10*time.Second), "v5/abandon", []byte("c"), 1, false) }()
	// Nothing may arrive now; a client that freed the quota sends at once.
	select {
	case n := <-arrived:
		t.Errorf("third message sent with %d unacknowledged: the abandoned ones no longer counted", n)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-third; err != nil {
		t.Fatalf("third Publish: %v", err)
	}
}
