package mqttas_test

// MQTT 5.0 properties end to end against the embedded broker: message
// properties, message expiry, will properties and will delay, and the
// configuration that only makes sense with MQTTv5.

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// v5Connect returns a connected MQTT 5.0 client of addr with short
// timings, closed when the test ends; cfg adjusts it.
func v5Connect(t *testing.T, addr string, cfg mqttas.Config) *mqttas.Client {
	t.Helper()
	cfg.Server, cfg.MQTTv5 = addr, true
	if cfg.ResponseTime == 0 {
		cfg.ResponseTime = 2 * time.Second
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin, cfg.ReconnectMax = fxReconnectMin, fxReconnectMax
	}
	if cfg.Logger == nil {
		cfg.Logger = clientTestLogger(t)
	}
	c := fxNewClient(t, cfg)
	if err := c.Connect(fxCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("Connect to %s: %v", addr, err)
	}
	fxWaitUp(t, c, 2*time.Second)
	return c
}

// TestV5PropertiesRoundTrip: every message property a publisher sets
// reaches a 5.0 subscriber, user properties in order with a repeated name;
// the message expiry arrives no longer than it was sent; the properties
// are copied when the option is made; a 3.1.1 client refuses them.
func TestV5PropertiesRoundTrip(t *testing.T) {
	b := mqtttest.StartBroker(t)
	ctx := fxCtx(t, 10*time.Second)
	proxy := mqtttest.StartProxy(t, b.Addr())
	wire := newV5Wire()
	proxy.Rule(mqtttest.ToBroker, wire.rule(mqtttest.ToBroker))
	sub := v5Connect(t, b.Addr(), mqttas.Config{})
	pub := v5Connect(t, proxy.Addr(), mqttas.Config{})
	if err := sub.Subscribe(ctx, "v5/props", 1); err != nil {
		t.Fatal(err)
	}
	want := []mqttas.UserProperty{{Key: "k", Value: "1"}, {Key: "other", Value: "x"}, {Key: "k", Value: "2"}, {Key: "k", Value: "1"}}
	props := &mqttas.Properties{
		PayloadFormat:   1,
		MessageExpiry:   60,
		ContentType:     "application/json",
		ResponseTopic:   "v5/reply",
		CorrelationData: []byte{0, 1, 2, 0xff},
		User:            slices.Clone(want),
		TopicAlias:      9, // the client manages aliases: this one is dropped
	}
	opt := mqttas.WithProperties(props)
	props.User[0].Value, props.ContentType, props.CorrelationData[0] = "changed", "text/plain", 9
	// QoS 2 here; QoS 1 with properties: TestV5QoS1UserPropertiesOnMochi.
	if err := pub.Publish(ctx, "v5/props", []byte(`{"a":1}`), 2, false, opt); err != nil {
		t.Fatalf("Publish with properties: %v", err)
	}
	for _, x := range wire.packets() {
		if p, ok := x.p.(*packet.Publish); ok && p.Properties.Has(packet.PropTopicAlias) {
			t.Errorf("the Topic Alias given to WithProperties went out: %s", v5Describe(p))
		}
	}
	m := fxRecv(t, sub, 5*time.Second)
	p := m.Properties
	if p == nil {
		t.Fatalf("message %q arrived without properties", m.Payload)
	}
	if p.PayloadFormat != 1 || p.ContentType != "application/json" || p.ResponseTopic != "v5/reply" ||
		!bytes.Equal(p.CorrelationData, []byte{0, 1, 2, 0xff}) {
		t.Errorf("properties %+v: want payload format 1, content type application/json, response topic v5/reply, correlation data 00 01 02 ff", *p)
	}
	if !slices.Equal(p.User, want) {
		t.Errorf("user properties %v, want %v in that order", p.User, want)
	}
	if !p.Has(packet.PropMessageExpiry) || p.MessageExpiry == 0 || p.MessageExpiry > 60 {
		t.Errorf("message expiry %d (present %v), want 1..60", p.MessageExpiry, p.Has(packet.PropMessageExpiry))
	}
	if p.TopicAlias != 0 || p.Has(packet.PropTopicAlias) {
		t.Errorf("topic alias %d leaked into Message.Properties", p.TopicAlias)
	}
	if m.Topic != "v5/props" {
		t.Errorf("topic %q, want v5/props", m.Topic)
	}

	// A message without properties of its own still carries the expiry
	// mochi stamps on every message (its MaximumMessageExpiryInterval).
	if err := pub.Publish(ctx, "v5/props", []byte("plain"), 1, false); err != nil {
		t.Fatal(err)
	}
	if m := fxRecv(t, sub, 5*time.Second); m.Properties != nil && len(m.Properties.User) > 0 {
		t.Errorf("plain message got user properties %v", m.Properties.User)
	}

	v3 := fxNewClient(t, mqttas.Config{Server: b.Addr(), ResponseTime: 2 * time.Second})
	if err := v3.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	err := v3.Publish(ctx, "v5/props", []byte("x"), 1, false, mqttas.WithProperties(&mqttas.Properties{ContentType: "a/b"}))
	if err == nil || !strings.Contains(err.Error(), "MQTTv5") {
		t.Errorf("3.1.1 Publish with properties: %v, want an error naming MQTTv5", err)
	}
	if st := v3.Stats(); st.Outages != 0 || !v3.IsConnected() {
		t.Errorf("3.1.1 client after the refused publish: stats %+v, connected %v", st, v3.IsConnected())
	}
}

