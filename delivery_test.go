package mqttas_test

// Message delivery through a real broker: publish at each QoS to the same
// client and to another, retained messages, payload ownership, UTF-8
// topics, argument errors, SUBACK refusals, Unsubscribe, the drop-oldest
// Messages queue, OnMessage callbacks that publish, subscribe or block, the
// will, many concurrent publishes, and the Stats counters.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

func TestPublishRoundTrip(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	b := startMochi(t, mochiOpts{})
	a := connectedClient(t, ctx, b, mqttas.Config{ClientID: "rt-a"})
	o := connectedClient(t, ctx, b, mqttas.Config{ClientID: "rt-other"})
	if err := a.Subscribe(ctx, "rt/#", 2); err != nil {
		t.Fatal(err)
	}
	if err := o.Subscribe(ctx, "rt/+", 2); err != nil {
		t.Fatal(err)
	}
	for qos := byte(0); qos <= 2; qos++ {
		t.Run(fmt.Sprintf("QoS%d", qos), func(t *testing.T) {
			topic := fmt.Sprintf("rt/q%d", qos)
			payload := fmt.Sprintf("payload at QoS %d", qos)
			if err := a.Publish(ctx, topic, []byte(payload), qos, false); err != nil {
				t.Fatalf("Publish QoS %d = %v", qos, err)
			}
			for name, c := range map[string]*mqttas.Client{"same client": a, "other client": o} {
				m := expectMessage(t, ctx, c.Messages(), topic, payload)
				if m.QoS != qos || m.Retained || m.Dup || m.Properties != nil {
					t.Errorf("%s got %+v, want QoS %d, not retained, not dup, no properties", name, m, qos)
				}
			}
		})
	}
	// The subscription's QoS caps delivery.
	if err := o.Subscribe(ctx, "cap/x", 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "cap/x", []byte("capped"), 2, false); err != nil {
		t.Fatal(err)
	}
	if m := expectMessage(t, ctx, o.Messages(), "cap/x", "capped"); m.QoS != 0 {
		t.Errorf("QoS 2 message through a QoS 0 subscription arrived at QoS %d", m.QoS)
	}
	// Empty payloads are messages too.
	for qos := byte(0); qos <= 2; qos++ {
		if err := a.Publish(ctx, "rt/empty", nil, qos, false); err != nil {
			t.Fatal(err)
		}
		if m := expectMessage(t, ctx, o.Messages(), "rt/empty", ""); len(m.Payload) != 0 {
			t.Errorf("empty payload arrived as %q", m.Payload)
		}
	}
	if s := a.Stats(); s.InFlight != 0 || s.UnsentBytes != 0 || s.Outages != 0 {
		t.Errorf("publisher Stats after the round trips = %+v", s)
	}
}

func TestPublishRetainedDelivered(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	a := connectedClient(t, ctx, b, mqttas.Config{})
	for qos := byte(0); qos <= 2; qos++ {
		topic := fmt.Sprintf("ret/q%d", qos)
		if err := a.Publish(ctx, topic, []byte("kept "+topic), qos, true); err != nil {
			t.Fatal(err)
		}
	}
	// A client that subscribes afterwards gets them, marked retained.
	late := connectedClient(t, ctx, b, mqttas.Config{})
	if err := late.Subscribe(ctx, "ret/#", 2); err != nil {
		t.Fatal(err)
	}
	got := map[string]mqttas.Message{}
	for range 3 {
		m := nextMessage(t, ctx, late.Messages())
		got[m.Topic] = m
	}
	for qos := byte(0); qos <= 2; qos++ {
		topic := fmt.Sprintf("ret/q%d", qos)
		m, ok := got[topic]
		if !ok {
			t.Errorf("retained %s not delivered", topic)
			continue
		}
		if !m.Retained || string(m.Payload) != "kept "+topic || m.QoS != qos {
			t.Errorf("retained %s arrived as %+v", topic, m)
		}
	}
	// Clearing: an empty retained publish removes it.
	if err := a.Publish(ctx, "ret/q1", nil, 1, true); err != nil {
		t.Fatal(err)
	}
	third := connectedClient(t, ctx, b, mqttas.Config{})
	if err := third.Subscribe(ctx, "ret/q1", 1); err != nil {
		t.Fatal(err)
	}
	if err := third.Subscribe(ctx, "ret/marker", 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "ret/marker", []byte("m"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, third.Messages(), "ret/marker", "m")
}

func TestPublishPayloadOwnedByMessage(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{ClientID: "owner"})
	if err := c.Subscribe(ctx, "own/#", 1); err != nil {
		t.Fatal(err)
	}
	// The caller's buffer is its own again once Publish returns.
	buf := []byte("first-payload")
	if err := c.Publish(ctx, "own/1", buf, 1, false); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXXXXXXX")
	if err := c.Publish(ctx, "own/2", []byte("second-payload"), 1, false); err != nil {
		t.Fatal(err)
	}
	m1 := expectMessage(t, ctx, c.Messages(), "own/1", "first-payload")
	m2 := expectMessage(t, ctx, c.Messages(), "own/2", "second-payload")

	// Two messages never share memory: writing through, or appending to,
	// one payload leaves the other message (and its own topic) alone.
	for i := range m1.Payload {
		m1.Payload[i] = '#'
	}
	m1.Payload = append(m1.Payload, bytes.Repeat([]byte{'@'}, 256)...)
	if string(m2.Payload) != "second-payload" || m2.Topic != "own/2" {
		t.Errorf("changing one message's payload changed another: %q %q", m2.Topic, m2.Payload)
	}

	// Many messages queued before the application reads any: each must
	// keep its own bytes (the reader reuses its buffer).
	const n = 40
	for i := range n {
		b.publish(t, fmt.Sprintf("own/q/%d", i), strings.Repeat(string(rune('a'+i%26)), 1+i*7), 1, false)
	}
	b.hook.waitCount(t, ctx, "qosdone", "owner", n+2) // each delivered and PUBACKed
	for i := range n {
		expectMessage(t, ctx, c.Messages(), fmt.Sprintf("own/q/%d", i), strings.Repeat(string(rune('a'+i%26)), 1+i*7))
	}
}

