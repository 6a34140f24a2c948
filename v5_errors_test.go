package mqttas_test

// MQTT 5.0 reason codes as errors: refused publishes, subscriptions,
// unsubscriptions and connections, the success codes that are not errors,
// a broker's DISCONNECT with a reason, and the refusals after which the
// client stops trying (banned, session taken over).

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// TestV5RefusedByACL: mochi refuses a QoS 1 or 2 publish it does not allow
// with PUBACK or PUBREC 0x87, and a subscription with SUBACK 0x87: each is
// an *AckError matching ErrNotAuthorized, and the link stays up. An
// UNSUBSCRIBE of a filter never subscribed to draws 0x11, which is not an
// error.
func TestV5RefusedByACL(t *testing.T) {
	mb := startMochi(t, mochiOpts{acl: func(topic string, _ bool) bool { return !strings.HasPrefix(topic, "v5/deny") }})
	c := v5Connect(t, mb.addr, mqttas.Config{})
	ctx := fxCtx(t, 10*time.Second)
	for _, qos := range []byte{1, 2} {
		err := c.Publish(ctx, "v5/deny/p", []byte("x"), qos, false)
		var ae *mqttas.AckError
		if !errors.As(err, &ae) || ae.Op != "publish" || ae.Target != "v5/deny/p" || ae.Code != packet.NotAuthorized || ae.Reason == "" {
			t.Errorf("QoS %d Publish refused by the ACL: %#v, want *AckError publish v5/deny/p 0x87 with mochi's reason string", qos, err)
		}
		if !errors.Is(err, mqttas.ErrNotAuthorized) || !errors.Is(err, mqttas.ErrRefused) {
			t.Errorf("QoS %d: %v does not match ErrNotAuthorized and ErrRefused", qos, err)
		}
	}
	err := c.Subscribe(ctx, "v5/deny/s", 1)
	var ae *mqttas.AckError
	if !errors.As(err, &ae) || ae.Op != "subscribe" || ae.Target != "v5/deny/s" || !errors.Is(err, mqttas.ErrNotAuthorized) {
		t.Errorf("Subscribe refused by the ACL: %v, want *AckError subscribe matching ErrNotAuthorized", err)
	}
	if err := c.Unsubscribe(ctx, "v5/never"); err != nil {
		t.Errorf("Unsubscribe of a filter never subscribed to (0x11): %v", err)
	}
	if st := c.Stats(); st.Outages != 0 || st.InFlight != 0 || !c.IsConnected() {
		t.Errorf("after the refusals: stats %+v, connected %v", st, c.IsConnected())
	}
	fxRoundTrip(t, c, "v5/ok")
}

// v5CodeBroker answers each PUBLISH and UNSUBSCRIBE with the reason code
// its topic or filter names ("rc/16" draws 0x10), with a reason string for
// failures.
func v5CodeBroker(fc *v5Conn) {
	if _, err := fc.accept(nil); err != nil {
		return
	}
	code := func(topic string) (packet.ReasonCode, packet.Properties) {
		n, _ := strconv.Atoi(strings.TrimPrefix(topic, "rc/"))
		var props packet.Properties
		if n >= 0x80 {
			props.ReasonString = "refused " + topic
		}
		return packet.ReasonCode(n), props
	}
	for {
		p, err := fc.next()
		if err != nil {
			return
		}
		var reply packet.Packet
		switch p := p.(type) {
		case *packet.Publish:
			rc, props := code(p.Topic)
			reply = &packet.Puback{PacketID: p.PacketID, ReasonCode: rc, Properties: props}
			if p.QoS == 2 {
				reply = &packet.Pubrec{PacketID: p.PacketID, ReasonCode: rc, Properties: props}
			}
		case *packet.Unsubscribe:
			rc, props := code(p.Filters[0])
			reply = &packet.Unsuback{PacketID: p.PacketID, ReasonCodes: []packet.ReasonCode{rc}, Properties: props}
		default:
			if !fc.answer(p) {
				return
			}
			continue
		}
		if fc.send(reply) != nil {
			return
		}
	}
}

