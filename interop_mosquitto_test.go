package mqttas_test

// Interoperability with a real broker: mosquitto run as a subprocess by
// internal/mosquitto (skipped where it is not installed, required in CI),
// with mosquitto_pub and mosquitto_sub as the independent client on the
// other side. MQTT 3.1.1, public API only. Each test has a broker of its
// own on a free loopback port; every wait is on an event or a bounded poll
// of the broker's log.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/internal/mosquitto"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// mosqConfig is a client configuration for a mosquitto test: the fault
// tests' short timings, but a longer ResponseTime, since a broker in
// another process, saving to disk, can be slower to answer on a loaded
// machine; and its log kept for a failure report.
func mosqConfig(t *testing.T, server, clientID string) mqttas.Config {
	return mqttas.Config{
		Server:       server,
		ClientID:     clientID,
		KeepAlive:    fxKeepAlive,
		PingInterval: fxPingInterval,
		ResponseTime: time.Second,
		ReconnectMin: fxReconnectMin,
		ReconnectMax: fxReconnectMax,
		Logger:       fxNewLogSink(t).logger(),
	}
}

// mosqConnect returns a connected client, its first Up consumed.
func mosqConnect(t *testing.T, cfg mqttas.Config) *mqttas.Client {
	t.Helper()
	c := fxNewClient(t, cfg)
	if err := c.Connect(fxCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("Connect to mosquitto at %s: %v", cfg.Server, err)
	}
	fxWaitUp(t, c, time.Second)
	return c
}

// TestMosquittoRoundTrip: the client subscribes and publishes to itself at
// each QoS through mosquitto, which sees each PUBLISH at that QoS and
// without DUP on its first send.
func TestMosquittoRoundTrip(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	c := mosqConnect(t, mosqConfig(t, b.Addr(), "rt-client"))
	ctx := fxCtx(t, 10*time.Second)
	for qos := range byte(3) {
		topic := fmt.Sprintf("rt/q%d", qos)
		if err := c.Subscribe(ctx, topic, qos); err != nil {
			t.Fatalf("Subscribe %s: %v", topic, err)
		}
		payload := "round trip at QoS " + strconv.Itoa(int(qos))
		if err := c.Publish(ctx, topic, []byte(payload), qos, false); err != nil {
			t.Fatalf("Publish QoS %d: %v", qos, err)
		}
		m := fxRecv(t, c, 3*time.Second)
		if m.Topic != topic || string(m.Payload) != payload || m.QoS != qos || m.Dup || m.Retained {
			t.Errorf("QoS %d: received %+v", qos, m)
		}
		// The broker logged the PUBLISH before it acknowledged or routed
		// it, so the line is there now.
		wire := regexp.MustCompile(fmt.Sprintf(`Received PUBLISH from rt-client \(d0, q%d, r0, m\d+, '%s'`, qos, topic))
		if !wire.MatchString(b.Log()) {
			t.Errorf("broker log has no line matching %q", wire)
		}
	}
	if s := c.Stats(); s.Repubs != 0 || s.Outages != 0 || s.Discards != 0 {
		t.Errorf("stats %+v: want no resends, outages or discards", s)
	}
}

