package mqttas_test

// Fault tests: the client against the embedded broker through the
// fault-injecting proxy of package mqtttest, one test per fault of
// ../shared/reference/testing.md and per row of peer-failures.md that
// applies to MQTT 3.1.1. Every wait is on an event (Up, Down, Messages, a
// broker-side observation) bounded by a context; timers appear only as the
// length of a deliberate fault.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// TestBlackholeDetectedWithinPingPlusResponse: a link that silently drops
// everything both ways is reported Down within PingInterval+ResponseTime,
// whatever the phase of the keep-alive cycle, and comes back Up once the
// link returns (paho.mqtt.golang #83 #122 #328 #411). The worst phase is
// the one just after a PINGRESP: the whole next ping cycle passes in
// silence. The second configuration has a ResponseTime longer than the
// PingInterval, as when a user shortens the ping interval.
func TestBlackholeDetectedWithinPingPlusResponse(t *testing.T) {
	configs := []struct {
		name       string
		ping, resp time.Duration
	}{
		{"ping 250ms response 400ms", fxPingInterval, fxResponseTime},
		{"ping 200ms response 800ms", 200 * time.Millisecond, 800 * time.Millisecond},
	}
	if testing.Short() {
		configs = configs[:1]
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			r := fxNewRig(t)
			cfg := r.config()
			cfg.PingInterval, cfg.ResponseTime = tc.ping, tc.resp
			c := r.connect(cfg)
			obs := fxObserve(t, r.broker, "bh/#")
			bound := tc.ping + tc.resp
			phases := []string{"at Up", "PingInterval/3 after Up", "2/3 PingInterval after Up", "just after a PINGRESP"}
			var worst time.Duration
			for i, phase := range phases {
				var start time.Time
				switch i {
				case 0, 1, 2:
					if i > 0 {
						timer := time.NewTimer(time.Duration(i) * tc.ping / 3) // the fault's timing, not synchronisation
						<-timer.C
					}
					start = time.Now()
					r.proxy.Blackhole(mqtttest.Both)
				case 3:
					// The rules let the next PINGRESP through and silence both
					// directions from then on.
					var cut atomic.Bool
					at := make(chan time.Time, 1)
					r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
						if cut.Load() {
							return mqtttest.BlackholeFrom()
						}
						if h.Type == packet.PINGRESP {
							cut.Store(true)
							at <- time.Now()
						}
						return mqtttest.Forward()
					})
					r.proxy.Rule(mqtttest.ToBroker, func(packet.FixedHeader, []byte) mqtttest.Action {
						if cut.Load() {
							return mqtttest.BlackholeFrom()
						}
						return mqtttest.Forward()
					})
					timer := time.NewTimer(3 * bound)
					select {
					case start = <-at:
						timer.Stop()
					case <-timer.C:
						t.Fatal("no PINGRESP")
					}
				}
				fxWaitDown(t, c, bound+3*time.Second)
				lat := time.Since(start)
				worst = max(worst, lat)
				t.Logf("detection latency %v (%s; bound PingInterval %v + ResponseTime %v = %v)", lat.Round(time.Millisecond), phase, tc.ping, tc.resp, bound)
				if lat > bound+fxTolerance {
					t.Errorf("blackhole %s detected after %v, want within PingInterval+ResponseTime %v (+ %v)", phase, lat.Round(time.Millisecond), bound, fxTolerance)
				}
				if c.IsConnected() {
					t.Error("IsConnected after Down")
				}
				r.proxy.Heal()
				fxWaitUp(t, c, 3*time.Second)
				if got := c.Stats().Outages; got != uint64(i+1) {
					t.Errorf("Outages = %d after %d blackholes, want %d", got, i+1, i+1)
				}
				topic := "bh/" + strconv.Itoa(i)
				if err := c.Publish(fxCtx(t, 3*time.Second), topic, []byte("after"), 1, false); err != nil {
					t.Fatalf("Publish after heal: %v", err)
				}
				if m := fxNextObserved(t, obs, 2*time.Second); m.Topic != topic {
					t.Errorf("observed %q, want %s", m.Topic, topic)
				}
			}
			t.Logf("detection latency worst %v over %d phases (bound %v)", worst.Round(time.Millisecond), len(phases), bound)
		})
	}
}

// TestOneWayBlackhole: a link dead in one direction only is detected, and
// the client reconnects; when the broker still believes in the old
// connection (it never saw the client go), the new one takes the session
// over.
func TestOneWayBlackhole(t *testing.T) {
	for _, dir := range []mqtttest.Direction{mqtttest.ToClient, mqtttest.ToBroker} {
		t.Run(dir.String(), func(t *testing.T) {
			r := fxNewRig(t)
			cfg := r.config()
			cfg.ClientID = "oneway-" + dir.String()
			c := r.connect(cfg)
			old := fxLiveConn(t, r.broker, cfg.ClientID)
			start := time.Now()
			r.proxy.Blackhole(dir)
			fxWaitDown(t, c, fxPingInterval+fxResponseTime+2*time.Second)
			lat := time.Since(start)
			t.Logf("detection latency %v for a %v blackhole", lat.Round(time.Millisecond), dir)
			if lat > fxPingInterval+fxResponseTime+fxTolerance {
				t.Errorf("detected after %v, want within %v", lat, fxPingInterval+fxResponseTime+fxTolerance)
			}
			// The link stays broken a while longer (the fault's duration),
			// so the FIN of the client's abandoned socket is lost too.
			hold := time.NewTimer(300 * time.Millisecond)
			<-hold.C
			r.proxy.Heal()
			fxWaitUp(t, c, 3*time.Second)
			ev := r.events.waitDisconnect(t, cfg.ClientID, old, 5*time.Second)
			if dir == mqtttest.ToBroker && !ev.takenOver {
				// The client's FIN was swallowed: only a takeover can end the
				// old connection before the broker's keep-alive does.
				t.Errorf("old connection ended by %v, want a session takeover", ev.err)
			}
			t.Logf("broker ended the old connection: takenOver=%v err=%v", ev.takenOver, ev.err)
			if n := r.broker.Clients(); n != 1 {
				t.Errorf("broker has %d clients, want 1", n)
			}
			obs := fxObserve(t, r.broker, "ow/t")
			if err := c.Publish(fxCtx(t, 3*time.Second), "ow/t", []byte("x"), 1, false); err != nil {
				t.Fatalf("Publish after reconnect: %v", err)
			}
			fxNextObserved(t, obs, 2*time.Second)
			if got := c.Stats().Outages; got != 1 {
				t.Errorf("Outages = %d, want 1", got)
			}
		})
	}
}