// TestV5QoS1UserPropertiesOnMochi: a QoS 1 publish with user properties
// completes against the embedded broker, link kept. mochi v2.7.9 answers
// it with a PUBACK carrying reason code 0x01 (its "granted QoS 1", not a
// PUBACK code) and the user properties echoed; a client that drops the
// link over the code draws the same PUBACK on every resend and reconnects
// for ever.
func TestV5QoS1UserPropertiesOnMochi(t *testing.T) {
	b := mqtttest.StartBroker(t)
	c := v5Connect(t, b.Addr(), mqttas.Config{})
	ctx := fxCtx(t, 3*time.Second)
	opt := mqttas.WithProperties(&mqttas.Properties{User: []mqttas.UserProperty{{Key: "k", Value: "v"}}})
	if err := c.Publish(ctx, "v5/qos1props", []byte("x"), 1, false, opt); err != nil {
		t.Errorf("QoS 1 Publish with a user property: %v (stats %+v, last error %v)", err, c.Stats(), c.LastError())
	}
	if st := c.Stats(); st.Outages != 0 {
		t.Errorf("stats %+v: the PUBACK cost the link", st)
	}
}

// v5ExpiryHook reports mochi dropping expired queued and retained messages.
type v5ExpiryHook struct {
	mqtt.HookBase
	dropped  chan uint16 // packet ids of expired queued messages
	retained chan string // topics of expired retained messages
}

func (h *v5ExpiryHook) ID() string { return "v5-expiry" }
func (h *v5ExpiryHook) Provides(b byte) bool {
	return b == mqtt.OnQosDropped || b == mqtt.OnRetainedExpired
}
func (h *v5ExpiryHook) OnQosDropped(_ *mqtt.Client, pk packets.Packet) {
	select {
	case h.dropped <- pk.PacketID:
	default:
	}
}
func (h *v5ExpiryHook) OnRetainedExpired(filter string) {
	select {
	case h.retained <- filter:
	default:
	}
}

// TestV5MessageExpiry: a message with a one-second expiry, queued for an
// offline persistent session or retained, is not delivered once it has
// expired; a message without one, queued alongside, is. The wait is for
// the broker's own expiry event: mochi sweeps expired messages once a
// second, at one-second resolution, so this takes two to three seconds.
func TestV5MessageExpiry(t *testing.T) {
	b := mqtttest.StartBroker(t)
	h := &v5ExpiryHook{dropped: make(chan uint16, 16), retained: make(chan string, 16)}
	if err := b.Server().AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	ctx := fxCtx(t, 15*time.Second)
	cfg := mqttas.Config{ClientID: "v5-expiry", PersistentSession: true, QueueLen: 16}
	away := v5Connect(t, b.Addr(), cfg)
	if err := away.Subscribe(ctx, "v5/exp/#", 1); err != nil {
		t.Fatal(err)
	}
	away.Close() // no DISCONNECT: the session stays, and queues
	// Publish only once the broker has seen it go, so that the messages
	// are queued for the session rather than written to the dead socket.
	fxEventually(t, 5*time.Second, "the broker to see the client gone", func() bool { return b.Clients() == 0 })

	pub := v5Connect(t, b.Addr(), mqttas.Config{})
	short := mqttas.WithProperties(&mqttas.Properties{MessageExpiry: 1})
	if err := pub.Publish(ctx, "v5/exp/q", []byte("expires"), 1, false, short); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "v5/exp/q", []byte("stays"), 1, false); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "v5/exp/r", []byte("retained-expires"), 1, true, short); err != nil {
		t.Fatal(err)
	}
	// Two expiring copies are queued for the session: the plain one and
	// the retained one (its subscription to v5/exp/# matches both).
	for dropped, gone := 0, false; dropped < 2 || !gone; {
		select {
		case <-h.dropped:
			dropped++
		case topic := <-h.retained:
			gone = gone || topic == "v5/exp/r"
		case <-ctx.Done():
			t.Fatalf("mochi expired nothing (queued dropped %v, retained expired %v): %v", dropped, gone, ctx.Err())
		}
	}

	cfg.ResumeOnStart = true
	back := v5Connect(t, b.Addr(), cfg)
	if !back.Link().SessionPresent {
		t.Fatal("the session did not survive")
	}
	if err := back.Subscribe(ctx, "v5/exp/r", 1); err != nil { // again: a retained copy would come now
		t.Fatal(err)
	}
	// Published by back itself, so that the broker routes it after
	// handling the SUBSCRIBE, retained copy included.
	if err := back.Publish(ctx, "v5/exp/q", []byte("end"), 1, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != "end" {
		got = append(got, string(fxRecv(t, back, 5*time.Second).Payload))
	}
	if !slices.Equal(got, []string{"stays", "end"}) {
		t.Errorf("after expiry the session delivered %q, want [stays end]", got)
	}
}