// TestV5AckReasonCodes: PUBACK and PUBREC 0x10 (no matching subscribers)
// and UNSUBACK 0x11 (no subscription existed) are successes; failure codes
// are *AckErrors carrying the code, the reason string and the sentinel.
func TestV5AckReasonCodes(t *testing.T) {
	f := v5StartFake(t, v5CodeBroker)
	c := v5Connect(t, f.addr(), mqttas.Config{})
	ctx := fxCtx(t, 10*time.Second)
	for _, qos := range []byte{1, 2} {
		if err := c.Publish(ctx, "rc/16", []byte("x"), qos, false); err != nil {
			t.Errorf("QoS %d PUBACK/PUBREC 0x10: %v, want success", qos, err)
		}
	}
	if err := c.Unsubscribe(ctx, "rc/17"); err != nil {
		t.Errorf("UNSUBACK 0x11: %v, want success", err)
	}
	for _, tc := range []struct {
		op       string
		code     packet.ReasonCode
		sentinel error
	}{
		{"publish", packet.QuotaExceeded, mqttas.ErrQuotaExceeded},
		{"publish", packet.PayloadFormatInvalid, mqttas.ErrPayloadFormatInvalid},
		{"publish", packet.TopicNameInvalid, mqttas.ErrTopicNameInvalid},
		{"publish", packet.UnspecifiedError, mqttas.ErrRefused},
		{"unsubscribe", packet.NotAuthorized, mqttas.ErrNotAuthorized},
	} {
		target := "rc/" + strconv.Itoa(int(tc.code))
		var err error
		if tc.op == "publish" {
			err = c.Publish(ctx, target, []byte("x"), 1, false)
		} else {
			err = c.Unsubscribe(ctx, target)
		}
		var ae *mqttas.AckError
		if !errors.As(err, &ae) || ae.Op != tc.op || ae.Target != target || ae.Code != tc.code || ae.Reason != "refused "+target {
			t.Errorf("%s %s: %#v, want *AckError %s %s code %v with its reason string", tc.op, target, err, tc.op, target, tc.code)
		}
		if !errors.Is(err, tc.sentinel) || !errors.Is(err, mqttas.ErrRefused) {
			t.Errorf("%s %s: %v does not match %v and ErrRefused", tc.op, target, err, tc.sentinel)
		}
	}
	if st := c.Stats(); st.Outages != 0 || st.InFlight != 0 {
		t.Errorf("stats %+v: the codes cost the link or left messages in flight", st)
	}
}

// TestV5ConnectRefused: a refusing CONNACK is a *ConnectError with the
// 5.0 code, the Reason String and the Server Reference.
func TestV5ConnectRefused(t *testing.T) {
	for _, tc := range []struct {
		code     packet.ReasonCode
		ref      string
		sentinel error
	}{
		{packet.NotAuthorized, "", mqttas.ErrNotAuthorized},
		{packet.UseAnotherServer, "other.example:1883", mqttas.ErrUseAnotherServer},
		{packet.Banned, "", mqttas.ErrBanned},
	} {
		f := v5StartFake(t, func(fc *v5Conn) {
			ack := &packet.Connack{ReasonCode: tc.code}
			ack.Properties.ReasonString, ack.Properties.ServerReference = "go away", tc.ref
			fc.accept(ack)
		})
		c := fxNewClient(t, mqttas.Config{Server: f.addr(), MQTTv5: true, ResponseTime: 2 * time.Second})
		err := c.Connect(fxCtx(t, 5*time.Second))
		var ce *mqttas.ConnectError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason != "go away" || ce.ServerReference != tc.ref {
			t.Errorf("CONNACK %v: %#v, want *ConnectError with code, reason string and server reference %q", tc.code, err, tc.ref)
		}
		if !errors.Is(err, tc.sentinel) || !errors.Is(err, mqttas.ErrRefused) {
			t.Errorf("CONNACK %v: %v does not match %v and ErrRefused", tc.code, err, tc.sentinel)
		}
	}
}

// v5WaitClosed waits until c has closed itself: Messages, Up and Down
// closed, calls returning ErrClosed.
func v5WaitClosed(t *testing.T, c *mqttas.Client) {
	t.Helper()
	ctx := fxCtx(t, 5*time.Second)
	for open := true; open; {
		select {
		case _, open = <-c.Messages():
		case <-ctx.Done():
			t.Fatalf("the client did not close itself (stats %+v, last error %v)", c.Stats(), c.LastError())
		}
	}
	for range c.Up() {
	}
	for range c.Down() {
	}
	if err := c.Publish(ctx, "t", nil, 0, false); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Publish after the client closed itself: %v, want ErrClosed", err)
	}
}

// TestV5RefusedForGoodOnReconnect: a broker that answers a reconnect with
// Banned or Bad Authentication Method will not take the client back: it
// closes itself after that one attempt, with the refusal as LastError.
func TestV5RefusedForGoodOnReconnect(t *testing.T) {
	for _, code := range []packet.ReasonCode{packet.Banned, packet.BadAuthenticationMethod} {
		f := v5StartFake(t, func(fc *v5Conn) {
			if fc.k > 0 {
				fc.accept(&packet.Connack{ReasonCode: code})
				return
			}
			fc.awaitGo(nil) // and drop the link
		})
		c := v5Connect(t, f.addr(), mqttas.Config{})
		if err := c.Publish(fxCtx(t, 5*time.Second), "go", []byte("go"), 0, false); err != nil {
			t.Fatal(err)
		}
		v5WaitClosed(t, c)
		var ce *mqttas.ConnectError
		if err := c.LastError(); !errors.As(err, &ce) || ce.Code != code {
			t.Errorf("%v: LastError() = %v, want the *ConnectError", code, err)
		}
		if n := f.accepted(); n != 2 {
			t.Errorf("%v: %d connections, want the first and one refused reconnect", code, n)
		}
	}
}