// TestQoS1RepublishThenReconnect: a QoS 1 PUBLISH whose PUBACK never comes
// is resent with DUP set, on the same packet id, MaxRepubs times; then the
// client gives up on the link, reconnects and publishes the message again
// on a new id (mqtt_as's rule). Publish returns nil only after a PUBACK.
func TestQoS1RepublishThenReconnect(t *testing.T) {
	const maxRepubs = 2
	r := fxNewRig(t)
	var w fxWire
	r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, nil))
	cfg := r.config()
	cfg.MaxRepubs = maxRepubs
	c := r.connect(cfg)
	obs := fxObserve(t, r.broker, "rp/t")

	r.broker.DropPubacks(maxRepubs + 1) // every send on the first link is lost
	start := time.Now()
	if err := c.Publish(fxCtx(t, 10*time.Second), "rp/t", []byte("m"), 1, false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	t.Logf("Publish took %v", time.Since(start).Round(time.Millisecond))

	// Split the PUBLISHes by connection.
	var conns [][]fxWireEvent
	for _, e := range w.events() {
		switch e.typ {
		case packet.CONNECT:
			conns = append(conns, nil)
		case packet.PUBLISH:
			conns[len(conns)-1] = append(conns[len(conns)-1], e)
		}
	}
	if len(conns) != 2 {
		w.dump(t)
		t.Fatalf("%d connections, want 2 (the first and one reconnect)", len(conns))
	}
	first, second := conns[0], conns[1]
	if len(first) != maxRepubs+1 {
		w.dump(t)
		t.Fatalf("first link carried %d PUBLISHes, want %d (1 + MaxRepubs)", len(first), maxRepubs+1)
	}
	for i, e := range first {
		if e.id != first[0].id || e.dup != (i > 0) {
			t.Errorf("first link send %d: id %d dup %v, want id %d dup %v", i, e.id, e.dup, first[0].id, i > 0)
		}
	}
	if len(second) != 1 || second[0].dup || second[0].id == first[0].id {
		w.dump(t)
		t.Errorf("second link: %v, want one PUBLISH with DUP=0 on a new packet id (not %d)", second, first[0].id)
	}
	st := c.Stats()
	if st.Repubs != maxRepubs+1 || st.Outages != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v, want Repubs %d (DUP resends + republish), Outages 1, InFlight 0", st, maxRepubs+1)
	}
	if m := fxNextObserved(t, obs, 2*time.Second); string(m.Payload) != "m" {
		t.Errorf("observed %q", m.Payload)
	}
	// Nothing else: the dropped sends were never delivered.
	if err := c.Publish(fxCtx(t, 3*time.Second), "rp/t", []byte("marker"), 1, false); err != nil {
		t.Fatal(err)
	}
	dups := 0
	for m := fxNextObserved(t, obs, 2*time.Second); string(m.Payload) != "marker"; m = fxNextObserved(t, obs, 2*time.Second) {
		dups++
	}
	t.Logf("duplicates delivered: %d", dups)
}

// TestResetMidQoS2 cuts the link (RST) at each leg of a QoS 2 exchange.
// With a persistent session exactly-once holds: once PUBREC has reached
// the client only PUBREL is ever resent, never the PUBLISH, and the
// message is delivered once (paho.mqtt.golang #788).
func TestResetMidQoS2(t *testing.T) {
	legs := []struct {
		name       string
		dir        mqtttest.Direction
		typ        packet.Type
		persistent bool
		// afterPubrec: the client has seen PUBREC before the cut, so it
		// must never send the PUBLISH again.
		afterPubrec bool
	}{
		{"PUBLISH", mqtttest.ToBroker, packet.PUBLISH, true, false},
		{"PUBREC", mqtttest.ToClient, packet.PUBREC, true, false},
		{"PUBREL", mqtttest.ToBroker, packet.PUBREL, true, true},
		{"PUBCOMP", mqtttest.ToClient, packet.PUBCOMP, true, true},
		{"clean/PUBREL", mqtttest.ToBroker, packet.PUBREL, false, true},
		{"clean/PUBCOMP", mqtttest.ToClient, packet.PUBCOMP, false, true},
	}
	for _, leg := range legs {
		t.Run(leg.name, func(t *testing.T) {
			r := fxNewRig(t)
			var w fxWire
			var cut atomic.Int64 // index in the wire log of the cut packet, +1
			decide := func(dir mqtttest.Direction) func(fxWireEvent) mqtttest.Action {
				return func(e fxWireEvent) mqtttest.Action {
					if dir != leg.dir || e.typ != leg.typ || (e.typ == packet.PUBLISH && e.qos != 2) {
						return mqtttest.Forward()
					}
					w.mu.Lock()
					n := int64(len(w.log))
					w.mu.Unlock()
					if cut.CompareAndSwap(0, n) {
						return mqtttest.ResetConn()
					}
					return mqtttest.Forward()
				}
			}
			r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, decide(mqtttest.ToBroker)))
			r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, decide(mqtttest.ToClient)))
			cfg := r.config()
			cfg.PersistentSession = leg.persistent
			c := r.connect(cfg)
			obs := fxObserve(t, r.broker, "q2/#")

			if err := c.Publish(fxCtx(t, 10*time.Second), "q2/t", []byte("once"), 2, false); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if cut.Load() == 0 {
				t.Fatal("the cut never happened")
			}
			fxWaitDown(t, c, time.Second)
			// The marker is published after Publish returned: any duplicate
			// of the first message would be observed before it.
			if err := c.Publish(fxCtx(t, 5*time.Second), "q2/marker", []byte("marker"), 2, false); err != nil {
				t.Fatalf("Publish marker: %v", err)
			}
			var got []string
			for {
				m := fxNextObserved(t, obs, 3*time.Second)
				if m.Topic == "q2/marker" {
					break
				}
				got = append(got, string(m.Payload))
			}
			if !slices.Equal(got, []string{"once"}) {
				w.dump(t)
				t.Errorf("delivered %q before the marker, want exactly one \"once\"", got)
			}

			ev := w.events()
			cutAt := int(cut.Load()) - 1
			var id uint16
			for _, e := range ev[:cutAt+1] {
				if e.dir == mqtttest.ToBroker && e.typ == packet.PUBLISH && e.payload == "once" {
					id = e.id
				}
			}
			var republished, pubrels int
			for _, e := range ev[cutAt+1:] {
				if e.dir != mqtttest.ToBroker {
					continue
				}
				switch {
				case e.typ == packet.PUBLISH && e.payload == "once":
					republished++
					if leg.persistent && (e.id != id || !e.dup) {
						t.Errorf("resumed session: PUBLISH resent as id %d dup %v, want the original id %d with DUP (spec 4.4)", e.id, e.dup, id)
					}
				case e.typ == packet.PUBREL && e.id == id:
					pubrels++
				}
			}
			// Before PUBREC the client may resend the PUBLISH, or, when the
			// resumed broker resends its PUBREC first, go straight to PUBREL;
			// after it, never the PUBLISH.
			if leg.afterPubrec && republished > 0 {
				w.dump(t)
				t.Errorf("PUBLISH sent again %d times after PUBREC had arrived", republished)
			}
			if leg.afterPubrec && leg.persistent && pubrels == 0 {
				w.dump(t)
				t.Error("PUBREL not resent after the reconnect")
			}
			if st := c.Stats(); st.InFlight != 0 || st.Outages != 1 {
				t.Errorf("stats %+v, want InFlight 0, Outages 1", st)
			}
		})
	}
}

