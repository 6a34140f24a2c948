package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas/packet"
)

// listenerID names the broker's one TCP listener inside mochi.
const listenerID = "mqtttest"

// errStopping refuses connections that race with Stop.
var errStopping = errors.New("mqtttest: broker stopping")

// BrokerOptions configures NewBroker. The zero value is an anonymous broker
// on a free loopback port that logs nothing.
type BrokerOptions struct {
	// Addr is the listen address. "" means "127.0.0.1:0", a free port.
	Addr string
	// Logger receives mochi's log. nil discards it.
	Logger *slog.Logger
	// Users, when non-nil, lists the only user names and passwords
	// accepted; every other CONNECT is refused with CONNACK 0x86 "bad user
	// name or password" (MQTT 5.0) or return code 5 "not authorized"
	// (3.1.1: mochi's mapping). nil accepts anyone. The map is copied.
	Users map[string]string
	// Capabilities, when set, adjusts the MQTT 5.0 limits the broker
	// grants in CONNACK (Maximum QoS, Retain Available, Maximum Packet
	// Size, Receive Maximum, Topic Alias Maximum...) before it starts, so
	// that a test can put a client up against a restrictive broker.
	Capabilities func(*mqtt.Capabilities)
}

// Broker is an in-process MQTT broker (mochi-mqtt v2) speaking MQTT 3.1.1
// and 5.0 over TCP on one port, which stays the same across Stop and Start.
// Sessions live in memory: Stop and Start act like a broker restarted with
// persistence, Restart(false) like one restarted without.
//
// All methods are safe for concurrent use.
type Broker struct {
	srv  *mqtt.Server
	hook *brokerHook
	addr string

	mu     sync.Mutex // guards lis and closed, and serialises Start, Stop and Close
	lis    *listener  // nil while stopped
	closed bool

	subMu sync.Mutex // guards subs and subID
	subs  map[*Subscription]struct{}
	subID int // the last mochi inline subscription identifier used

	closeOnce sync.Once
}

// NewBroker starts a broker listening on opts.Addr.
func NewBroker(opts BrokerOptions) (*Broker, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	hook := &brokerHook{caps: mqtt.NewDefaultServerCapabilities()}
	if opts.Capabilities != nil {
		opts.Capabilities(hook.caps)
	}
	if opts.Users != nil {
		hook.users = make(map[string]string, len(opts.Users))
		for u, pw := range opts.Users {
			hook.users[u] = pw
		}
	}
	caps := *hook.caps
	mopts := &mqtt.Options{InlineClient: true, Logger: logger, Capabilities: &caps}
	srv := mqtt.New(mopts)
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	b := &Broker{srv: srv, hook: hook, addr: addr, subs: make(map[*Subscription]struct{})}
	if err := b.Start(); err != nil {
		_ = srv.Close()
		return nil, err
	}
	b.addr = b.lis.ln.Addr().String()
	return b, nil
}

// StartBroker is NewBroker with default options for tests: it fails tb at
// once if the broker cannot start and closes it when the test ends.
func StartBroker(tb testing.TB) *Broker {
	tb.Helper()
	b, err := NewBroker(BrokerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// Addr returns the "host:port" the broker listens on, the same before and
// after Stop and Start.
func (b *Broker) Addr() string { return b.addr }

// Stop closes the listener and every client connection, abruptly (no
// DISCONNECT, no will messages published: a broker that died), and waits
// until the broker has finished with each of them. Sessions, subscriptions,
// queued and unacknowledged messages and retained messages are kept, so
// clients that reconnect after Start resume their sessions. Stopping a
// stopped broker does nothing. After Close it returns net.ErrClosed.
func (b *Broker) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return net.ErrClosed
	}
	b.stopLocked()
	return nil
}

func (b *Broker) stopLocked() {
	l := b.lis
	if l == nil {
		return
	}
	b.lis = nil
	b.hook.stopping.Store(true)
	defer b.hook.stopping.Store(false)
	l.stopAccepting()
	l.closeConns() // the hook blanks the wills meanwhile
	b.srv.Listeners.Delete(listenerID)
}

// Start listens again on the broker's address after Stop. Starting a
// running broker does nothing. It fails if another socket took the port
// meanwhile, and with net.ErrClosed after Close.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return net.ErrClosed
	}
	if b.lis != nil {
		return nil
	}
	// Go sets SO_REUSEADDR on listening sockets, so the port is free again
	// at once even with connections of the last run in TIME_WAIT.
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return fmt.Errorf("mqtttest: broker listen: %w", err)
	}
	l := newListener(ln)
	if err := b.srv.AddListener(l); err != nil {
		_ = ln.Close()
		return fmt.Errorf("mqtttest: %w", err)
	}
	l.serveWG.Add(1)
	b.srv.Listeners.Serve(listenerID, b.srv.EstablishConnection)
	b.lis = l
	return nil
}

// Restart is Stop then Start. With keepSessions false, everything clients
// left behind is wiped in between — sessions, their subscriptions and
// queued messages, retained messages — like a broker restarted without
// persistence; Subscriptions made with Broker.Subscribe are kept.
func (b *Broker) Restart(keepSessions bool) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return net.ErrClosed
	}
	b.stopLocked()
	if !keepSessions {
		b.wipe()
	}
	b.mu.Unlock()
	return b.Start()
}

