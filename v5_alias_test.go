package mqttas_test

// Incoming MQTT 5.0 topic aliases: resolved per connection, up to the
// Topic Alias Maximum the client announced, and never shown to the
// application; a broker that breaks the rules costs one connection.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// TestV5IncomingTopicAliases: with Topic Alias Maximum 5 announced, mochi
// replaces repeated topics by aliases (checked on the wire); all twenty
// messages on three topics arrive in order with the right topic and no
// alias in their properties.
func TestV5IncomingTopicAliases(t *testing.T) {
	b := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, b.Addr())
	wire := newV5Wire()
	proxy.Rule(mqtttest.ToClient, wire.rule(mqtttest.ToClient))
	ctx := fxCtx(t, 10*time.Second)
	sub := v5Connect(t, proxy.Addr(), mqttas.Config{ConnectProperties: &mqttas.Properties{TopicAliasMaximum: 5}})
	if err := sub.Subscribe(ctx, "v5/alias/#", 1); err != nil {
		t.Fatal(err)
	}
	pub := v5Connect(t, b.Addr(), mqttas.Config{})
	topics := []string{"v5/alias/a", "v5/alias/bb", "v5/alias/ccc"}
	const n = 20
	for i := range n {
		if err := pub.Publish(ctx, topics[i%3], []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		m := fxRecv(t, sub, 5*time.Second)
		if m.Topic != topics[i%3] || string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d: %q %q, want %q %d", i, m.Topic, m.Payload, topics[i%3], i)
		}
		if p := m.Properties; p != nil && (p.TopicAlias != 0 || p.Has(packet.PropTopicAlias)) {
			t.Errorf("message %d shows topic alias %d", i, p.TopicAlias)
		}
	}
	aliased := 0
	for _, x := range wire.packets() {
		if p, ok := x.p.(*packet.Publish); ok {
			if a := p.Properties.TopicAlias; a > 5 {
				t.Errorf("broker used alias %d over the announced maximum 5", a)
			}
			if p.Topic == "" {
				aliased++
			}
		}
	}
	if aliased == 0 {
		wire.dump(t)
		t.Fatal("no PUBLISH arrived by alias alone: the test proves nothing")
	}
	t.Logf("%d of %d messages arrived by alias alone", aliased, n)
}

// v5Aliased is a QoS 0 PUBLISH with a topic alias.
func v5Aliased(topic string, alias uint16, payload string) *packet.Publish {
	p := &packet.Publish{Topic: topic, Payload: []byte(payload)}
	p.Properties.TopicAlias = alias
	return p
}

// TestV5BadTopicAliasResetsLink: an alias over the announced maximum, and
// one the connection never defined (it was defined on the one before:
// aliases do not outlive a connection), are protocol errors. Each ends the
// connection, and the client reconnects; a proper alias works.
func TestV5BadTopicAliasResetsLink(t *testing.T) {
	f := v5StartFake(t, func(fc *v5Conn) {
		if !fc.awaitGo(nil) {
			return
		}
		switch fc.k {
		case 0:
			fc.sendAll(v5Aliased("t/b", 3, "defined"), v5Aliased("t/x", 6, "over"))
		case 1:
			fc.sendAll(v5Aliased("", 3, "stale"))
		default:
			fc.sendAll(v5Aliased("t/a", 2, "one"), v5Aliased("", 2, "two"))
		}
	})
	c := v5Connect(t, f.addr(), mqttas.Config{ConnectProperties: &mqttas.Properties{TopicAliasMaximum: 5}})
	ctx := fxCtx(t, 10*time.Second)
	goAhead := func() {
		t.Helper()
		if err := c.Publish(ctx, "go", []byte("go"), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	goAhead()
	if m := fxRecv(t, c, 3*time.Second); m.Topic != "t/b" || string(m.Payload) != "defined" {
		t.Fatalf("got %q %q, want the aliased t/b", m.Topic, m.Payload)
	}
	for i, why := range []string{"alias 6", "alias 3"} {
		fxWaitDown(t, c, 3*time.Second)
		if err := c.LastError(); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("outage %d: LastError() = %v, want it to name topic %s", i+1, err, why)
		}
		fxWaitUp(t, c, 3*time.Second)
		goAhead()
	}
	for _, want := range []string{"one", "two"} {
		if m := fxRecv(t, c, 3*time.Second); m.Topic != "t/a" || string(m.Payload) != want {
			t.Fatalf("got %q %q, want t/a %q", m.Topic, m.Payload, want)
		}
	}
	if st := c.Stats(); st.Outages != 2 || st.Reconnects != 2 {
		t.Errorf("stats %+v: want two outages and two reconnects", st)
	}
}

// TestV5AliasOnlyMessageHasNoProperties: a message whose only property was
// its topic alias has, once the alias is resolved and removed, no
// properties: Message.Properties is nil, as for any message without.
func TestV5AliasOnlyMessageHasNoProperties(t *testing.T) {
	f := v5StartFake(t, func(fc *v5Conn) {
		if fc.awaitGo(nil) {
			fc.sendAll(v5Aliased("t/a", 1, "define"), v5Aliased("", 1, "use"), &packet.Publish{Topic: "t/a", Payload: []byte("plain")})
		}
	})
	c := v5Connect(t, f.addr(), mqttas.Config{ConnectProperties: &mqttas.Properties{TopicAliasMaximum: 1}})
	if err := c.Publish(fxCtx(t, 5*time.Second), "go", []byte("go"), 0, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"define", "use", "plain"} {
		m := fxRecv(t, c, 3*time.Second)
		if m.Topic != "t/a" || string(m.Payload) != want {
			t.Fatalf("got %q %q, want t/a %q", m.Topic, m.Payload, want)
		}
		if m.Properties != nil {
			t.Errorf("message %q: Properties = %+v, want nil once the alias is removed", want, *m.Properties)
		}
	}
}
