package mqtttest

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

func TestSubscriptionNeverDrops(t *testing.T) {
	b := StartBroker(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("n")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	for i := range n {
		if err := b.Publish("n", []byte(strconv.Itoa(i)), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		r, err := obs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d is %q", i, r.Payload)
		}
	}
	obs.Close()
	obs.Close()
	if _, ok := <-obs.C(); ok {
		t.Fatal("C still open after Close")
	}
	if _, err := obs.Next(ctx); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestSubscriptionRetained(t *testing.T) {
	b := StartBroker(t)
	ctx := testCtx(t)
	if err := b.Publish("r/1", []byte("kept"), 0, true); err != nil {
		t.Fatal(err)
	}
	obs, err := b.Subscribe("r/+")
	if err != nil {
		t.Fatal(err)
	}
	r, err := obs.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Topic != "r/1" || string(r.Payload) != "kept" || !r.Retain {
		t.Fatalf("got %+v", r)
	}
	if _, err := b.Subscribe("bad/#/filter"); err == nil {
		t.Fatal("invalid filter accepted")
	}
	if err := b.Publish("bad/+", nil, 0, false); err == nil {
		t.Fatal("wildcard topic accepted")
	}
}

// An observer matches as a client would, where mochi's in-process
// subscriptions do not: no "$" topics for a leading wildcard, and "a/#"
// includes "a", once.
func TestSubscriptionMatching(t *testing.T) {
	b := StartBroker(t)
	ctx := testCtx(t)
	all, err := b.Subscribe("#")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := b.Subscribe("a/#")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"$x/y", "a", "a/b", "b"} {
		if err := b.Publish(topic, []byte(topic), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		s    *Subscription
		want []string
	}{
		{all, []string{"a", "a/b", "b"}},
		{tree, []string{"a", "a/b"}},
	} {
		for _, want := range tc.want {
			if r, err := tc.s.Next(ctx); err != nil || r.Topic != want {
				t.Fatalf("%s: got %+v, %v; want %s", tc.s.filter, r, err, want)
			}
		}
	}
	if err := b.Publish("a/c", nil, 0, false); err != nil {
		t.Fatal(err)
	}
	if r, err := tree.Next(ctx); err != nil || r.Topic != "a/c" {
		t.Fatalf("got %+v, %v; want a/c (and no second a)", r, err)
	}
	if _, err := b.Subscribe("$share/g/a"); err == nil {
		t.Fatal("shared filter accepted")
	}
}