// TestResumedQoS2NeverRepublishedAfterPubrec: on a resumed session the
// broker resends the PUBRECs it holds as soon as the CONNACK is out, while
// the client resends its unacknowledged PUBLISHes. Whichever arrives first,
// once the client has had the PUBREC it must never send that PUBLISH again
// (MQTT 3.1.1 4.3.3): a PUBLISH after the PUBREL reaches a broker that has
// completed the exchange as a new message, and is delivered twice.
func TestResumedQoS2NeverRepublishedAfterPubrec(t *testing.T) {
	const n = 64
	rounds := 40 // the client loses the race in about one round in twenty
	if testing.Short() {
		rounds = 8
	}
	r := fxNewRig(t)
	var w fxWire
	var dropping atomic.Bool
	var dropped atomic.Int64
	r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, nil))
	r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, func(e fxWireEvent) mqtttest.Action {
		if e.typ == packet.PUBREC && dropping.Load() {
			dropped.Add(1)
			return mqtttest.Drop()
		}
		return mqtttest.Forward()
	}))
	cfg := r.config()
	cfg.PersistentSession = true
	cfg.ResponseTime = 2 * time.Second // no resend of its own before the reset
	cfg.MaxInflight = n                // all of them in flight at once
	c := r.connect(cfg)
	obs := fxObserve(t, r.broker, "rq/#")

	for round := range rounds {
		// n QoS 2 PUBLISHes reach the broker; their PUBRECs are lost.
		dropped.Store(0)
		dropping.Store(true)
		results := make(chan error, n)
		for i := range n {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				results <- c.Publish(ctx, "rq/t", []byte(fmt.Sprintf("%d-%d", round, i)), 2, false)
			}()
		}
		fxEventually(t, 5*time.Second, "PUBRECs dropped", func() bool { return dropped.Load() >= n })
		dropping.Store(false)
		r.proxy.Reset()
		for range n {
			if err := <-results; err != nil {
				t.Fatalf("round %d: Publish: %v", round, err)
			}
		}
		fxWaitDown(t, c, time.Second)
		fxWaitUp(t, c, time.Second)
		marker := fmt.Sprintf("marker-%d", round)
		if err := c.Publish(fxCtx(t, 3*time.Second), "rq/marker", []byte(marker), 2, false); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for m := fxNextObserved(t, obs, 3*time.Second); string(m.Payload) != marker; m = fxNextObserved(t, obs, 3*time.Second) {
			got[string(m.Payload)]++
		}
		for i := range n {
			if k := got[fmt.Sprintf("%d-%d", round, i)]; k != 1 {
				t.Errorf("round %d: message %d delivered %d times, want exactly once", round, i, k)
			}
		}
	}

	// On each connection, a PUBLISH after the client's own PUBREL for the
	// same id and message is a PUBLISH sent after its PUBREC had arrived.
	late := 0
	pubrel := map[uint16]bool{}
	lastPub := map[uint16]string{}
	for i, e := range w.events() {
		switch {
		case e.typ == packet.CONNECT:
			pubrel = map[uint16]bool{}
		case e.dir == mqtttest.ToBroker && e.typ == packet.PUBREL:
			pubrel[e.id] = true
		case e.dir == mqtttest.ToBroker && e.typ == packet.PUBLISH:
			if pubrel[e.id] && lastPub[e.id] == e.payload {
				late++
				t.Errorf("wire event %d: PUBLISH id %d (%q) sent again after its PUBREL", i, e.id, e.payload)
			}
			if lastPub[e.id] != e.payload {
				pubrel[e.id] = false
			}
			lastPub[e.id] = e.payload
		}
	}
	t.Logf("%d rounds of %d QoS 2 messages resumed after lost PUBRECs: %d PUBLISHes sent after their PUBREL; stats %+v", rounds, n, late, c.Stats())
}

// TestTruncatedPackets: the link closes (FIN) inside a CONNACK, a SUBACK or
// an incoming PUBLISH, at several byte offsets. The client sees an
// unexpected end of stream, reconnects at once, never hangs, and keeps
// working.
func TestTruncatedPackets(t *testing.T) {
	t.Run("CONNACK", func(t *testing.T) {
		r := fxNewRig(t)
		const size = 4 // 0x20 0x02 flags code
		var n atomic.Int64
		r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.CONNACK {
				if k := n.Add(1) - 1; k < size {
					return mqtttest.TruncateAndClose(int(k)) // offsets 0..3
				}
			}
			return mqtttest.Forward()
		})
		cfg := r.config()
		cfg.ConnectRetry = true
		cfg.ResponseTime = 2 * time.Second // a hang on a truncated CONNACK would show
		c := r.client(cfg)
		start := time.Now()
		if err := c.Connect(fxCtx(t, 10*time.Second)); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		el := time.Since(start)
		t.Logf("connected after %d truncated CONNACKs in %v", size, el.Round(time.Millisecond))
		if el >= cfg.ResponseTime {
			t.Errorf("Connect took %v: a truncated CONNACK was waited on instead of failing at once", el)
		}
		if got := r.proxy.Accepted(); got != size+1 {
			t.Errorf("proxy accepted %d connections, want %d", got, size+1)
		}
		fxRoundTrip(t, c, "tc/connack")
	})

	t.Run("SUBACK", func(t *testing.T) {
		r := fxNewRig(t)
		offsets := []int{0, 1, 2, 3, 4} // SUBACK for one filter: 5 bytes
		// One truncation per connection: a second SUBACK read before the
		// first one's FIN went out would never reach the client.
		var conns, cutConn, n atomic.Int64
		r.proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.CONNECT {
				conns.Add(1)
			}
			return mqtttest.Forward()
		})
		r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.SUBACK && n.Load() < int64(len(offsets)) {
				if k := conns.Load(); cutConn.Swap(k) != k {
					return mqtttest.TruncateAndClose(offsets[n.Add(1)-1])
				}
			}
			return mqtttest.Forward()
		})
		cfg := r.config()
		cfg.ResponseTime = 2 * time.Second
		c := r.connect(cfg)
		start := time.Now()
		if err := c.Subscribe(fxCtx(t, 10*time.Second), "tc/sub", 1); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		el := time.Since(start)
		st := c.Stats()
		t.Logf("subscribed through %d truncated SUBACKs in %v; stats %+v", len(offsets), el.Round(time.Millisecond), st)
		// A cut during a reconnect's restore is a failed reconnect, not an
		// outage: count the cuts at the proxy.
		if got := n.Load(); got != int64(len(offsets)) {
			t.Errorf("%d SUBACKs cut, want %d", got, len(offsets))
		}
		if st.Outages == 0 {
			t.Error("no outage")
		}
		if el >= time.Duration(len(offsets))*cfg.ResponseTime {
			t.Errorf("Subscribe took %v: truncated SUBACKs were waited on", el)
		}
		if err := r.broker.Publish("tc/sub", []byte("hello"), 1, false); err != nil {
			t.Fatal(err)
		}
		if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "hello" {
			t.Errorf("received %q", m.Payload)
		}
	})

	t.Run("PUBLISH", func(t *testing.T) {
		r := fxNewRig(t)
		var armed atomic.Int64 // offset+1 for the next incoming PUBLISH; 0: forward
		r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
			if h.Type == packet.PUBLISH {
				if k := armed.Swap(0); k > 0 {
					return mqtttest.TruncateAndClose(int(k - 1))
				}
			}
			return mqtttest.Forward()
		})
		cfg := r.config()
		cfg.ResponseTime = 2 * time.Second
		// Every connection dies young, so the backoff stays at its
		// maximum: keep it short for the 25 offsets.
		cfg.ReconnectMin, cfg.ReconnectMax = 5*time.Millisecond, 20*time.Millisecond
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "tc/pub/#", 1); err != nil {
			t.Fatal(err)
		}
		// The client publishes to itself, so the message comes back after
		// its (restored) subscription on the same connection.
		payload := []byte("truncate-me")
		size := 2 + 2 + len("tc/pub/x") + 2 + len(payload) // QoS 1 PUBLISH
		for off := range size {                            // every byte offset
			armed.Store(int64(off + 1))
			start := time.Now()
			if err := c.Publish(fxCtx(t, 5*time.Second), "tc/pub/x", payload, 1, false); err != nil {
				t.Fatalf("offset %d: Publish: %v", off, err)
			}
			fxWaitDown(t, c, 3*time.Second)
			el := time.Since(start)
			fxWaitUp(t, c, 3*time.Second)
			if el >= cfg.ResponseTime {
				t.Errorf("offset %d: Down after %v: the truncated PUBLISH was waited on", off, el)
			}
			want := "ok-" + strconv.Itoa(off)
			if err := c.Publish(fxCtx(t, 5*time.Second), "tc/pub/y", []byte(want), 1, false); err != nil {
				t.Fatalf("offset %d: Publish after reconnect: %v", off, err)
			}
			for {
				m := fxRecv(t, c, 3*time.Second)
				if string(m.Payload) == want {
					break
				}
				if m.Topic != "tc/pub/x" {
					t.Errorf("offset %d: unexpected message %q %q", off, m.Topic, m.Payload)
				}
			}
		}
		t.Logf("stats %+v", c.Stats())
	})
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

