package mqttas_test

// Publishing through a real broker: publish at each QoS to the same client
// and to another, retained messages, payload ownership, UTF-8 topics,
// argument errors, large payloads, and the will.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
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
