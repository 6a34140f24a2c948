package mqttas_test

// Connect against a real broker over loopback TCP: success, refusals,
// an unreachable or silent peer, retry until the broker starts, and the
// calls that are not allowed before Connect.

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

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

// A host that drops SYNs leaves a dial hanging until the OS gives up,
// minutes later; the client bounds it by ResponseTime. The Dial here plays
// that host: it returns only when its ctx ends.
func TestConnectDialBoundedByResponseTime(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	const rt = 300 * time.Millisecond
	c := newClosingClient(t, mqttas.Config{Server: "127.0.0.1:1", ResponseTime: rt,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	start := time.Now()
	err := c.Connect(ctx)
	elapsed := time.Since(start)
	if !errors.Is(err, mqttas.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		t.Fatalf("Connect through a dial that never completes = %v, want ErrTimeout", err)
	}
	if elapsed < rt || elapsed > rt+2*time.Second {
		t.Errorf("Connect gave up after %v, want about ResponseTime %v", elapsed, rt)
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
