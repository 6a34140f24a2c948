package mqttas_test

// Fault tests of the link itself: blackholes (both ways and one way),
// latency and jitter, one-byte writes, a slow link, a broker that stops
// reading and one that never sends CONNACK.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// TestBlackholeDetectedWithinPingPlusResponse: a link that silently drops
// everything both ways is reported Down within PingInterval+ResponseTime,
// whatever the phase of the keep-alive cycle, and comes back Up once the
// link returns (paho.mqtt.golang #83 #122 #328 #411). The worst phase is
// the one just after a PINGRESP: the whole next ping cycle passes in
// silence. The second configuration has a ResponseTime longer than the
// PingInterval, as when a user shortens the ping interval.
func TestBlackholeDetectedWithinPingPlusResponse(t *testing.T) {
	configs := []struct {
		name       string
		ping, resp time.Duration
	}{
		{"ping 250ms response 400ms", fxPingInterval, fxResponseTime},
		{"ping 200ms response 800ms", 200 * time.Millisecond, 800 * time.Millisecond},
	}
	if testing.Short() {
		configs = configs[:1]
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			r := fxNewRig(t)
			cfg := r.config()
			cfg.PingInterval, cfg.ResponseTime = tc.ping, tc.resp
			c := r.connect(cfg)
			obs := fxObserve(t, r.broker, "bh/#")
			bound := tc.ping + tc.resp
			phases := []string{"at Up", "PingInterval/3 after Up", "2/3 PingInterval after Up", "just after a PINGRESP"}
			var worst time.Duration
			for i, phase := range phases {
				var start time.Time
				switch i {
				case 0, 1, 2:
					if i > 0 {
						timer := time.NewTimer(time.Duration(i) * tc.ping / 3) // the fault's timing, not synchronisation
						<-timer.C
					}
					start = time.Now()
					r.proxy.Blackhole(mqtttest.Both)
				case 3:
					// The rules let the next PINGRESP through and silence both
					// directions from then on.
					var cut atomic.Bool
					at := make(chan time.Time, 1)
					r.proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
						if cut.Load() {
							return mqtttest.BlackholeFrom()
						}
						if h.Type == packet.PINGRESP {
							cut.Store(true)
							at <- time.Now()
						}
						return mqtttest.Forward()
					})
					r.proxy.Rule(mqtttest.ToBroker, func(packet.FixedHeader, []byte) mqtttest.Action {
						if cut.Load() {
							return mqtttest.BlackholeFrom()
						}
						return mqtttest.Forward()
					})
					timer := time.NewTimer(3 * bound)
					select {
					case start = <-at:
						timer.Stop()
					case <-timer.C:
						t.Fatal("no PINGRESP")
					}
				}
				fxWaitDown(t, c, bound+3*time.Second)
				lat := time.Since(start)
				worst = max(worst, lat)
				t.Logf("detection latency %v (%s; bound PingInterval %v + ResponseTime %v = %v)", lat.Round(time.Millisecond), phase, tc.ping, tc.resp, bound)
				if lat > bound+fxTolerance {
					t.Errorf("blackhole %s detected after %v, want within PingInterval+ResponseTime %v (+ %v)", phase, lat.Round(time.Millisecond), bound, fxTolerance)
				}
				if c.IsConnected() {
					t.Error("IsConnected after Down")
				}
				r.proxy.Heal()
				fxWaitUp(t, c, 3*time.Second)
				if got := c.Stats().Outages; got != uint64(i+1) {
					t.Errorf("Outages = %d after %d blackholes, want %d", got, i+1, i+1)
				}
				topic := "bh/" + strconv.Itoa(i)
				if err := c.Publish(fxCtx(t, 3*time.Second), topic, []byte("after"), 1, false); err != nil {
					t.Fatalf("Publish after heal: %v", err)
				}
				if m := fxNextObserved(t, obs, 2*time.Second); m.Topic != topic {
					t.Errorf("observed %q, want %s", m.Topic, topic)
				}
			}
			t.Logf("detection latency worst %v over %d phases (bound %v)", worst.Round(time.Millisecond), len(phases), bound)
		})
	}
}

