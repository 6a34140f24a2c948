package mqttas_test

// The MQTT 5.0 Paho scenarios about limits, wills and sessions (the table
// is TestPaho5 in paho_scenarios_v5_test.go).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// client topic alias: with Config.TopicAliases the client sends a topic
// in full once, with an alias, and then the alias alone; the broker
// resolves it, so subscribers see the full topic every time.
func paho5ClientTopicAlias(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{})
	proxy := mqtttest.StartProxy(t, addr)
	type sent struct {
		topic string
		alias uint16
	}
	var mu sync.Mutex
	var wire []sent
	proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, raw []byte) mqtttest.Action {
		var p packet.Publish
		if h.Type == packet.PUBLISH && p.Decode(h.Flags, raw[len(raw)-h.RemainingLength:], packet.V5) == nil {
			mu.Lock()
			wire = append(wire, sent{strings.Clone(p.Topic), p.Properties.TopicAlias})
			mu.Unlock()
		}
		return mqtttest.Forward()
	})
	cfg := pahoConfig(t, proxy.Addr(), "alias", true)
	cfg.TopicAliases = true
	c := pahoConnect(t, cfg)
	if c.Link().TopicAliasMaximum == 0 {
		t.Fatal("the broker grants no topic alias")
	}
	sub := pahoConnect(t, pahoConfig(t, addr, "alias-sub", true))
	pahoSub(t, sub, f.topics[0], 2)
	for i := range 3 {
		pahoPub(t, c, f.topics[0], fmt.Sprint("aliased ", i), byte(i), false)
	}
	for i := range 3 {
		if m := pahoRecv(t, sub); m.Topic != f.topics[0] || string(m.Payload) != fmt.Sprint("aliased ", i) {
			t.Fatalf("got %q %q, want %q %q", m.Topic, m.Payload, f.topics[0], fmt.Sprint("aliased ", i))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(wire) != 3 || wire[0].topic != f.topics[0] || wire[0].alias == 0 ||
		wire[1] != (sent{"", wire[0].alias}) || wire[2] != (sent{"", wire[0].alias}) {
		t.Fatalf("PUBLISH topics and aliases on the wire %+v, want the topic with an alias, then the alias alone twice", wire)
	}
}

// maximum packet size: the broker's limit (1000 bytes, in CONNACK) makes
// Publish refuse a larger message locally with ErrPacketTooLarge, keeping
// the connection; and the client's own limit (MaxPacketSize, in CONNECT)
// makes the broker withhold a larger message from it.
func paho5MaximumPacketSize(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{maxPacketSize: 1000})
	c := pahoConnect(t, pahoConfig(t, addr, "maxpacket", true))
	if got := c.Link().MaximumPacketSize; got != 1000 {
		t.Fatalf("Link().MaximumPacketSize = %d, want 1000", got)
	}
	err := c.Publish(fxCtx(t, pahoWait), f.topics[0], make([]byte, 2000), 1, false)
	if !errors.Is(err, mqttas.ErrPacketTooLarge) {
		t.Fatalf("Publish of 2000 bytes = %v, want ErrPacketTooLarge", err)
	}
	if st := c.Stats(); st.Outages != 0 || !c.IsConnected() {
		t.Fatalf("the refusal cost the connection: %+v", st)
	}
	scfg := pahoConfig(t, addr, "maxpacket-sub", true)
	scfg.MaxPacketSize = 512
	small := pahoConnect(t, scfg)
	pahoSub(t, small, f.topics[0], 1)
	pahoSub(t, small, f.sentinel, 1)
	pahoPub(t, c, f.topics[0], strings.Repeat("x", 700), 1, false)
	pahoBarrier(t, f, c, small) // the 700-byte message was withheld
	if st := small.Stats(); st.Outages != 0 {
		t.Fatalf("subscriber stats %+v: the oversized message cost it its connection", st)
	}
}

// server keep alive: a broker whose maximum keep-alive (10 s) is below the
// client's (60 s) answers with Server Keep Alive, which the client adopts.
func paho5ServerKeepAlive(t *testing.T, bk pahoBroker) {
	cfg := pahoConfig(t, bk.start(t, pahoOpts{serverKeepAlive: 10}), "serverka", true)
	cfg.KeepAlive = time.Minute
	c := pahoConnect(t, cfg)
	if l := c.Link(); l.KeepAlive != 10*time.Second || l.Properties.ServerKeepAlive != 10 {
		t.Fatalf("Link().KeepAlive = %v, Server Keep Alive %d; want 10s", l.KeepAlive, l.Properties.ServerKeepAlive)
	}
}

// flow control: the broker's Receive Maximum (5) caps the client's QoS 1
// and 2 publishes in flight; a burst of 50 concurrent publishes all
// succeed on one connection, none refused with "receive maximum exceeded",
// and all arrive. They arrive at another client: mochi 2.7.9 charges the
// QoS 2 messages it sends a client, from PUBREC to PUBCOMP, to that
// client's receive quota (processPubrec calls DecreaseReceiveQuota), so a
// client that publishes at the Receive Maximum while receiving QoS 2
// messages is disconnected with 0x93 by mochi.
func paho5FlowControl(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{receiveMaximum: 5})
	cfg := pahoConfig(t, addr, "flow", true)
	cfg.MaxInflight = 100
	c := pahoConnect(t, cfg)
	if got := c.Link().ReceiveMaximum; got != 5 {
		t.Fatalf("Link().ReceiveMaximum = %d, want 5", got)
	}
	sub := pahoConnect(t, pahoConfig(t, addr, "flow-sub", true))
	pahoSub(t, sub, f.topics[0], 2)
	ctx := fxCtx(t, 2*pahoWait)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := c.Publish(ctx, f.topics[0], []byte(fmt.Sprint(i)), byte(1+i%2), false); err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for len(seen) < 50 {
		seen[string(pahoRecv(t, sub).Payload)] = true
	}
	if st := c.Stats(); st.Outages != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v: want no outage and nothing in flight", st)
	}
}

