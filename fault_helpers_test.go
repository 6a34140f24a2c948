package mqttas_test

// Shared helpers of the fault tests: the rig (broker, fault proxy, log
// sink, broker-side disconnect view), waits bounded by a context, the wire
// recorder, the round-trip check and the broker-side PUBLISH receipts.
// Fault tests run the client against the embedded broker through the
// fault-injecting proxy of package mqtttest; every wait is on an event
// bounded by a context, timers appear only as the length of a fault.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// Short timings keep the suite fast; the detection bound is their sum.
const (
	fxKeepAlive    = 2 * time.Second
	fxPingInterval = 250 * time.Millisecond
	fxResponseTime = 400 * time.Millisecond
	fxReconnectMin = 20 * time.Millisecond
	fxReconnectMax = 200 * time.Millisecond
	// fxTolerance is the slack allowed on top of PingInterval+ResponseTime
	// for timers and scheduling under -race on a small machine.
	fxTolerance = 250 * time.Millisecond
)

// fxRig is a broker, a proxy in front of it, a log sink and a view of
// the broker's disconnects, all torn down when the test ends.
type fxRig struct {
	t      *testing.T
	broker *mqtttest.Broker
	proxy  *mqtttest.Proxy
	logs   *fxLogSink
	events *fxBrokerEvents
}

func fxNewRig(t *testing.T) *fxRig {
	t.Helper()
	r := &fxRig{t: t, logs: fxNewLogSink(t)}
	r.broker = mqtttest.StartBroker(t)
	r.events = fxAddBrokerEvents(t, r.broker)
	r.proxy = mqtttest.StartProxy(t, r.broker.Addr())
	return r
}

// config is a client configuration through the proxy with short timings.
func (r *fxRig) config() mqttas.Config {
	return mqttas.Config{
		Server:       r.proxy.Addr(),
		KeepAlive:    fxKeepAlive,
		PingInterval: fxPingInterval,
		ResponseTime: fxResponseTime,
		ReconnectMin: fxReconnectMin,
		ReconnectMax: fxReconnectMax,
		Logger:       r.logs.logger(),
	}
}

// client returns a Client for cfg, closed when the test ends.
func (r *fxRig) client(cfg mqttas.Config) *mqttas.Client {
	r.t.Helper()
	return fxNewClient(r.t, cfg)
}

// connect returns a connected Client, its first Up already consumed.
func (r *fxRig) connect(cfg mqttas.Config) *mqttas.Client {
	r.t.Helper()
	c := r.client(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		r.t.Fatalf("Connect: %v", err)
	}
	fxWaitUp(r.t, c, time.Second)
	return c
}

func fxNewClient(t testing.TB, cfg mqttas.Config) *mqttas.Client {
	t.Helper()
	c, err := mqttas.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fxObserve subscribes an in-process observer to filter on b.
func fxObserve(t testing.TB, b *mqtttest.Broker, filter string) *mqtttest.Subscription {
	t.Helper()
	s, err := b.Subscribe(filter)
	if err != nil {
		t.Fatalf("broker Subscribe %q: %v", filter, err)
	}
	t.Cleanup(s.Close)
	return s
}

func fxWaitUp(t testing.TB, c *mqttas.Client, d time.Duration) {
	t.Helper()
	fxWaitSignal(t, c, c.Up(), "Up", d)
}

func fxWaitDown(t testing.TB, c *mqttas.Client, d time.Duration) {
	t.Helper()
	fxWaitSignal(t, c, c.Down(), "Down", d)
}

func fxWaitSignal(t testing.TB, c *mqttas.Client, ch <-chan struct{}, name string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s closed", name)
		}
	case <-timer.C:
		t.Fatalf("no %s within %v (stats %+v, connected %v)", name, d, c.Stats(), c.IsConnected())
	}
}

func fxRecv(t testing.TB, c *mqttas.Client, d time.Duration) mqttas.Message {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatal("Messages closed")
		}
		return m
	case <-timer.C:
		t.Fatalf("no message within %v (stats %+v, connected %v)", d, c.Stats(), c.IsConnected())
	}
	return mqttas.Message{}
}