// TestLatencyAndJitter: 50 ms ± 30 ms each way causes no spurious outage
// and no resend, and order is preserved both ways.
func TestLatencyAndJitter(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.QueueLen = 256 // the test reads the incoming messages after they all arrived
	// The round trip is at most 160 ms; ResponseTime leaves room for a
	// loaded machine, so a resend here means a real false timeout.
	cfg.ResponseTime = time.Second
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "lj/in", 1); err != nil {
		t.Fatal(err)
	}
	obs := fxObserve(t, r.broker, "lj/out/#")
	r.proxy.Latency(50*time.Millisecond, 30*time.Millisecond)

	// Outgoing: 200 QoS 1 publishes from 8 publishers, each in sequence.
	const publishers, each = 8, 25
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range each {
				if err := c.Publish(ctx, "lj/out/"+strconv.Itoa(p), []byte(strconv.Itoa(i)), 1, false); err != nil {
					errs <- fmt.Errorf("publisher %d message %d: %w", p, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d QoS 1 publishes through 50±30 ms took %v", publishers*each, time.Since(start).Round(time.Millisecond))
	next := make([]int, publishers)
	for seen := 0; seen < publishers*each; {
		m := fxNextObserved(t, obs, 3*time.Second)
		p, _ := strconv.Atoi(strings.TrimPrefix(m.Topic, "lj/out/"))
		i, _ := strconv.Atoi(string(m.Payload))
		switch {
		case i == next[p]:
			next[p]++
			seen++
		case i < next[p]:
			t.Errorf("publisher %d: message %d observed again (a resend: see Repubs)", p, i)
		default:
			t.Fatalf("publisher %d: observed %d, want %d (out of order or lost)", p, i, next[p])
		}
	}

	// Incoming: 200 QoS 1 messages published at once arrive in order.
	const incoming = 200
	for i := range incoming {
		if err := r.broker.Publish("lj/in", []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range incoming {
		if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("incoming message %d is %q: out of order or lost", i, m.Payload)
		}
	}
	st := c.Stats()
	if st.Outages != 0 || st.Repubs != 0 || st.Discards != 0 {
		t.Errorf("stats %+v: latency within ResponseTime must cause no outage, resend or discard", st)
	}
}

// TestOneByteWrites: every packet arrives one byte per read, both ways;
// connecting, subscribing and publishing at every QoS still work.
func TestOneByteWrites(t *testing.T) {
	r := fxNewRig(t)
	r.proxy.Chunk(1)
	c := r.connect(r.config())
	ctx := fxCtx(t, 10*time.Second)
	if err := c.Subscribe(ctx, "ob/#", 2); err != nil {
		t.Fatal(err)
	}
	obs := fxObserve(t, r.broker, "ob/#")
	for q := range byte(3) {
		if err := c.Publish(ctx, "ob/"+strconv.Itoa(int(q)), bytes.Repeat([]byte{'a' + q}, 300), q, false); err != nil {
			t.Fatalf("Publish QoS %d: %v", q, err)
		}
	}
	if err := r.broker.Publish("ob/from-broker", []byte("hi"), 2, false); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 4 {
		m := fxRecv(t, c, 3*time.Second)
		got[m.Topic] = len(m.Payload)
	}
	want := map[string]int{"ob/0": 300, "ob/1": 300, "ob/2": 300, "ob/from-broker": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("received %v, want %v", got, want)
	}
	for range 4 {
		fxNextObserved(t, obs, 3*time.Second)
	}
	if st := c.Stats(); st.Outages != 0 {
		t.Errorf("stats %+v: one-byte writes caused an outage", st)
	}
}

// TestLargePublishThroughSlowLink: a 256 KiB publish, and its copy coming
// back, take longer than PingInterval on a slow link. Pings never split a
// packet, the payload arrives intact, and there is no false timeout.
func TestLargePublishThroughSlowLink(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.PingInterval = 100 * time.Millisecond
	cfg.ResponseTime = 3 * time.Second
	var w fxWire
	r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, nil))
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "big/t", 1); err != nil {
		t.Fatal(err)
	}
	obs := fxObserve(t, r.broker, "big/t")
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i*7 + i>>8)
	}
	r.proxy.Chunk(4)
	r.proxy.Latency(20*time.Millisecond, 10*time.Millisecond)
	start := time.Now()
	if err := c.Publish(fxCtx(t, 20*time.Second), "big/t", payload, 1, false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	up := time.Since(start)
	m := fxRecv(t, c, 20*time.Second)
	round := time.Since(start)
	t.Logf("256 KiB: PUBACK after %v, copy received after %v (PingInterval %v)", up.Round(time.Millisecond), round.Round(time.Millisecond), cfg.PingInterval)
	if !bytes.Equal(m.Payload, payload) {
		t.Error("the client received a corrupted payload")
	}
	if o := fxNextObserved(t, obs, 3*time.Second); !bytes.Equal(o.Payload, payload) {
		t.Error("the broker received a corrupted payload")
	}
	if up <= cfg.PingInterval {
		t.Errorf("the upload took %v, not longer than PingInterval %v: the link was not slow enough to test anything", up, cfg.PingInterval)
	}
	pings := 0
	for _, e := range w.events() {
		if e.typ == packet.PINGREQ {
			pings++
		}
	}
	t.Logf("PINGREQs sent meanwhile: %d", pings)
	if st := c.Stats(); st.Outages != 0 || st.Repubs != 0 {
		t.Errorf("stats %+v: false timeout on a slow link", st)
	}
}

// TestBrokerStopsReading: the broker side stops reading while the client
// writes large QoS 0 messages; once the buffers are full the client's write
// blocks and its write deadline reports the link dead within about
// ResponseTime (paho.mqtt.golang #723). After the fault clears it recovers.
func TestBrokerStopsReading(t *testing.T) {
	r := fxNewRig(t)
	c := r.connect(r.config())
	payload := make([]byte, 256<<10)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var err error
		// Publish with a live link writes even once ctx is done, so the
		// loop checks ctx itself.
		for err == nil && ctx.Err() == nil {
			err = c.Publish(ctx, "sr/t", payload, 0, false)
		}
		done <- err
	}()
	start := time.Now()
	r.proxy.StopReading(mqtttest.ToBroker)
	fxWaitDown(t, c, 5*time.Second)
	lat := time.Since(start)
	t.Logf("stalled writer detected after %v (ResponseTime %v)", lat.Round(time.Millisecond), fxResponseTime)
	// The buffers between client and proxy (a few MiB) fill within
	// milliseconds at loopback speed; then ResponseTime runs.
	if lat > fxPingInterval+fxResponseTime+fxTolerance {
		t.Errorf("Down after %v, want within about ResponseTime %v", lat, fxResponseTime)
	}
	if !r.logs.contains("stopped reading") {
		t.Error("the log does not give the stalled write as the cause")
	}
	r.proxy.Heal()
	fxWaitUp(t, c, 3*time.Second)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("publisher ended with %v", err)
	}
	fxRoundTrip(t, c, "sr/after")
}

// TestNoConnack: the broker accepts TCP but never answers CONNECT; Connect
// fails with ErrTimeout after about ResponseTime.
func TestNoConnack(t *testing.T) {
	r := fxNewRig(t)
	r.proxy.Blackhole(mqtttest.ToClient)
	c := r.client(r.config())
	start := time.Now()
	err := c.Connect(fxCtx(t, 5*time.Second))
	el := time.Since(start)
	t.Logf("Connect: %v after %v", err, el.Round(time.Millisecond))
	if !errors.Is(err, mqttas.ErrTimeout) {
		t.Errorf("Connect returned %v, want ErrTimeout", err)
	}
	if el < fxResponseTime-20*time.Millisecond || el > fxResponseTime+fxTolerance {
		t.Errorf("Connect gave up after %v, want about ResponseTime %v", el, fxResponseTime)
	}
	if c.IsConnected() {
		t.Error("IsConnected after a failed Connect")
	}
}