func TestPublishUTF8Topic(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	a := connectedClient(t, ctx, b, mqttas.Config{})
	o := connectedClient(t, ctx, b, mqttas.Config{})
	// More bytes than runes: a length counted in characters would corrupt
	// the packet and the broker would drop the connection.
	topic := "capteurs/température/°C/日本語/😀"
	payload := "22,5 °C — ça va"
	if err := o.Subscribe(ctx, "capteurs/température/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	for qos := byte(0); qos <= 2; qos++ {
		if err := a.Publish(ctx, topic, []byte(payload), qos, false); err != nil {
			t.Fatalf("Publish QoS %d to a UTF-8 topic = %v", qos, err)
		}
		expectMessage(t, ctx, o.Messages(), topic, payload)
		expectMessage(t, ctx, a.Messages(), topic, payload)
	}
	if err := a.Unsubscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*mqttas.Client{a, o} {
		if s := c.Stats(); s.Outages != 0 || !c.IsConnected() {
			t.Errorf("link broke on UTF-8 topics: %+v", s)
		}
	}
}

func TestPublishSubscribeInvalidArguments(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{})
	long := strings.Repeat("x", 65536)
	for _, tc := range []struct {
		name  string
		topic string
		qos   byte
	}{
		{"QoS 3", "ok/topic", 3},
		{"QoS 255", "ok/topic", 255},
		{"empty topic", "", 0},
		{"+ wildcard", "a/+/b", 1},
		{"# wildcard", "a/#", 1},
		{"bare #", "#", 0},
		{"invalid UTF-8", "a/\xff\xfe", 1},
		{"NUL", "a/\x00", 1},
		{"over 65535 bytes", long, 1},
	} {
		err := c.Publish(ctx, tc.topic, []byte("x"), tc.qos, false)
		if err == nil || errors.Is(err, mqttas.ErrNotConnected) || errors.Is(err, mqttas.ErrClosed) {
			t.Errorf("Publish %s = %v, want an argument error", tc.name, err)
		} else if !strings.HasPrefix(err.Error(), "mqttas: ") {
			t.Errorf("Publish %s error %q lacks the mqttas: prefix", tc.name, err)
		}
	}
	for _, tc := range []struct {
		name   string
		filter string
		qos    byte
	}{
		{"QoS 3", "ok/#", 3},
		{"empty filter", "", 1},
		{"# not last", "a/#/b", 1},
		{"# inside a level", "a/b#", 1},
		{"+ inside a level", "a/b+/c", 1},
		{"invalid UTF-8", "a/\xff", 1},
		{"over 65535 bytes", long, 1},
	} {
		err := c.Subscribe(ctx, tc.filter, tc.qos)
		if err == nil || errors.Is(err, mqttas.ErrNotConnected) || errors.Is(err, mqttas.ErrRefused) {
			t.Errorf("Subscribe %s = %v, want an argument error", tc.name, err)
		}
		if tc.qos <= 2 {
			if err := c.Unsubscribe(ctx, tc.filter); err == nil {
				t.Errorf("Unsubscribe %s succeeded", tc.name)
			}
		}
	}
	if !c.IsConnected() || c.Stats().Outages != 0 || c.Stats().InFlight != 0 {
		t.Errorf("argument errors disturbed the link: connected %v, %+v", c.IsConnected(), c.Stats())
	}
	for _, e := range b.hook.snapshot() {
		if e.kind == "subscribe" {
			t.Errorf("an invalid Subscribe reached the broker: %q", e.filter)
		}
	}
	// And the link still works.
	if err := c.Subscribe(ctx, "ok/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "ok/topic", []byte("fine"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "ok/topic", "fine")
}

