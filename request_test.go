package mqttas_test

// MQTT 5.0 request/response (Request, Respond) and outgoing topic aliases.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// startResponder answers every request on filter with its payload in upper
// case, until the test ends.
func startResponder(t *testing.T, addr, filter string) *mqttas.Client {
	t.Helper()
	// Cleanups run last-registered first: the wait goes in before the
	// Close that fxNewClient registers, so Close ends the loop first.
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	r := fxNewClient(t, mqttas.Config{Server: addr, MQTTv5: true, ClientID: "responder"})
	ctx := fxCtx(t, 5*time.Second)
	if err := r.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Subscribe(ctx, filter, 1); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		for m := range r.Messages() {
			if err := r.Respond(context.Background(), m, bytes.ToUpper(m.Payload), 1); err != nil && !errors.Is(err, mqttas.ErrClosed) {
				t.Errorf("Respond: %v", err)
			}
		}
	})
	return r
}

func TestRequestResponse(t *testing.T) {
	b := mqtttest.StartBroker(t)
	startResponder(t, b.Addr(), "svc/upper")
	c := fxNewClient(t, mqttas.Config{Server: b.Addr(), MQTTv5: true, ClientID: "requester"})
	ctx := fxCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Concurrent requests each get their own reply.
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := fmt.Sprintf("hello %d", i)
			m, err := c.Request(ctx, "svc/upper", []byte(req), 1)
			if err != nil {
				t.Errorf("Request %d: %v", i, err)
				return
			}
			if got, want := string(m.Payload), strings.ToUpper(req); got != want {
				t.Errorf("request %q got reply %q, want %q", req, got, want)
			}
			if m.Properties == nil || len(m.Properties.CorrelationData) == 0 {
				t.Errorf("reply without correlation data: %+v", m)
			}
		})
	}
	wg.Wait()
	select {
	case m := <-c.Messages():
		t.Errorf("a reply leaked into Messages: %q on %q", m.Payload, m.Topic)
	default:
	}
}