// wipe forgets every client session and retained message.
func (b *Broker) wipe() {
	for id, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		b.srv.UnsubscribeClient(cl)
		cl.ClearInflights()
		b.srv.Clients.Delete(id)
	}
	for topic := range b.srv.Topics.Retained.GetAll() {
		b.srv.Topics.RetainMessage(packets.Packet{TopicName: topic})
	}
	atomic.StoreInt64(&b.srv.Info.Retained, 0)
}

// Close stops the broker for good: it closes every connection and
// Subscription and waits for all of the broker's goroutines to exit. It is
// idempotent and returns nil.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.stopLocked()
		b.closed = true
		b.mu.Unlock()

		b.subMu.Lock()
		subs := make([]*Subscription, 0, len(b.subs))
		for s := range b.subs {
			subs = append(subs, s)
		}
		b.subMu.Unlock()
		for _, s := range subs {
			s.Close()
		}
		_ = b.srv.Close() // mochi's Close panics if called twice
	})
	return nil
}

// Publish injects a message as if a client had published it, at QoS qos
// (0, 1 or 2; the subscribers' QoS caps it as usual) and with the retain
// flag. It works while the broker is stopped too, queueing messages for
// offline sessions. It fails with net.ErrClosed after Close.
func (b *Broker) Publish(topic string, payload []byte, qos byte, retain bool) error {
	if err := packet.TopicNameError(topic); err != nil {
		return err
	}
	if qos > 2 {
		return fmt.Errorf("mqtttest: QoS %d", qos)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	return b.srv.Publish(topic, bytes.Clone(payload), retain, qos)
}

// Clients returns the number of clients connected now: connections whose
// CONNECT has been accepted and that have not ended yet.
func (b *Broker) Clients() int {
	return int(atomic.LoadInt64(&b.srv.Info.ClientsConnected))
}

// DropPubacks makes the broker ignore the next n QoS 1 PUBLISH packets from
// clients (on any connection), replacing any count left from an earlier
// call. An ignored PUBLISH gets no PUBACK and is not delivered or retained,
// as if it had been lost on its way: the client must publish it again.
// Zero cancels.
func (b *Broker) DropPubacks(n int) { b.hook.dropPubacks.Store(int64(max(n, 0))) }

// Server returns the mochi server, for hooks and inspection beyond this
// API. Calling its Close, or adding listeners, is the caller's lookout.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// brokerHook is the broker's one mochi hook: authentication, an open ACL,
// no new connections and no wills while stopping, and dropped PUBACKs.
type brokerHook struct {
	mqtt.HookBase
	users       map[string]string  // nil: anyone; read-only after NewBroker
	caps        *mqtt.Capabilities // mochi's defaults with BrokerOptions.Capabilities applied; read-only
	stopping    atomic.Bool        // set while Stop closes connections
	dropPubacks atomic.Int64
}

func (h *brokerHook) ID() string { return "mqtttest" }

// OnPacketEncode completes an MQTT 5.0 CONNACK with the limits set through
// BrokerOptions.Capabilities that mochi enforces but does not announce
// (Topic Alias Maximum, Retain Available, Maximum Packet Size and the
// feature flags), so a client learns them as the specification intends.
func (h *brokerHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	c := h.caps
	if pk.FixedHeader.Type != packets.Connack || cl.Properties.ProtocolVersion != 5 || pk.ReasonCode >= 0x80 {
		return pk
	}
	p := &pk.Properties
	p.TopicAliasMaximum = c.TopicAliasMaximum
	p.MaximumPacketSize = c.MaximumPacketSize
	flag := func(v byte, val *byte, set *bool) {
		if v == 0 {
			*val, *set = 0, true
		}
	}
	flag(c.RetainAvailable, &p.RetainAvailable, &p.RetainAvailableFlag)
	flag(c.WildcardSubAvailable, &p.WildcardSubAvailable, &p.WildcardSubAvailableFlag)
	flag(c.SubIDAvailable, &p.SubIDAvailable, &p.SubIDAvailableFlag)
	flag(c.SharedSubAvailable, &p.SharedSubAvailable, &p.SharedSubAvailableFlag)
	return pk
}

func (h *brokerHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnConnect, mqtt.OnPublish, mqtt.OnWill, mqtt.OnPacketEncode:
		return true
	}
	return false
}

func (h *brokerHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	if h.users == nil {
		return true
	}
	pw, ok := h.users[string(pk.Connect.Username)]
	return ok && pw == string(pk.Connect.Password)
}

func (h *brokerHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *brokerHook) OnConnect(*mqtt.Client, packets.Packet) error {
	if h.stopping.Load() {
		return errStopping
	}
	return nil
}

// OnWill blanks the will of a client cut off by Stop. mochi has no way to
// cancel a will from a hook, but one without a topic or retain flag
// reaches no subscriber and is not stored.
func (h *brokerHook) OnWill(_ *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if h.stopping.Load() {
		return mqtt.Will{}, nil
	}
	return will, nil
}

// OnPublish rejects the packet with mochi's ErrRejectPacket, which makes
// processPublish return before it acknowledges, delivers or retains.
func (h *brokerHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || pk.FixedHeader.Qos != 1 {
		return pk, nil
	}
	for {
		n := h.dropPubacks.Load()
		if n <= 0 {
			return pk, nil
		}
		if h.dropPubacks.CompareAndSwap(n, n-1) {
			return pk, packets.ErrRejectPacket
		}
	}
}
