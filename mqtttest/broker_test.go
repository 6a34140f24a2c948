package mqtttest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mqttas/mqttas/packet"
)

func TestBrokerPublishSubscribe(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b := StartBroker(t)
		ctx := testCtx(t)
		obs, err := b.Subscribe("a/#")
		if err != nil {
			t.Fatal(err)
		}

		c, _ := connectRaw(t, b.Addr(), v, "pubsub", true)
		if n := b.Clients(); n != 1 {
			t.Fatalf("Clients() = %d, want 1", n)
		}
		c.subscribe("a/#", 1)

		// Broker to client.
		if err := b.Publish("a/1", []byte("down"), 1, false); err != nil {
			t.Fatal(err)
		}
		pub := c.recvPublish()
		if pub.Topic != "a/1" || string(pub.Payload) != "down" || pub.QoS != 1 {
			t.Fatalf("got %+v", pub)
		}
		c.send(&packet.Puback{PacketID: pub.PacketID})

		// Client to broker, seen by the observer with the client's id.
		c.send(&packet.Publish{Topic: "a/2", QoS: 1, PacketID: 9, Payload: []byte("up")})
		if ack, ok := c.recv().(*packet.Puback); !ok || ack.PacketID != 9 {
			t.Fatalf("want PUBACK 9, got %+v", ack)
		}
		for _, want := range []Received{
			{Topic: "a/1", Payload: []byte("down"), QoS: 1},
			{Topic: "a/2", Payload: []byte("up"), QoS: 1, ClientID: "pubsub"},
		} {
			got, err := obs.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("observer got %+v, want %+v", got, want)
			}
		}
	})
}

// A persistent session survives Stop and Start: the message the client had
// not acknowledged and the one published while it was away both arrive
// after it reconnects with session present.
func TestBrokerStopStartResumesSession(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b := StartBroker(t)
		addr := b.Addr()
		c, ack := connectRaw(t, addr, v, "persist", false)
		if ack.SessionPresent {
			t.Fatal("session present on first connect")
		}
		c.subscribe("s/#", 1)
		if err := b.Publish("s/1", []byte("unacked"), 1, false); err != nil {
			t.Fatal(err)
		}
		c.recvPublish() // and never acknowledge it

		if err := b.Stop(); err != nil {
			t.Fatal(err)
		}
		if n := b.Clients(); n != 0 {
			t.Fatalf("Clients() after Stop = %d", n)
		}
		if err := c.expectEnd(); !errors.Is(err, io.EOF) {
			t.Fatalf("client saw %v, want EOF", err)
		}
		if conn, err := net.Dial("tcp", addr); err == nil {
			_ = conn.Close()
			t.Fatal("stopped broker accepts connections")
		}
		if err := b.Stop(); err != nil {
			t.Fatal("second Stop:", err)
		}

		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if b.Addr() != addr {
			t.Fatalf("address moved from %s to %s", addr, b.Addr())
		}
		if err := b.Publish("s/2", []byte("queued"), 1, false); err != nil {
			t.Fatal(err)
		}
		c2, ack := connectRaw(t, addr, v, "persist", false)
		if !ack.SessionPresent {
			t.Fatal("session not present after Start")
		}
		// mochi resends stored messages sorted by creation time in whole
		// seconds, so these two may come in either order.
		got := map[string]bool{}
		for range 2 {
			pub := c2.recvPublish()
			if pub.QoS != 1 {
				t.Fatalf("%q at QoS %d", pub.Payload, pub.QoS)
			}
			// mochi resends every stored message with DUP set, even one
			// it never sent before (MQTT-3.3.1-1 wants DUP 0 then).
			if !pub.Dup {
				t.Errorf("%q: DUP 0; mochi v2.7.9 sets it", pub.Payload)
			}
			got[string(pub.Payload)] = true
			c2.send(&packet.Puback{PacketID: pub.PacketID})
		}
		if !got["unacked"] || !got["queued"] {
			t.Fatalf("got %v, want unacked and queued", got)
		}
	})
}

// Restart(false) forgets sessions, subscriptions and retained messages.
func TestBrokerRestartWithoutSessions(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b := StartBroker(t)
		ctx := testCtx(t)
		c, _ := connectRaw(t, b.Addr(), v, "forgetful", false)
		c.subscribe("s/#", 1)
		if err := b.Publish("keep/1", []byte("old"), 0, true); err != nil {
			t.Fatal(err)
		}

		if err := b.Restart(false); err != nil {
			t.Fatal(err)
		}
		if err := c.expectEnd(); !errors.Is(err, io.EOF) {
			t.Fatalf("client saw %v, want EOF", err)
		}
		if err := b.Publish("s/1", []byte("lost"), 1, false); err != nil {
			t.Fatal(err)
		}
		c2, ack := connectRaw(t, b.Addr(), v, "forgetful", false)
		if ack.SessionPresent {
			t.Fatal("session survived Restart(false)")
		}
		// Had the old subscription survived, "lost" would come first.
		c2.subscribe("x", 1)
		if err := b.Publish("x", []byte("new"), 1, false); err != nil {
			t.Fatal(err)
		}
		if pub := c2.recvPublish(); pub.Topic != "x" {
			t.Fatalf("got %q on %s", pub.Payload, pub.Topic)
		}

		// Retained messages are gone too: an observer's first message is
		// the one published after it subscribed.
		obs, err := b.Subscribe("keep/#")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish("keep/2", []byte("fresh"), 0, false); err != nil {
			t.Fatal(err)
		}
		if r, err := obs.Next(ctx); err != nil || string(r.Payload) != "fresh" {
			t.Fatalf("got %+v, %v", r, err)
		}
	})
}

