package mqttas_test

// Fault tests of sessions across outages: broker restart, restored
// subscriptions at Up, persistent-session resume, clean init, Publish
// waiting through an outage and failover to a backup broker.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// TestBrokerRestartWithoutPersistence: the broker restarts and has forgotten
// everything (session present 0). The client reconnects and restores its
// subscriptions by itself, so messages published to them after Up arrive
// (paho.mqtt.golang #22 #238).
func TestBrokerRestartWithoutPersistence(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.Server = r.broker.Addr() // straight to the broker
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "rs/a", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "rs/b/#", 0); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if err := r.broker.Restart(false); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
		// Another party publishes as soon as the client says it is up.
		want := map[string]string{"rs/a": "a" + strconv.Itoa(round), "rs/b/x": "b" + strconv.Itoa(round)}
		for topic, payload := range want {
			if err := r.broker.Publish(topic, []byte(payload), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		got := fxReceiveSet(c, len(want), time.Second)
		if len(got) == len(want) {
			continue
		}
		t.Errorf("round %d: of the messages published right after Up only %v arrived: Up came before the restored subscriptions were in place at the broker", round, got)
		// Are they restored at all? A QoS 1 round trip of the client's own
		// orders everything after its SUBSCRIBE; then publish again.
		if err := c.Publish(fxCtx(t, 3*time.Second), "rs/sync", nil, 1, false); err != nil {
			t.Fatal(err)
		}
		for topic, payload := range want {
			if err := r.broker.Publish(topic, []byte(payload), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := fxReceiveSet(c, len(want), 3*time.Second); len(got) != len(want) {
			t.Fatalf("round %d: subscriptions not restored even after a round trip: received %v", round, got)
		}
	}
}

// fxReceiveSet collects up to n messages' payloads, waiting at most d in all.
func fxReceiveSet(c *mqttas.Client, n int, d time.Duration) map[string]bool {
	got := map[string]bool{}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for len(got) < n {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return got
			}
			got[string(m.Payload)] = true
		case <-timer.C:
			return got
		}
	}
	return got
}

// TestRestoredSubscriptionsActiveAtUp is the same promise made
// deterministic: Up means "subscriptions restored" (Client.Up, Subscribe
// docs), so a message another party publishes right after Up must arrive
// even when the broker is slow to process the restoring SUBSCRIBE.
func TestRestoredSubscriptionsActiveAtUp(t *testing.T) {
	r := fxNewRig(t)
	c := r.connect(r.config())
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "ra/t", 1); err != nil {
		t.Fatal(err)
	}
	// From now on every SUBSCRIBE takes 150 ms longer to reach the broker.
	r.proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type == packet.SUBSCRIBE {
			return mqtttest.Delay(150 * time.Millisecond)
		}
		return mqtttest.Forward()
	})
	r.proxy.Reset()
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 3*time.Second)
	if err := r.broker.Publish("ra/t", []byte("right after Up"), 1, false); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	select {
	case m := <-c.Messages():
		if string(m.Payload) != "right after Up" {
			t.Errorf("received %q", m.Payload)
		}
	case <-timer.C:
		t.Error("a message published right after Up was lost: Up was signalled before the broker had acknowledged the restored subscription (SUBACK)")
	}
}

