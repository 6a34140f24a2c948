package mqttas_test

// MQTT 5.0 enhanced authentication (AUTH), against a scripted broker that
// runs a challenge/response exchange at connect and at re-authentication.

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// authPeer is a scripted MQTT 5.0 broker for one connection. Each step
// reads one packet and checks it, or writes one.
type authPeer struct {
	t  *testing.T
	nc net.Conn
	rd *packet.Reader
}

func (p *authPeer) failf(format string, a ...any) {
	p.t.Errorf("scripted broker: "+format, a...)
}

func (p *authPeer) send(pk packet.Packet) {
	b, err := pk.AppendTo(nil, packet.V5)
	if err == nil {
		_, err = p.nc.Write(b)
	}
	if err != nil {
		p.failf("write %v: %v", pk.Type(), err)
	}
}

func (p *authPeer) read() packet.Packet {
	pk, err := p.rd.ReadPacket()
	if err != nil {
		p.failf("read: %v", err)
		return nil
	}
	return pk
}

// expectAuth reads an AUTH with code and data.
func (p *authPeer) expectAuth(code packet.ReasonCode, data string) {
	a, ok := p.read().(*packet.Auth)
	if !ok || a.ReasonCode != code || a.Properties.AuthMethod != "TEST" || string(a.Properties.AuthData) != data {
		p.failf("got %+v, want AUTH %v method TEST data %q", a, code, data)
	}
}

func authStep(code packet.ReasonCode, data string) *packet.Auth {
	return &packet.Auth{ReasonCode: code, Properties: packet.Properties{AuthMethod: "TEST", AuthData: []byte(data)}}
}

// startAuthPeer listens on loopback and runs script on the first
// connection; it returns the address and a wait for the script's end.
func startAuthPeer(t *testing.T, script func(p *authPeer)) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		p := &authPeer{t: t, nc: nc, rd: packet.NewReader(nc, 1<<16)}
		p.rd.SetVersion(packet.V5)
		script(p)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), func() { <-done }
}

// challengeAuth answers "challenge…" with "response:challenge…" and
// accepts final data starting with "final"; anything else is refused.
func challengeAuth(verified *[]string) mqttas.AuthFunc {
	var mu sync.Mutex
	return func(_ context.Context, method string, data []byte) ([]byte, error) {
		switch s := string(data); {
		case method != "TEST":
			return nil, errors.New("wrong method " + method)
		case data == nil:
			return []byte("hello"), nil
		case strings.HasPrefix(s, "challenge"):
			return []byte("response:" + s), nil
		case strings.HasPrefix(s, "final"):
			mu.Lock()
			*verified = append(*verified, s)
			mu.Unlock()
			return nil, nil
		default:
			return nil, errors.New("the broker's final data " + s + " does not verify")
		}
	}
}

func TestEnhancedAuthAndReauthentication(t *testing.T) {
	addr, wait := startAuthPeer(t, func(p *authPeer) {
		c, ok := p.read().(*packet.Connect)
		if !ok || c.Properties.AuthMethod != "TEST" || string(c.Properties.AuthData) != "hello" {
			p.failf("CONNECT %+v, want method TEST and data hello", c)
			return
		}
		p.send(authStep(packet.ContinueAuthentication, "challenge1"))
		p.expectAuth(packet.ContinueAuthentication, "response:challenge1")
		p.send(&packet.Connack{Properties: packet.Properties{AuthMethod: "TEST", AuthData: []byte("final1")}})
		// Re-authentication, started by the client.
		p.expectAuth(packet.ReAuthenticate, "hello")
		p.send(authStep(packet.ContinueAuthentication, "challenge2"))
		p.expectAuth(packet.ContinueAuthentication, "response:challenge2")
		p.send(authStep(packet.Success, "final2"))
		if _, ok := p.read().(*packet.Disconnect); !ok {
			p.failf("want the client's DISCONNECT at the end")
		}
	})
	var verified []string
	c := fxNewClient(t, mqttas.Config{Server: addr, MQTTv5: true, AuthMethod: "TEST", Auth: challengeAuth(&verified)})
	ctx := fxCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect with enhanced authentication: %v", err)
	}
	if err := c.Reauthenticate(ctx); err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	wait()
	if strings.Join(verified, ",") != "final1,final2" {
		t.Errorf("the client verified %q, want the broker's final data of both exchanges", verified)
	}
}

// The broker's final data does not verify: the client refuses the
// connection even though the broker accepted it.
func TestEnhancedAuthRejectsBroker(t *testing.T) {
	addr, wait := startAuthPeer(t, func(p *authPeer) {
		p.read() // CONNECT
		p.send(&packet.Connack{Properties: packet.Properties{AuthMethod: "TEST", AuthData: []byte("forged")}})
		p.rd.Next() // the client hangs up
	})
	var verified []string
	c := fxNewClient(t, mqttas.Config{Server: addr, MQTTv5: true, AuthMethod: "TEST", Auth: challengeAuth(&verified)})
	err := c.Connect(fxCtx(t, 5*time.Second))
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("Connect to a broker whose final data does not verify = %v", err)
	}
	wait()
}

func TestEnhancedAuthConfig(t *testing.T) {
	auth := func(context.Context, string, []byte) ([]byte, error) { return nil, nil }
	for _, tc := range []struct {
		cfg  mqttas.Config
		want string
	}{
		{mqttas.Config{Server: "b", MQTTv5: true, AuthMethod: "X"}, "go together"},
		{mqttas.Config{Server: "b", MQTTv5: true, Auth: auth}, "go together"},
		{mqttas.Config{Server: "b", AuthMethod: "X", Auth: auth}, "MQTTv5"},
	} {
		if _, err := mqttas.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, fxCtx(t, 5*time.Second), b, mqttas.Config{})
	if err := c.Reauthenticate(fxCtx(t, time.Second)); err == nil || !strings.Contains(err.Error(), "Config.Auth") {
		t.Errorf("Reauthenticate without Auth = %v", err)
	}
}
