package mqtttest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas/packet"
)

// Received is a message seen by a Subscription.
type Received struct {
	Topic   string
	Payload []byte // the Subscription's own copy
	// QoS is the QoS the message was published with; an in-process
	// observer is not subject to a subscription maximum.
	QoS byte
	// Retain is the retain flag as published, and true for the retained
	// messages delivered when the Subscription starts.
	Retain bool
	// ClientID is the publishing client's identifier; "" for messages
	// injected with Broker.Publish.
	ClientID string
}

// Subscription observes the messages a broker routes to a topic filter,
// from inside the process, with no network connection and no effect on
// anything the clients see. It never drops a message and never holds up
// the broker: messages wait in an unbounded queue until read from C, so a
// test can publish ten thousand messages first and count them afterwards.
//
// The methods are safe for concurrent use.
type Subscription struct {
	b      *Broker
	filter string
	ids    map[string]int // mochi inline subscriptions: filter to identifier
	out    chan Received
	notify chan struct{} // capacity 1: the queue has grown
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when pump returns

	mu     sync.Mutex // guards queue and closed
	queue  []Received
	closed bool
	once   sync.Once
}

// Subscribe starts observing filter, which may hold wildcards and matches
// as for any subscriber ("#" does not match "$SYS/...", "a/#" matches "a").
// Retained messages that match are delivered first, with Retain set. It
// fails for an invalid or shared ("$share/...") filter and with
// net.ErrClosed after Close.
func (b *Broker) Subscribe(filter string) (*Subscription, error) {
	if err := packet.TopicFilterError(filter); err != nil {
		return nil, err
	}
	if _, _, shared := packet.ParseShared(filter); shared {
		return nil, errors.New("mqtttest: a Subscription cannot join a shared subscription")
	}
	s := &Subscription{
		b:      b,
		filter: filter,
		ids:    map[string]int{filter: 0},
		out:    make(chan Received, 64),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	// Registering under b.mu orders it before or after Close, which
	// closes every registered Subscription.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, net.ErrClosed
	}
	// mochi v2.7.9 does not match the parent level of "a/#" for in-process
	// subscribers ("a" is missed; client subscriptions get it), so such a
	// filter is observed through a second subscription to "a".
	if parent, ok := strings.CutSuffix(filter, "/#"); ok {
		s.ids[parent] = 0
	}
	b.subMu.Lock()
	for f := range s.ids {
		b.subID++
		s.ids[f] = b.subID
	}
	b.subs[s] = struct{}{}
	b.subMu.Unlock()
	b.mu.Unlock()

	go s.pump()
	for f, id := range s.ids {
		handle := s.handle
		if f != filter {
			handle = func(cl *mqtt.Client, sub packets.Subscription, pk packets.Packet) {
				if pk.TopicName == f {
					s.handle(cl, sub, pk)
				}
			}
		}
		if err := b.srv.Subscribe(f, id, handle); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// C returns the channel messages arrive on, in the order the broker routed
// them (per publisher). It is closed after Close.
func (s *Subscription) C() <-chan Received { return s.out }

// Next returns the next message, waiting for one until ctx is done. After
// Close it returns net.ErrClosed once the channel is drained.
func (s *Subscription) Next(ctx context.Context) (Received, error) {
	select {
	case r, ok := <-s.out:
		if !ok {
			return Received{}, net.ErrClosed
		}
		return r, nil
	case <-ctx.Done():
		return Received{}, ctx.Err()
	}
}

// Close stops the observation and closes C; messages not yet read are
// discarded. It is idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.queue = nil
		s.mu.Unlock()
		for f, id := range s.ids {
			_ = s.b.srv.Unsubscribe(f, id)
		}
		close(s.done)
		<-s.exited
		s.b.subMu.Lock()
		delete(s.b.subs, s)
		s.b.subMu.Unlock()
	})
}

// handle is mochi's inline subscription callback. It runs on the
// publisher's goroutine inside the broker, so it only appends.
func (s *Subscription) handle(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
	// mochi gives in-process subscribers "$" topics for "#" and "+/...";
	// MQTT does not.
	if !packet.MatchTopic(s.filter, pk.TopicName) {
		return
	}
	r := Received{
		Topic:    pk.TopicName,
		Payload:  bytes.Clone(pk.Payload),
		QoS:      pk.FixedHeader.Qos,
		Retain:   pk.FixedHeader.Retain,
		ClientID: pk.Origin,
	}
	if r.ClientID == mqtt.InlineClientId {
		r.ClientID = ""
	}
	s.mu.Lock()
	if !s.closed {
		s.queue = append(s.queue, r)
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// pump moves messages from the queue to out, so that out can be an
// ordinary channel while the queue has no bound.
func (s *Subscription) pump() {
	defer close(s.exited)
	defer close(s.out)
	var batch []Received
	for {
		s.mu.Lock()
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()
		for i, r := range batch {
			select {
			case s.out <- r:
				batch[i] = Received{}
			case <-s.done:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.notify:
		case <-s.done:
			return
		}
	}
}
