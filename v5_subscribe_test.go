package mqttas_test

// MQTT 5.0 subscription options against the embedded broker: No Local,
// Retain Handling, Retain As Published and subscription identifiers, and
// their refusal where they cannot apply.

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// v5Until receives messages from c until one has payload last, and returns
// the payloads in order.
func v5Until(t *testing.T, c *mqttas.Client, last string) []mqttas.Message {
	t.Helper()
	var got []mqttas.Message
	for len(got) == 0 || string(got[len(got)-1].Payload) != last {
		got = append(got, fxRecv(t, c, 5*time.Second))
	}
	return got
}

func v5Payloads(ms []mqttas.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Payload))
	}
	return out
}

// TestV5NoLocal: with No Local the client does not get its own messages
// back, and still gets everyone else's. The broker handles one client's
// packets in order, so the client's second publish, to a topic it hears
// normally, arriving first proves the first was not sent back.
func TestV5NoLocal(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx := fxCtx(t, 10*time.Second)
	me := v5Connect(t, b.Addr(), mqttas.Config{})
	other := v5Connect(t, b.Addr(), mqttas.Config{})
	if err := me.Subscribe(ctx, "v5/nl", 1, mqttas.NoLocal()); err != nil {
		t.Fatal(err)
	}
	if err := me.Subscribe(ctx, "v5/nl/sync", 1); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"v5/nl", "v5/nl/sync"} {
		if err := me.Publish(ctx, topic, []byte("mine"), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	if m := fxRecv(t, me, 5*time.Second); m.Topic != "v5/nl/sync" {
		t.Fatalf("got %q %q first: No Local did not hold back the client's own message", m.Topic, m.Payload)
	}
	if err := other.Publish(ctx, "v5/nl", []byte("theirs"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, me.Messages(), "v5/nl", "theirs")
}

// TestV5RetainHandling: a retained message is sent on every subscribe with
// Retain Handling 0, only on the first with 1, never with 2. After each
// Subscribe the client publishes a live "mark" itself: the broker handles
// one client's packets in order, so whatever arrives before the mark is
// what the subscribe brought. (A mark injected by the broker could overtake
// the retained message: mochi queues that after writing the SUBACK.)
func TestV5RetainHandling(t *testing.T) {
	b := mqtttest.StartBroker(t)
	if err := b.Publish("v5/rh", []byte("kept"), 1, true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h             byte
		first, second []string
	}{
		{0, []string{"kept", "mark"}, []string{"kept", "mark"}},
		{1, []string{"kept", "mark"}, []string{"mark"}},
		{2, []string{"mark"}, []string{"mark"}},
	} {
		c := v5Connect(t, b.Addr(), mqttas.Config{})
		ctx := fxCtx(t, 10*time.Second)
		for i, want := range [][]string{tc.first, tc.second} {
			if err := c.Subscribe(ctx, "v5/rh", 1, mqttas.RetainHandling(tc.h)); err != nil {
				t.Fatalf("Retain Handling %d: Subscribe: %v", tc.h, err)
			}
			if err := c.Publish(ctx, "v5/rh", []byte("mark"), 1, false); err != nil {
				t.Fatal(err)
			}
			got := v5Until(t, c, "mark")
			if !slices.Equal(v5Payloads(got), want) {
				t.Errorf("Retain Handling %d, subscribe %d: got %q, want %q", tc.h, i+1, v5Payloads(got), want)
			}
			if len(got) == 2 && !got[0].Retained {
				t.Errorf("Retain Handling %d: the retained message arrived without Retained", tc.h)
			}
		}
		c.Close()
	}
}

// TestV5RetainAsPublished: a message published live with retain reaches a
// Retain As Published subscription with Retained set, and an ordinary one
// with it cleared.
//
// mochi writes the SUBACK before it looks for retained messages to send,
// so a retained message published just after Subscribe returns can reach
// the subscriber twice: live, and as a retained message, flag set. Each
// subscriber therefore first sees a message of its own through: the broker
// handles a client's packets in order, so by then the subscribe is done.
func TestV5RetainAsPublished(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx := fxCtx(t, 10*time.Second)
	rap := v5Connect(t, b.Addr(), mqttas.Config{})
	plain := v5Connect(t, b.Addr(), mqttas.Config{})
	for i, s := range []struct {
		c    *mqttas.Client
		opts []mqttas.SubscribeOption
	}{{rap, []mqttas.SubscribeOption{mqttas.RetainAsPublished()}}, {plain, nil}} {
		sync := "v5/sync/" + strconv.Itoa(i)
		if err := s.c.Subscribe(ctx, "v5/rap", 1, s.opts...); err != nil {
			t.Fatal(err)
		}
		if err := s.c.Subscribe(ctx, sync, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.c.Publish(ctx, sync, []byte("sync"), 1, false); err != nil {
			t.Fatal(err)
		}
		expectMessage(t, ctx, s.c.Messages(), sync, "sync")
	}
	pub := v5Connect(t, b.Addr(), mqttas.Config{})
	if err := pub.Publish(ctx, "v5/rap", []byte("live"), 1, true); err != nil {
		t.Fatal(err)
	}
	if m := expectMessage(t, ctx, rap.Messages(), "v5/rap", "live"); !m.Retained {
		t.Error("Retain As Published: forwarded message lost its retain flag")
	}
	if m := expectMessage(t, ctx, plain.Messages(), "v5/rap", "live"); m.Retained {
		t.Errorf("ordinary subscription: forwarded live message kept its retain flag (stats %+v)", plain.Stats())
	}
}

// TestV5SubscriptionIDs: a message matching two subscriptions carries both
// identifiers (in one message or one each, as the broker chooses); one
// matching a single subscription carries its identifier alone.
func TestV5SubscriptionIDs(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx := fxCtx(t, 10*time.Second)
	c := v5Connect(t, b.Addr(), mqttas.Config{})
	if err := c.Subscribe(ctx, "v5/sid/#", 1, mqttas.SubscriptionID(7)); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "v5/sid/+/x", 1, mqttas.SubscriptionID(268435455)); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "v5/plain", 1); err != nil {
		t.Fatal(err)
	}
	ids := func(topic, payload string) []uint32 {
		t.Helper()
		if err := b.Publish(topic, []byte(payload), 1, false); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish("v5/plain", []byte("mark"), 1, false); err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for _, m := range v5Until(t, c, "mark") {
			if m.Topic == topic && m.Properties != nil {
				got = append(got, m.Properties.SubscriptionIDs...)
			}
			if m.Topic == "v5/plain" && m.Properties != nil && len(m.Properties.SubscriptionIDs) > 0 {
				t.Errorf("message for a subscription without identifier carries %v", m.Properties.SubscriptionIDs)
			}
		}
		slices.Sort(got)
		return got
	}
	if got := ids("v5/sid/a/x", "both"); !slices.Equal(got, []uint32{7, 268435455}) {
		t.Errorf("overlapping subscriptions: identifiers %v, want [7 268435455]", got)
	}
	if got := ids("v5/sid/b", "one"); !slices.Equal(got, []uint32{7}) {
		t.Errorf("one subscription: identifiers %v, want [7]", got)
	}
}

// TestV5SubscribeOptionErrors: the 5.0 options make a 3.1.1 Subscribe fail
// with an error naming MQTTv5, and values the protocol rules out fail on
// 5.0; in both cases nothing is sent and the link stays up.
func TestV5SubscribeOptionErrors(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx := fxCtx(t, 10*time.Second)
	v3 := fxNewClient(t, mqttas.Config{Server: b.Addr(), ResponseTime: 2 * time.Second, Logger: clientTestLogger(t)})
	if err := v3.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]mqttas.SubscribeOption{
		"NoLocal":           mqttas.NoLocal(),
		"RetainAsPublished": mqttas.RetainAsPublished(),
		"RetainHandling":    mqttas.RetainHandling(1),
		"SubscriptionID":    mqttas.SubscriptionID(1),
	} {
		err := v3.Subscribe(ctx, "v5/opt", 1, opt)
		if err == nil || !strings.Contains(err.Error(), "MQTTv5") {
			t.Errorf("3.1.1 Subscribe with %s: %v, want an error naming MQTTv5", name, err)
		}
	}
	v5 := v5Connect(t, b.Addr(), mqttas.Config{})
	for _, tc := range []struct {
		name, filter string
		opt          mqttas.SubscribeOption
	}{
		{"Retain Handling 3", "v5/opt", mqttas.RetainHandling(3)},
		{"identifier over the maximum", "v5/opt", mqttas.SubscriptionID(268435456)},
		{"No Local on a shared subscription", "$share/g/v5/opt", mqttas.NoLocal()},
	} {
		if err := v5.Subscribe(ctx, tc.filter, 1, tc.opt); err == nil {
			t.Errorf("5.0 Subscribe with %s succeeded", tc.name)
		}
	}
	for _, c := range []*mqttas.Client{v3, v5} {
		if st := c.Stats(); st.Outages != 0 || !c.IsConnected() {
			t.Errorf("after refused options: stats %+v, connected %v", st, c.IsConnected())
		}
		fxRoundTrip(t, c, "v5/opt/after")
	}
}