// aclMochi refuses subscriptions to deny/... (SUBACK 0x80 for 3.1.1).
func aclMochi(t *testing.T) *mochiBroker {
	return startMochi(t, mochiOpts{acl: func(topic string, write bool) bool {
		return write || !strings.HasPrefix(topic, "deny/")
	}})
}

func TestSubscribeRefusedAckError(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := aclMochi(t)
	c := connectedClient(t, ctx, b, mqttas.Config{
		ClientID: "refused", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctx, "deny/secret", 1) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Subscribe refused by the broker did not return (retrying forever?)")
	}
	var ae *mqttas.AckError
	if !errors.As(err, &ae) {
		t.Fatalf("refused Subscribe = %v (%T), want an *AckError", err, err)
	}
	if ae.Op != "subscribe" || ae.Target != "deny/secret" || ae.Code != packet.UnspecifiedError {
		t.Errorf("AckError = %+v, want Op subscribe, Target deny/secret, Code 0x80", ae)
	}
	if !errors.Is(err, mqttas.ErrRefused) {
		t.Errorf("errors.Is(%v, ErrRefused) = false", err)
	}
	if !strings.Contains(err.Error(), "deny/secret") {
		t.Errorf("error %q does not name the filter", err)
	}
	if !c.IsConnected() || c.Stats().Outages != 0 {
		t.Fatal("a SUBACK refusal cost the connection")
	}
	// The client goes on working, and the refused filter is not restored
	// after an outage while the granted one is.
	if err := c.Subscribe(ctx, "ok/x", 1); err != nil {
		t.Fatal(err)
	}
	awaitSignal(t, ctx, c.Up(), "Up")
	b.kick(t, "refused")
	awaitSignal(t, ctx, c.Down(), "Down")
	awaitSignal(t, ctx, c.Up(), "Up")
	if err := c.Publish(ctx, "ok/x", []byte("after"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "ok/x", "after")
	var filters []string
	for _, e := range b.hook.snapshot() {
		if e.kind == "subscribe" {
			filters = append(filters, e.filter)
		}
	}
	if want := []string{"deny/secret", "ok/x", "ok/x"}; fmt.Sprint(filters) != fmt.Sprint(want) {
		t.Errorf("broker saw SUBSCRIBEs %q, want %q", filters, want)
	}
}

func TestUnsubscribeUnknownFilterSucceeds(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{})
	for _, f := range []string{"never/subscribed", "never/+/wild", "#"} {
		if err := c.Unsubscribe(ctx, f); err != nil {
			t.Errorf("Unsubscribe %q (never subscribed) = %v, want nil", f, err)
		}
	}
	if !c.IsConnected() || c.Stats().Outages != 0 {
		t.Fatal("the link broke")
	}
}

