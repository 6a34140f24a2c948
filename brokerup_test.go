package mqttas_test

// BrokerUp: true over a live link, false when the broker goes silent.

import (
	"context"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
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