// TestMosquittoFromMosquittoPub: messages published by mosquitto_pub at
// each QoS, and a retained one published before the subscription, reach
// the client with their QoS and retain flag.
func TestMosquittoFromMosquittoPub(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := fxCtx(t, 10*time.Second)
	if err := b.Pub(ctx, "-r", "-q", "1", "-t", "in/retained", "-m", "kept"); err != nil {
		t.Fatal(err)
	}
	c := mosqConnect(t, mosqConfig(t, b.Addr(), ""))
	if err := c.Subscribe(ctx, "in/#", 2); err != nil {
		t.Fatal(err)
	}
	if m := fxRecv(t, c, 3*time.Second); m.Topic != "in/retained" || string(m.Payload) != "kept" || !m.Retained || m.QoS != 1 {
		t.Errorf("retained message: %+v", m)
	}
	for qos := range 3 {
		q := strconv.Itoa(qos)
		if err := b.Pub(ctx, "-q", q, "-t", "in/q"+q, "-m", "from mosquitto_pub "+q); err != nil {
			t.Fatal(err)
		}
		m := fxRecv(t, c, 3*time.Second)
		if m.Topic != "in/q"+q || string(m.Payload) != "from mosquitto_pub "+q || int(m.QoS) != qos || m.Retained || m.Dup {
			t.Errorf("QoS %d: received %+v", qos, m)
		}
	}
	// The subscription caps the QoS: a QoS 2 message on a QoS 1
	// subscription arrives at QoS 1.
	if err := c.Subscribe(ctx, "capped", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Pub(ctx, "-q", "2", "-t", "capped", "-m", "x"); err != nil {
		t.Fatal(err)
	}
	if m := fxRecv(t, c, 3*time.Second); m.Topic != "capped" || m.QoS != 1 {
		t.Errorf("capped: received %+v, want QoS 1", m)
	}
}

// TestMosquittoToMosquittoSub: messages the client publishes at each QoS
// reach mosquitto_sub with that QoS, and a retained one is retained.
func TestMosquittoToMosquittoSub(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := fxCtx(t, 10*time.Second)
	s, err := b.Sub(ctx, "-q", "2", "-t", "out/#", "-F", "%q %r %t %p")
	if err != nil {
		t.Fatal(err)
	}
	c := mosqConnect(t, mosqConfig(t, b.Addr(), ""))
	for qos := range byte(3) {
		topic := fmt.Sprintf("out/q%d", qos)
		if err := c.Publish(ctx, topic, []byte("from mqttas"), qos, false); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%d 0 %s from mqttas", qos, topic)
		if got, err := s.Next(ctx); err != nil || got != want {
			t.Errorf("mosquitto_sub printed %q (%v), want %q", got, err, want)
		}
	}
	// Retained: a live subscriber sees it unflagged (3.1.1 §3.3.1.3), a
	// later one flagged.
	if err := c.Publish(ctx, "out/retained", []byte("kept"), 1, true); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Next(ctx); err != nil || got != "1 0 out/retained kept" {
		t.Errorf("live subscriber printed %q (%v)", got, err)
	}
	late, err := b.Sub(ctx, "-q", "1", "-t", "out/retained", "-F", "%q %r %t %p", "-C", "1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := late.Next(ctx); err != nil || got != "1 1 out/retained kept" {
		t.Errorf("late subscriber printed %q (%v), want the retained message", got, err)
	}
}

// TestMosquittoPasswordAuth: with a password file the right credentials
// connect; a wrong password, an unknown user and no user at all are
// refused. mosquitto 2.0 answers all three with 3.1.1 return code 5, "not
// authorized" (never 4, "bad user name or password"), so the error
// matches ErrNotAuthorized and not ErrBadCredentials.
func TestMosquittoPasswordAuth(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{Users: map[string]string{"alice": "secret"}})
	cfg := mosqConfig(t, b.Addr(), "good")
	cfg.User, cfg.Password = "alice", "secret"
	c := mosqConnect(t, cfg)
	fxRoundTrip(t, c, "auth/ok")

	for _, tc := range []struct{ id, user, pass string }{
		{"wrongpass", "alice", "guess"},
		{"nouser", "mallory", "secret"},
		{"anonymous", "", ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			cfg := mosqConfig(t, b.Addr(), tc.id)
			cfg.User, cfg.Password = tc.user, tc.pass
			c := fxNewClient(t, cfg)
			refusals := strings.Count(b.Log(), " (0, 5)\n")
			err := c.Connect(fxCtx(t, 5*time.Second))
			if !errors.Is(err, mqttas.ErrNotAuthorized) || !errors.Is(err, mqttas.ErrRefused) {
				t.Fatalf("Connect: %v, want ErrNotAuthorized", err)
			}
			if errors.Is(err, mqttas.ErrBadCredentials) {
				t.Errorf("Connect: %v matches ErrBadCredentials, but mosquitto sent return code 5", err)
			}
			// mosquitto logs the refused client by its address: "Sending
			// CONNACK to 127.0.0.1 (0, 5)", written before the CONNACK.
			if n := strings.Count(b.Log(), " (0, 5)\n"); n != refusals+1 {
				t.Errorf("broker log shows %d more CONNACKs with return code 5, want 1", n-refusals)
			}
			var ce *mqttas.ConnectError
			if !errors.As(err, &ce) || ce.Code != packet.NotAuthorized {
				t.Errorf("Connect: %#v, want a *ConnectError with code NotAuthorized", err)
			}
			if c.IsConnected() {
				t.Error("IsConnected after a refused Connect")
			}
		})
	}
}