func TestUnsubscribeStopsMessages(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{})
	if err := c.Subscribe(ctx, "u/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "marker", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "u/1", []byte("before"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "u/1", "before")
	if err := c.Unsubscribe(ctx, "u/#"); err != nil {
		t.Fatal(err)
	}
	// The broker forwards one publisher's messages in order, so a message
	// that should not come would arrive before the marker.
	for qos := byte(0); qos <= 2; qos++ {
		if err := c.Publish(ctx, "u/2", []byte("after"), qos, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, "marker", []byte("m"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "marker", "m")
}

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

func TestWillPublishedOnClose(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	watcher := connectedClient(t, ctx, b, mqttas.Config{})
	if err := watcher.Subscribe(ctx, "will/#", 1); err != nil {
		t.Fatal(err)
	}
	a := connectedClient(t, ctx, b, mqttas.Config{Will: &mqttas.Will{Topic: "will/a", Payload: []byte("a is gone"), QoS: 1}})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	m := expectMessage(t, ctx, watcher.Messages(), "will/a", "a is gone")
	if m.QoS != 1 || m.Retained {
		t.Errorf("will arrived as %+v", m)
	}
}

func TestNoWillAfterDisconnect(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	watcher := connectedClient(t, ctx, b, mqttas.Config{})
	if err := watcher.Subscribe(ctx, "will/#", 1); err != nil {
		t.Fatal(err)
	}
	a := connectedClient(t, ctx, b, mqttas.Config{ClientID: "polite", Will: &mqttas.Will{Topic: "will/polite", Payload: []byte("should not appear"), QoS: 1}})
	if err := a.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	// mochi publishes a will before it reports the disconnection; a marker
	// published after that report arrives after any will.
	b.hook.waitCount(t, ctx, "disconnect", "polite", 1)
	b.publish(t, "will/marker", "marker", 1, false)
	expectMessage(t, ctx, watcher.Messages(), "will/marker", "marker")
}

// concurrentPublish publishes workers×each messages at qos from workers
// goroutines, each on its own topic with payloads "w-i" in order, and
// checks that all return nil and all arrive, in order per topic.
func concurrentPublish(t *testing.T, qos byte, workers, each int) {
	ctx := ctxFor(t, 30*time.Second)
	b := startMochi(t, mochiOpts{})
	total := workers * each
	sub := connectedClient(t, ctx, b, mqttas.Config{QueueLen: total + 16})
	if err := sub.Subscribe(ctx, "conc/#", qos); err != nil {
		t.Fatal(err)
	}
	pub := connectedClient(t, ctx, b, mqttas.Config{})

	received := make(chan map[string][]string, 1)
	go func() {
		byTopic := map[string][]string{}
		n := 0
		for n < total {
			select {
			case m, ok := <-sub.Messages():
				if !ok {
					received <- byTopic
					return
				}
				byTopic[m.Topic] = append(byTopic[m.Topic], string(m.Payload))
				n++
			case <-ctx.Done():
				received <- byTopic
				return
			}
		}
		received <- byTopic
	}()

	start := time.Now()
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("conc/%d", w)
			for i := range each {
				if err := pub.Publish(ctx, topic, fmt.Appendf(nil, "%d-%d", w, i), qos, false); err != nil {
					errs <- fmt.Errorf("worker %d message %d: %w", w, i, err)
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
	elapsed := time.Since(start)
	if s := pub.Stats(); s.InFlight != 0 || s.UnsentBytes != 0 {
		t.Errorf("publisher Stats after all Publish calls returned = %+v, want InFlight 0, UnsentBytes 0", s)
	}
	byTopic := <-received
	got, dups := 0, 0
	for w := range workers {
		topic := fmt.Sprintf("conc/%d", w)
		msgs := byTopic[topic]
		next := 0
		for _, p := range msgs {
			got++
			switch want := fmt.Sprintf("%d-%d", w, next); {
			case p == want:
				next++
			case next > 0 && p == fmt.Sprintf("%d-%d", w, next-1):
				dups++
			default:
				t.Errorf("%s: got %q, want %q (out of order or lost)", topic, p, want)
			}
		}
		if next != each {
			t.Errorf("%s: %d of %d messages arrived", topic, next, each)
		}
	}
	if qos == 2 && dups != 0 {
		t.Errorf("%d duplicates at QoS 2", dups)
	}
	t.Logf("%d QoS %d publishes from %d goroutines in %v; subscriber got %d (%d duplicates); publisher %+v; subscriber %+v",
		total, qos, workers, elapsed, got, dups, pub.Stats(), sub.Stats())
	if s := sub.Stats(); s.Discards != 0 {
		t.Errorf("subscriber discarded %d messages", s.Discards)
	}
}

func TestConcurrentQoS1Publishes(t *testing.T) { concurrentPublish(t, 1, 50, 40) }

func TestConcurrentQoS2Publishes(t *testing.T) { concurrentPublish(t, 2, 50, 10) }

func TestConcurrentQoS0Publishes(t *testing.T) { concurrentPublish(t, 0, 20, 25) }

func TestStatsAfterTraffic(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{
		ClientID: "stats", QueueLen: 100, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	if err := c.Subscribe(ctx, "st/#", 2); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := c.Publish(ctx, "st/x", []byte(fmt.Sprint(i)), byte(i%3), false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		expectMessage(t, ctx, c.Messages(), "st/x", fmt.Sprint(i))
	}
	want := mqttas.Stats{}
	if s := c.Stats(); s != want {
		t.Errorf("Stats after loss-free traffic = %+v, want all zero", s)
	}

	// One outage: counted once, and the reconnection once.
	awaitSignal(t, ctx, c.Up(), "Up")
	b.kick(t, "stats")
	awaitSignal(t, ctx, c.Down(), "Down")
	awaitSignal(t, ctx, c.Up(), "Up")
	if err := c.Publish(ctx, "st/x", []byte("after"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "st/x", "after")
	// The supervisor counts the reconnection only after goLive has
	// signalled Up, so right after Up (and even after a round trip on the
	// new link) Reconnects can still read 0 — seen about once in 40 runs.
	// Reported; wait for the count here rather than flake.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pollUntil(t, rctx, "Stats().Reconnects to count the reconnection", func() bool { return c.Stats().Reconnects >= 1 })
	s := c.Stats()
	if s.Outages != 1 || s.Reconnects != 1 || s.InFlight != 0 || s.UnsentBytes != 0 || s.Discards != 0 {
		t.Errorf("Stats after one outage = %+v, want Outages 1, Reconnects 1, rest 0", s)
	}
	if hasSignal(c.Down()) || hasSignal(c.Up()) {
		t.Error("one outage signalled more than one Down/Up")
	}
}

// A Subscribe that fails must not cost the application a subscription it
// already had: the broker still holds the earlier one, so the client must
// go on restoring it after an outage.
func TestFailedResubscribeKeepsEarlierSubscription(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	var refuse atomic.Bool
	b := startMochi(t, mochiOpts{acl: func(topic string, write bool) bool {
		return write || !(refuse.Load() && topic == "keep/#")
	}})
	c := connectedClient(t, ctx, b, mqttas.Config{
		ClientID: "resub", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	if err := c.Subscribe(ctx, "keep/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "marker", 1); err != nil {
		t.Fatal(err)
	}
	// The broker turns down an upgrade to QoS 2; the QoS 1 subscription
	// stays in place on the broker.
	refuse.Store(true)
	if err := c.Subscribe(ctx, "keep/#", 2); !errors.Is(err, mqttas.ErrRefused) {
		t.Fatalf("refused re-subscribe = %v, want ErrRefused", err)
	}
	refuse.Store(false)
	b.publish(t, "keep/x", "still subscribed", 1, false)
	expectMessage(t, ctx, c.Messages(), "keep/x", "still subscribed")

	// After an outage the client restores its subscriptions: keep/# must
	// be among them. A message to it published before the marker arrives
	// before the marker.
	awaitSignal(t, ctx, c.Up(), "Up")
	b.kick(t, "resub")
	awaitSignal(t, ctx, c.Down(), "Down")
	awaitSignal(t, ctx, c.Up(), "Up")
	// Wait until the broker has processed the restoring SUBSCRIBE (it
	// carries every remembered filter, marker included), so that this test
	// does not depend on how Up is timed against the SUBACKs.
	b.hook.wait(ctx, func(evs []mochiEvent) bool {
		n := 0
		for _, e := range evs {
			if e.kind == "subscribe" && e.filter == "marker" {
				n++
			}
		}
		return n >= 2
	})
	var restored []string
	for _, e := range b.hook.snapshot() {
		if e.kind == "subscribe" {
			restored = append(restored, e.filter)
		}
	}
	t.Logf("broker saw SUBSCRIBEs for %q", restored)
	b.publish(t, "keep/x", "after the outage", 1, false)
	b.publish(t, "marker", "m", 1, false)
	if m := nextMessage(t, ctx, c.Messages()); m.Topic != "keep/x" {
		t.Fatalf("after the outage got %q %q first: the subscription to keep/# was not restored "+
			"(a failed Subscribe to the same filter made the client forget it)", m.Topic, m.Payload)
	}
}

func TestPublishLargePayload(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	a := connectedClient(t, ctx, b, mqttas.Config{})
	o := connectedClient(t, ctx, b, mqttas.Config{})
	if err := o.Subscribe(ctx, "big/#", 2); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for qos := byte(0); qos <= 2; qos++ {
		if err := a.Publish(ctx, "big/x", payload, qos, false); err != nil {
			t.Fatalf("256 KiB Publish QoS %d = %v", qos, err)
		}
		m := nextMessage(t, ctx, o.Messages())
		if !bytes.Equal(m.Payload, payload) {
			t.Fatalf("256 KiB payload at QoS %d arrived corrupted (%d bytes)", qos, len(m.Payload))
		}
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
