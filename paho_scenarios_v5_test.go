package mqttas_test

// The MQTT 5.0 Paho client scenarios, against mochi and mosquitto:
// TestPaho5/<broker>/<scenario>. This file holds the message and
// subscription scenarios; paho_scenarios_v5_limits_test.go the topic
// alias, the limits, wills and sessions.

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

func TestPaho5(t *testing.T) {
	runPaho(t, []pahoScenario{
		{"user_properties", paho5UserProperties},
		{"payload_format", paho5PayloadFormat},
		{"publication_expiry", paho5PublicationExpiry},
		{"subscribe_options", paho5SubscribeOptions},
		{"assigned_clientid", paho5AssignedClientID},
		{"subscription_identifiers", paho5SubscriptionIDs},
		{"request_response", paho5RequestResponse},
		{"client_topic_alias", paho5ClientTopicAlias},
		{"maximum_packet_size", paho5MaximumPacketSize},
		{"server_keepalive", paho5ServerKeepAlive},
		{"flow_control", paho5FlowControl},
		{"will_delay", paho5WillDelay},
		{"shared_subscriptions", paho5SharedSubscriptions},
		{"session_expiry", paho5SessionExpiry},
	})
}

// pahoLetTimePass waits d. Only for scenarios whose subject is a broker
// timer (an expiry, a delay): there is nothing to synchronise on, time
// itself has to pass.
func pahoLetTimePass(d time.Duration) { <-time.After(d) }

// user properties: repeated names and their order survive the trip
// through the broker at every QoS.
func paho5UserProperties(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	c := pahoConnect(t, pahoConfig(t, bk.start(t, pahoOpts{}), "userprops", true))
	pahoSub(t, c, f.topics[0], 2)
	user := []mqttas.UserProperty{{Key: "a", Value: "2"}, {Key: "c", Value: "3"}, {Key: "a", Value: "1"}}
	for qos := range byte(3) {
		pahoPub(t, c, f.topics[0], "props", qos, false, mqttas.WithProperties(&mqttas.Properties{User: user}))
	}
	for range 3 {
		if m := pahoRecv(t, c); m.Properties == nil || !slices.Equal(m.Properties.User, user) {
			t.Fatalf("QoS %d message properties %+v, want user %v", m.QoS, m.Properties, user)
		}
	}
}

// payload format + content type: the Payload Format Indicator (1, UTF-8)
// and the Content Type reach the subscriber as published.
func paho5PayloadFormat(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	c := pahoConnect(t, pahoConfig(t, bk.start(t, pahoOpts{}), "format", true))
	pahoSub(t, c, f.topics[0], 2)
	props := &mqttas.Properties{PayloadFormat: 1, ContentType: "text/plain; charset=utf-8"}
	pahoPub(t, c, f.topics[0], "héllo", 1, false, mqttas.WithProperties(props))
	m := pahoRecv(t, c)
	if m.Properties == nil || m.Properties.PayloadFormat != 1 || m.Properties.ContentType != props.ContentType {
		t.Fatalf("properties %+v, want payload format 1 and content type %q", m.Properties, props.ContentType)
	}
}

// publication expiry: of two messages queued for an offline session, the
// one whose Message Expiry (1 s) has passed is not delivered, and the
// other arrives with its expiry reduced by the time it waited.
func paho5PublicationExpiry(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{})
	cfg := pahoConfig(t, addr, "expiry", true)
	cfg.PersistentSession, cfg.SessionExpiry = true, time.Minute
	c := pahoConnect(t, cfg)
	pahoSub(t, c, f.wild[0], 2) // TopicA/+
	pahoSub(t, c, f.sentinel, 1)
	if err := c.Disconnect(fxCtx(t, pahoWait)); err != nil {
		t.Fatal(err)
	}
	pub := pahoConnect(t, pahoConfig(t, addr, "expiry-pub", true))
	pahoPub(t, pub, f.topics[1], "expires", 1, false, mqttas.WithProperties(&mqttas.Properties{MessageExpiry: 1}))
	pahoPub(t, pub, f.topics[3], "stays", 2, false, mqttas.WithProperties(&mqttas.Properties{MessageExpiry: 60}))
	pahoLetTimePass(2500 * time.Millisecond)
	cfg.ResumeOnStart = true
	c = pahoConnect(t, cfg)
	if !c.Link().SessionPresent {
		t.Fatal("session present 0 on return")
	}
	m := pahoRecv(t, c)
	if string(m.Payload) != "stays" {
		t.Fatalf("got %q, want only the unexpired message", m.Payload)
	}
	if e := m.Properties.MessageExpiry; e == 0 || e > 58 {
		t.Errorf("message expiry %d on delivery, want 60 less the 2.5 s it waited", e)
	}
	pahoBarrier(t, f, c, c)
	pahoEndSession(t, c, cfg)
}