func fxNextObserved(t testing.TB, s *mqtttest.Subscription, d time.Duration) mqtttest.Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("broker observer: %v", err)
	}
	return m
}

func fxCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fxEventually polls cond until it holds or d passes. It is only for state
// that has no event to wait on (counters, goroutine counts); every poll is
// bounded.
func fxEventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tick.C
	}
}

// fxLogSink collects the client's log; a failed test prints its tail.
type fxLogSink struct {
	mu    sync.Mutex
	lines []string
}

func fxNewLogSink(t testing.TB) *fxLogSink {
	s := &fxLogSink{}
	t.Cleanup(func() {
		s.mu.Lock()
		tail := s.lines[max(0, len(s.lines)-150):]
		s.mu.Unlock()
		if t.Failed() && len(tail) > 0 {
			t.Logf("client log (last %d lines):\n%s", len(tail), strings.Join(tail, ""))
		}
	})
	return s
}

func (s *fxLogSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) >= 4000 {
		s.lines = slices.Delete(s.lines, 0, 2000)
	}
	s.lines = append(s.lines, string(b))
	return len(b), nil
}

func (s *fxLogSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (s *fxLogSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// fxBrokerEvents is a mochi hook reporting every client connection the
// broker ends, and whether a session takeover ended it.
type fxBrokerEvents struct {
	mqtt.HookBase
	ch chan fxDisconnect
}

type fxDisconnect struct {
	clientID  string
	remote    string // the connection's remote address: the proxy's side of it
	takenOver bool
	err       error
}

func fxAddBrokerEvents(t testing.TB, b *mqtttest.Broker) *fxBrokerEvents {
	t.Helper()
	h := &fxBrokerEvents{ch: make(chan fxDisconnect, 4096)}
	if err := b.Server().AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *fxBrokerEvents) ID() string { return "mqttas-fault-test-events" }

func (h *fxBrokerEvents) Provides(b byte) bool { return b == mqtt.OnDisconnect }

func (h *fxBrokerEvents) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if cl.Net.Inline {
		return
	}
	ev := fxDisconnect{clientID: cl.ID, remote: cl.Net.Remote, err: err,
		takenOver: errors.Is(cl.StopCause(), packets.ErrSessionTakenOver)}
	select {
	case h.ch <- ev:
	default:
	}
}

// fxLiveConn returns the remote address of the connection the broker has
// now for client id, to wait for its end with waitDisconnect.
func fxLiveConn(t testing.TB, b *mqtttest.Broker, id string) string {
	t.Helper()
	cl, ok := b.Server().Clients.Get(id)
	if !ok || cl.Closed() {
		t.Fatalf("broker has no live connection for %q", id)
	}
	return cl.Net.Remote
}

// waitDisconnect waits until the broker has ended the connection of
// client id from remote.
func (h *fxBrokerEvents) waitDisconnect(t testing.TB, id, remote string, d time.Duration) fxDisconnect {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-h.ch:
			if ev.clientID == id && ev.remote == remote {
				return ev
			}
		case <-timer.C:
			t.Fatalf("broker did not end the connection of %q from %s within %v", id, remote, d)
		}
	}
}

// fxWire records the packets a proxy passes, in the order its rules saw them
// (which respects causality: a packet is judged before it is forwarded).
type fxWire struct {
	mu  sync.Mutex
	log []fxWireEvent
}

type fxWireEvent struct {
	dir     mqtttest.Direction
	typ     packet.Type
	id      uint16 // packet identifier, if the packet has one
	dup     bool
	qos     byte
	topic   string
	payload string
	present bool // CONNACK session present
	clean   bool // CONNECT clean session
}

func (e fxWireEvent) String() string {
	switch e.typ {
	case packet.PUBLISH:
		return fmt.Sprintf("%v PUBLISH id=%d dup=%v qos=%d %q", e.dir, e.id, e.dup, e.qos, e.payload)
	case packet.CONNACK:
		return fmt.Sprintf("%v CONNACK present=%v", e.dir, e.present)
	case packet.CONNECT:
		return fmt.Sprintf("%v CONNECT clean=%v", e.dir, e.clean)
	}
	return fmt.Sprintf("%v %v id=%d", e.dir, e.typ, e.id)
}