// TestBrokerRestartWithoutPersistence: the broker restarts and has forgotten
// everything (session present 0). The client reconnects and restores its
// subscriptions by itself, so messages published to them after Up arrive
// (paho.mqtt.golang #22 #238).
func TestBrokerRestartWithoutPersistence(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.Server = r.broker.Addr() // straight to the broker
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "rs/a", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "rs/b/#", 0); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if err := r.broker.Restart(false); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
		// Another party publishes as soon as the client says it is up.
		want := map[string]string{"rs/a": "a" + strconv.Itoa(round), "rs/b/x": "b" + strconv.Itoa(round)}
		for topic, payload := range want {
			if err := r.broker.Publish(topic, []byte(payload), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		got := fxReceiveSet(c, len(want), time.Second)
		if len(got) == len(want) {
			continue
		}
		t.Errorf("round %d: of the messages published right after Up only %v arrived: Up came before the restored subscriptions were in place at the broker", round, got)
		// Are they restored at all? A QoS 1 round trip of the client's own
		// orders everything after its SUBSCRIBE; then publish again.
		if err := c.Publish(fxCtx(t, 3*time.Second), "rs/sync", nil, 1, false); err != nil {
			t.Fatal(err)
		}
		for topic, payload := range want {
			if err := r.broker.Publish(topic, []byte(payload), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := fxReceiveSet(c, len(want), 3*time.Second); len(got) != len(want) {
			t.Fatalf("round %d: subscriptions not restored even after a round trip: received %v", round, got)
		}
	}
}

// fxReceiveSet collects up to n messages' payloads, waiting at most d in all.
func fxReceiveSet(c *mqttas.Client, n int, d time.Duration) map[string]bool {
	got := map[string]bool{}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for len(got) < n {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return got
			}
			got[string(m.Payload)] = true
		case <-timer.C:
			return got
		}
	}
	return got
}

// TestRestoredSubscriptionsActiveAtUp is the same promise made
// deterministic: Up means "subscriptions restored" (Client.Up, Subscribe
// docs), so a message another party publishes right after Up must arrive
// even when the broker is slow to process the restoring SUBSCRIBE.
func TestRestoredSubscriptionsActiveAtUp(t *testing.T) {
	r := fxNewRig(t)
	c := r.connect(r.config())
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "ra/t", 1); err != nil {
		t.Fatal(err)
	}
	// From now on every SUBSCRIBE takes 150 ms longer to reach the broker.
	r.proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type == packet.SUBSCRIBE {
			return mqtttest.Delay(150 * time.Millisecond)
		}
		return mqtttest.Forward()
	})
	r.proxy.Reset()
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 3*time.Second)
	if err := r.broker.Publish("ra/t", []byte("right after Up"), 1, false); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	select {
	case m := <-c.Messages():
		if string(m.Payload) != "right after Up" {
			t.Errorf("received %q", m.Payload)
		}
	case <-timer.C:
		t.Error("a message published right after Up was lost: Up was signalled before the broker had acknowledged the restored subscription (SUBACK)")
	}
}

// TestPersistentSessionResumes: with a persistent session, QoS 1 messages
// published to the client while it was away are delivered after the outage
// (session present 1 accepted, unlike mqtt_as; peer-failures row 22).
func TestPersistentSessionResumes(t *testing.T) {
	const n = 5
	// check receives the n messages. The broker's resend order is its own
	// business (mochi resends its in-flight store in map order, not in the
	// order of publication as MQTT 3.1.1 section 4.6 asks): the client
	// must deliver them in the order they came off the wire.
	check := func(t *testing.T, c *mqttas.Client, w *fxWire) {
		t.Helper()
		var got []string
		for range n {
			m := fxRecv(t, c, 3*time.Second)
			if m.QoS != 1 {
				t.Errorf("message %q has QoS %d, want 1", m.Payload, m.QoS)
			}
			got = append(got, string(m.Payload))
		}
		var wireOrder []string
		var present []bool
		for _, e := range w.events() {
			switch e.typ {
			case packet.CONNACK:
				present = append(present, e.present)
			case packet.PUBLISH:
				wireOrder = append(wireOrder, e.payload)
			}
		}
		if !slices.Equal(got, wireOrder) {
			t.Errorf("delivered %q, but the wire carried %q", got, wireOrder)
		}
		sorted := slices.Sorted(slices.Values(got))
		var want []string
		for i := range n {
			want = append(want, "away-"+strconv.Itoa(i))
		}
		if !slices.Equal(sorted, want) {
			t.Errorf("delivered %q, want each of %q once", got, want)
		}
		if !slices.Equal(got, want) {
			t.Logf("note: the broker resent the backlog out of order: %q", got)
		}
		if len(present) == 0 || !present[len(present)-1] {
			t.Errorf("CONNACK session-present flags %v: the last connection did not resume the session", present)
		}
		if st := c.Stats(); st.Outages != 1 {
			t.Errorf("stats %+v, want one outage", st)
		}
	}

	t.Run("LinkOutage", func(t *testing.T) {
		r := fxNewRig(t)
		var w fxWire
		r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, nil))
		cfg := r.config()
		cfg.PersistentSession = true
		cfg.ClientID = "persist-link"
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "ps/t", 1); err != nil {
			t.Fatal(err)
		}
		old := fxLiveConn(t, r.broker, cfg.ClientID)
		r.proxy.Refuse(true)
		r.proxy.Reset()
		fxWaitDown(t, c, 3*time.Second)
		r.events.waitDisconnect(t, cfg.ClientID, old, 3*time.Second) // the broker knows it is away
		for i := range n {
			if err := r.broker.Publish("ps/t", []byte("away-"+strconv.Itoa(i)), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		r.proxy.Refuse(false)
		fxWaitUp(t, c, 3*time.Second)
		check(t, c, &w)
	})

	t.Run("BrokerStopStart", func(t *testing.T) {
		r := fxNewRig(t)
		cfg := r.config()
		cfg.PersistentSession = true
		cfg.ClientID = "persist-restart"
		var w fxWire
		r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, nil))
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "ps/t", 1); err != nil {
			t.Fatal(err)
		}
		if err := r.broker.Stop(); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		for i := range n {
			if err := r.broker.Publish("ps/t", []byte("away-"+strconv.Itoa(i)), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.broker.Start(); err != nil {
			t.Fatal(err)
		}
		fxWaitUp(t, c, 3*time.Second)
		check(t, c, &w)
	})
}

// TestCleanInitDiscardsOldSession: mqtt_as's clean_init. A persistent-
// session client that does not resume on start discards, at power-up, the
// backlog an earlier run left at the broker; one with ResumeOnStart gets it.
func TestCleanInitDiscardsOldSession(t *testing.T) {
	for _, resume := range []bool{false, true} {
		t.Run("ResumeOnStart="+strconv.FormatBool(resume), func(t *testing.T) {
			r := fxNewRig(t)
			cfg := r.config()
			cfg.PersistentSession = true
			cfg.ClientID = "clean-init"
			// An earlier run subscribed and went away with its session kept.
			old := r.connect(cfg)
			if err := old.Subscribe(fxCtx(t, 3*time.Second), "ci/t", 1); err != nil {
				t.Fatal(err)
			}
			remote := fxLiveConn(t, r.broker, cfg.ClientID)
			if err := old.Disconnect(fxCtx(t, 3*time.Second)); err != nil {
				t.Fatal(err)
			}
			r.events.waitDisconnect(t, cfg.ClientID, remote, 3*time.Second)
			if err := r.broker.Publish("ci/t", []byte("backlog"), 1, false); err != nil {
				t.Fatal(err)
			}

			cfg.ResumeOnStart = resume
			c := r.connect(cfg)
			if resume {
				if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "backlog" {
					t.Errorf("received %q, want the backlog", m.Payload)
				}
				return
			}
			// Subscribe afresh and publish a marker: a backlog message would
			// have been delivered at connection time, before the marker.
			if err := c.Subscribe(fxCtx(t, 3*time.Second), "ci/t", 1); err != nil {
				t.Fatal(err)
			}
			if err := r.broker.Publish("ci/t", []byte("marker"), 1, false); err != nil {
				t.Fatal(err)
			}
			if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "marker" {
				t.Errorf("received %q first: the old session's backlog was delivered at power-up", m.Payload)
			}
		})
	}
}