// TestOneWayBlackhole: a link dead in one direction only is detected, and
// the client reconnects; when the broker still believes in the old
// connection (it never saw the client go), the new one takes the session
// over.
func TestOneWayBlackhole(t *testing.T) {
	for _, dir := range []mqtttest.Direction{mqtttest.ToClient, mqtttest.ToBroker} {
		t.Run(dir.String(), func(t *testing.T) {
			r := fxNewRig(t)
			cfg := r.config()
			cfg.ClientID = "oneway-" + dir.String()
			c := r.connect(cfg)
			old := fxLiveConn(t, r.broker, cfg.ClientID)
			start := time.Now()
			r.proxy.Blackhole(dir)
			fxWaitDown(t, c, fxPingInterval+fxResponseTime+2*time.Second)
			lat := time.Since(start)
			t.Logf("detection latency %v for a %v blackhole", lat.Round(time.Millisecond), dir)
			if lat > fxPingInterval+fxResponseTime+fxTolerance {
				t.Errorf("detected after %v, want within %v", lat, fxPingInterval+fxResponseTime+fxTolerance)
			}
			// The link stays broken a while longer (the fault's duration),
			// so the FIN of the client's abandoned socket is lost too.
			hold := time.NewTimer(300 * time.Millisecond)
			<-hold.C
			r.proxy.Heal()
			fxWaitUp(t, c, 3*time.Second)
			ev := r.events.waitDisconnect(t, cfg.ClientID, old, 5*time.Second)
			if dir == mqtttest.ToBroker && !ev.takenOver {
				// The client's FIN was swallowed: only a takeover can end the
				// old connection before the broker's keep-alive does.
				t.Errorf("old connection ended by %v, want a session takeover", ev.err)
			}
			t.Logf("broker ended the old connection: takenOver=%v err=%v", ev.takenOver, ev.err)
			if n := r.broker.Clients(); n != 1 {
				t.Errorf("broker has %d clients, want 1", n)
			}
			obs := fxObserve(t, r.broker, "ow/t")
			if err := c.Publish(fxCtx(t, 3*time.Second), "ow/t", []byte("x"), 1, false); err != nil {
				t.Fatalf("Publish after reconnect: %v", err)
			}
			fxNextObserved(t, obs, 2*time.Second)
			if got := c.Stats().Outages; got != 1 {
				t.Errorf("Outages = %d, want 1", got)
			}
		})
	}
}

// TestLatencyAndJitter: 50 ms ± 30 ms each way causes no spurious outage
// and no resend, and order is preserved both ways.
func TestLatencyAndJitter(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.QueueLen = 256 // the test reads the incoming messages after they all arrived
	// The round trip is at most 160 ms; ResponseTime leaves room for a
	// loaded machine, so a resend here means a real false timeout.
	cfg.ResponseTime = time.Second
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "lj/in", 1); err != nil {
		t.Fatal(err)
	}
	obs := fxObserve(t, r.broker, "lj/out/#")
	r.proxy.Latency(50*time.Millisecond, 30*time.Millisecond)

	// Outgoing: 200 QoS 1 publishes from 8 publishers, each in sequence.
	const publishers, each = 8, 25
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range each {
				if err := c.Publish(ctx, "lj/out/"+strconv.Itoa(p), []byte(strconv.Itoa(i)), 1, false); err != nil {
					errs <- fmt.Errorf("publisher %d message %d: %w", p, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d QoS 1 publishes through 50±30 ms took %v", publishers*each, time.Since(start).Round(time.Millisecond))
	next := make([]int, publishers)
	for seen := 0; seen < publishers*each; {
		m := fxNextObserved(t, obs, 3*time.Second)
		p, _ := strconv.Atoi(strings.TrimPrefix(m.Topic, "lj/out/"))
		i, _ := strconv.Atoi(string(m.Payload))
		switch {
		case i == next[p]:
			next[p]++
			seen++
		case i < next[p]:
			t.Errorf("publisher %d: message %d observed again (a resend: see Repubs)", p, i)
		default:
			t.Fatalf("publisher %d: observed %d, want %d (out of order or lost)", p, i, next[p])
		}
	}

	// Incoming: 200 QoS 1 messages published at once arrive in order.
	const incoming = 200
	for i := range incoming {
		if err := r.broker.Publish("lj/in", []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range incoming {
		if m := fxRecv(t, c, 3*time.Second); string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("incoming message %d is %q: out of order or lost", i, m.Payload)
		}
	}
	st := c.Stats()
	if st.Outages != 0 || st.Repubs != 0 || st.Discards != 0 {
		t.Errorf("stats %+v: latency within ResponseTime must cause no outage, resend or discard", st)
	}
}

// TestOneByteWrites: every packet arrives one byte per read, both ways;
// connecting, subscribing and publishing at every QoS still work.
func TestOneByteWrites(t *testing.T) {
	r := fxNewRig(t)
	r.proxy.Chunk(1)
	c := r.connect(r.config())
	ctx := fxCtx(t, 10*time.Second)
	if err := c.Subscribe(ctx, "ob/#", 2); err != nil {
		t.Fatal(err)
	}
	obs := fxObserve(t, r.broker, "ob/#")
	for q := range byte(3) {
		if err := c.Publish(ctx, "ob/"+strconv.Itoa(int(q)), bytes.Repeat([]byte{'a' + q}, 300), q, false); err != nil {
			t.Fatalf("Publish QoS %d: %v", q, err)
		}
	}
	if err := r.broker.Publish("ob/from-broker", []byte("hi"), 2, false); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 4 {
		m := fxRecv(t, c, 3*time.Second)
		got[m.Topic] = len(m.Payload)
	}
	want := map[string]int{"ob/0": 300, "ob/1": 300, "ob/2": 300, "ob/from-broker": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("received %v, want %v", got, want)
	}
	for range 4 {
		fxNextObserved(t, obs, 3*time.Second)
	}
	if st := c.Stats(); st.Outages != 0 {
		t.Errorf("stats %+v: one-byte writes caused an outage", st)
	}
}

// TestLargePublishThroughSlowLink: a 256 KiB publish, and its copy coming
// back, take longer than PingInterval on a slow link. Pings never split a
// packet, the payload arrives intact, and there is no false timeout.
func TestLargePublishThroughSlowLink(t *testing.T) {
	r := fxNewRig(t)
	cfg := r.config()
	cfg.PingInterval = 100 * time.Millisecond
	cfg.ResponseTime = 3 * time.Second
	var w fxWire
	r.proxy.Rule(mqtttest.ToBroker, w.record(mqtttest.ToBroker, nil))
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "big/t", 1); err != nil {
		t.Fatal(err)
	}
	obs := fxObserve(t, r.broker, "big/t")
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i*7 + i>>8)
	}
	r.proxy.Chunk(4)
	r.proxy.Latency(20*time.Millisecond, 10*time.Millisecond)
	start := time.Now()
	if err := c.Publish(fxCtx(t, 20*time.Second), "big/t", payload, 1, false); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	up := time.Since(start)
	m := fxRecv(t, c, 20*time.Second)
	round := time.Since(start)
	t.Logf("256 KiB: PUBACK after %v, copy received after %v (PingInterval %v)", up.Round(time.Millisecond), round.Round(time.Millisecond), cfg.PingInterval)
	if !bytes.Equal(m.Payload, payload) {
		t.Error("the client received a corrupted payload")
	}
	if o := fxNextObserved(t, obs, 3*time.Second); !bytes.Equal(o.Payload, payload) {
		t.Error("the broker received a corrupted payload")
	}
	if up <= cfg.PingInterval {
		t.Errorf("the upload took %v, not longer than PingInterval %v: the link was not slow enough to test anything", up, cfg.PingInterval)
	}
	pings := 0
	for _, e := range w.events() {
		if e.typ == packet.PINGREQ {
			pings++
		}
	}
	t.Logf("PINGREQs sent meanwhile: %d", pings)
	if st := c.Stats(); st.Outages != 0 || st.Repubs != 0 {
		t.Errorf("stats %+v: false timeout on a slow link", st)
	}
}

