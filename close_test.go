package mqttas_test

// Close and Disconnect: idempotence, the calls that are not allowed after
// Close, channels closed by Close, Close and Disconnect during an outage,
// and Close racing publishers and subscribers.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

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
