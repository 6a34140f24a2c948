package mqttas_test

// A broker that claims a session the client never asked it to keep.

import (
	"testing"

	"github.com/mqttas/mqttas/packet"
)

// CONNACK with Session Present = 1 answering a clean CONNECT (clean
// session in 3.1.1, Clean Start in 5.0). The broker cannot have a session
// for a connection that asked for none: MQTT-3.2.2-1 forbids it, and MQTT
// 5.0 says a client without session state that receives Session Present 1
// MUST close the connection [MQTT-3.2.2-4].
//
// Closing the connection, as the specification asks, would loop forever
// against a broker that always does this; believing the flag would skip
// restoring the subscriptions, so that the client is Up and subscribed to
// nothing. mqttas proceeds as if no session was kept (conn.go, dial) and
// restores them. The test accepts either remedy: a client that restores
// its subscriptions, or one that refuses the connection.
func TestHostileSessionPresentAfterCleanStart(t *testing.T) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(map[packet.Version]string{packet.V311: "3.1.1", packet.V5: "5.0"}[v], func(t *testing.T) {
			drop := make(chan struct{})
			type verdict struct{ subscribed, clean bool }
			seen := make(chan verdict, 4)
			b := hbStart(t, v, func(hc *hbConn) {
				if hc.k == 0 {
					if _, err := hc.accept(nil); err != nil {
						return
					}
					go func() { // serve until the test drops the link
						select {
						case <-drop:
						case <-hc.quit:
						}
						hc.nc.Close()
					}()
					hc.serveRest()
					return
				}
				if hc.k > 1 {
					hc.serve() // the client closed the lying connection: fine
					return
				}
				c, err := hc.accept(&packet.Connack{SessionPresent: true})
				if err != nil {
					return
				}
				vd := verdict{clean: c.CleanStart}
				for {
					p, err := hc.next()
					if err != nil {
						return // closed by the client: accepted behaviour
					}
					switch p := p.(type) {
					case *packet.Subscribe:
						vd.subscribed = true
					case *packet.Publish:
						if string(p.Payload) == "marker" {
							seen <- vd
						}
					}
					if !hc.answer(p) {
						return
					}
				}
			})
			c := hbConnect(t, b, nil)
			if err := c.Subscribe(fxCtx(t, hbWait), "s/#", 1); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			close(drop)
			fxWaitDown(t, c.Client, hbWait)
			fxWaitUp(t, c.Client, hbWait)
			// Up follows the SUBACKs of a resubscription, so a SUBSCRIBE
			// on the live connection precedes this marker.
			if err := c.Publish(fxCtx(t, hbWait), "m", []byte("marker"), 0, false); err != nil {
				t.Fatalf("Publish marker: %v", err)
			}
			if b.accepted() > 2 {
				return // the client refused the lying CONNACK
			}
			select {
			case vd := <-seen:
				if vd.clean && !vd.subscribed {
					t.Fatalf("after a clean CONNECT answered with Session Present 1, the client went Up " +
						"without restoring its subscription to s/# (and without closing the connection)")
				}
			case <-fxCtx(t, hbWait).Done():
				t.Fatal("the broker never saw the marker")
			}
		})
	}
}
