package mqttas_test

// Behaviour of the Client's lifecycle against a real broker over loopback
// TCP: Connect (success, refusals, unreachable, silent peer, retry), the
// calls that are not allowed before Connect or after Close, Close and
// Disconnect racing everything else, BrokerUp.
//
// This file also holds the private helpers the three test files share: an
// in-process mochi broker with a recording hook, a client constructor that
// closes on cleanup, and bounded waits. They start mochi directly rather
// than through mqtttest so that each test can install the hook it needs
// (an auth ledger, an ACL that refuses a SUBSCRIBE, a CONNACK code).

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// ---------------------------------------------------------------------------
// Helpers

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

// mutePeer accepts TCP connections and reads everything, never writing:
// a broker that accepts and never sends CONNACK. If connack is set, it
// answers the first packet with it and then goes silent.
func mutePeer(t *testing.T, connack []byte) string {
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

// ---------------------------------------------------------------------------
// Connect

func TestConnectSucceedsSignalsUp(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := newClosingClient(t, mqttas.Config{Server: b.addr, ClientID: "up-client"})
	if c.IsConnected() {
		t.Fatal("IsConnected true before Connect")
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.IsConnected() {
		t.Fatal("IsConnected false after Connect returned nil")
	}
	// Up must already hold its signal when Connect returns.
	if !hasSignal(c.Up()) {
		t.Fatal("Up not signalled when Connect returned")
	}
	if hasSignal(c.Down()) {
		t.Fatal("Down signalled without an outage")
	}
	b.hook.waitCount(t, ctx, "session", "up-client", 1)
	if s := c.Stats(); s.Outages != 0 || s.Reconnects != 0 || s.InFlight != 0 || s.UnsentBytes != 0 {
		t.Fatalf("Stats after Connect = %+v, want zeros", s)
	}
}

// ledgerMochi accepts only alice/secret, through mochi's own auth ledger.
func ledgerMochi(t *testing.T) *mochiBroker {
	ledger := &auth.Ledger{Auth: auth.AuthRules{{Username: "alice", Password: "secret", Allow: true}}}
	return startMochi(t, mochiOpts{
		auth:    func(string, string) bool { return false }, // defer to the ledger
		hooks:   []mqtt.Hook{new(auth.Hook)},
		hookCfg: []any{&auth.Options{Ledger: ledger}},
	})
}

func TestConnectRefusedNotAuthorized(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := ledgerMochi(t)

	// The right password gets in, so the ledger is not refusing everyone.
	connectedClient(t, ctx, b, mqttas.Config{User: "alice", Password: "secret"})

	c := newClosingClient(t, mqttas.Config{Server: b.addr, User: "alice", Password: "wrong-pw-1234"})
	err := c.Connect(ctx)
	if err == nil {
		t.Fatal("Connect with a wrong password succeeded")
	}
	// mochi answers a failed authentication of a 3.1.1 client with return
	// code 5, "not authorized" (as mosquitto does).
	var ce *mqttas.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConnectError", err, err)
	}
	if ce.Code != packet.NotAuthorized {
		t.Errorf("ConnectError.Code = %v, want %v", ce.Code, packet.NotAuthorized)
	}
	if !errors.Is(err, mqttas.ErrNotAuthorized) || !errors.Is(err, mqttas.ErrRefused) {
		t.Errorf("errors.Is(%v, ErrNotAuthorized/ErrRefused) = %v/%v, want true/true",
			err, errors.Is(err, mqttas.ErrNotAuthorized), errors.Is(err, mqttas.ErrRefused))
	}
	if errors.Is(err, mqttas.ErrBadCredentials) || errors.Is(err, mqttas.ErrTimeout) {
		t.Errorf("%v matches an unrelated sentinel", err)
	}
	if strings.Contains(err.Error(), "wrong-pw-1234") {
		t.Errorf("error text reveals the password: %v", err)
	}
	if c.IsConnected() {
		t.Error("IsConnected true after a refusal")
	}
	if err := c.Publish(ctx, "t", nil, 0, false); !errors.Is(err, mqttas.ErrNotConnected) {
		t.Errorf("Publish after a refused Connect = %v, want ErrNotConnected", err)
	}
}

func TestConnectRefusedBadCredentials(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	var b *mochiBroker
	// A broker that answers CONNACK return code 4, "bad user name or
	// password", as MQTT 3.1.1 section 3.2.2.3 defines it.
	b = startMochi(t, mochiOpts{onConnect: func(cl *mqtt.Client) error {
		if err := b.srv.SendConnack(cl, packets.ErrMalformedUsernameOrPassword, false, nil); err != nil {
			return err
		}
		return packets.ErrMalformedUsernameOrPassword
	}})
	c := newClosingClient(t, mqttas.Config{Server: b.addr, User: "bob", Password: "hunter2hunter2"})
	err := c.Connect(ctx)
	var ce *mqttas.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("Connect = %v (%T), want a *ConnectError", err, err)
	}
	if ce.Code != packet.BadUserNameOrPassword {
		t.Errorf("ConnectError.Code = %v, want %v", ce.Code, packet.BadUserNameOrPassword)
	}
	if !errors.Is(err, mqttas.ErrBadCredentials) || !errors.Is(err, mqttas.ErrRefused) {
		t.Errorf("errors.Is(%v, ErrBadCredentials/ErrRefused) = %v/%v, want true/true",
			err, errors.Is(err, mqttas.ErrBadCredentials), errors.Is(err, mqttas.ErrRefused))
	}
	if errors.Is(err, mqttas.ErrNotAuthorized) {
		t.Errorf("%v matches ErrNotAuthorized", err)
	}
	if strings.Contains(err.Error(), "hunter2hunter2") {
		t.Errorf("error text reveals the password: %v", err)
	}
	if ce.Server != b.addr {
		t.Errorf("ConnectError.Server = %q, want %q", ce.Server, b.addr)
	}
}

