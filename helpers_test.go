package mqttas_test

// Private helpers the behaviour tests share: an in-process mochi broker
// with a recording hook, a client constructor that closes on cleanup,
// bounded waits, and peers that refuse or never answer. They start mochi
// directly rather than through mqtttest so that each test can install the
// hook it needs (an auth ledger, an ACL that refuses a SUBSCRIBE, a CONNACK
// code).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas"
)

// ctxFor is the bound every wait in a test runs under.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mochiEvent is one thing the broker saw a client do.
type mochiEvent struct {
	kind   string // "connect", "session", "disconnect", "qosdone", "subscribe", "pingreq"
	id     string // client id
	cl     *mqtt.Client
	filter string // for "subscribe"
}

// mochiOpts configures startMochi. The zero value is an anonymous broker
// on a free loopback port that allows everything.
type mochiOpts struct {
	auth      func(user, pass string) bool        // nil: allow all
	acl       func(topic string, write bool) bool // nil: allow all
	onConnect func(cl *mqtt.Client) error         // runs in mochi's OnConnect
	hooks     []mqtt.Hook                         // extra hooks, added after ours
	hookCfg   []any                               // their configs
	ln        net.Listener                        // listen here instead of 127.0.0.1:0
	caps      func(*mqtt.Capabilities)            // adjust the capabilities
}

// mochiHook records what clients do, and decides auth and ACL.
type mochiHook struct {
	mqtt.HookBase
	opts mochiOpts

	mu      sync.Mutex // guards events and changed
	events  []mochiEvent
	changed chan struct{} // closed and replaced on every new event
}

func (h *mochiHook) ID() string { return "mqttas-test-recorder" }

func (h *mochiHook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnConnect,
		mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnQosComplete,
		mqtt.OnSubscribed, mqtt.OnPacketRead,
	}, []byte{b})
}

func (h *mochiHook) record(e mochiEvent) {
	h.mu.Lock()
	h.events = append(h.events, e)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *mochiHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.opts.auth == nil {
		return true
	}
	return h.opts.auth(string(pk.Connect.Username), string(pk.Connect.Password))
}

func (h *mochiHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.opts.acl == nil {
		return true
	}
	return h.opts.acl(topic, write)
}

func (h *mochiHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	h.record(mochiEvent{kind: "connect", id: cl.ID, cl: cl})
	if h.opts.onConnect != nil {
		return h.opts.onConnect(cl)
	}
	return nil
}

func (h *mochiHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.record(mochiEvent{kind: "session", id: cl.ID, cl: cl})
}

func (h *mochiHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.record(mochiEvent{kind: "disconnect", id: cl.ID, cl: cl})
}

func (h *mochiHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	h.record(mochiEvent{kind: "qosdone", id: cl.ID, cl: cl})
}

// OnSubscribed runs once the broker has processed a SUBSCRIBE (granted or
// not), before it sends the SUBACK.
func (h *mochiHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	for _, f := range pk.Filters {
		h.record(mochiEvent{kind: "subscribe", id: cl.ID, cl: cl, filter: f.Filter})
	}
}

func (h *mochiHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Pingreq {
		h.record(mochiEvent{kind: "pingreq", id: cl.ID, cl: cl})
	}
	return pk, nil
}

// snapshot returns the events so far.
func (h *mochiHook) snapshot() []mochiEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]mochiEvent(nil), h.events...)
}

// wait blocks until ok holds for the events seen so far, or ctx ends.
func (h *mochiHook) wait(ctx context.Context, ok func([]mochiEvent) bool) error {
	for {
		h.mu.Lock()
		done := ok(h.events)
		ch := h.changed
		h.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// countEvents counts the events of kind for client id ("" = any client).
func countEvents(evs []mochiEvent, kind, id string) int {
	n := 0
	for _, e := range evs {
		if e.kind == kind && (id == "" || e.id == id) {
			n++
		}
	}
	return n
}

// waitCount waits until the broker has seen n events of kind for client id.
func (h *mochiHook) waitCount(t *testing.T, ctx context.Context, kind, id string, n int) {
	t.Helper()
	if err := h.wait(ctx, func(evs []mochiEvent) bool { return countEvents(evs, kind, id) >= n }); err != nil {
		t.Fatalf("broker saw %d %q events for client %q, want %d: %v",
			countEvents(h.snapshot(), kind, id), kind, id, n, err)
	}
}

// lastClient returns the broker's latest connection of client id.
func (h *mochiHook) lastClient(id string) *mqtt.Client {
	evs := h.snapshot()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].kind == "session" && evs[i].id == id {
			return evs[i].cl
		}
	}
	return nil
}