// TestMosquittoRestartWithoutPersistence: mosquitto restarts and has
// forgotten the session (session present 0). The client notices (Down),
// reconnects by itself (Up) and restores its subscriptions before Up, so
// what mosquitto_pub publishes right after Up arrives, and the client's
// own stream resumes.
func TestMosquittoRestartWithoutPersistence(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	c := mosqConnect(t, mosqConfig(t, b.Addr(), "restarted"))
	ctx := fxCtx(t, 20*time.Second)
	if err := c.Subscribe(ctx, "rs/a", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "rs/b/#", 0); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if err := b.Restart(); err != nil {
			t.Fatal(err)
		}
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
		r := strconv.Itoa(round)
		if err := b.Pub(ctx, "-q", "1", "-t", "rs/a", "-m", "a"+r); err != nil {
			t.Fatal(err)
		}
		if err := b.Pub(ctx, "-q", "0", "-t", "rs/b/x", "-m", "b"+r); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, "rs/a", []byte("own"+r), 1, false); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"a" + r: true, "b" + r: true, "own" + r: true}
		if got := fxReceiveSet(c, len(want), 3*time.Second); len(got) != len(want) {
			t.Fatalf("round %d: received %v, want %v", round, got, want)
		}
	}
	if s := c.Stats(); s.Outages != 3 || s.Reconnects != 3 {
		t.Errorf("stats %+v, want 3 outages and 3 reconnects", s)
	}
	if n := strings.Count(b.Log(), "Sending CONNACK to restarted (0, 0)"); n != 4 {
		t.Errorf("broker sent %d CONNACKs without session present to the client, want 4", n)
	}
}

