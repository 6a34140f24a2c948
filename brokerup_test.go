package mqttas_test

// BrokerUp: true over a live link, false when the broker goes silent or
// the link is blackholed, and at once when there is no link.

import (
	"context"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

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

// TestBrokerUpBlackholedProxy: a link that silently drops everything both
// ways, the half-open link BrokerUp exists for. The keep-alive is long, so
// the client never notices the blackhole itself: the connection survives
// it, and after Heal the same connection answers BrokerUp again.
func TestBrokerUpBlackholedProxy(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	broker := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, broker.Addr())
	const rt = 300 * time.Millisecond
	c := newClosingClient(t, mqttas.Config{
		Server:       proxy.Addr(),
		KeepAlive:    10 * time.Minute, // the pinger waits 150s: it stays out of the way
		ResponseTime: rt,
	})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	awaitSignal(t, ctx, c.Up(), "Up")
	if !c.BrokerUp(ctx) {
		t.Fatal("BrokerUp false before the blackhole")
	}

	proxy.Blackhole(mqtttest.Both)
	<-time.After(1100 * time.Millisecond) // the quiet second under test
	start := time.Now()
	if c.BrokerUp(ctx) {
		t.Fatal("BrokerUp true through a blackhole")
	}
	if d := time.Since(start); d < rt*9/10 || d > rt+time.Second {
		t.Errorf("BrokerUp false after %v, want about ResponseTime %v", d, rt)
	}

	proxy.Heal()
	if !c.BrokerUp(ctx) {
		t.Fatal("BrokerUp false after Heal")
	}
	if s := c.Stats(); s.Outages != 0 || !c.IsConnected() {
		t.Errorf("the link was lost (stats %+v, connected %v); the test assumed the pinger stays idle", s, c.IsConnected())
	}
}

// TestBrokerUpFalseAtOnceWithoutLink: with no connection there is nothing
// to ask, so BrokerUp answers at once rather than after ResponseTime.
func TestBrokerUpFalseAtOnceWithoutLink(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	const rt = 5 * time.Second // any wait for an answer would show
	quick := func(t *testing.T, c *mqttas.Client, when string) {
		t.Helper()
		start := time.Now()
		if c.BrokerUp(ctx) {
			t.Fatalf("BrokerUp true %s", when)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("BrokerUp took %v %s, want at once", d, when)
		}
	}
	broker := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, broker.Addr())
	c := newClosingClient(t, mqttas.Config{
		Server:       proxy.Addr(),
		ResponseTime: rt,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 100 * time.Millisecond,
	})
	quick(t, c, "before Connect")
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	awaitSignal(t, ctx, c.Up(), "Up")
	proxy.Refuse(true)
	proxy.CloseConns()
	awaitSignal(t, ctx, c.Down(), "Down")
	quick(t, c, "during an outage")
	c.Close()
	quick(t, c, "after Close")
}
