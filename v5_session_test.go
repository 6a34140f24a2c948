package mqttas_test

// MQTT 5.0 connection and session behaviour: Server Keep Alive and the
// Assigned Client Identifier adopted, Session Expiry as the persistence
// switch, and the 5.0 rule that nothing is resent on a live link.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// TestV5ServerKeepAliveAndAssignedID: a CONNACK with Server Keep Alive 2 s
// and an Assigned Client Identifier: Link shows both, the client pings
// after half a second of silence (a quarter of the keep-alive, not the
// configured 15 s), and its next CONNECT uses the assigned identifier.
func TestV5ServerKeepAliveAndAssignedID(t *testing.T) {
	gaps := make(chan time.Duration, 2)
	ids := make(chan *packet.Connect, 2)
	f := v5StartFake(t, func(fc *v5Conn) {
		ack := &packet.Connack{}
		if fc.k == 0 {
			ack.Properties.ServerKeepAlive = 2
			ack.Properties.AssignedClientID = "assigned-1"
			ack.Properties.ResponseInfo = "resp/"
			ack.Properties.User = []packet.UserProperty{{Key: "region", Value: "eu"}}
		}
		c, err := fc.accept(ack)
		if err != nil {
			return
		}
		ids <- c
		if fc.k > 0 {
			fc.serveRest()
			return
		}
		// Time two silences, each from the last packet sent to the
		// client, then drop the link.
		last := time.Now()
		for len(gaps) < cap(gaps) {
			p, err := fc.next()
			if err != nil {
				return
			}
			if _, ok := p.(*packet.Pingreq); ok {
				gaps <- time.Since(last)
			}
			if !fc.answer(p) {
				return
			}
			last = time.Now()
		}
	})
	c := v5Connect(t, f.addr(), mqttas.Config{}) // KeepAlive 60 s, PingInterval 15 s
	first := <-ids
	if first.KeepAlive != 60 || first.ClientID != "" {
		t.Errorf("first CONNECT: keep-alive %d, id %q; want 60 and an empty id for the broker to assign", first.KeepAlive, first.ClientID)
	}
	l := c.Link()
	if l.KeepAlive != 2*time.Second || l.ClientID != "assigned-1" || l.Properties.AssignedClientID != "assigned-1" ||
		l.ResponseInformation != "resp/" || len(l.Properties.User) != 1 || l.Properties.User[0].Value != "eu" {
		t.Errorf("Link %+v: want keep-alive 2s, client id assigned-1, response information and the user property", l)
	}
	for range 2 {
		if g := <-gaps; g < 400*time.Millisecond || g > 1500*time.Millisecond {
			t.Errorf("PINGREQ after %v of silence, want about 500ms (Server Keep Alive 2s / 4)", g)
		}
	}
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 3*time.Second)
	if again := <-ids; again.ClientID != "assigned-1" {
		t.Errorf("reconnect CONNECT carries client id %q, want the assigned assigned-1", again.ClientID)
	}
	if l := c.Link(); l.ClientID != "assigned-1" || l.KeepAlive != time.Minute {
		t.Errorf("Link after reconnect %+v: want client id assigned-1 and the configured keep-alive back", l)
	}
}