// TestPublishWaitsThroughOutage: Publish during an outage waits for the link
// and returns nil once the message is through (paho.golang #247 #274,
// paho.mqtt.golang #563); with a ctx deadline inside the outage it returns
// the ctx error, and the abandoned message is not sent later.
func TestPublishWaitsThroughOutage(t *testing.T) {
	r := fxNewRig(t)
	c := r.connect(r.config())
	obs := fxObserve(t, r.broker, "pw/#")
	r.proxy.Refuse(true)
	r.proxy.Reset()
	fxWaitDown(t, c, 3*time.Second)

	for q := range byte(3) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		start := time.Now()
		err := c.Publish(ctx, "pw/abandoned", []byte{q}, q, false)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("QoS %d Publish with a deadline inside the outage: %v, want context.DeadlineExceeded", q, err)
		}
		if el := time.Since(start); el < 150*time.Millisecond || el > time.Second {
			t.Errorf("QoS %d: returned after %v, want at its 150ms deadline", q, el)
		}
	}

	results := make(chan error, 3)
	var want int64
	for q := range byte(3) {
		topic := "pw/waited/" + strconv.Itoa(int(q))
		want += int64(len(topic) + 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			results <- c.Publish(ctx, topic, []byte{q}, q, false)
		}()
	}
	// All three are inside Publish, waiting, before the link returns.
	fxEventually(t, 3*time.Second, "publishes waiting", func() bool { return c.Stats().UnsentBytes >= want })
	r.proxy.Refuse(false)
	fxWaitUp(t, c, 3*time.Second)
	for range 3 {
		if err := <-results; err != nil {
			t.Errorf("Publish through the outage: %v", err)
		}
	}
	if err := c.Publish(fxCtx(t, 3*time.Second), "pw/marker", nil, 1, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := fxNextObserved(t, obs, 3*time.Second); m.Topic != "pw/marker"; m = fxNextObserved(t, obs, 3*time.Second) {
		got = append(got, m.Topic)
	}
	slices.Sort(got)
	if want := []string{"pw/waited/0", "pw/waited/1", "pw/waited/2"}; !slices.Equal(got, want) {
		t.Errorf("broker received %q, want %q (abandoned publishes must not be sent later)", got, want)
	}
	if st := c.Stats(); st.UnsentBytes != 0 || st.InFlight != 0 {
		t.Errorf("stats %+v, want nothing unsent or in flight", st)
	}
}

// TestBackupFailover: Mongoose OS failover. The primary refuses, so after
// backing off to ReconnectMax the client connects to the backup; later the
// backup dies and the primary is good again, and the client switches back.
func TestBackupFailover(t *testing.T) {
	r := fxNewRig(t)
	primary, backup := r.proxy, mqtttest.StartProxy(t, r.broker.Addr())
	primary.Refuse(true)
	cfg := r.config()
	cfg.Backup = backup.Addr()
	cfg.ConnectRetry = true
	c := r.client(cfg)
	start := time.Now()
	if err := c.Connect(fxCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	fxWaitUp(t, c, time.Second)
	t.Logf("on the backup after %v and %d refused attempts on the primary", time.Since(start).Round(time.Millisecond), primary.Accepted())
	if backup.Conns() != 1 || primary.Conns() != 0 {
		t.Fatalf("connections: primary %d, backup %d; want the backup", primary.Conns(), backup.Conns())
	}
	fxRoundTrip(t, c, "fo/backup")

	primary.Refuse(false)
	backup.Refuse(true)
	backup.Reset()
	start = time.Now()
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 5*time.Second)
	t.Logf("back on the primary after %v", time.Since(start).Round(time.Millisecond))
	if err := primary.WaitConns(fxCtx(t, 3*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if err := backup.WaitConns(fxCtx(t, 3*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	fxRoundTrip(t, c, "fo/primary")
}

// TestPacketIDsSurviveReconnect: many QoS 1 publishes in flight across a
// reset all complete, and no packet id is ever used for two messages in
// flight at once, on either side of the reconnect (at-wat/mqtt-go).
func TestPacketIDsSurviveReconnect(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		t.Run("persistent="+strconv.FormatBool(persistent), func(t *testing.T) {
			const total, cutAfter = 300, 100
			r := fxNewRig(t)
			var w fxWire
			var seen atomic.Int64
			r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, func(e fxWireEvent) mqtttest.Action {
				if e.typ == packet.PUBLISH && seen.Add(1) == cutAfter {
					return mqtttest.ResetConn()
				}
				return mqtttest.Forward()
			}))
			r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, nil))
			cfg := r.config()
			cfg.PersistentSession = persistent
			c := r.connect(cfg)
			obs := fxObserve(t, r.broker, "id/#")
			receipts := fxAddReceipts(t, r.broker, "id/")

			var wg sync.WaitGroup
			errs := make(chan error, total)
			for i := range total {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					defer cancel()
					if err := c.Publish(ctx, "id/t", []byte(strconv.Itoa(i)), 1, false); err != nil {
						errs <- fmt.Errorf("message %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// A marker published after all of them is routed after all of them.
			if err := c.Publish(fxCtx(t, 3*time.Second), "id/t", []byte("end"), 1, false); err != nil {
				t.Fatal(err)
			}
			seenMsgs := map[string]bool{}
			for m := fxNextObserved(t, obs, 3*time.Second); string(m.Payload) != "end"; m = fxNextObserved(t, obs, 3*time.Second) {
				seenMsgs[string(m.Payload)] = true
			}
			for i := range total {
				switch k := strconv.Itoa(i); {
				case seenMsgs[k]:
				case receipts.received(k):
					t.Logf("note: message %s was taken in and acknowledged by the broker but never routed (mochi: the PUBACK write failed on the dying connection)", k)
				default:
					t.Errorf("message %s acknowledged but never reached the broker", k)
				}
			}

			// Replay the wire: an id in flight must not carry another message.
			// (The in-flight count is only indicative: an ack and a resend
			// of the same id can cross, so it may read one over MaxInflight.)
			inflight := map[uint16]string{}
			collisions, connects, maxInflight := 0, 0, 0
			for _, e := range w.events() {
				switch {
				case e.typ == packet.CONNECT:
					connects++
					if e.clean {
						clear(inflight) // the broker forgot the session
					}
				case e.typ == packet.PUBLISH && e.dir == mqtttest.ToBroker:
					if cur, ok := inflight[e.id]; ok && cur != e.payload {
						collisions++
						t.Errorf("packet id %d sent for message %s while still in flight for message %s", e.id, e.payload, cur)
					}
					inflight[e.id] = e.payload
					maxInflight = max(maxInflight, len(inflight))
				case e.typ == packet.PUBACK && e.dir == mqtttest.ToClient:
					delete(inflight, e.id)
				}
			}
			st := c.Stats()
			t.Logf("%d publishes over %d connections, at most %d in flight, %d collisions; stats %+v", total, connects, maxInflight, collisions, st)
			if connects < 2 {
				t.Error("the reset never happened")
			}
			if st.InFlight != 0 || st.Outages != 1 {
				t.Errorf("stats %+v, want InFlight 0 and one outage", st)
			}
		})
	}
}

// TestLinkDropDuringInboundQoS1: the link drops while the broker is pushing
// QoS 1 messages at the client and its application is reading them; the
// client recovers, nothing is stuck (paho.mqtt.golang #509), and every
// message the broker put on the wire, before or after the drop, reaches
// the application (the persistent session has the broker resend the
// unacknowledged ones).
func TestLinkDropDuringInboundQoS1(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.PersistentSession = true
	cfg.QueueLen = 4096 // no discards: every message must arrive
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "in/t", 1); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var got atomic.Int64
	var dropped atomic.Bool
	var w fxWire
	r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, func(e fxWireEvent) mqtttest.Action {
		if e.typ == packet.PUBLISH && got.Load() > n/4 && dropped.CompareAndSwap(false, true) {
			return mqtttest.ResetConn()
		}
		return mqtttest.Forward()
	}))
	pubDone := make(chan error, 1)
	go func() {
		for i := range n {
			if err := r.broker.Publish("in/t", []byte(strconv.Itoa(i)), 1, false); err != nil {
				pubDone <- err
				return
			}
		}
		pubDone <- nil
	}()
	delivered := map[string]int{}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	var published, reconnected, markerSent bool
	for {
		select {
		case m := <-c.Messages():
			delivered[string(m.Payload)]++
			got.Add(1)
		case err := <-pubDone:
			if err != nil {
				t.Fatal(err)
			}
			published = true
		case <-c.Up():
			reconnected = true
		case <-timer.C:
			t.Fatalf("stuck: %d delivered, published all %v, reconnected %v; stats %+v", len(delivered), published, reconnected, c.Stats())
		}
		if delivered["end"] > 0 {
			break
		}
		// Once the drop is over and every message is out, a marker
		// published last comes after everything the broker will resend.
		if published && reconnected && !markerSent {
			markerSent = true
			if err := r.broker.Publish("in/t", []byte("end"), 1, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !dropped.Load() {
		t.Fatal("the link was never dropped")
	}
	onWire := map[string]bool{}
	for _, e := range w.events() {
		if e.typ == packet.PUBLISH {
			onWire[e.payload] = true
		}
	}
	var lost, brokerLost []int
	dups := 0
	for i := range n {
		k := strconv.Itoa(i)
		switch {
		case delivered[k] > 0:
			dups += delivered[k] - 1
		case onWire[k]:
			lost = append(lost, i)
		default:
			brokerLost = append(brokerLost, i)
		}
	}
	st := c.Stats()
	t.Logf("delivered %d distinct of %d, %d duplicates; stats %+v", len(delivered)-1, n, dups, st)
	if len(lost) > 0 {
		t.Errorf("%d messages the broker sent were never delivered: %v", len(lost), lost[:min(len(lost), 20)])
	}
	if len(brokerLost) > 0 {
		// mochi v2.7.9 loses messages published to a session while a new
		// connection takes it over: they are queued on the old client
		// after its in-flight store was copied, then cleared. They never
		// appear on any connection; that is no fault of the client.
		t.Logf("note: the broker never sent %d messages (lost on its side during the session takeover): %v", len(brokerLost), brokerLost[:min(len(brokerLost), 20)])
	}
	if st.Outages != 1 || st.Discards != 0 {
		t.Errorf("stats %+v, want one outage and no discards", st)
	}
	fxRoundTrip(t, c, "in/after")
}

// fxFakeBroker is a scripted MQTT 3.1.1 broker on a raw listener, for what a
// real broker never sends: malformed and oversized packets. Connection k
// is handed to script(k); it answers like a broker otherwise.
type fxFakeBroker struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex // guards conns, pubs and errs
	conns  map[net.Conn]struct{}
	pubs   map[string]int // payloads of the PUBLISHes received, counted
	errs   []error        // reads that ended other than by EOF, close or reset
	n      atomic.Int64
	script func(k int, ev string) []byte // raw bytes to send instead of the normal answer to ev, or nil
}

func fxStartFakeBroker(t testing.TB, script func(k int, ev string) []byte) *fxFakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return fxServeFakeBroker(t, ln, script)
}

