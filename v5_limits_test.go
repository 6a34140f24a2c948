package mqttas_test

// What an MQTT 5.0 broker grants in CONNACK, as Client.Link reports it, and
// the limits the client honours against the embedded broker: Maximum QoS,
// Retain Available, Maximum Packet Size, Subscription Identifier Available.
// (mochi v2.7.9 itself announces only Receive Maximum and Maximum QoS; the
// mqtttest broker's hook announces the rest of its Capabilities.)

import (
	"errors"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// v5LimitedBroker starts a broker with adjusted capabilities behind a
// proxy whose client-to-broker packets wire records.
func v5LimitedBroker(t *testing.T, caps func(*mqtt.Capabilities)) (*mqtttest.Broker, *mqtttest.Proxy, *v5Wire) {
	t.Helper()
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	proxy := mqtttest.StartProxy(t, b.Addr())
	wire := newV5Wire()
	proxy.Rule(mqtttest.ToBroker, wire.rule(mqtttest.ToBroker))
	return b, proxy, wire
}

// published returns the PUBLISH packets to topic the client sent.
func (w *v5Wire) published(topic string) []*packet.Publish {
	var out []*packet.Publish
	for _, x := range w.packets() {
		if p, ok := x.p.(*packet.Publish); ok && x.dir == mqtttest.ToBroker && p.Topic == topic {
			out = append(out, p)
		}
	}
	return out
}

// TestV5LinkReportsGrants: Link is zero before Connect, holds 3.1.1's fixed
// values on a 3.1.1 connection, and what the broker sent on a 5.0 one.
func TestV5LinkReportsGrants(t *testing.T) {
	b := mqtttest.StartBroker(t)
	v3 := fxNewClient(t, mqttas.Config{Server: b.Addr(), ClientID: "v5-link-3"})
	if l := v3.Link(); l.Version != 0 {
		t.Errorf("Link before Connect: %+v, want the zero Link", l)
	}
	if err := v3.Connect(fxCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	l := v3.Link()
	if l.Version != 4 || l.ClientID != "v5-link-3" || l.KeepAlive != time.Minute || l.ReceiveMaximum != 65535 ||
		l.MaximumQoS != 2 || !l.RetainAvailable || l.MaximumPacketSize != 0 || l.TopicAliasMaximum != 0 ||
		!l.WildcardSubAvailable || !l.SubscriptionIDAvailable || !l.SharedSubAvailable || !l.Properties.Empty() {
		t.Errorf("3.1.1 Link %+v: want version 4, the protocol's fixed grants, no properties", l)
	}

	v5 := v5Connect(t, b.Addr(), mqttas.Config{ClientID: "v5-link-5"})
	l = v5.Link()
	if l.Version != 5 || l.ClientID != "v5-link-5" || l.KeepAlive != time.Minute || l.SessionPresent || l.SessionExpiry != 0 {
		t.Errorf("5.0 Link %+v: want version 5, the configured id and keep-alive, no session", l)
	}
	// mochi's default capabilities.
	if l.ReceiveMaximum != 1024 || !l.Properties.Has(packet.PropReceiveMaximum) || l.TopicAliasMaximum != 65535 ||
		l.MaximumQoS != 2 || !l.RetainAvailable || l.MaximumPacketSize != 0 || !l.WildcardSubAvailable ||
		!l.SubscriptionIDAvailable || !l.SharedSubAvailable {
		t.Errorf("5.0 Link %+v: want mochi's Receive Maximum 1024, Topic Alias Maximum 65535, nothing else limited", l)
	}
}

// TestV5MaximumQoSDowngrades: against a broker granting Maximum QoS 1 a QoS
// 2 Publish goes out at QoS 1, and against one granting 0 a QoS 1 Publish
// goes out at QoS 0 and returns once written; neither is an error.
func TestV5MaximumQoSDowngrades(t *testing.T) {
	for _, tc := range []struct{ max, asked byte }{{1, 2}, {0, 1}} {
		b, proxy, wire := v5LimitedBroker(t, func(c *mqtt.Capabilities) { c.MaximumQos = tc.max })
		obs := fxObserve(t, b, "v5/maxqos")
		c := v5Connect(t, proxy.Addr(), mqttas.Config{})
		if got := c.Link().MaximumQoS; got != tc.max {
			t.Errorf("Link().MaximumQoS = %d, want %d", got, tc.max)
		}
		if err := c.Publish(fxCtx(t, 5*time.Second), "v5/maxqos", []byte("m"), tc.asked, false); err != nil {
			t.Fatalf("QoS %d Publish to a Maximum QoS %d broker: %v", tc.asked, tc.max, err)
		}
		if r := fxNextObserved(t, obs, 5*time.Second); string(r.Payload) != "m" || r.QoS != tc.max {
			t.Errorf("broker got %q at QoS %d, want m at %d", r.Payload, r.QoS, tc.max)
		}
		pubs := wire.published("v5/maxqos")
		if len(pubs) != 1 || pubs[0].QoS != tc.max {
			wire.dump(t)
			t.Errorf("Maximum QoS %d: %d PUBLISHes on the wire, want one at QoS %d", tc.max, len(pubs), tc.max)
		}
		if st := c.Stats(); st.InFlight != 0 || st.Outages != 0 {
			t.Errorf("stats %+v after the downgraded publish", st)
		}
	}
}

// TestV5BrokerLimitsRefusedLocally: what a broker said it does not take is
// refused before sending, with the sentinel error and the link kept: a
// retained message without Retain Available, a packet over its Maximum
// Packet Size (at QoS 0 and 1), a subscription identifier without
// Subscription Identifier Available. Everything else still goes through.
func TestV5BrokerLimitsRefusedLocally(t *testing.T) {
	b, proxy, wire := v5LimitedBroker(t, func(c *mqtt.Capabilities) {
		c.RetainAvailable = 0
		c.MaximumPacketSize = 1024
		c.SubIDAvailable = 0
	})
	obs := fxObserve(t, b, "v5/lim/#")
	c := v5Connect(t, proxy.Addr(), mqttas.Config{})
	ctx := fxCtx(t, 10*time.Second)
	if l := c.Link(); l.RetainAvailable || l.MaximumPacketSize != 1024 || l.SubscriptionIDAvailable {
		t.Fatalf("Link %+v: want retain unavailable, Maximum Packet Size 1024, no subscription identifiers", l)
	}

	if err := c.Publish(ctx, "v5/lim/retain", []byte("r"), 1, true); !errors.Is(err, mqttas.ErrRetainNotSupported) {
		t.Errorf("retained Publish: %v, want ErrRetainNotSupported", err)
	}
	big := make([]byte, 2000)
	for _, qos := range []byte{0, 1} {
		if err := c.Publish(ctx, "v5/lim/big", big, qos, false); !errors.Is(err, mqttas.ErrPacketTooLarge) {
			t.Errorf("QoS %d Publish of %d bytes: %v, want ErrPacketTooLarge", qos, len(big), err)
		}
	}
	err := c.Subscribe(ctx, "v5/lim/sub", 1, mqttas.SubscriptionID(5))
	if !errors.Is(err, mqttas.ErrSubscriptionIDsNotSupported) {
		t.Errorf("Subscribe with an identifier: %v, want ErrSubscriptionIDsNotSupported", err)
	}

	if err := c.Publish(ctx, "v5/lim/small", make([]byte, 900), 1, false); err != nil {
		t.Fatalf("Publish under the limit: %v", err)
	}
	if r := fxNextObserved(t, obs, 5*time.Second); r.Topic != "v5/lim/small" {
		t.Errorf("broker got %q first, want only v5/lim/small", r.Topic)
	}
	if n := len(wire.published("v5/lim/retain")) + len(wire.published("v5/lim/big")); n != 0 {
		wire.dump(t)
		t.Errorf("%d refused PUBLISHes went out anyway", n)
	}
	if st := c.Stats(); st.Outages != 0 || st.InFlight != 0 || st.UnsentBytes != 0 || !c.IsConnected() {
		t.Errorf("after the refusals: stats %+v, connected %v; want the link kept, nothing pending", st, c.IsConnected())
	}
	fxRoundTrip(t, c, "v5/lim/rt")
}

// TestV5LimitsOfTheNewLinkApply: messages waiting through an outage are
// sent under the limits of the connection they go out on, which the
// client learns only when it reconnects: a QoS 2 message goes out at the
// new link's Maximum QoS 1, and a retained one is refused with
// ErrRetainNotSupported once the new link has no Retain Available
// [MQTT-3.2.2-14], rather than sent to a broker that must then disconnect.
func TestV5LimitsOfTheNewLinkApply(t *testing.T) {
	release := make(chan struct{})
	got := make(chan *packet.Publish, 4)
	f := v5StartFake(t, func(fc *v5Conn) {
		if fc.k == 0 {
			fc.awaitGo(nil) // then drop the link
			return
		}
		if _, err := fc.next(); err != nil { // CONNECT; the CONNACK waits
			return
		}
		<-release
		ack := &packet.Connack{}
		ack.Properties.MaximumQoS = 1
		ack.Properties.MarkPresent(packet.PropRetainAvailable) // 0
		if fc.send(ack) != nil {
			return
		}
		for {
			p, err := fc.next()
			if err != nil {
				return
			}
			if pub, ok := p.(*packet.Publish); ok {
				got <- pub
			}
			if !fc.answer(p) {
				return
			}
		}
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	c := v5Connect(t, f.addr(), mqttas.Config{ResponseTime: 5 * time.Second})
	ctx := fxCtx(t, 10*time.Second)
	if err := c.Publish(ctx, "go", []byte("go"), 0, false); err != nil {
		t.Fatal(err)
	}
	fxWaitDown(t, c, 3*time.Second)
	qos2, retained := make(chan error, 1), make(chan error, 1)
	go func() { qos2 <- c.Publish(ctx, "v5/q2", []byte("2"), 2, false) }()
	go func() { retained <- c.Publish(ctx, "v5/r", []byte("r"), 1, true) }()
	fxEventually(t, 3*time.Second, "both publishes waiting for the link", func() bool { return c.Stats().UnsentBytes == int64(len("v5/q2")+1+len("v5/r")+1) })
	open()
	fxWaitUp(t, c, 3*time.Second)
	if l := c.Link(); l.MaximumQoS != 1 || l.RetainAvailable {
		t.Fatalf("new Link %+v: want Maximum QoS 1, no retain", l)
	}
	if err := <-qos2; err != nil {
		t.Errorf("QoS 2 Publish: %v", err)
	}
	if err := <-retained; !errors.Is(err, mqttas.ErrRetainNotSupported) {
		t.Errorf("retained Publish: %v, want ErrRetainNotSupported from the new link", err)
	}
	for len(got) > 0 {
		p := <-got
		if p.QoS > 1 || p.Retain {
			t.Errorf("sent %s at QoS %d retain %v to a broker granting Maximum QoS 1, no retain", p.Topic, p.QoS, p.Retain)
		}
	}
}
