package mqttas_test

// Subscribing through a real broker: SUBACK refusals, Unsubscribe, and a
// failed Subscribe that must not cost an earlier subscription.

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

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