// fxServeFakeBroker serves the fake broker on ln (a TLS listener, say).
func fxServeFakeBroker(t testing.TB, ln net.Listener, script func(k int, ev string) []byte) *fxFakeBroker {
	t.Helper()
	f := &fxFakeBroker{ln: ln, conns: map[net.Conn]struct{}{}, pubs: map[string]int{}, script: script}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[nc] = struct{}{}
			f.mu.Unlock()
			k := int(f.n.Add(1) - 1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(k, nc)
				nc.Close()
				f.mu.Lock()
				delete(f.conns, nc)
				f.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for nc := range f.conns {
			nc.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fxFakeBroker) serve(k int, nc net.Conn) {
	rd := packet.NewReader(nc, 1<<20)
	var subs []string
	send := func(p packet.Packet) bool {
		b, err := p.AppendTo(nil, packet.V311)
		if err != nil {
			panic(err)
		}
		_, err = nc.Write(b)
		return err == nil
	}
	// answer sends the scripted bytes for ev if there are any, else the
	// normal answer; it reports false when the connection should end.
	answer := func(ev string, normal func() bool) bool {
		if raw := f.script(k, ev); raw != nil {
			_, err := nc.Write(raw)
			return err == nil
		}
		return normal()
	}
	for {
		h, body, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
			return
		}
		p, err := packet.Decode(h, body, packet.V311)
		if err != nil {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
			return
		}
		var ok bool
		switch p := p.(type) {
		case *packet.Connect:
			ok = answer("CONNECT", func() bool { return send(&packet.Connack{}) })
		case *packet.Pingreq:
			ok = answer("PINGREQ", func() bool { return send(&packet.Pingresp{}) })
		case *packet.Subscribe:
			codes := make([]packet.ReasonCode, len(p.Subscriptions))
			for i, s := range p.Subscriptions {
				codes[i] = packet.ReasonCode(s.QoS)
				subs = append(subs, strings.Clone(s.Filter)) // the body is reused by the next read
			}
			id := p.PacketID
			ok = answer("SUBSCRIBE", func() bool { return send(&packet.Suback{PacketID: id, ReasonCodes: codes}) })
		case *packet.Publish:
			pub := *p
			f.mu.Lock()
			f.pubs[string(pub.Payload)]++
			f.mu.Unlock()
			ok = answer("PUBLISH", func() bool {
				switch pub.QoS {
				case 1:
					if !send(&packet.Puback{PacketID: pub.PacketID}) {
						return false
					}
				case 2:
					if !send(&packet.Pubrec{PacketID: pub.PacketID}) {
						return false
					}
				}
				for _, s := range subs {
					if packet.MatchTopic(s, pub.Topic) {
						return send(&packet.Publish{Topic: pub.Topic, Payload: pub.Payload})
					}
				}
				return true
			})
		case *packet.Pubrel:
			ok = send(&packet.Pubcomp{PacketID: p.PacketID})
		case *packet.Disconnect:
			return
		default:
			ok = true
		}
		if !ok {
			return
		}
	}
}

// TestReaderSurvivesMalformedPacket: a malformed packet, a packet of a type
// a broker never sends, or one above MaxPacketSize ends the connection
// cleanly; the client reconnects and keeps working, its reader never dies
// (mqtt_as's known bugs; paho #19 row: a hostile length costs nothing).
func TestReaderSurvivesMalformedPacket(t *testing.T) {
	cases := []struct {
		name string
		raw  []byte
	}{
		{"reserved type 0", []byte{0x00, 0x00}},
		{"reserved type 15 (AUTH in 3.1.1)", []byte{0xF0, 0x00}},
		{"second CONNACK", []byte{0x20, 0x02, 0x00, 0x00}},
		{"PUBLISH QoS 3", append([]byte{0x36, 0x07, 0x00, 0x03}, "m/t\x00\x01"...)},
		{"PUBLISH wildcard topic", append([]byte{0x30, 0x05, 0x00, 0x03}, "m/+"...)},
		{"PUBLISH invalid UTF-8 topic", []byte{0x30, 0x04, 0x00, 0x02, 0xFF, 0xFE}},
		{"PUBLISH topic longer than packet", append([]byte{0x30, 0x04, 0x00, 0x09}, "m/"...)},
		{"remaining length over four bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
		{"hostile length 200 MiB", []byte{0x30, 0x80, 0x80, 0x80, 0x64}},
		{"SUBACK return code 3", []byte{0x90, 0x03, 0x00, 0x01, 0x03}},
		{"PUBACK too short", []byte{0x40, 0x01, 0x00}},
		{"PUBREL with wrong flags", []byte{0x60, 0x02, 0x00, 0x01}},
		{"PINGRESP with a body", []byte{0xD0, 0x01, 0x00}},
		{"PINGRESP with reserved flags", []byte{0xD2, 0x00}},
		{"UNSUBACK with reserved flags", []byte{0xB1, 0x02, 0x00, 0x01}},
		{"server DISCONNECT", []byte{0xE0, 0x00}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The first connection answers the first SUBSCRIBE with the bad
			// packet; later ones behave.
			fb := fxStartFakeBroker(t, func(k int, ev string) []byte {
				if k == 0 && ev == "SUBSCRIBE" {
					return tc.raw
				}
				return nil
			})
			logs := fxNewLogSink(t)
			c := fxNewClient(t, mqttas.Config{
				Server: fb.ln.Addr().String(), KeepAlive: fxKeepAlive, PingInterval: fxPingInterval,
				ResponseTime: 2 * time.Second, ReconnectMin: fxReconnectMin, ReconnectMax: fxReconnectMax,
				MaxPacketSize: 64 << 10, Logger: logs.logger(),
			})
			if err := c.Connect(fxCtx(t, 3*time.Second)); err != nil {
				t.Fatal(err)
			}
			fxWaitUp(t, c, time.Second)
			start := time.Now()
			if err := c.Subscribe(fxCtx(t, 5*time.Second), "m/#", 0); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			fxWaitDown(t, c, time.Second)
			fxWaitUp(t, c, time.Second)
			if el := time.Since(start); el >= 2*time.Second || logs.contains("unacknowledged") {
				t.Errorf("recovered after %v: the bad packet was accepted as valid; the link failed only when the SUBACK wait ran out (ResponseTime)", el)
			}
			if err := c.Publish(fxCtx(t, 3*time.Second), "m/x", []byte("still working"), 1, false); err != nil {
				t.Fatalf("Publish after the bad packet: %v", err)
			}
			if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "still working" {
				t.Errorf("received %q", m.Payload)
			}
			if st := c.Stats(); st.Outages != 1 || fb.n.Load() != 2 {
				t.Errorf("stats %+v after %d connections, want one outage and one reconnect", st, fb.n.Load())
			}
		})
	}

	t.Run("incoming PUBLISH above MaxPacketSize", func(t *testing.T) {
		r := fxNewRig(t)
		cfg := r.config()
		cfg.MaxPacketSize = 4 << 10
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "os/#", 1); err != nil {
			t.Fatal(err)
		}
		if err := r.broker.Publish("os/big", make([]byte, 8<<10), 1, false); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
		if err := c.Publish(fxCtx(t, 3*time.Second), "os/small", []byte("small"), 1, false); err != nil {
			t.Fatal(err)
		}
		if m := fxRecv(t, c, 3*time.Second); m.Topic != "os/small" {
			t.Errorf("received %q (%d bytes), want os/small", m.Topic, len(m.Payload))
		}
		if !r.logs.contains("too large") && !r.logs.contains("exceeds") {
			t.Error("the log does not say the packet was too large")
		}
	})

	t.Run("many packets in one read", func(t *testing.T) {
		// The fake broker answers SUBSCRIBE with SUBACK followed by fifty
		// PUBLISHes in one write.
		var burst []byte
		burst, _ = (&packet.Suback{PacketID: 1, ReasonCodes: []packet.ReasonCode{0}}).AppendTo(burst, packet.V311)
		for i := range 50 {
			burst, _ = (&packet.Publish{Topic: "m/burst", Payload: []byte(strconv.Itoa(i))}).AppendTo(burst, packet.V311)
		}
		fb := fxStartFakeBroker(t, func(k int, ev string) []byte {
			if ev == "SUBSCRIBE" {
				return burst
			}
			return nil
		})
		c := fxNewClient(t, mqttas.Config{Server: fb.ln.Addr().String(), KeepAlive: fxKeepAlive, ResponseTime: fxResponseTime, Logger: fxNewLogSink(t).logger()})
		if err := c.Connect(fxCtx(t, 3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "m/#", 0); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		for i := range 50 {
			if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("message %d: %q", i, m.Payload)
			}
		}
		if st := c.Stats(); st.Outages != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// fxTLS makes a CA and a server certificate for 127.0.0.1 and broker.test,
// and returns the server's configuration and a pool trusting the CA.
func fxTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqttas test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker.test"},
		DNSNames: []string{"broker.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestTLSFaults: a TLS handshake that stalls fails after ResponseTime, and
// a TLS link reset again and again under concurrent publishers and a busy
// pinger never carries a corrupted record (one writer owns the tls.Conn:
// paho.golang #81). Certificate verification is tls_test.go's.
func TestTLSFaults(t *testing.T) {
	serverTLS, pool := fxTLS(t)
	start := func(t *testing.T) (*fxFakeBroker, *mqtttest.Proxy) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fb := fxServeFakeBroker(t, tls.NewListener(ln, serverTLS), func(int, string) []byte { return nil })
		return fb, mqtttest.StartProxy(t, ln.Addr().String())
	}
	config := func(t *testing.T, addr string, tc *tls.Config) mqttas.Config {
		return mqttas.Config{
			Server: "mqtts://" + addr, TLS: tc, KeepAlive: fxKeepAlive, PingInterval: fxPingInterval,
			ResponseTime: fxResponseTime, ReconnectMin: fxReconnectMin, ReconnectMax: fxReconnectMax,
			Logger: fxNewLogSink(t).logger(),
		}
	}

	t.Run("handshake stall", func(t *testing.T) {
		_, proxy := start(t)
		proxy.Blackhole(mqtttest.ToClient) // the ClientHello arrives, nothing comes back
		c := fxNewClient(t, config(t, proxy.Addr(), &tls.Config{RootCAs: pool}))
		begin := time.Now()
		err := c.Connect(fxCtx(t, 5*time.Second))
		el := time.Since(begin)
		t.Logf("Connect: %v after %v", err, el.Round(time.Millisecond))
		if err == nil {
			t.Fatal("Connect succeeded through a stalled handshake")
		}
		if el < fxResponseTime-20*time.Millisecond || el > fxResponseTime+fxTolerance {
			t.Errorf("gave up after %v, want about ResponseTime %v", el, fxResponseTime)
		}
		// The caller's ctx did not expire: the error must not say it did.
		if !errors.Is(err, mqttas.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a TLS handshake stall returned %v: want ErrTimeout (no answer within ResponseTime), not context.DeadlineExceeded while the caller's ctx is live", err)
		}
	})

	t.Run("resets under concurrent writers", func(t *testing.T) {
		fb, proxy := start(t)
		cfg := config(t, proxy.Addr(), &tls.Config{RootCAs: pool})
		cfg.PingInterval = 20 * time.Millisecond // the pinger writes often too
		c := fxNewClient(t, cfg)
		if err := c.Connect(fxCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		const publishers, each, resets = 8, 100, 5
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, publishers)
		for p := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					payload := fmt.Sprintf("%d-%d", p, i)
					if err := c.Publish(ctx, "tls/t", []byte(payload), 1, false); err != nil {
						errs <- fmt.Errorf("%s: %w", payload, err)
						return
					}
					_ = c.Publish(ctx, "tls/q0", make([]byte, 2048), 0, false)
				}
			}()
		}
		for range resets {
			fxWaitUp(t, c, 5*time.Second)
			timer := time.NewTimer(50 * time.Millisecond) // the fault's timing
			<-timer.C
			proxy.Reset()
			fxWaitDown(t, c, 5*time.Second)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		fb.mu.Lock()
		defer fb.mu.Unlock()
		for p := range publishers {
			for i := range each {
				if fb.pubs[fmt.Sprintf("%d-%d", p, i)] == 0 {
					t.Errorf("message %d-%d never reached the broker", p, i)
				}
			}
		}
		for _, err := range fb.errs {
			t.Errorf("the broker read a damaged stream: %v", err)
		}
		t.Logf("stats %+v, broker connections %d", c.Stats(), fb.n.Load())
		if st := c.Stats(); st.Outages < resets {
			t.Errorf("Outages = %d, want >= %d", st.Outages, resets)
		}
	})
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