// mochiBroker is a mochi server on loopback TCP.
type mochiBroker struct {
	srv  *mqtt.Server
	hook *mochiHook
	addr string
	once sync.Once
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startMochi(t *testing.T, o mochiOpts) *mochiBroker {
	t.Helper()
	opts := &mqtt.Options{InlineClient: true, Logger: quietLogger()}
	if o.caps != nil {
		opts.Capabilities = mqtt.NewDefaultServerCapabilities()
		o.caps(opts.Capabilities)
	}
	s := mqtt.New(opts)
	h := &mochiHook{opts: o, changed: make(chan struct{})}
	if err := s.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	for i, x := range o.hooks {
		if err := s.AddHook(x, o.hookCfg[i]); err != nil {
			t.Fatal(err)
		}
	}
	var l listeners.Listener
	if o.ln != nil {
		l = listeners.NewNet("t1", o.ln)
	} else {
		l = listeners.NewTCP(listeners.Config{ID: "t1", Address: "127.0.0.1:0"})
	}
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &mochiBroker{srv: s, hook: h, addr: l.Address()}
	t.Cleanup(func() {
		if err := b.shutdown(); err != nil {
			t.Logf("broker shutdown: %v", err)
		}
	})
	return b
}

// close stops the broker (mochi panics on a second Close).
func (b *mochiBroker) close() { b.once.Do(func() { b.srv.Close() }) }

// shutdown is close for the end of a test, once every client is closed.
// mochi 2.7.9's Server.Close can deadlock against a connection it is still
// removing: Clients.GetByListener takes the map's read lock and then again
// through Clients.Len, and a Clients.Delete queued in between blocks both
// for ever (seen here as a test hung in Cleanup). So first wait, bounded,
// until mochi has finished with every connection: one OnDisconnect per
// session, and nothing left in its client map but the inline client.
func (b *mochiBroker) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.hook.wait(ctx, func(evs []mochiEvent) bool {
		return countEvents(evs, "session", "") == countEvents(evs, "disconnect", "")
	})
	if err != nil {
		evs := b.hook.snapshot()
		err = fmt.Errorf("%d sessions but %d disconnects: %w", countEvents(evs, "session", ""), countEvents(evs, "disconnect", ""), err)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for b.srv.Clients.Len() > 1 && ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			err = fmt.Errorf("%d clients left in the broker: %w", b.srv.Clients.Len(), ctx.Err())
		}
	}
	b.close()
	return err
}

// publish injects a message from the broker's inline client.
func (b *mochiBroker) publish(t *testing.T, topic, payload string, qos byte, retain bool) {
	t.Helper()
	if err := b.srv.Publish(topic, []byte(payload), retain, qos); err != nil {
		t.Fatalf("broker publish %q: %v", topic, err)
	}
}

// kick drops the broker's connection to client id, as a network fault would.
func (b *mochiBroker) kick(t *testing.T, id string) {
	t.Helper()
	cl := b.hook.lastClient(id)
	if cl == nil {
		t.Fatalf("broker has no connection from %q", id)
	}
	cl.Stop(errors.New("test: connection dropped by the broker"))
}

// tlogWriter sends a client's log to the test log.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func clientTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newClosingClient is New that fails the test on error and closes the client when
// the test ends.
func newClosingClient(t *testing.T, cfg mqttas.Config) *mqttas.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = clientTestLogger(t)
	}
	c, err := mqttas.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connectedClient creates a client of b (unless cfg.Server is set) and
// connects it.
func connectedClient(t *testing.T, ctx context.Context, b *mochiBroker, cfg mqttas.Config) *mqttas.Client {
	t.Helper()
	if cfg.Server == "" {
		cfg.Server = b.addr
	}
	c := newClosingClient(t, cfg)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect to %s: %v", cfg.Server, err)
	}
	return c
}

// nextMessage returns the next message from ch.
func nextMessage(t *testing.T, ctx context.Context, ch <-chan mqttas.Message) mqttas.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("Messages channel closed")
		}
		return m
	case <-ctx.Done():
		t.Fatalf("no message: %v", ctx.Err())
	}
	panic("unreachable")
}

// expectMessage receives the next message and checks its topic and payload.
func expectMessage(t *testing.T, ctx context.Context, ch <-chan mqttas.Message, topic, payload string) mqttas.Message {
	t.Helper()
	m := nextMessage(t, ctx, ch)
	if m.Topic != topic || string(m.Payload) != payload {
		t.Fatalf("got message %q %q, want %q %q", m.Topic, m.Payload, topic, payload)
	}
	return m
}

// awaitSignal waits for a value (not a close) on an Up or Down channel.
func awaitSignal(t *testing.T, ctx context.Context, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s channel closed", what)
		}
	case <-ctx.Done():
		t.Fatalf("no %s signal: %v", what, ctx.Err())
	}
}

// hasSignal reports whether ch holds a signal now, consuming it.
func hasSignal(ch <-chan struct{}) bool {
	select {
	case _, ok := <-ch:
		return ok
	default:
		return false
	}
}

// pollUntil waits for cond, checking it every millisecond, until ctx ends.
// Only for state that has no event to wait on (Stats counters).
func pollUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// servePeer listens on a loopback port and runs serve on a goroutine of
// its own for each connection accepted, until the test ends; then it
// closes the listener and every connection and waits for all of them.
// It is the accept loop of the in-process peers below and in
// hotpath_test.go and footprint_test.go.
func servePeer(t testing.TB, serve func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// mutePeer accepts TCP connections and reads everything, never writing:
// a broker that accepts and never sends CONNACK. If connack is set, it
// answers the first packet with it and then goes silent.
func mutePeer(t testing.TB, connack []byte) string {
	t.Helper()
	return servePeer(t, func(nc net.Conn) {
		if connack != nil {
			var b [2]byte
			if _, err := io.ReadFull(nc, b[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, nc, int64(b[1])); err != nil { // CONNECT < 128 bytes
				return
			}
			if _, err := nc.Write(connack); err != nil {
				return
			}
		}
		io.Copy(io.Discard, nc)
	})
}