// TestPersistentSessionResumes: with a persistent session, QoS 1 messages
// published to the client while it was away are delivered after the outage
// (session present 1 accepted, unlike mqtt_as; peer-failures row 22).
func TestPersistentSessionResumes(t *testing.T) {
	const n = 5
	// check receives the n messages. The broker's resend order is its own
	// business (mochi resends its in-flight store in map order, not in the
	// order of publication as MQTT 3.1.1 section 4.6 asks): the client
	// must deliver them in the order they came off the wire.
	check := func(t *testing.T, c *mqttas.Client, w *fxWire) {
		t.Helper()
		var got []string
		for range n {
			m := fxRecv(t, c, 3*time.Second)
			if m.QoS != 1 {
				t.Errorf("message %q has QoS %d, want 1", m.Payload, m.QoS)
			}
			got = append(got, string(m.Payload))
		}
		var wireOrder []string
		var present []bool
		for _, e := range w.events() {
			switch e.typ {
			case packet.CONNACK:
				present = append(present, e.present)
			case packet.PUBLISH:
				wireOrder = append(wireOrder, e.payload)
			}
		}
		if !slices.Equal(got, wireOrder) {
			t.Errorf("delivered %q, but the wire carried %q", got, wireOrder)
		}
		sorted := slices.Sorted(slices.Values(got))
		var want []string
		for i := range n {
			want = append(want, "away-"+strconv.Itoa(i))
		}
		if !slices.Equal(sorted, want) {
			t.Errorf("delivered %q, want each of %q once", got, want)
		}
		if !slices.Equal(got, want) {
			t.Logf("note: the broker resent the backlog out of order: %q", got)
		}
		if len(present) == 0 || !present[len(present)-1] {
			t.Errorf("CONNACK session-present flags %v: the last connection did not resume the session", present)
		}
		if st := c.Stats(); st.Outages != 1 {
			t.Errorf("stats %+v, want one outage", st)
		}
	}

	t.Run("LinkOutage", func(t *testing.T) {
		r := fxNewRig(t)
		var w fxWire
		r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, nil))
		cfg := r.config()
		cfg.PersistentSession = true
		cfg.ClientID = "persist-link"
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "ps/t", 1); err != nil {
			t.Fatal(err)
		}
		old := fxLiveConn(t, r.broker, cfg.ClientID)
		r.proxy.Refuse(true)
		r.proxy.Reset()
		fxWaitDown(t, c, 3*time.Second)
		r.events.waitDisconnect(t, cfg.ClientID, old, 3*time.Second) // the broker knows it is away
		for i := range n {
			if err := r.broker.Publish("ps/t", []byte("away-"+strconv.Itoa(i)), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		r.proxy.Refuse(false)
		fxWaitUp(t, c, 3*time.Second)
		check(t, c, &w)
	})

	t.Run("BrokerStopStart", func(t *testing.T) {
		r := fxNewRig(t)
		cfg := r.config()
		cfg.PersistentSession = true
		cfg.ClientID = "persist-restart"
		var w fxWire
		r.proxy.Rule(mqtttest.ToClient, w.record(mqtttest.ToClient, nil))
		c := r.connect(cfg)
		if err := c.Subscribe(fxCtx(t, 3*time.Second), "ps/t", 1); err != nil {
			t.Fatal(err)
		}
		if err := r.broker.Stop(); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		for i := range n {
			if err := r.broker.Publish("ps/t", []byte("away-"+strconv.Itoa(i)), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.broker.Start(); err != nil {
			t.Fatal(err)
		}
		fxWaitUp(t, c, 3*time.Second)
		check(t, c, &w)
	})
}

// TestCleanInitDiscardsOldSession: mqtt_as's clean_init. A persistent-
// session client that does not resume on start discards, at power-up, the
// backlog an earlier run left at the broker; one with ResumeOnStart gets it.
func TestCleanInitDiscardsOldSession(t *testing.T) {
	for _, resume := range []bool{false, true} {
		t.Run("ResumeOnStart="+strconv.FormatBool(resume), func(t *testing.T) {
			r := fxNewRig(t)
			cfg := r.config()
			cfg.PersistentSession = true
			cfg.ClientID = "clean-init"
			// An earlier run subscribed and went away with its session kept.
			old := r.connect(cfg)
			if err := old.Subscribe(fxCtx(t, 3*time.Second), "ci/t", 1); err != nil {
				t.Fatal(err)
			}
			remote := fxLiveConn(t, r.broker, cfg.ClientID)
			if err := old.Disconnect(fxCtx(t, 3*time.Second)); err != nil {
				t.Fatal(err)
			}
			r.events.waitDisconnect(t, cfg.ClientID, remote, 3*time.Second)
			if err := r.broker.Publish("ci/t", []byte("backlog"), 1, false); err != nil {
				t.Fatal(err)
			}

			cfg.ResumeOnStart = resume
			c := r.connect(cfg)
			if resume {
				if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "backlog" {
					t.Errorf("received %q, want the backlog", m.Payload)
				}
				return
			}
			// Subscribe afresh and publish a marker: a backlog message would
			// have been delivered at connection time, before the marker.
			if err := c.Subscribe(fxCtx(t, 3*time.Second), "ci/t", 1); err != nil {
				t.Fatal(err)
			}
			if err := r.broker.Publish("ci/t", []byte("marker"), 1, false); err != nil {
				t.Fatal(err)
			}
			if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "marker" {
				t.Errorf("received %q first: the old session's backlog was delivered at power-up", m.Payload)
			}
		})
	}
}

// TestPublishWaitsThroughOutage: Publish during an outage waits for the link
// and returns nil once the message is through (paho.golang #247 #274,
// paho.mqtt.golang #563); with a ctx deadline inside the outage it returns
// the ctx error, and the abandoned message is not sent later.
func TestPublishWaitsThroughOutage(t *testing.T) {
	r := fxNewRig(t)
	c := r.connect(r.config())
	obs := fxObserve(t, r.broker, "pw/#")
	r.proxy.Refuse(true)
	r.proxy.Reset()
	fxWaitDown(t, c, 3*time.Second)

	for q := range byte(3) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		start := time.Now()
		err := c.Publish(ctx, "pw/abandoned", []byte{q}, q, false)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("QoS %d Publish with a deadline inside the outage: %v, want context.DeadlineExceeded", q, err)
		}
		if el := time.Since(start); el < 150*time.Millisecond || el > time.Second {
			t.Errorf("QoS %d: returned after %v, want at its 150ms deadline", q, el)
		}
	}

	results := make(chan error, 3)
	var want int64
	for q := range byte(3) {
		topic := "pw/waited/" + strconv.Itoa(int(q))
		want += int64(len(topic) + 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			results <- c.Publish(ctx, topic, []byte{q}, q, false)
		}()
	}
	// All three are inside Publish, waiting, before the link returns.
	fxEventually(t, 3*time.Second, "publishes waiting", func() bool { return c.Stats().UnsentBytes >= want })
	r.proxy.Refuse(false)
	fxWaitUp(t, c, 3*time.Second)
	for range 3 {
		if err := <-results; err != nil {
			t.Errorf("Publish through the outage: %v", err)
		}
	}
	if err := c.Publish(fxCtx(t, 3*time.Second), "pw/marker", nil, 1, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := fxNextObserved(t, obs, 3*time.Second); m.Topic != "pw/marker"; m = fxNextObserved(t, obs, 3*time.Second) {
		got = append(got, m.Topic)
	}
	slices.Sort(got)
	if want := []string{"pw/waited/0", "pw/waited/1", "pw/waited/2"}; !slices.Equal(got, want) {
		t.Errorf("broker received %q, want %q (abandoned publishes must not be sent later)", got, want)
	}
	// Messages published during the outage went out once, for the first
	// time: they are not resends.
	if st := c.Stats(); st.UnsentBytes != 0 || st.InFlight != 0 || st.Repubs != 0 {
		t.Errorf("stats %+v, want nothing unsent or in flight, and no repubs", st)
	}
}