// TestV5SessionExpiry: in 5.0 Session Expiry is what keeps a session. A
// PersistentSession client's power-up connect (clean_init) has Clean Start
// and no expiry, so the old session ends with it; its real connects have
// no Clean Start and the configured expiry (never, by default). Across a
// broker restart the session is then present, with the QoS 1 messages
// published meanwhile. Without PersistentSession no expiry is sent.
func TestV5SessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name       string
		persistent bool
		expiry     time.Duration
		wire       uint32 // the expiry on the wire; 0 absent
	}{
		{"never", true, 0, 0xFFFFFFFF},
		{"five minutes", true, 5 * time.Minute, 300},
		{"not persistent", false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqtttest.StartBroker(t)
			proxy := mqtttest.StartProxy(t, b.Addr())
			wire := newV5Wire()
			proxy.Rule(mqtttest.ToBroker, wire.rule(mqtttest.ToBroker))
			c := v5Connect(t, proxy.Addr(), mqttas.Config{ClientID: "v5-sess", PersistentSession: tc.persistent, SessionExpiry: tc.expiry})
			if got, want := c.Link().SessionExpiry, time.Duration(tc.wire)*time.Second; got != want {
				t.Errorf("Link().SessionExpiry = %v, want %v", got, want)
			}
			cs := wire.connects()
			if tc.persistent {
				if len(cs) != 2 || !cs[0].CleanStart || cs[0].Properties.Has(packet.PropSessionExpiry) {
					wire.dump(t)
					t.Fatalf("want a clean_init CONNECT with Clean Start and no Session Expiry first, then the real one")
				}
				cs = cs[1:]
			}
			v5CheckConnect(t, cs[0], !tc.persistent, tc.wire)
			if !tc.persistent {
				return
			}

			ctx := fxCtx(t, 10*time.Second)
			if err := c.Subscribe(ctx, "v5/sess", 1); err != nil {
				t.Fatal(err)
			}
			if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
			fxWaitDown(t, c, 3*time.Second)
			for _, p := range []string{"away-1", "away-2", "away-3"} {
				if err := b.Publish("v5/sess", []byte(p), 1, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			fxWaitUp(t, c, 3*time.Second)
			if !c.Link().SessionPresent {
				t.Error("after the broker restart the session is not present")
			}
			// mochi resends a session's queue sorted by the second each
			// message was created in, so their order within one is lost.
			var got []string
			for range 3 {
				got = append(got, string(fxRecv(t, c, 3*time.Second).Payload))
			}
			if slices.Sort(got); !slices.Equal(got, []string{"away-1", "away-2", "away-3"}) {
				t.Errorf("session delivered %q, want the three messages published while away", got)
			}
			cs = wire.connects()
			v5CheckConnect(t, cs[len(cs)-1], false, tc.wire)
		})
	}
}

// v5CheckConnect checks a CONNECT's Clean Start and Session Expiry.
func v5CheckConnect(t *testing.T, c *packet.Connect, clean bool, expiry uint32) {
	t.Helper()
	has := c.Properties.Has(packet.PropSessionExpiry)
	if c.CleanStart != clean || has != (expiry != 0) || c.Properties.SessionExpiry != expiry {
		t.Errorf("CONNECT clean start %v, session expiry present %v value %d; want %v, %v, %d",
			c.CleanStart, has, c.Properties.SessionExpiry, clean, expiry != 0, expiry)
	}
	if c.Properties.MaximumPacketSize != 1<<20 {
		t.Errorf("CONNECT Maximum Packet Size %d, want the default MaxPacketSize 1 MiB", c.Properties.MaximumPacketSize)
	}
}