// TestV5OptionsRestoredAfterReconnect: after a broker restart that lost the
// session, the client restores its subscriptions with their options: the
// identifier is echoed again and No Local still holds.
func TestV5OptionsRestoredAfterReconnect(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx := fxCtx(t, 10*time.Second)
	c := v5Connect(t, b.Addr(), mqttas.Config{})
	for _, s := range []struct {
		filter string
		opts   []mqttas.SubscribeOption
	}{
		{"v5/ro/id", []mqttas.SubscribeOption{mqttas.SubscriptionID(7)}},
		{"v5/ro/nl", []mqttas.SubscribeOption{mqttas.NoLocal(), mqttas.SubscriptionID(8)}},
		{"v5/ro/sync", nil},
	} {
		if err := c.Subscribe(ctx, s.filter, 1, s.opts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Restart(false); err != nil {
		t.Fatal(err)
	}
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 3*time.Second)
	if c.Link().SessionPresent {
		t.Fatal("the broker kept the session: nothing was restored")
	}
	for _, topic := range []string{"v5/ro/nl", "v5/ro/sync"} {
		if err := c.Publish(ctx, topic, []byte("mine"), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	if m := fxRecv(t, c, 5*time.Second); m.Topic != "v5/ro/sync" {
		t.Errorf("got %q first: No Local was not restored", m.Topic)
	}
	if err := b.Publish("v5/ro/id", []byte("x"), 1, false); err != nil {
		t.Fatal(err)
	}
	m := expectMessage(t, ctx, c.Messages(), "v5/ro/id", "x")
	if m.Properties == nil || !slices.Equal(m.Properties.SubscriptionIDs, []uint32{7}) {
		t.Errorf("restored subscription: message properties %+v, want subscription identifier 7", m.Properties)
	}
}