// TestV5ServerDisconnect: a broker's DISCONNECT 0x8B (shutting down) with
// a reason string ends the connection with a *DisconnectError as
// LastError, and the client reconnects; 0x9C (use another server) matches
// ErrUseAnotherServer and carries the Server Reference.
func TestV5ServerDisconnect(t *testing.T) {
	// The other server a Use Another Server points to.
	other := mqtttest.StartBroker(t)
	for _, tc := range []struct {
		code     packet.ReasonCode
		ref      string
		sentinel error
	}{
		{packet.ServerShuttingDown, "", nil},
		{packet.UseAnotherServer, other.Addr(), mqttas.ErrUseAnotherServer},
	} {
		f := v5StartFake(t, func(fc *v5Conn) {
			if !fc.awaitGo(nil) {
				return
			}
			if fc.k == 0 {
				d := &packet.Disconnect{ReasonCode: tc.code}
				d.Properties.ReasonString, d.Properties.ServerReference = "maintenance", tc.ref
				fc.send(d)
				return
			}
			fc.serveRest()
		})
		c := v5Connect(t, f.addr(), mqttas.Config{})
		ctx := fxCtx(t, 5*time.Second)
		if err := c.Publish(ctx, "go", []byte("go"), 0, false); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		err := c.LastError()
		var de *mqttas.DisconnectError
		if !errors.As(err, &de) || de.Code != tc.code || de.Reason != "maintenance" || de.ServerReference != tc.ref {
			t.Errorf("DISCONNECT %v: LastError() = %#v, want a *DisconnectError with its reason string and server reference", tc.code, err)
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("DISCONNECT %v: %v does not match %v", tc.code, err, tc.sentinel)
		}
		fxWaitUp(t, c, 3*time.Second)
		if err := c.Publish(ctx, "after", []byte("after"), 1, false); err != nil {
			t.Errorf("Publish after the reconnect: %v", err)
		}
		if st := c.Stats(); st.Outages != 1 || st.Reconnects != 1 {
			t.Errorf("stats %+v: want one outage and one reconnect", st)
		}
		// The reconnect went where the broker pointed: the other server.
		if want := tc.ref != ""; (other.Clients() == 1) != want {
			t.Errorf("DISCONNECT %v with reference %q: the other server has %d clients", tc.code, tc.ref, other.Clients())
		}
		c.Close()
	}
}

// TestV5SessionTakenOver: a second client connecting with the same client
// identifier takes the session over; mochi tells the first with DISCONNECT
// 0x8E. Reconnecting would start a takeover war between the two, so the
// first closes itself, with the DISCONNECT as LastError, and the second
// stays connected: the broker sees two connects in all.
func TestV5SessionTakenOver(t *testing.T) {
	mb := startMochi(t, mochiOpts{})
	first := v5Connect(t, mb.addr, mqttas.Config{ClientID: "twin"})
	second := v5Connect(t, mb.addr, mqttas.Config{ClientID: "twin"})
	v5WaitClosed(t, first)
	var de *mqttas.DisconnectError
	if err := first.LastError(); !errors.As(err, &de) || de.Code != packet.SessionTakenOver {
		t.Errorf("first client's LastError() = %v, want a *DisconnectError Session Taken Over", err)
	}
	fxRoundTrip(t, second, "v5/twin")
	if st := second.Stats(); st.Outages != 0 || !second.IsConnected() {
		t.Errorf("second client: stats %+v, connected %v", st, second.IsConnected())
	}
	if n := countEvents(mb.hook.snapshot(), "connect", "twin"); n != 2 {
		t.Errorf("broker saw %d connects of twin, want 2: no takeover war", n)
	}
}

// TestV5ConnectRetryStopsWhenBanned: with ConnectRetry, Connect keeps
// trying through failures, but a broker that has banned the client will
// not change its mind (ErrBanned: "the client does not reconnect after
// it"): Connect returns the refusal after the one attempt instead of
// hammering the broker until ctx ends.
func TestV5ConnectRetryStopsWhenBanned(t *testing.T) {
	f := v5StartFake(t, func(fc *v5Conn) { fc.accept(&packet.Connack{ReasonCode: packet.Banned}) })
	c := fxNewClient(t, mqttas.Config{Server: f.addr(), MQTTv5: true, ConnectRetry: true,
		ReconnectMin: fxReconnectMin, ReconnectMax: fxReconnectMax})
	err := c.Connect(fxCtx(t, 2*time.Second))
	if !errors.Is(err, mqttas.ErrBanned) {
		t.Errorf("Connect: %v, want ErrBanned", err)
	}
	if n := f.accepted(); n != 1 {
		t.Errorf("%d connection attempts, want 1: a banned client keeps retrying", n)
	}
}