// TestFirstSendAfterResumeHasNoDup: with a resumed session, the messages
// the client had sent before the outage are resent with DUP, but one
// published during the outage is going out for the first time, so its DUP
// flag is 0 [MQTT-3.3.1-1] and it is not counted as a repub.
func TestFirstSendAfterResumeHasNoDup(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.PersistentSession = true
	cfg.ClientID = "firstsend"
	var w fxWire
	r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, nil))
	c := r.connect(cfg)
	r.proxy.Refuse(true)
	r.proxy.Reset()
	fxWaitDown(t, c, 3*time.Second)
	done := make(chan error, 1)
	go func() { done <- c.Publish(fxCtx(t, 10*time.Second), "fs/t", []byte("during"), 1, false) }()
	fxEventually(t, 3*time.Second, "the publish waiting", func() bool { return c.Stats().UnsentBytes > 0 })
	r.proxy.Refuse(false)
	fxWaitUp(t, c, 3*time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var pubs []fxWireEvent
	for _, e := range w.events() {
		if e.typ == packet.PUBLISH {
			pubs = append(pubs, e)
		}
	}
	if len(pubs) != 1 || pubs[0].dup {
		t.Errorf("PUBLISHes on the wire: %v; want one, with DUP 0", pubs)
	}
	if st := c.Stats(); st.Repubs != 0 {
		t.Errorf("Stats().Repubs = %d for a first transmission", st.Repubs)
	}
}

// TestBackupFailover: Mongoose OS failover. The primary refuses, so after
// backing off to ReconnectMax the client connects to the backup; later the
// backup dies and the primary is good again, and the client switches back.
func TestBackupFailover(t *testing.T) {
	r := fxNewRig(t)
	primary, backup := r.proxy, mqtttest.StartProxy(t, r.broker.Addr())
	primary.Refuse(true)
	cfg := r.config()
	cfg.Backup = backup.Addr()
	cfg.ConnectRetry = true
	c := r.client(cfg)
	start := time.Now()
	if err := c.Connect(fxCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	fxWaitUp(t, c, time.Second)
	t.Logf("on the backup after %v and %d refused attempts on the primary", time.Since(start).Round(time.Millisecond), primary.Accepted())
	if backup.Conns() != 1 || primary.Conns() != 0 {
		t.Fatalf("connections: primary %d, backup %d; want the backup", primary.Conns(), backup.Conns())
	}
	fxRoundTrip(t, c, "fo/backup")

	primary.Refuse(false)
	backup.Refuse(true)
	backup.Reset()
	start = time.Now()
	fxWaitDown(t, c, 3*time.Second)
	fxWaitUp(t, c, 5*time.Second)
	t.Logf("back on the primary after %v", time.Since(start).Round(time.Millisecond))
	if err := primary.WaitConns(fxCtx(t, 3*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if err := backup.WaitConns(fxCtx(t, 3*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	fxRoundTrip(t, c, "fo/primary")
}