// TestV5WillProperties: the will's properties and delay go out in CONNECT;
// when the link dies the broker publishes the will after the delay, with
// its user properties, to a 5.0 watcher. mochi v2.7.9 keeps only the user
// properties of a will (its sendLWT drops Content Type and the rest), so
// the other properties are checked on the wire.
func TestV5WillProperties(t *testing.T) {
	b := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, b.Addr())
	wire := newV5Wire()
	proxy.Rule(mqtttest.ToBroker, wire.rule(mqtttest.ToBroker))
	ctx := fxCtx(t, 15*time.Second)
	watcher := v5Connect(t, b.Addr(), mqttas.Config{})
	if err := watcher.Subscribe(ctx, "v5/will", 1); err != nil {
		t.Fatal(err)
	}
	user := []mqttas.UserProperty{{Key: "why", Value: "gone"}, {Key: "why", Value: "really"}}
	will := &mqttas.Will{Topic: "v5/will", Payload: []byte("bye"), QoS: 1, Properties: &mqttas.Properties{
		ContentType: "text/plain", User: slices.Clone(user), WillDelay: 1,
	}}
	dying := v5Connect(t, proxy.Addr(), mqttas.Config{Will: will})
	will.Properties.User[0].Value = "mutated" // New copied it

	cs := wire.connects()
	if len(cs) != 1 || cs[0].Will == nil {
		t.Fatalf("CONNECTs on the wire: %d, will %v", len(cs), len(cs) > 0 && cs[0].Will != nil)
	}
	wp := cs[0].Will.Properties
	if wp.ContentType != "text/plain" || wp.WillDelay != 1 || !slices.Equal(wp.User, user) {
		t.Errorf("will properties on the wire %+v, want content type text/plain, delay 1, user %v", wp, user)
	}

	proxy.Refuse(true) // a reconnect within the delay would cancel the will
	cut := time.Now()
	proxy.Reset()
	fxWaitDown(t, dying, 2*time.Second)
	m := fxRecv(t, watcher, 5*time.Second)
	elapsed := time.Since(cut)
	if m.Topic != "v5/will" || string(m.Payload) != "bye" {
		t.Fatalf("watcher got %q %q, want the will", m.Topic, m.Payload)
	}
	if elapsed < 900*time.Millisecond {
		t.Errorf("will published %v after the link died, before its one-second delay", elapsed)
	}
	if m.Properties == nil || !slices.Equal(m.Properties.User, user) {
		t.Errorf("will arrived with properties %+v, want user properties %v", m.Properties, user)
	}
}

// TestV5ConfigNeedsMQTTv5: 5.0-only configuration on a 3.1.1 client is an
// error from New that names the field and the switch.
func TestV5ConfigNeedsMQTTv5(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		cfg         mqttas.Config
	}{
		{"connect properties", "ConnectProperties", mqttas.Config{ConnectProperties: &mqttas.Properties{ReceiveMaximum: 10}}},
		{"will properties", "Will.Properties", mqttas.Config{Will: &mqttas.Will{Topic: "w", Properties: &mqttas.Properties{WillDelay: 5}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Server = "127.0.0.1:1883"
			c, err := mqttas.New(tc.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("New accepted %s without MQTTv5", tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "MQTTv5") {
				t.Errorf("error %q does not name %s and MQTTv5", err, tc.field)
			}
			tc.cfg.MQTTv5 = true
			c, err = mqttas.New(tc.cfg)
			if err != nil {
				t.Fatalf("with MQTTv5: %v", err)
			}
			c.Close()
			if !errors.Is(c.Publish(fxCtx(t, time.Second), "t", nil, 0, false), mqttas.ErrClosed) {
				t.Error("Publish after Close is not ErrClosed")
			}
		})
	}
}

// TestV5ConfigRefusesMisplacedProperties: properties that MQTT 5.0 does not
// allow in CONNECT, or in a will, can never be sent; New refuses them as
// bad configuration instead of letting every Connect fail with a malformed
// packet (and ConnectRetry retry that for ever).
func TestV5ConfigRefusesMisplacedProperties(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mqttas.Config
	}{
		{"Content Type in CONNECT", mqttas.Config{ConnectProperties: &mqttas.Properties{ContentType: "text/plain"}}},
		{"Topic Alias in a will", mqttas.Config{Will: &mqttas.Will{Topic: "w", Properties: &mqttas.Properties{TopicAlias: 3}}}},
		{"Receive Maximum in a will", mqttas.Config{Will: &mqttas.Will{Topic: "w", Properties: &mqttas.Properties{ReceiveMaximum: 3}}}},
	} {
		tc.cfg.Server, tc.cfg.MQTTv5 = "127.0.0.1:1883", true
		if c, err := mqttas.New(tc.cfg); err == nil {
			c.Close()
			t.Errorf("%s: New accepted a configuration no CONNECT can carry", tc.name)
		}
	}
}