// will delay: the will of a client that vanishes is published after its
// Will Delay Interval (2 s), not before; a client that comes back to its
// session within the delay (3 s) cancels it. Brokers count in whole
// seconds, so "not before" allows one second of rounding.
func paho5WillDelay(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{})
	sub := pahoConnect(t, pahoConfig(t, addr, "willdelay-sub", true))
	pahoSub(t, sub, f.topics[0], 2)
	pahoSub(t, sub, f.sentinel, 1)
	willCfg := func(id string, delay uint32) mqttas.Config {
		cfg := pahoConfig(t, addr, id, true)
		cfg.PersistentSession, cfg.SessionExpiry = true, time.Minute
		cfg.Will = &mqttas.Will{Topic: f.topics[0], Payload: []byte(id), QoS: 1,
			Properties: &mqttas.Properties{WillDelay: delay}}
		return cfg
	}

	cfg := willCfg("will-delayed", 2)
	c := pahoConnect(t, cfg)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	m := pahoRecv(t, sub)
	if string(m.Payload) != "will-delayed" {
		t.Fatalf("got %q, want the delayed will", m.Payload)
	}
	if d := time.Since(gone); d < time.Second {
		t.Fatalf("will published %v after the client vanished, before its 2 s delay", d)
	}
	pahoEndSession(t, c, cfg)

	cfg = willCfg("will-cancelled", 3)
	c = pahoConnect(t, cfg)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.ResumeOnStart = true
	c = pahoConnect(t, cfg) // back within the delay
	pahoLetTimePass(4 * time.Second)
	pahoBarrier(t, f, sub, sub) // no will came
	if err := c.Disconnect(fxCtx(t, pahoWait)); err != nil {
		t.Fatal(err)
	}
	pahoEndSession(t, c, cfg)
}

// shared subscriptions: two clients in one share group ($share/paho/...)
// divide the messages between them: each message reaches exactly one of
// them, and both get some.
func paho5SharedSubscriptions(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{})
	a := pahoConnect(t, pahoConfig(t, addr, "share-a", true))
	b := pahoConnect(t, pahoConfig(t, addr, "share-b", true))
	for _, c := range []*mqttas.Client{a, b} {
		pahoSub(t, c, "$share/paho/"+f.topics[0], 1)
	}
	const n = 20
	for i := range n {
		pahoPub(t, a, f.topics[0], fmt.Sprint(i), 1, false)
	}
	got := pahoCollect(t, fxCtx(t, pahoWait), n, a, b)
	if len(got[0]) == 0 || len(got[1]) == 0 {
		t.Fatalf("share-a got %d, share-b %d of %d messages: want both some", len(got[0]), len(got[1]), n)
	}
}

// pahoCollect receives n messages from a and b together, by payload,
// failing on a message delivered twice.
func pahoCollect(t *testing.T, ctx context.Context, n int, a, b *mqttas.Client) [2]map[string]bool {
	t.Helper()
	got := [2]map[string]bool{{}, {}}
	for i := range n {
		var m mqttas.Message
		from := 0
		select {
		case m = <-a.Messages():
		case m = <-b.Messages():
			from = 1
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages", i, n)
		}
		if got[0][string(m.Payload)] || got[1][string(m.Payload)] {
			t.Fatalf("%q delivered twice", m.Payload)
		}
		got[from][string(m.Payload)] = true
	}
	return got
}

// session expiry: a session with a 1 s Session Expiry is still there when
// the client returns at once (session present), and gone once the expiry
// has passed.
func paho5SessionExpiry(t *testing.T, bk pahoBroker) {
	addr := bk.start(t, pahoOpts{})
	cfg := pahoConfig(t, addr, "expiring", true)
	cfg.PersistentSession, cfg.SessionExpiry = true, time.Second
	c := pahoConnect(t, cfg)
	if got := c.Link().SessionExpiry; got != time.Second {
		t.Fatalf("Link().SessionExpiry = %v, want 1s", got)
	}
	if err := c.Disconnect(fxCtx(t, pahoWait)); err != nil {
		t.Fatal(err)
	}
	cfg.ResumeOnStart = true
	c = pahoConnect(t, cfg)
	if !c.Link().SessionPresent {
		t.Fatal("session present 0 on an immediate return, want 1")
	}
	if err := c.Disconnect(fxCtx(t, pahoWait)); err != nil {
		t.Fatal(err)
	}
	pahoLetTimePass(3 * time.Second)
	c = pahoConnect(t, cfg)
	if c.Link().SessionPresent {
		t.Fatal("session present 1 after the session expired, want 0")
	}
	pahoEndSession(t, c, cfg)
}