func TestConnectRefusedServerUnavailable(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{caps: func(c *mqtt.Capabilities) { c.MaximumClients = 1 }})
	connectedClient(t, ctx, b, mqttas.Config{ClientID: "first"})
	c := newClosingClient(t, mqttas.Config{Server: b.addr, ClientID: "second"})
	err := c.Connect(ctx)
	if !errors.Is(err, mqttas.ErrServerUnavailable) || !errors.Is(err, mqttas.ErrRefused) {
		t.Fatalf("Connect to a full broker = %v, want ErrServerUnavailable and ErrRefused", err)
	}
}

func TestConnectUnreachableFailsFast(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	c := newClosingClient(t, mqttas.Config{Server: refusedAddr(t)}) // default ResponseTime 10s
	start := time.Now()
	err := c.Connect(ctx)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Connect to a closed port took %v", elapsed)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Connect to a closed port = %v, want ECONNREFUSED", err)
	}
	var ce *mqttas.ConnectError
	if errors.As(err, &ce) || errors.Is(err, mqttas.ErrRefused) {
		t.Errorf("a network failure %v reads as a broker refusal", err)
	}
	if c.IsConnected() {
		t.Error("IsConnected after a failed Connect")
	}
}

func TestConnectNoConnackTimesOut(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	addr := mutePeer(t, nil)
	const rt = 300 * time.Millisecond
	c := newClosingClient(t, mqttas.Config{Server: addr, ResponseTime: rt})
	start := time.Now()
	err := c.Connect(ctx)
	elapsed := time.Since(start)
	if !errors.Is(err, mqttas.ErrTimeout) {
		t.Fatalf("Connect to a peer that never sends CONNACK = %v, want ErrTimeout", err)
	}
	if elapsed < rt || elapsed > rt+2*time.Second {
		t.Errorf("Connect gave up after %v, want about ResponseTime %v", elapsed, rt)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout %v blamed on the caller's ctx", err)
	}
}