// With nobody answering, ctx ends the request, and a reply that comes
// after that is dropped rather than delivered to Messages.
func TestRequestTimesOutAndDropsLateReply(t *testing.T) {
	b := mqtttest.StartBroker(t)
	c := fxNewClient(t, mqttas.Config{Server: b.Addr(), MQTTv5: true, ClientID: "lonely"})
	if err := c.Connect(fxCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	reqs := fxObserve(t, b, "svc/none")
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Request(short, "svc/none", []byte("x"), 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request with no responder = %v, want context.DeadlineExceeded", err)
	}
	// A late responder answers the request the broker saw.
	late := fxNextObserved(t, reqs, 2*time.Second)
	_ = late
	r := fxNewClient(t, mqttas.Config{Server: b.Addr(), MQTTv5: true, ClientID: "late"})
	if err := r.Connect(fxCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(fxCtx(t, 5*time.Second), "mqttas/response/lonely", []byte("too late"), 1, false,
		mqttas.WithProperties(&mqttas.Properties{CorrelationData: []byte("whatever")})); err != nil {
		t.Fatal(err)
	}
	// A round trip of the requester's own orders it after the late reply.
	if err := c.Subscribe(fxCtx(t, 5*time.Second), "sync/x", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(fxCtx(t, 5*time.Second), "sync/x", []byte("marker"), 1, false); err != nil {
		t.Fatal(err)
	}
	if m := fxRecv(t, c, 3*time.Second); m.Topic != "sync/x" {
		t.Errorf("got %q on %q before the marker: a late reply reached Messages", m.Payload, m.Topic)
	}
}

func TestRequestNeedsV5(t *testing.T) {
	b := mqtttest.StartBroker(t)
	c := fxNewClient(t, mqttas.Config{Server: b.Addr()})
	ctx := fxCtx(t, 5*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctx, "svc/x", nil, 1); err == nil || !strings.Contains(err.Error(), "MQTTv5") {
		t.Errorf("Request on 3.1.1 = %v, want an error naming MQTTv5", err)
	}
	if err := c.Respond(ctx, mqttas.Message{Topic: "svc/x"}, nil, 1); err == nil || !strings.Contains(err.Error(), "no Response Topic") {
		t.Errorf("Respond to a message without a response topic = %v", err)
	}
}

// v5Publishes records the PUBLISH packets that cross a proxy towards the
// broker, decoded as MQTT 5.0.
type v5Publishes struct {
	mu   sync.Mutex
	pubs []packet.Publish
}

func (w *v5Publishes) rule(h packet.FixedHeader, raw []byte) mqtttest.Action {
	if h.Type == packet.PUBLISH {
		var p packet.Publish
		if p.Decode(h.Flags, bytes.Clone(raw[len(raw)-h.RemainingLength:]), packet.V5) == nil {
			w.mu.Lock()
			w.pubs = append(w.pubs, p)
			w.mu.Unlock()
		}
	}
	return mqtttest.Forward()
}

func (w *v5Publishes) take() []packet.Publish {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pubs
	w.pubs = nil
	return p
}

func TestOutgoingTopicAliases(t *testing.T) {
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{Capabilities: func(c *mqtt.Capabilities) { c.TopicAliasMaximum = 1 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	px := mqtttest.StartProxy(t, b.Addr())
	var w v5Publishes
	px.Rule(mqtttest.ToBroker, w.rule)
	cfg := mqttas.Config{Server: px.Addr(), MQTTv5: true, TopicAliases: true, ReconnectMin: 10 * time.Millisecond}
	c := fxNewClient(t, cfg)
	ctx := fxCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Link().TopicAliasMaximum; got != 1 {
		t.Fatalf("Link().TopicAliasMaximum = %d, want the broker's 1", got)
	}
	const long, other = "site/building-7/floor-3/room-12/temperature", "site/other"
	obs := fxObserve(t, b, "site/#")
	publish := func(topics ...string) {
		t.Helper()
		for _, tp := range topics {
			if err := c.Publish(ctx, tp, []byte(tp), 1, false); err != nil {
				t.Fatal(err)
			}
			if m := fxNextObserved(t, obs, 2*time.Second); m.Topic != tp || string(m.Payload) != tp {
				t.Fatalf("broker got %q on %q, want it on %q", m.Payload, m.Topic, tp)
			}
		}
	}
	check := func(when string, want []string) {
		t.Helper()
		pubs := w.take()
		var got []string
		for _, p := range pubs {
			got = append(got, fmt.Sprintf("%s/%d", p.Topic, p.Properties.TopicAlias))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: PUBLISHes on the wire (topic/alias) %q, want %q", when, got, want)
		}
	}
	publish(long, long, other, long)
	// The first use defines alias 1; later ones send only the alias. The
	// broker allows one alias, so the other topic goes out in full.
	check("first connection", []string{long + "/1", "/1", other + "/0", "/1"})

	px.Reset()
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 3*time.Second)
	publish(long, long)
	check("after a reconnect", []string{long + "/1", "/1"})
}

func TestTopicAliasesNeedV5(t *testing.T) {
	if _, err := mqttas.New(mqttas.Config{Server: "b", TopicAliases: true}); err == nil || !strings.Contains(err.Error(), "MQTTv5") {
		t.Errorf("TopicAliases on 3.1.1: %v, want an error naming MQTTv5", err)
	}
}

// mochi-mqtt acknowledges a QoS 1 or 2 PUBLISH that carries user
// properties with reason code 0x01 or 0x02 ("granted QoS"), which MQTT 5.0
// does not list for PUBACK and PUBREC. The meaning is success; the client
// takes it as such rather than dropping the link over it again and again.
func TestUnlistedSuccessCodeAccepted(t *testing.T) {
	b := mqtttest.StartBroker(t)
	c := fxNewClient(t, mqttas.Config{Server: b.Addr(), MQTTv5: true})
	ctx := fxCtx(t, 5*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	props := mqttas.WithProperties(&mqttas.Properties{User: []mqttas.UserProperty{{Key: "k", Value: "v"}}})
	for qos := byte(1); qos <= 2; qos++ {
		if err := c.Publish(ctx, "lenient/t", []byte("x"), qos, false, props); err != nil {
			t.Errorf("QoS %d publish with user properties: %v", qos, err)
		}
	}
	if st := c.Stats(); st.Outages != 0 {
		t.Errorf("stats %+v: the acknowledgements cost the link", st)
	}
}
