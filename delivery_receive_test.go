package mqttas_test

// Receiving messages: the drop-oldest Messages queue, and OnMessage
// callbacks that publish, subscribe, block or Close, and how both behave
// around Close.

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas"
)

func TestMessagesDropOldest(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	const queueLen, sent = 4, 11
	c := connectedClient(t, ctx, b, mqttas.Config{ClientID: "slow-reader", QueueLen: queueLen})
	if cap(c.Messages()) != queueLen {
		t.Errorf("cap(Messages()) = %d, want QueueLen %d", cap(c.Messages()), queueLen)
	}
	if err := c.Subscribe(ctx, "q/#", 1); err != nil {
		t.Fatal(err)
	}
	for i := range sent {
		b.publish(t, "q/x", fmt.Sprint(i), 1, false)
	}
	// The client acknowledges each message after queueing it: once the
	// broker has all the PUBACKs, every message has been through the queue.
	b.hook.waitCount(t, ctx, "qosdone", "slow-reader", sent)
	if got := c.Stats().Discards; got != sent-queueLen {
		t.Errorf("Stats().Discards = %d, want %d", got, sent-queueLen)
	}
	for i := sent - queueLen; i < sent; i++ {
		expectMessage(t, ctx, c.Messages(), "q/x", fmt.Sprint(i))
	}
	select {
	case m := <-c.Messages():
		t.Errorf("extra message %q %q beyond the newest %d", m.Topic, m.Payload, queueLen)
	default:
	}
	if !c.IsConnected() || c.Stats().Outages != 0 {
		t.Error("a full queue cost the connection")
	}
	// The queue keeps working after overflowing.
	b.publish(t, "q/x", "later", 1, false)
	expectMessage(t, ctx, c.Messages(), "q/x", "later")
}

func TestOnMessagePublishAndSubscribeInCallback(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	obs := connectedClient(t, ctx, b, mqttas.Config{})
	if err := obs.Subscribe(ctx, "cb/out", 1); err != nil {
		t.Fatal(err)
	}
	var c *mqttas.Client
	results := make(chan string, 10)
	c = newClosingClient(t, mqttas.Config{Server: b.addr, OnMessage: func(m mqttas.Message) {
		switch m.Topic {
		case "cb/in":
			// Both wait for an answer the reader must deliver: on the
			// reader's own goroutine they would deadlock.
			if err := c.Publish(ctx, "cb/out", []byte("from callback"), 1, false); err != nil {
				results <- "publish: " + err.Error()
				return
			}
			if err := c.Publish(ctx, "cb/out", []byte("qos2 from callback"), 2, false); err != nil {
				results <- "publish: " + err.Error()
				return
			}
			if err := c.Subscribe(ctx, "cb/new", 1); err != nil {
				results <- "subscribe: " + err.Error()
				return
			}
			results <- "in done"
		case "cb/new":
			results <- "new " + string(m.Payload)
		}
	}})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "cb/in", 1); err != nil {
		t.Fatal(err)
	}
	b.publish(t, "cb/in", "go", 1, false)
	for _, want := range []string{"in done"} {
		select {
		case got := <-results:
			if got != want {
				t.Fatalf("callback: %s", got)
			}
		case <-ctx.Done():
			t.Fatal("callback calling Publish and Subscribe deadlocked")
		}
	}
	expectMessage(t, ctx, obs.Messages(), "cb/out", "from callback")
	expectMessage(t, ctx, obs.Messages(), "cb/out", "qos2 from callback")
	b.publish(t, "cb/new", "hello", 1, false)
	select {
	case got := <-results:
		if got != "new hello" {
			t.Fatalf("callback: %s", got)
		}
	case <-ctx.Done():
		t.Fatal("subscription made inside the callback delivers nothing")
	}
}