// fxParseWire decodes what a rule sees into a fxWireEvent.
func fxParseWire(dir mqtttest.Direction, h packet.FixedHeader, raw []byte) fxWireEvent {
	body := raw[len(raw)-h.RemainingLength:]
	ev := fxWireEvent{dir: dir, typ: h.Type}
	switch h.Type {
	case packet.PUBLISH:
		var p packet.Publish
		if p.Decode(h.Flags, body, packet.V311) == nil {
			ev.id, ev.dup, ev.qos, ev.topic, ev.payload = p.PacketID, p.Dup, p.QoS, p.Topic, string(p.Payload)
		}
	case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP, packet.SUBACK, packet.UNSUBACK, packet.SUBSCRIBE, packet.UNSUBSCRIBE:
		if len(body) >= 2 {
			ev.id = uint16(body[0])<<8 | uint16(body[1])
		}
	case packet.CONNACK:
		ev.present = len(body) > 0 && body[0]&1 != 0
	case packet.CONNECT:
		var p packet.Connect
		if p.Decode(h.Flags, body, packet.V311) == nil {
			ev.clean = p.CleanStart
		}
	}
	return ev
}

// record returns a rule that logs each packet in direction dir and then
// asks decide, if not nil, what to do with it.
func (w *fxWire) record(dir mqtttest.Direction, decide func(fxWireEvent) mqtttest.Action) mqtttest.Rule {
	return func(h packet.FixedHeader, raw []byte) mqtttest.Action {
		ev := fxParseWire(dir, h, raw)
		w.mu.Lock()
		w.log = append(w.log, ev)
		w.mu.Unlock()
		if decide != nil {
			return decide(ev)
		}
		return mqtttest.Forward()
	}
}

func (w *fxWire) events() []fxWireEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

func (w *fxWire) dump(t testing.TB) {
	t.Helper()
	var b strings.Builder
	for i, e := range w.events() {
		fmt.Fprintf(&b, "%3d %v\n", i, e)
	}
	t.Logf("wire:\n%s", b.String())
}

// fxRoundTrip checks the client still works: it subscribes to topic, publishes
// to it at QoS 1 and receives its own message.
func fxRoundTrip(t testing.TB, c *mqttas.Client, topic string) {
	t.Helper()
	ctx := fxCtx(t, 5*time.Second)
	if err := c.Subscribe(ctx, topic, 1); err != nil {
		t.Fatalf("Subscribe %q: %v", topic, err)
	}
	if err := c.Publish(ctx, topic, []byte("rt"), 1, false); err != nil {
		t.Fatalf("Publish %q: %v", topic, err)
	}
	for {
		if m := fxRecv(t, c, 3*time.Second); m.Topic == topic && string(m.Payload) == "rt" {
			return
		}
	}
}

// fxReceipts is a mochi hook recording the payloads of client PUBLISHes
// under a topic prefix that the broker has taken in. Its OnPublish runs
// after the broker's duplicate check and before the acknowledgement is
// written, so a message recorded here and never routed was lost by the
// broker: mochi v2.7.9's processPublish returns without routing when the
// PUBACK or PUBREC write fails on a dying connection, yet keeps the ack in
// the session, so the client's resend is answered as a duplicate (QoS 2)
// or the stored PUBACK completes it (QoS 1).
type fxReceipts struct {
	mqtt.HookBase
	prefix string
	mu     sync.Mutex
	seen   map[string]bool
}

func fxAddReceipts(t testing.TB, b *mqtttest.Broker, prefix string) *fxReceipts {
	t.Helper()
	h := &fxReceipts{prefix: prefix, seen: map[string]bool{}}
	if err := b.Server().AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *fxReceipts) ID() string { return "mqttas-test-receipts-" + h.prefix }

func (h *fxReceipts) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *fxReceipts) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !cl.Net.Inline && strings.HasPrefix(pk.TopicName, h.prefix) {
		h.mu.Lock()
		h.seen[string(pk.Payload)] = true
		h.mu.Unlock()
	}
	return pk, nil
}

func (h *fxReceipts) received(payload string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[payload]
}