func TestConnectNoConnackHonoursCtx(t *testing.T) {
	addr := mutePeer(t, nil)
	c := newClosingClient(t, mqttas.Config{Server: addr}) // ResponseTime 10s: ctx ends first
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Connect(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Connect returned %v after ctx ended at 200ms", elapsed)
	}
}

// countingDial dials for real and reports each attempt's outcome.
func countingDial(attempts chan<- error) mqttas.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		select {
		case attempts <- err:
		default:
		}
		return nc, err
	}
}

func TestConnectRetryUntilBrokerStarts(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	// The port is held from the start; at first whatever answers on it
	// hangs up at once, like a broker still starting. After three failed
	// attempts the same listener is handed to mochi.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const failures = 3
	hungUp := make(chan struct{}, failures)
	go func() {
		for range failures {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.Close()
			hungUp <- struct{}{}
		}
	}()
	c := newClosingClient(t, mqttas.Config{
		Server: ln.Addr().String(), ClientID: "retrier", ConnectRetry: true,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond, ResponseTime: time.Second,
	})
	done := make(chan error, 1)
	go func() { done <- c.Connect(ctx) }()
	for range failures {
		select {
		case <-hungUp:
		case err := <-done:
			t.Fatalf("Connect returned %v before the broker started", err)
		case <-ctx.Done():
			t.Fatal("the client did not retry")
		}
	}
	b := startMochi(t, mochiOpts{ln: ln})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Connect with ConnectRetry = %v after the broker started", err)
		}
	case <-ctx.Done():
		t.Fatal("Connect did not return after the broker started")
	}
	if !c.IsConnected() {
		t.Fatal("not connected")
	}
	b.hook.waitCount(t, ctx, "session", "retrier", 1)
	// And the link is a working MQTT session.
	if err := c.Subscribe(ctx, "retry/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "retry/x", []byte("ok"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "retry/x", "ok")
	c.Close() // before the broker, which was started after the client
}

func TestConnectRetryStopsAtCtxDeadline(t *testing.T) {
	attempts := make(chan error, 100)
	c := newClosingClient(t, mqttas.Config{
		Server: refusedAddr(t), ConnectRetry: true, Dial: countingDial(attempts),
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 40 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Connect(ctx)
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect with ConnectRetry against a closed port = %v, want context.DeadlineExceeded", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Connect returned %v after its 400ms deadline", elapsed)
	}
	if n := len(attempts); n < 2 {
		t.Errorf("%d dial attempts in 400ms with 20-40ms backoff, want several", n)
	}
}

func TestCloseInterruptsConnectRetry(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	attempts := make(chan error, 100)
	c := newClosingClient(t, mqttas.Config{
		Server: refusedAddr(t), ConnectRetry: true, Dial: countingDial(attempts),
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond,
	})
	done := make(chan error, 1)
	go func() { done <- c.Connect(ctx) }()
	for range 2 {
		select {
		case <-attempts:
		case <-ctx.Done():
			t.Fatal("no dial attempts")
		}
	}
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, mqttas.ErrClosed) {
			t.Fatalf("Connect interrupted by Close = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Connect still retrying 2s after Close")
	}
}

func TestConnectTwiceErrAlreadyConnected(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{})
	if err := c.Connect(ctx); !errors.Is(err, mqttas.ErrAlreadyConnected) {
		t.Fatalf("second Connect = %v, want ErrAlreadyConnected", err)
	}
	if !c.IsConnected() {
		t.Fatal("second Connect broke the first connection")
	}
}

func TestConnectConcurrentOnlyOneWins(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := newClosingClient(t, mqttas.Config{Server: b.addr, ClientID: "racer"})
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.Connect(ctx) }()
	}
	wins := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			wins++
		case errors.Is(err, mqttas.ErrAlreadyConnected):
		default:
			t.Errorf("concurrent Connect = %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent Connects succeeded, want 1", wins, n)
	}
	if got := countEvents(b.hook.snapshot(), "connect", "racer"); got != 1 {
		t.Errorf("broker saw %d CONNECTs, want 1", got)
	}
}