func TestOnMessageBlockedKeepsKeepAlive(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	b := startMochi(t, mochiOpts{})
	const keepAlive = time.Second
	started := make(chan struct{})
	released := make(chan struct{})
	got := make(chan string, 10)
	c := newClosingClient(t, mqttas.Config{
		Server: b.addr, ClientID: "blocked-cb", KeepAlive: keepAlive, ResponseTime: 300 * time.Millisecond,
		OnMessage: func(m mqttas.Message) {
			if string(m.Payload) == "block" {
				close(started)
				// The fault under test: an application stuck for three
				// keep-alive periods.
				<-time.After(3 * keepAlive)
				close(released)
				return
			}
			got <- string(m.Payload)
		},
	})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	awaitSignal(t, ctx, c.Up(), "Up")
	if err := c.Subscribe(ctx, "blk/#", 1); err != nil {
		t.Fatal(err)
	}
	b.publish(t, "blk/1", "block", 1, false)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("callback not called")
	}
	// While the callback is stuck the reader still reads: incoming QoS 1
	// messages are acknowledged, and the client's own QoS 1 publish gets
	// its PUBACK.
	b.publish(t, "blk/2", "second", 1, false)
	b.publish(t, "blk/3", "third", 1, false)
	b.hook.waitCount(t, ctx, "qosdone", "blocked-cb", 3)
	if err := c.Publish(ctx, "elsewhere", []byte("x"), 1, false); err != nil {
		t.Fatalf("Publish while the callback blocks = %v", err)
	}
	select {
	case <-released:
	case <-ctx.Done():
		t.Fatal("callback never released")
	}
	for _, want := range []string{"second", "third"} {
		select {
		case m := <-got:
			if m != want {
				t.Errorf("after the block the callback got %q, want %q", m, want)
			}
		case <-ctx.Done():
			t.Fatalf("message %q queued during the block never reached the callback", want)
		}
	}
	if s := c.Stats(); s.Outages != 0 || s.Reconnects != 0 {
		t.Errorf("a blocked callback caused an outage: %+v", s)
	}
	if hasSignal(c.Down()) {
		t.Error("Down signalled while the callback blocked")
	}
	if !c.IsConnected() {
		t.Error("not connected after the callback returned")
	}
	if n := countEvents(b.hook.snapshot(), "disconnect", "blocked-cb"); n != 0 {
		t.Errorf("broker dropped the client %d times (keep-alive lapsed)", n)
	}
	if n := countEvents(b.hook.snapshot(), "pingreq", "blocked-cb"); n < 3 {
		t.Errorf("broker saw %d PINGREQs in 3 keep-alive periods", n)
	}
}

func TestOnMessageCallbackMayClose(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	var c *mqttas.Client
	closed := make(chan error, 1)
	c = newClosingClient(t, mqttas.Config{Server: b.addr, OnMessage: func(m mqttas.Message) {
		closed <- c.Close()
	}})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "close/me", 0); err != nil {
		t.Fatal(err)
	}
	b.publish(t, "close/me", "bye", 0, false)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close called from OnMessage deadlocked")
	}
	checkAllErrClosed(t, ctx, c)
}

// Close's documentation: every goroutine exits before Close returns,
// "except an OnMessage callback that is running, which finishes its
// message first". Messages still queued for the callback must then not be
// delivered: the application has said stop.
func TestOnMessageNotCalledAfterClose(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	baseline := goleak.IgnoreCurrent()
	var closedFlag atomic.Bool
	var afterClose atomic.Int32
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	c := newClosingClient(t, mqttas.Config{Server: b.addr, ClientID: "cb-close", OnMessage: func(m mqttas.Message) {
		if closedFlag.Load() {
			afterClose.Add(1)
		}
		if string(m.Payload) == "0" {
			started <- struct{}{}
			<-release
		}
	}})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "cbc/#", 1); err != nil {
		t.Fatal(err)
	}
	const n = 4
	for i := range n {
		b.publish(t, "cbc/x", fmt.Sprint(i), 1, false)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("callback not called")
	}
	b.hook.waitCount(t, ctx, "qosdone", "cb-close", n) // the rest are queued
	closeDone := make(chan struct{})
	go func() { c.Close(); close(closeDone) }()
	select {
	case <-closeDone:
	case <-ctx.Done():
		t.Fatal("Close waited for a blocked callback")
	}
	closedFlag.Store(true)
	close(release)
	// Wait for every goroutine the client started to end (the dispatcher
	// included), then count the callbacks that ran after Close.
	goleak.VerifyNone(t, baseline)
	if k := afterClose.Load(); k != 0 {
		t.Errorf("OnMessage called %d times after Close returned (queued messages delivered after Close)", k)
	}
}

// Messages is documented as closed by Close; with OnMessage set it must
// still be a channel a reader can range over and see end.
func TestMessagesClosedAfterCloseWithOnMessage(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{OnMessage: func(mqttas.Message) {}})
	c.Close()
	select {
	case _, ok := <-c.Messages():
		if ok {
			t.Error("a message on Messages() with OnMessage set")
		}
	default:
		t.Errorf("Messages() with OnMessage set is %v after Close: a receive blocks forever instead of seeing it closed", c.Messages())
	}
}