// TestMosquittoPersistentSessionQueue: QoS 1 messages published while a
// persistent-session client is away, some before a clean broker restart
// and some after, are all delivered in order when it returns (session
// present 1). A proxy in front of the broker keeps the client away, so
// the messages certainly wait at the broker.
func TestMosquittoPersistentSessionQueue(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{Persistence: true})
	p := mqtttest.StartProxy(t, b.Addr())
	cfg := mosqConfig(t, p.Addr(), "persistent")
	cfg.PersistentSession = true
	c := mosqConnect(t, cfg)
	ctx := fxCtx(t, 20*time.Second)
	if err := c.Subscribe(ctx, "pq/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Pub(ctx, "-q", "1", "-t", "pq/live", "-m", "live"); err != nil {
		t.Fatal(err)
	}
	if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "live" {
		t.Fatalf("received %+v", m)
	}

	// Without this wait the proxy's reset could discard the client's
	// PUBACK, and the broker would rightly deliver "live" again.
	if _, err := b.WaitLog(ctx, "Received PUBACK from persistent (Mid: 1, RC:0)", 1); err != nil {
		t.Fatal(err)
	}
	// Away: the proxy resets the connection and refuses reconnects.
	p.Refuse(true)
	p.Reset()
	fxWaitDown(t, c, 3*time.Second)
	if _, err := b.WaitLog(ctx, "Client persistent disconnected", 1); err != nil {
		t.Fatal(err)
	}
	var want []string
	publish := func(qos string, payloads ...string) {
		t.Helper()
		for _, m := range payloads {
			if err := b.Pub(ctx, "-q", qos, "-t", "pq/queued", "-m", m); err != nil {
				t.Fatal(err)
			}
			want = append(want, m)
		}
	}
	publish("1", "before-1", "before-2", "before-3")
	if err := b.Restart(); err != nil { // SIGTERM: the queue is saved
		t.Fatal(err)
	}
	publish("1", "after-1", "after-2")
	publish("2", "after-3") // on a QoS 1 subscription: delivered at QoS 1

	p.Refuse(false)
	fxWaitUp(t, c, 5*time.Second)
	var got []string
	for range want {
		m := fxRecv(t, c, 3*time.Second)
		if m.QoS != 1 || m.Topic != "pq/queued" {
			t.Errorf("message %q: topic %q QoS %d, want pq/queued QoS 1", m.Payload, m.Topic, m.QoS)
		}
		got = append(got, string(m.Payload))
	}
	if !slices.Equal(got, want) {
		t.Errorf("received %q, want %q in order", got, want)
	}
	if !strings.Contains(b.Log(), "Sending CONNACK to persistent (1, 0)") {
		t.Error("broker log shows no CONNACK with session present for the returning client")
	}
	// The session's subscription carries on.
	if err := b.Pub(ctx, "-q", "1", "-t", "pq/later", "-m", "later"); err != nil {
		t.Fatal(err)
	}
	if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != "later" {
		t.Errorf("after the return: received %+v", m)
	}
}

// TestMosquittoBrokerDiesDuringQoS1Stream: the client publishes 200 QoS 1
// messages one after another, and part way through the broker goes away,
// cleanly (Stop, SIGTERM) or not (Kill, SIGKILL), and comes back with its
// persistence database. The messages go to an offline persistent session
// (mosquitto_sub -c), whose queue is what the database must keep; it is
// drained at the end, up to a marker published last.
//
// Who guarantees what: the client guarantees that Publish returns nil only
// after the broker's PUBACK, and that a message whose PUBACK never came is
// sent again after the reconnect (a duplicate is allowed at QoS 1); every
// Publish must return nil, none may hang. mosquitto guarantees the rest:
//   - Stop: it saves everything on exit, so no acknowledged message may be
//     missing.
//   - Kill: it saves after handling each packet, but writes the PUBACK
//     before that save (see mosquitto.Options.Persistence). As this client
//     publishes one message at a time, the broker reads message k+1 only
//     after the save holding message k, so a kill can lose at most the
//     last message it acknowledged, which is at or after the last PUBACK
//     the test saw before the kill. With mosquitto 2.0.11 the kill lands
//     in that save nearly every time, and that message is lost: reported,
//     not failed.
//   - SyncKill: Kill after a Sync round trip, which returns only once
//     everything acknowledged before it is saved: nothing up to the last
//     PUBACK seen before the Sync may be lost, and at most one message
//     acknowledged during the Sync.
func TestMosquittoBrokerDiesDuringQoS1Stream(t *testing.T) {
	for _, mode := range []string{"Stop", "Kill", "SyncKill"} {
		t.Run(mode, func(t *testing.T) { testBrokerDiesDuringStream(t, mode, 1) })
	}
}

// TestMosquittoBrokerDiesDuringQoS2Stream: the same at QoS 2, collected
// at QoS 2, with one more promise: no message arrives twice. mqttas never
// publishes a QoS 2 message again once mosquitto has answered PUBREC (it
// resends only the PUBREL, with the session resumed), so a kill can lose
// mosquitto's record of a message but never make it deliver one twice;
// the collector is offline throughout, so mosquitto has no delivery of
// its own in flight either.
func TestMosquittoBrokerDiesDuringQoS2Stream(t *testing.T) {
	for _, mode := range []string{"Stop", "Kill", "SyncKill"} {
		t.Run(mode, func(t *testing.T) { testBrokerDiesDuringStream(t, mode, 2) })
	}
}