func TestCallsBeforeConnectErrNotConnected(t *testing.T) {
	ctx := ctxFor(t, 5*time.Second)
	b := startMochi(t, mochiOpts{})
	c := newClosingClient(t, mqttas.Config{Server: b.addr})
	for qos := byte(0); qos <= 2; qos++ {
		if err := c.Publish(ctx, "t", []byte("x"), qos, false); !errors.Is(err, mqttas.ErrNotConnected) {
			t.Errorf("Publish QoS %d before Connect = %v, want ErrNotConnected", qos, err)
		}
	}
	if err := c.Subscribe(ctx, "t/#", 1); !errors.Is(err, mqttas.ErrNotConnected) {
		t.Errorf("Subscribe before Connect = %v, want ErrNotConnected", err)
	}
	if err := c.Unsubscribe(ctx, "t/#"); !errors.Is(err, mqttas.ErrNotConnected) {
		t.Errorf("Unsubscribe before Connect = %v, want ErrNotConnected", err)
	}
	if c.BrokerUp(ctx) {
		t.Error("BrokerUp true before Connect")
	}
	if s := c.Stats(); s.InFlight != 0 || s.UnsentBytes != 0 {
		t.Errorf("failed calls left state behind: %+v", s)
	}
	// The refused Subscribe is not remembered: after Connect the broker
	// sees no SUBSCRIBE for it.
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "marker", 0); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.hook.snapshot() {
		if e.kind == "subscribe" && e.filter == "t/#" {
			t.Error("a Subscribe that failed with ErrNotConnected was restored on Connect")
		}
	}
}

// ---------------------------------------------------------------------------
// Close and Disconnect

func TestCloseIdempotent(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{})
	for i := range 3 {
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d = %v", i+1, err)
		}
	}
	if err := c.Disconnect(ctx); err != nil && !errors.Is(err, mqttas.ErrClosed) {
		t.Fatalf("Disconnect after Close = %v", err)
	}

	d := connectedClient(t, ctx, b, mqttas.Config{})
	if err := d.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect on a live link = %v", err)
	}
	if err := d.Disconnect(ctx); err != nil && !errors.Is(err, mqttas.ErrClosed) {
		t.Fatalf("second Disconnect = %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close after Disconnect = %v", err)
	}

	// Never connected.
	e := newClosingClient(t, mqttas.Config{Server: b.addr})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Disconnect(ctx); err != nil && !errors.Is(err, mqttas.ErrClosed) {
		t.Fatal(err)
	}
}

// checkAllErrClosed asserts that every call on a closed client says so.
func checkAllErrClosed(t *testing.T, ctx context.Context, c *mqttas.Client) {
	t.Helper()
	for qos := byte(0); qos <= 2; qos++ {
		if err := c.Publish(ctx, "t", []byte("x"), qos, false); !errors.Is(err, mqttas.ErrClosed) {
			t.Errorf("Publish QoS %d after Close = %v, want ErrClosed", qos, err)
		}
	}
	if err := c.Subscribe(ctx, "t/#", 1); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if err := c.Unsubscribe(ctx, "t/#"); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Unsubscribe after Close = %v, want ErrClosed", err)
	}
	if err := c.Connect(ctx); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Connect after Close = %v, want ErrClosed", err)
	}
	if c.IsConnected() {
		t.Error("IsConnected after Close")
	}
	if c.BrokerUp(ctx) {
		t.Error("BrokerUp after Close")
	}
}