// subscribe options: NoLocal keeps a client's own messages from it;
// RetainAsPublished keeps the retain flag of forwarded messages; Retain
// Handling 0 sends retained messages on every SUBSCRIBE, 1 only on a new
// subscription, 2 never.
func paho5SubscribeOptions(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{})
	c := pahoConnect(t, pahoConfig(t, addr, "subopts", true))
	pahoSub(t, c, f.sentinel, 1)

	pahoSub(t, c, f.topics[0], 2, mqttas.NoLocal())
	pahoPub(t, c, f.topics[0], "own message", 1, false)
	pahoBarrier(t, f, c, c) // the own message never came

	pahoSub(t, c, f.topics[1], 2, mqttas.RetainAsPublished())
	pahoSub(t, c, f.topics[3], 2)
	pahoPub(t, c, f.topics[1], "rap", 1, true)
	pahoPub(t, c, f.topics[3], "no rap", 1, true)
	if m := pahoRecv(t, c); m.Topic != f.topics[1] || !m.Retained {
		t.Fatalf("with RetainAsPublished got %q retained %v, want %q retained", m.Topic, m.Retained, f.topics[1])
	}
	if m := pahoRecv(t, c); m.Topic != f.topics[3] || m.Retained {
		t.Fatalf("without RetainAsPublished got %q retained %v, want %q not retained", m.Topic, m.Retained, f.topics[3])
	}

	retained := f.topics[2] // Topic/C
	pahoPub(t, c, retained, "retained", 1, true)
	// Retained messages drawn by a first and a second SUBSCRIBE, per
	// Retain Handling 0 (both), 1 (the first only), 2 (neither). They are
	// counted together, after a sentinel that follows both: mochi sends a
	// subscription's retained message after its SUBACK and off the
	// connection's packet order, so the first SUBSCRIBE's copy may arrive
	// after a sentinel sent between the two. The totals still tell the
	// three rules apart, since the first SUBSCRIBE of 0 and 1 always
	// draws one.
	for h, want := range []int{2, 1, 0} {
		rc := pahoConnect(t, pahoConfig(t, addr, fmt.Sprint("retain-handling-", h), true))
		pahoSub(t, rc, f.sentinel, 1)
		got := 0
		for range 2 {
			pahoSub(t, rc, retained, 1, mqttas.RetainHandling(byte(h)))
			got += len(pahoUntilSentinel(t, f, rc))
		}
		got += len(pahoUntilSentinel(t, f, rc))
		if got != want {
			t.Fatalf("Retain Handling %d, two SUBSCRIBEs: %d retained messages, want %d", h, got, want)
		}
	}
}

// assigned client id: a 5.0 CONNECT with an empty client identifier is
// accepted and the broker's Assigned Client Identifier is the one in use.
func paho5AssignedClientID(t *testing.T, bk pahoBroker) {
	c := pahoConnect(t, pahoConfig(t, bk.start(t, pahoOpts{}), "", true))
	l := c.Link()
	if l.ClientID == "" || l.Properties.AssignedClientID != l.ClientID {
		t.Fatalf("Link().ClientID %q, Assigned Client Identifier %q: want the broker's, non-empty", l.ClientID, l.Properties.AssignedClientID)
	}
}

// subscription identifiers: each message carries the identifiers of the
// subscriptions it matched. Where two overlap, the broker sends one copy
// with both identifiers or one copy per subscription with its own.
func paho5SubscriptionIDs(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	c := pahoConnect(t, pahoConfig(t, bk.start(t, pahoOpts{}), "subids", true))
	pahoSub(t, c, f.sentinel, 1)
	pahoSub(t, c, f.topics[0], 2, mqttas.SubscriptionID(456789))
	pahoSub(t, c, f.wild[0], 2, mqttas.SubscriptionID(2)) // TopicA/+
	pahoPub(t, c, f.topics[0], "one", 1, false)
	pahoPub(t, c, f.topics[1], "two", 1, false)
	for _, want := range []uint32{456789, 2} {
		if m := pahoRecv(t, c); m.Properties == nil || !slices.Equal(m.Properties.SubscriptionIDs, []uint32{want}) {
			t.Fatalf("%q: properties %+v, want subscription identifier %d", m.Topic, m.Properties, want)
		}
	}
	pahoSub(t, c, f.wild[6], 2, mqttas.SubscriptionID(3)) // TopicA/#, overlapping TopicA/+
	pahoPub(t, c, f.topics[3], "both", 1, false)
	var ids []uint32
	for _, m := range pahoUntilSentinel(t, f, c) {
		if m.Properties == nil || len(m.Properties.SubscriptionIDs) == 0 {
			t.Fatalf("%q without subscription identifiers", m.Topic)
		}
		ids = append(ids, m.Properties.SubscriptionIDs...)
	}
	if slices.Sort(ids); !slices.Equal(ids, []uint32{2, 3}) {
		t.Fatalf("overlapping subscriptions: identifiers %v, want 2 and 3", ids)
	}
}

// request/response: the request carries a Response Topic and Correlation
// Data; the response, published to that topic with that data, is
// matched to its request.
func paho5RequestResponse(t *testing.T, bk pahoBroker) {
	f := newPahoFix()
	addr := bk.start(t, pahoOpts{})
	responder := pahoConnect(t, pahoConfig(t, addr, "responder", true))
	pahoSub(t, responder, f.topics[0], 1)
	requester := pahoConnect(t, pahoConfig(t, addr, "requester", true))
	ctx := fxCtx(t, pahoWait)
	type reply struct {
		m   mqttas.Message
		err error
	}
	done := make(chan reply, 1)
	go func() {
		m, err := requester.Request(ctx, f.topics[0], []byte("question"), 1)
		done <- reply{m, err}
	}()
	req := pahoRecv(t, responder)
	if req.Properties == nil || req.Properties.ResponseTopic == "" || len(req.Properties.CorrelationData) == 0 {
		t.Fatalf("request properties %+v, want a response topic and correlation data", req.Properties)
	}
	if err := responder.Respond(ctx, req, []byte("answer"), 1); err != nil {
		t.Fatal(err)
	}
	var r reply
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("no reply")
	}
	if r.err != nil || string(r.m.Payload) != "answer" || r.m.Topic != req.Properties.ResponseTopic ||
		!bytes.Equal(r.m.Properties.CorrelationData, req.Properties.CorrelationData) {
		t.Fatalf("Request = %q on %q (%+v), %v; want the answer with the request's correlation data", r.m.Payload, r.m.Topic, r.m.Properties, r.err)
	}
}