func testBrokerDiesDuringStream(t *testing.T, mode string, qos byte) {
	const (
		n  = 200
		at = 80 // acknowledged publishes before the broker goes
	)
	b := mosquitto.Start(t, mosquitto.Options{Persistence: true})
	ctx := fxCtx(t, 30*time.Second)
	q := strconv.Itoa(int(qos))
	reg, err := b.Sub(ctx, "-c", "-i", "collector", "-q", q, "-t", "stream", "-E")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	cfg := mosqConfig(t, b.Addr(), "streamer")
	// Every message costs the broker an fsync: give the PUBACK time before
	// the client resends.
	cfg.ResponseTime = 2 * time.Second
	c := mosqConnect(t, cfg)
	acked := make(chan int, n) // the messages whose Publish returned nil, in order
	failed := make(chan error, 1)
	go func() {
		defer close(acked)
		for i := range n {
			if err := c.Publish(ctx, "stream", []byte(strconv.Itoa(i)), qos, false); err != nil {
				failed <- fmt.Errorf("Publish %d: %w", i, err)
				return
			}
			acked <- i
		}
	}()
	last := -1 // the last acknowledged message seen before the broker went
	for last < at-1 {
		select {
		case i, ok := <-acked:
			if !ok {
				t.Fatal(<-failed)
			}
			last = i
		case <-ctx.Done():
			t.Fatalf("only %d publishes acknowledged: %v", last+1, ctx.Err())
		}
	}
	switch mode {
	case "Stop":
		err = b.Stop()
	case "Kill":
		err = b.Kill()
	case "SyncKill":
		if err = b.Sync(ctx); err == nil {
			err = b.Kill()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	fxWaitDown(t, c, 5*time.Second)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	fxWaitUp(t, c, 5*time.Second)
	count := last + 1
	for range acked {
		count++
	}
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	if count != n {
		t.Fatalf("%d of %d publishes acknowledged", count, n)
	}
	if err := c.Publish(ctx, "stream", []byte("end"), qos, false); err != nil {
		t.Fatal(err)
	}

	drain, err := b.Sub(ctx, "-c", "-i", "collector", "-q", q, "-t", "stream")
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[int]int, n)
	for {
		l, err := drain.Next(ctx)
		if err != nil {
			t.Fatalf("draining the collector after %d messages: %v", len(got), err)
		}
		if l == "end" {
			break
		}
		i, err := strconv.Atoi(l)
		if err != nil || i < 0 || i >= n {
			t.Fatalf("collector received %q", l)
		}
		got[i]++
	}
	var lost []int
	dups := 0
	for i := range n {
		if got[i] == 0 {
			lost = append(lost, i)
		}
		dups += max(got[i]-1, 0)
	}
	t.Logf("QoS %d, %s after message %d: %d of %d delivered, %d duplicates, lost %v; client stats %+v",
		qos, mode, last, n-len(lost), n, dups, lost, c.Stats())
	if qos == 2 && dups > 0 {
		t.Errorf("QoS 2: %d messages delivered twice", dups)
	}
	switch {
	case mode == "Stop" && len(lost) > 0:
		t.Errorf("clean stop lost acknowledged messages %v", lost)
	case mode == "Kill" && (len(lost) > 1 || len(lost) == 1 && lost[0] < last):
		t.Errorf("kill lost acknowledged messages %v; at most the last one acknowledged before it (at or after %d) may go", lost, last)
	case mode == "SyncKill" && (len(lost) > 1 || len(lost) == 1 && lost[0] <= last):
		t.Errorf("kill after Sync lost acknowledged messages %v; nothing up to %d may go, and at most one after", lost, last)
	}
}