func TestCallsAfterCloseErrClosed(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	t.Run("connected", func(t *testing.T) {
		c := connectedClient(t, ctx, b, mqttas.Config{})
		c.Close()
		checkAllErrClosed(t, ctx, c)
	})
	t.Run("disconnected", func(t *testing.T) {
		c := connectedClient(t, ctx, b, mqttas.Config{})
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		checkAllErrClosed(t, ctx, c)
	})
	t.Run("never connected", func(t *testing.T) {
		c := newClosingClient(t, mqttas.Config{Server: b.addr})
		c.Close()
		checkAllErrClosed(t, ctx, c)
	})
	t.Run("after failed connect", func(t *testing.T) {
		c := newClosingClient(t, mqttas.Config{Server: refusedAddr(t)})
		if err := c.Connect(ctx); err == nil {
			t.Fatal("Connect to a closed port succeeded")
		}
		c.Close()
		checkAllErrClosed(t, ctx, c)
	})
}

// drainClosed reads ch until it is closed.
func drainClosed[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) {
	t.Helper()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s not closed after Close", what)
		}
	}
}

func TestChannelsClosedAfterClose(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	for _, how := range []string{"Close", "Disconnect", "never connected"} {
		t.Run(how, func(t *testing.T) {
			c := newClosingClient(t, mqttas.Config{Server: b.addr})
			if how != "never connected" {
				if err := c.Connect(ctx); err != nil {
					t.Fatal(err)
				}
				// Leave a message queued: Close must close the channel anyway.
				if err := c.Subscribe(ctx, "chan/#", 1); err != nil {
					t.Fatal(err)
				}
				if err := c.Publish(ctx, "chan/x", []byte("x"), 1, false); err != nil {
					t.Fatal(err)
				}
			}
			if how == "Disconnect" {
				if err := c.Disconnect(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				c.Close()
			}
			drainClosed(t, ctx, c.Messages(), "Messages")
			drainClosed(t, ctx, c.Up(), "Up")
			drainClosed(t, ctx, c.Down(), "Down")
		})
	}
}

func TestClosePublishBlockedInOutage(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	if err := c.Subscribe(ctx, "outage/#", 1); err != nil {
		t.Fatal(err)
	}
	b.close() // the broker dies for good
	awaitSignal(t, ctx, c.Down(), "Down")

	payload := []byte("waiting for a broker that never comes back")
	type result struct {
		what string
		err  error
	}
	results := make(chan result, 5)
	var unsent int64
	for qos := byte(0); qos <= 2; qos++ {
		topic := fmt.Sprintf("outage/q%d", qos)
		unsent += int64(len(topic) + len(payload))
		go func() {
			results <- result{fmt.Sprintf("Publish QoS %d", qos), c.Publish(ctx, topic, payload, qos, false)}
		}()
	}
	go func() { results <- result{"Subscribe", c.Subscribe(ctx, "outage/more", 1)} }()
	go func() { results <- result{"Unsubscribe", c.Unsubscribe(ctx, "outage/#")} }()
	// All three publishes are inside the client, waiting for the link.
	pollUntil(t, ctx, "publishes to block", func() bool { return c.Stats().UnsentBytes == unsent })
	select {
	case r := <-results:
		t.Fatalf("%s returned %v during the outage", r.what, r.err)
	default:
	}

	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		select {
		case r := <-results:
			if !errors.Is(r.err, mqttas.ErrClosed) {
				t.Errorf("%s blocked in an outage returned %v on Close, want ErrClosed", r.what, r.err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a call blocked in an outage did not return within 2s of Close")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close and the blocked calls took %v", d)
	}
}

func TestDisconnectDuringOutageReturns(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	b.close()
	awaitSignal(t, ctx, c.Down(), "Down")
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Disconnect(dctx) }()
	select {
	case <-done: // nil, or an error saying DISCONNECT was not sent: both fine
	case <-time.After(3 * time.Second):
		t.Fatal("Disconnect during an outage did not return")
	}
	checkAllErrClosed(t, ctx, c)
}

func TestCloseRacesPublishersAndSubscribers(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{QueueLen: 16})
	if err := c.Subscribe(ctx, "race/#", 2); err != nil {
		t.Fatal(err)
	}

	const workers = 40
	var ops atomic.Int64
	busy := make(chan struct{}) // closed once plenty of calls have completed
	var busyOnce sync.Once
	errs := make(chan error, workers+3)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("race/%d", w)
			for i := 0; ; i++ {
				var err error
				switch i % 5 {
				case 0, 1, 2:
					err = c.Publish(ctx, topic, []byte(topic), byte((w+i)%3), false)
				case 3:
					err = c.Subscribe(ctx, topic+"/sub", byte(w%3))
				case 4:
					err = c.Unsubscribe(ctx, topic+"/sub")
				}
				if err != nil {
					errs <- err
					return
				}
				if ops.Add(1) == 400 {
					busyOnce.Do(func() { close(busy) })
				}
			}
		}()
	}
	// Readers of everything else the client exposes, until Close closes it.
	wg.Add(3)
	go func() {
		defer wg.Done()
		for range c.Messages() {
			_ = c.Stats()
		}
	}()
	go func() {
		defer wg.Done()
		for range c.Up() {
			_ = c.IsConnected()
		}
	}()
	go func() {
		defer wg.Done()
		for range c.Down() {
		}
	}()

	select {
	case <-busy:
	case err := <-errs:
		t.Fatalf("a call failed before Close: %v", err)
	case <-ctx.Done():
		t.Fatalf("only %d calls completed", ops.Load())
	}
	var closers sync.WaitGroup
	closers.Add(3)
	go func() { defer closers.Done(); errs <- c.Close() }()
	go func() { defer closers.Done(); errs <- c.Close() }()
	go func() {
		defer closers.Done()
		if err := c.Disconnect(ctx); err != nil && !errors.Is(err, mqttas.ErrClosed) &&
			!strings.Contains(err.Error(), "DISCONNECT not sent") {
			errs <- err
			return
		}
		errs <- nil
	}()
	stopped := make(chan struct{})
	go func() { wg.Wait(); closers.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("callers still running 5s after Close")
	}
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, mqttas.ErrClosed) {
			t.Errorf("call racing Close = %v, want nil or ErrClosed", err)
		}
	}
	t.Logf("%d calls completed before Close", ops.Load())
}