// TestBrokerStopsReading: the broker side stops reading while the client
// writes large QoS 0 messages; once the buffers are full the client's write
// blocks and its write deadline reports the link dead within about
// ResponseTime (paho.mqtt.golang #723). After the fault clears it recovers.
func TestBrokerStopsReading(t *testing.T) {
	r := fxNewRig(t)
	c := r.connect(r.config())
	payload := make([]byte, 256<<10)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var err error
		// Publish with a live link writes even once ctx is done, so the
		// loop checks ctx itself.
		for err == nil && ctx.Err() == nil {
			err = c.Publish(ctx, "sr/t", payload, 0, false)
		}
		done <- err
	}()
	start := time.Now()
	r.proxy.StopReading(mqtttest.ToBroker)
	fxWaitDown(t, c, 5*time.Second)
	lat := time.Since(start)
	t.Logf("stalled writer detected after %v (ResponseTime %v)", lat.Round(time.Millisecond), fxResponseTime)
	// The buffers between client and proxy (a few MiB) fill within
	// milliseconds at loopback speed; then ResponseTime runs.
	if lat > fxPingInterval+fxResponseTime+fxTolerance {
		t.Errorf("Down after %v, want within about ResponseTime %v", lat, fxResponseTime)
	}
	if !r.logs.contains("stopped reading") {
		t.Error("the log does not give the stalled write as the cause")
	}
	r.proxy.Heal()
	fxWaitUp(t, c, 3*time.Second)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("publisher ended with %v", err)
	}
	fxRoundTrip(t, c, "sr/after")
}

// TestNoConnack: the broker accepts TCP but never answers CONNECT; Connect
// fails with ErrTimeout after about ResponseTime.
func TestNoConnack(t *testing.T) {
	r := fxNewRig(t)
	r.proxy.Blackhole(mqtttest.ToClient)
	c := r.client(r.config())
	start := time.Now()
	err := c.Connect(fxCtx(t, 5*time.Second))
	el := time.Since(start)
	t.Logf("Connect: %v after %v", err, el.Round(time.Millisecond))
	if !errors.Is(err, mqttas.ErrTimeout) {
		t.Errorf("Connect returned %v, want ErrTimeout", err)
	}
	if el < fxResponseTime-20*time.Millisecond || el > fxResponseTime+fxTolerance {
		t.Errorf("Connect gave up after %v, want about ResponseTime %v", el, fxResponseTime)
	}
	if c.IsConnected() {
		t.Error("IsConnected after a failed Connect")
	}
}