// DropPubacks loses the PUBLISH: no PUBACK, no delivery. The republish is
// acknowledged and delivered once.
func TestBrokerDropPubacks(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b := StartBroker(t)
		ctx := testCtx(t)
		obs, err := b.Subscribe("d")
		if err != nil {
			t.Fatal(err)
		}
		c, _ := connectRaw(t, b.Addr(), v, "dropper", true)
		b.DropPubacks(1)

		pub := &packet.Publish{Topic: "d", QoS: 1, PacketID: 1, Payload: []byte("one")}
		c.send(pub)
		// mochi answers packets of a connection in order, so a PINGRESP
		// before any PUBACK proves the PUBACK is not coming.
		c.send(&packet.Pingreq{})
		if p := c.recv(); p.Type() != packet.PINGRESP {
			t.Fatalf("got %v, want PINGRESP", p.Type())
		}

		pub.Dup = true
		c.send(pub)
		if ack, ok := c.recv().(*packet.Puback); !ok || ack.PacketID != 1 {
			t.Fatalf("republish: want PUBACK 1, got %+v", ack)
		}
		c.send(&packet.Publish{Topic: "d", QoS: 1, PacketID: 2, Payload: []byte("two")})
		c.recv()
		for _, want := range []string{"one", "two"} {
			r, err := obs.Next(ctx)
			if err != nil || string(r.Payload) != want {
				t.Fatalf("observer got %+v, %v; want %q", r, err, want)
			}
		}
	})
}

func TestBrokerUsers(t *testing.T) {
	b, err := NewBroker(BrokerOptions{Users: map[string]string{"alice": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		v        packet.Version
		user, pw string
		want     packet.ReasonCode
	}{
		{packet.V311, "alice", "secret", 0},
		{packet.V5, "alice", "secret", 0},
		{packet.V311, "alice", "wrong", packet.ReasonCode(packet.RefusedNotAuthorized)},
		{packet.V5, "alice", "wrong", packet.BadUserNameOrPassword},
		{packet.V311, "", "", packet.ReasonCode(packet.RefusedNotAuthorized)},
		{packet.V5, "mallory", "secret", packet.BadUserNameOrPassword},
	} {
		t.Run(fmt.Sprintf("v%v/%s:%s", tc.v, tc.user, tc.pw), func(t *testing.T) {
			c := dialRaw(t, b.Addr(), tc.v)
			ack := c.connect(&packet.Connect{ClientID: "u", CleanStart: true, Username: tc.user, Password: []byte(tc.pw)})
			if ack.ReasonCode != tc.want {
				t.Fatalf("CONNACK %#x, want %#x", byte(ack.ReasonCode), byte(tc.want))
			}
		})
	}
}

func TestBrokerClose(t *testing.T) {
	b, err := NewBroker(BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connectRaw(t, b.Addr(), packet.V311, "closer", true)
	obs, err := b.Subscribe("#")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := c.expectEnd(); !errors.Is(err, io.EOF) {
		t.Fatalf("client saw %v, want EOF", err)
	}
	if _, ok := <-obs.C(); ok {
		t.Fatal("Subscription open after Close")
	}
	for name, err := range map[string]error{
		"Start":   b.Start(),
		"Stop":    b.Stop(),
		"Restart": b.Restart(true),
		"Publish": b.Publish("t", nil, 0, false),
	} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := b.Subscribe("t"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

// Session takeover as mochi does it: the old connection is sent a
// DISCONNECT (0x8E, session taken over) even under MQTT 3.1.1, which has
// no server DISCONNECT, and is then closed.
func TestBrokerTakeover(t *testing.T) {
	versions(t, func(t *testing.T, v packet.Version) {
		b := StartBroker(t)
		old, _ := connectRaw(t, b.Addr(), v, "twin", false)
		_, ack := connectRaw(t, b.Addr(), v, "twin", false)
		if !ack.SessionPresent {
			t.Fatal("takeover without session present")
		}
		p, err := old.read(5 * time.Second)
		if err != nil {
			t.Fatalf("old connection: %v before any DISCONNECT", err)
		}
		d, ok := p.(*packet.Disconnect)
		if !ok {
			t.Fatalf("old connection got %v", p.Type())
		}
		if v == packet.V5 && d.ReasonCode != packet.SessionTakenOver {
			t.Fatalf("DISCONNECT %#x", byte(d.ReasonCode))
		}
		if err := old.expectEnd(); !errors.Is(err, io.EOF) {
			t.Fatalf("old connection ended with %v", err)
		}
	})
}

// Stop is a crash: the wills of the clients it cuts off are not published.
// A client that vanishes by itself still gets its will sent.
func TestBrokerStopPublishesNoWill(t *testing.T) {
	b := StartBroker(t)
	ctx := testCtx(t)
	obs, err := b.Subscribe("will/#")
	if err != nil {
		t.Fatal(err)
	}
	will := func(id string) *packet.Connect {
		return &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
			Will: &packet.Will{Topic: "will/" + id, Payload: []byte("gone")}}
	}
	c := dialRaw(t, b.Addr(), packet.V311)
	c.connect(will("crash"))
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	// Stop returns after the broker has finished with the connection, so
	// a will would already be queued ahead of this message.
	if err := b.Publish("will/marker", nil, 0, false); err != nil {
		t.Fatal(err)
	}
	if r, err := obs.Next(ctx); err != nil || r.Topic != "will/marker" {
		t.Fatalf("got %+v, %v; want will/marker", r, err)
	}

	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	c = dialRaw(t, b.Addr(), packet.V311)
	c.connect(will("vanish"))
	_ = c.conn.Close()
	if r, err := obs.Next(ctx); err != nil || r.Topic != "will/vanish" {
		t.Fatalf("got %+v, %v; want will/vanish", r, err)
	}
}