// ---------------------------------------------------------------------------
// BrokerUp

func TestBrokerUpLiveLink(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{ClientID: "bu"}) // pings only after 15s
	if !c.BrokerUp(ctx) {
		t.Fatal("BrokerUp false right after Connect")
	}
	// Let the link go quiet for more than a second (the condition under
	// test, not a synchronisation): BrokerUp must then ask the broker with
	// a PINGREQ and see its answer.
	<-time.After(1100 * time.Millisecond)
	before := countEvents(b.hook.snapshot(), "pingreq", "bu")
	if !c.BrokerUp(ctx) {
		t.Fatal("BrokerUp false on a live link after a quiet second")
	}
	if after := countEvents(b.hook.snapshot(), "pingreq", "bu"); after <= before {
		t.Errorf("BrokerUp on a quiet link sent no PINGREQ (broker saw %d before, %d after)", before, after)
	}
}

func TestBrokerUpFalseWhenBrokerSilent(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	// A peer that accepts the CONNECT and then never answers anything.
	addr := mutePeer(t, []byte{0x20, 0x02, 0x00, 0x00})
	const rt = 300 * time.Millisecond
	c := newClosingClient(t, mqttas.Config{Server: addr, ResponseTime: rt})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	<-time.After(1100 * time.Millisecond) // the quiet second under test
	start := time.Now()
	if c.BrokerUp(ctx) {
		t.Fatal("BrokerUp true for a broker that answers nothing")
	}
	if d := time.Since(start); d < rt || d > rt+time.Second {
		t.Errorf("BrokerUp took %v, want about ResponseTime %v", d, rt)
	}
	// ctx bounds it too.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if c.BrokerUp(short) {
		t.Fatal("BrokerUp true")
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("BrokerUp ignored its 50ms ctx: took %v", d)
	}
}