// TestV5NoResendOnLiveLink: the broker loses a QoS 1 PUBLISH. MQTT 5.0
// forbids resending on a live link [MQTT-4.4.0-1], so with MaxRepubs 2 the
// client sends it once, waits three ResponseTimes, declares the link dead
// and sends it again on the next connection, as a new message without a
// session and with its identifier and DUP with one. 3.1.1 resends with DUP
// on the live link instead.
func TestV5NoResendOnLiveLink(t *testing.T) {
	const rt = 300 * time.Millisecond
	for _, tc := range []struct {
		name       string
		persistent bool
	}{{"clean", false}, {"session", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := fxNewRig(t)
			wire := newV5Wire()
			r.proxy.Rule(mqtttest.ToBroker, wire.rule(mqtttest.ToBroker))
			cfg := r.config()
			cfg.MQTTv5, cfg.MaxRepubs, cfg.ResponseTime = true, 2, rt
			cfg.PersistentSession, cfg.ResumeOnStart = tc.persistent, true
			c := r.connect(cfg)
			r.broker.DropPubacks(1)
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- c.Publish(fxCtx(t, 10*time.Second), "v5/lost", []byte("once"), 1, false) }()
			fxWaitDown(t, c, 3*time.Second)
			dead := time.Since(start)
			if err := <-done; err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if dead < 5*rt/2 || dead > 3*rt+time.Second {
				t.Errorf("link declared dead %v after the publish, want about 3 × ResponseTime = %v", dead, 3*rt)
			}
			if err := c.LastError(); !errors.Is(err, mqttas.ErrTimeout) {
				t.Errorf("LastError() = %v, want ErrTimeout", err)
			}
			var per [][]*packet.Publish // the PUBLISHes of "once", per connection
			for _, x := range wire.packets() {
				switch p := x.p.(type) {
				case *packet.Connect:
					per = append(per, nil)
				case *packet.Publish:
					if p.Topic == "v5/lost" {
						per[len(per)-1] = append(per[len(per)-1], p)
					}
				}
			}
			if len(per) != 2 || len(per[0]) != 1 || len(per[1]) != 1 {
				wire.dump(t)
				t.Fatalf("want the message sent exactly once on each of two connections")
			}
			first, again := per[0][0], per[1][0]
			if first.Dup || again.Dup != tc.persistent || (again.PacketID == first.PacketID) != tc.persistent {
				wire.dump(t)
				t.Errorf("sent as id %d dup %v, then id %d dup %v; want the same id with DUP only when the session is kept",
					first.PacketID, first.Dup, again.PacketID, again.Dup)
			}
			if st := c.Stats(); st.Outages != 1 || st.Repubs != 1 {
				t.Errorf("stats %+v: want one outage and one resend", st)
			}
		})
	}
	t.Run("3.1.1", func(t *testing.T) {
		r := fxNewRig(t)
		var wire fxWire
		r.proxy.Rule(mqtttest.ToBroker, wire.record(mqtttest.ToBroker, nil))
		cfg := r.config()
		cfg.MaxRepubs, cfg.ResponseTime = 2, rt
		c := r.connect(cfg)
		r.broker.DropPubacks(1)
		if err := c.Publish(fxCtx(t, 10*time.Second), "v5/lost", []byte("once"), 1, false); err != nil {
			t.Fatal(err)
		}
		var pubs []fxWireEvent
		for _, e := range wire.events() {
			if e.typ == packet.PUBLISH && e.topic == "v5/lost" {
				pubs = append(pubs, e)
			}
		}
		if len(pubs) != 2 || pubs[0].dup || !pubs[1].dup || pubs[1].id != pubs[0].id {
			wire.dump(t)
			t.Errorf("3.1.1: want the PUBLISH and one DUP resend of it on the live link")
		}
		if st := c.Stats(); st.Outages != 0 || st.Repubs != 1 {
			t.Errorf("3.1.1 stats %+v: want no outage and one resend", st)
		}
	})
}

// TestV5SessionExpiryShortenedByBroker: a broker that keeps sessions for
// less time than asked says so in CONNACK, and Link reports the expiry in
// force.
func TestV5SessionExpiryShortenedByBroker(t *testing.T) {
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{Capabilities: func(c *mqtt.Capabilities) { c.MaximumSessionExpiryInterval = 30 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := v5Connect(t, b.Addr(), mqttas.Config{PersistentSession: true, SessionExpiry: time.Hour})
	if got := c.Link().SessionExpiry; got != 30*time.Second {
		t.Errorf("Link().SessionExpiry = %v, want the broker's 30s", got)
	}
}

// TestV5AssignedClientID: with MQTTv5 and no ClientID the client sends an
// empty identifier, the broker assigns one, and the client keeps it for
// every later connection, the clean_init pair included.
func TestV5AssignedClientID(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		b := mqtttest.StartBroker(t)
		proxy := mqtttest.StartProxy(t, b.Addr())
		w := newV5Wire()
		proxy.Rule(mqtttest.ToBroker, w.rule(mqtttest.ToBroker))
		c := v5Connect(t, proxy.Addr(), mqttas.Config{PersistentSession: persistent})
		id := c.Link().ClientID
		if id == "" {
			t.Fatalf("persistent=%v: Link().ClientID empty: the broker's assigned identifier was not kept", persistent)
		}
		proxy.Reset()
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
		var got []string
		for _, cp := range w.connects() {
			got = append(got, cp.ClientID)
		}
		want := []string{"", id} // the empty request, then the assigned one
		if persistent {
			want = []string{"", id, id} // clean_init: clean, then the session
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("persistent=%v: CONNECT client identifiers %q, want %q", persistent, got, want)
		}
		if c.Link().ClientID != id {
			t.Errorf("persistent=%v: identifier changed from %q to %q", persistent, id, c.Link().ClientID)
		}
		c.Close()
	}
}
