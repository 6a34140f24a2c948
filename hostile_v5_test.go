package mqttas_test

// Hostile MQTT 5.0 brokers beyond PUBLISH properties (those are in
// hostile_publish_test.go): AUTH without enhanced authentication, a
// DISCONNECT with a reason, CONNACKs that break 5.0's rules.

import (
	"errors"
	"testing"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// An AUTH on a live link of a client that never asked for enhanced
// authentication: a protocol error that ends the link.
func TestHostileV5AuthWithoutEnhancedAuth(t *testing.T) {
	auth := hbBytes(&packet.Auth{ReasonCode: packet.ContinueAuthentication,
		Properties: packet.Properties{AuthMethod: "SCRAM-SHA-1", AuthData: []byte("challenge")}}, packet.V5)
	_, err := hbInjectOutage(t, packet.V5, auth, nil)
	hbIs(t, err, nil, "unexpected AUTH")
}

// The same AUTH in place of the CONNACK: without Config.Auth the client
// does not enter an exchange it cannot finish; Connect fails at once.
func TestHostileV5AuthInsteadOfConnack(t *testing.T) {
	b := hbStart(t, packet.V5, func(hc *hbConn) {
		if _, err := hc.next(); err == nil {
			hc.send(&packet.Auth{ReasonCode: packet.ContinueAuthentication,
				Properties: packet.Properties{AuthMethod: "SCRAM-SHA-1"}})
			hc.next()
		}
	})
	hbIs(t, hbConnectErr(t, b, nil), nil, "expected CONNACK, got AUTH")
}

// A DISCONNECT with a reason code and a Reason String: LastError is a
// *DisconnectError carrying both, and the client reconnects.
func TestHostileV5DisconnectWithReason(t *testing.T) {
	d := hbBytes(&packet.Disconnect{ReasonCode: packet.ServerBusy,
		Properties: packet.Properties{ReasonString: "maintenance in 5 minutes"}}, packet.V5)
	_, err := hbInjectOutage(t, packet.V5, d, nil)
	var de *mqttas.DisconnectError
	if !errors.As(err, &de) || de.Code != packet.ServerBusy || de.Reason != "maintenance in 5 minutes" {
		t.Fatalf("LastError %v, want a *DisconnectError ServerBusy with the reason string", err)
	}
	hbIs(t, err, mqttas.ErrServerUnavailable, "maintenance in 5 minutes")
}

// A DISCONNECT that cannot be decoded (a reason code not valid for
// DISCONNECT) still ends the link, as a protocol violation.
func TestHostileV5DisconnectBadReasonCode(t *testing.T) {
	_, err := hbInjectOutage(t, packet.V5, hbFrame(0xe0, 0x01), nil) // 0x01: Granted QoS 1
	hbIs(t, err, packet.ErrProtocolViolation, "bad DISCONNECT")
}

// Session Taken Over: another client has the session. Reconnecting would
// start a takeover war, so the client records the reason, signals Down
// and closes itself (documented on LastError).
func TestHostileV5DisconnectSessionTakenOver(t *testing.T) {
	d := hbBytes(&packet.Disconnect{ReasonCode: packet.SessionTakenOver}, packet.V5)
	in := hbInject(t, packet.V5, d, false, nil)
	c := hbConnect(t, in.hbBroker, nil)
	close(in.fire)
	fxWaitDown(t, c.Client, hbWait)
	select {
	case _, ok := <-c.Up():
		if ok {
			t.Fatal("Up after Session Taken Over: the client reconnected")
		}
	case <-fxCtx(t, hbWait).Done():
		t.Fatal("the client did not close itself")
	}
	var de *mqttas.DisconnectError
	if err := c.LastError(); !errors.As(err, &de) || de.Code != packet.SessionTakenOver {
		t.Fatalf("LastError %v, want Session Taken Over", err)
	}
	hbIs(t, c.Publish(fxCtx(t, hbWait), "t", nil, 0, false), mqttas.ErrClosed)
	if n := in.accepted(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// CONNACKs that break MQTT 5.0's rules: Connect fails with the decoder's
// error, without waiting.
func TestHostileV5BadConnack(t *testing.T) {
	props := func(p ...byte) []byte { return hbFrame(0x20, append([]byte{0, 0, byte(len(p))}, p...)...) }
	cases := []struct {
		name   string
		bytes  []byte
		target error
		says   string
	}{
		{"ReceiveMaximum0", props(0x21, 0, 0), packet.ErrProtocolViolation, "must not be 0"},
		{"MaximumPacketSize0", props(0x27, 0, 0, 0, 0), packet.ErrProtocolViolation, "must not be 0"},
		{"MaximumQoS2", props(0x24, 2), packet.ErrProtocolViolation, "must be 0 or 1"},
		{"DuplicateReceiveMaximum", props(0x21, 0, 5, 0x21, 0, 6), packet.ErrProtocolViolation, "included more than once"},
		{"TopicAliasInConnack", props(0x23, 0, 1), packet.ErrMalformed, "not valid in this packet"},
		{"UnknownProperty", props(0x04, 0), packet.ErrMalformed, "unknown property identifier"},
		{"ReasonCodeNotForConnack", hbFrame(0x20, 0, 0x04, 0), packet.ErrProtocolViolation, "not valid in CONNACK"},
		{"NoPropertyLength", hbFrame(0x20, 0, 0), packet.ErrMalformed, "CONNACK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := hbStart(t, packet.V5, func(hc *hbConn) {
				if _, err := hc.next(); err == nil {
					hc.raw(tc.bytes)
					hc.next()
				}
			})
			hbIs(t, hbConnectErr(t, b, nil), tc.target, "bad CONNACK", tc.says)
		})
	}
}

// A 5.0 CONNACK refusal with a Reason String: a *ConnectError carrying it.
func TestHostileV5ConnackRefusalWithReason(t *testing.T) {
	b := hbStart(t, packet.V5, func(hc *hbConn) {
		hc.accept(&packet.Connack{ReasonCode: packet.NotAuthorized,
			Properties: packet.Properties{ReasonString: "go away"}})
	})
	err := hbConnectErr(t, b, nil)
	var ce *mqttas.ConnectError
	if !errors.As(err, &ce) || ce.Code != packet.NotAuthorized || ce.Reason != "go away" {
		t.Fatalf("Connect: %v, want a *ConnectError NotAuthorized with the reason", err)
	}
	hbIs(t, err, mqttas.ErrNotAuthorized)
}
