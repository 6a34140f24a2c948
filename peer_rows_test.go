package mqttas_test

// Rows 12, 14, 18 and 20 of the peer-failures table (failures reported
// against other Go MQTT clients), over loopback TCP and TLS through the
// embedded broker and the fault proxy.

import (
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// prArrivals counts the distinct payloads "0" to "n-1" read from a
// channel; all is closed once every one of them has arrived.
type prArrivals struct {
	all                    chan struct{}
	mu                     sync.Mutex // guards the fields below
	seen                   []bool
	distinct, total, stray int
}

// prCollect reads ch until every payload has arrived or ch is closed.
func prCollect[T any](n int, ch <-chan T, payload func(T) []byte) (*prArrivals, <-chan struct{}) {
	a := &prArrivals{all: make(chan struct{}), seen: make([]bool, n)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					return
				}
				a.note(string(payload(m)))
			case <-a.all:
				return
			}
		}
	}()
	return a, done
}

// prObserve collects what the broker routes to filter.
func prObserve(t *testing.T, b *mqtttest.Broker, filter string, n int) *prArrivals {
	t.Helper()
	sub, err := b.Subscribe(filter)
	if err != nil {
		t.Fatalf("observe %q: %v", filter, err)
	}
	a, done := prCollect(n, sub.C(), func(m mqtttest.Received) []byte { return m.Payload })
	t.Cleanup(func() { sub.Close(); <-done })
	return a
}

func (a *prArrivals) note(payload string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total++
	i, err := strconv.Atoi(payload)
	switch {
	case err != nil || i < 0 || i >= len(a.seen):
		a.stray++
	case !a.seen[i]:
		a.seen[i] = true
		if a.distinct++; a.distinct == len(a.seen) {
			close(a.all)
		}
	}
}

// wait waits until every payload has arrived and returns the number of
// deliveries read.
func (a *prArrivals) wait(t *testing.T, ctx context.Context) int {
	t.Helper()
	select {
	case <-a.all:
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.distinct != len(a.seen) || a.stray != 0 {
		t.Fatalf("%d of %d distinct messages arrived (%d deliveries, %d unexpected payloads): %v",
			a.distinct, len(a.seen), a.total, a.stray, ctx.Err())
	}
	return a.total
}

// prPublishAll runs publish(i) for i in [0, n) from workers goroutines,
// released together, and fails t if any call fails. With workers == n
// every call has a goroutine of its own.
func prPublishAll(t *testing.T, n, workers int, publish func(i int) error) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	var fails atomic.Int64
	var first atomic.Pointer[error]
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := w; i < n; i += workers {
				if err := publish(i); err != nil {
					fails.Add(1)
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	if f := fails.Load(); f > 0 {
		t.Fatalf("%d of %d Publish calls failed; the first: %v", f, n, *first.Load())
	}
	return time.Since(began)
}

func prPayload(i int) []byte { return strconv.AppendInt(nil, int64(i), 10) }

// Row 14 (paho.golang #2): never more publishes awaiting PUBACK than
// MaxInflight. The proxy holds every PUBACK for 30ms, so a client ignoring
// the limit would pour out PUBLISHes meanwhile. A PUBACK counts from its
// release (read time plus the delay, never after the proxy's write): a
// correct client, which needs it in hand before the next PUBLISH, never
// appears over the limit, and one that sends early is caught at once.
func TestMaxInflightNeverExceeded(t *testing.T) {
	const (
		maxInflight = 4
		total       = 200
		workers     = 50
		ackDelay    = 30 * time.Millisecond
	)
	ctx := ctxFor(t, 30*time.Second)
	broker := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, broker.Addr())
	arrivals := prObserve(t, broker, "inflight/#", total)

	var (
		mu                     sync.Mutex  // guards the counters below; the rules run on the proxy's goroutines
		released               []time.Time // per PUBACK, when the proxy releases it to the client
		publishes, dups, acked int         // acked: PUBACKs released by the latest PUBLISH
		maxOut                 int         // max of publishes - acked, sampled at each PUBLISH
	)
	proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type != packet.PUBACK {
			return mqtttest.Forward()
		}
		mu.Lock()
		released = append(released, time.Now().Add(ackDelay))
		mu.Unlock()
		return mqtttest.Delay(ackDelay)
	})
	proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type != packet.PUBLISH {
			return mqtttest.Forward()
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		publishes++
		if h.Flags&0x08 != 0 {
			dups++
		}
		for acked < len(released) && !released[acked].After(now) {
			acked++
		}
		maxOut = max(maxOut, publishes-acked)
		return mqtttest.Forward()
	})

	c := newClosingClient(t, mqttas.Config{Server: proxy.Addr(), MaxInflight: maxInflight})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := prPublishAll(t, total, workers, func(i int) error {
		return c.Publish(ctx, "inflight/"+strconv.Itoa(i%workers), prPayload(i), 1, false)
	})
	deliveries := arrivals.wait(t, ctx)

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d QoS 1 publishes from %d goroutines with every PUBACK held %v: %v; proxy saw %d PUBLISHes (%d DUP), %d PUBACKs; max awaiting PUBACK %d; broker routed %d",
		total, workers, ackDelay, elapsed.Round(time.Millisecond), publishes, dups, len(released), maxOut, deliveries)
	if maxOut != maxInflight { // more breaks the limit; fewer never tested it
		t.Errorf("up to %d PUBLISHes awaiting PUBACK at once, want exactly MaxInflight %d", maxOut, maxInflight)
	}
}

// Row 20 (mqtt_as #54): a burst of concurrent QoS 1 publishes, one
// goroutine per call, must all be acknowledged and delivered, with never
// more than MaxInflight awaiting PUBACK and the heap back near where it
// started once they are done.
func TestTenThousandConcurrentPublishes(t *testing.T) {
	const maxInflight = 64
	n := 10_000
	if raceEnabled {
		// The race detector refuses to run with more than 8,128 live
		// goroutines; the client and the broker need some of their own.
		n = 6_000
		t.Logf("race detector on: %d concurrent publishes instead of 10,000 (it caps live goroutines at 8,128)", n)
	}
	ctx := ctxFor(t, 60*time.Second)
	broker := mqtttest.StartBroker(t)
	arrivals := prObserve(t, broker, "burst/#", n)
	c := newClosingClient(t, mqttas.Config{Server: broker.Addr(), MaxInflight: maxInflight})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	baseline := prHeap()

	// Sample the client while the burst runs. Stats has no event to wait
	// on, so this is a bounded loop on a ticker: it ends when the burst does.
	type sample struct {
		n, maxInFlight      int
		maxUnsent, peakHeap uint64
	}
	stop, sampled := make(chan struct{}), make(chan sample, 1)
	go func() {
		var s sample
		var ms runtime.MemStats
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for ; ; s.n++ {
			st := c.Stats()
			s.maxInFlight, s.maxUnsent = max(s.maxInFlight, st.InFlight), max(s.maxUnsent, uint64(st.UnsentBytes))
			if s.n%20 == 0 {
				runtime.ReadMemStats(&ms)
				s.peakHeap = max(s.peakHeap, ms.HeapAlloc)
			}
			select {
			case <-tick.C:
			case <-stop: // the burst is over
				sampled <- s
				return
			case <-ctx.Done(): // the test failed first
				return
			}
		}
	}()

	elapsed := prPublishAll(t, n, n, func(i int) error {
		return c.Publish(ctx, "burst/"+strconv.Itoa(i%100), prPayload(i), 1, false)
	})
	close(stop)
	s := <-sampled
	deliveries := arrivals.wait(t, ctx)

	after := prHeap()
	st := c.Stats()
	t.Logf("%d concurrent QoS 1 publishes in %v; broker routed %d; %d samples: max InFlight %d, max UnsentBytes %d; heap %.1f MiB before, peak %.1f MiB, %.1f MiB after GC; %+v",
		n, elapsed.Round(time.Millisecond), deliveries, s.n, s.maxInFlight, s.maxUnsent,
		prMiB(baseline), prMiB(s.peakHeap), prMiB(after), st)
	if s.maxInFlight > maxInflight {
		t.Errorf("Stats().InFlight reached %d, above MaxInflight %d", s.maxInFlight, maxInflight)
	}
	if st.InFlight != 0 || st.UnsentBytes != 0 {
		t.Errorf("after every Publish returned: InFlight %d, UnsentBytes %d, want 0 and 0", st.InFlight, st.UnsentBytes)
	}
	// All the burst allocated is garbage once it is over, but for slack:
	// the runtime keeps every goroutine descriptor it ever made (~400 B
	// each), and the broker and the runtime keep caches.
	const slack = 16 << 20
	if after > baseline+slack {
		t.Errorf("heap after the burst and a GC is %.1f MiB, %.1f MiB above the %.1f MiB before it (allowed %d MiB)",
			prMiB(after), prMiB(after-baseline), prMiB(baseline), slack>>20)
	}
	// While it runs: a bounded cost per waiting call, no growing backlog.
	if peak := s.peakHeap; peak > baseline+uint64(n)*8<<10 {
		t.Errorf("heap peaked at %.1f MiB during the burst, over 8 KiB per call above the %.1f MiB baseline",
			prMiB(peak), prMiB(baseline))
	}
}

func prHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func prMiB(b uint64) float64 { return float64(b) / (1 << 20) }

// Row 18 (libmqtt, gomqtt): reconnect backoff that is never reset ends up
// at its maximum for good. mqttas doubles the delay from ReconnectMin to
// ReconnectMax while attempts fail, and once a connection has survived a
// keep-alive round (PingInterval+ResponseTime) it tries again at once, from
// ReconnectMin.
func TestBackoffResetsAndGrows(t *testing.T) {
	const (
		reconnectMin, reconnectMax = 50 * time.Millisecond, 1600 * time.Millisecond
		pingInterval, responseTime = 100 * time.Millisecond, 200 * time.Millisecond
		immediate                  = 400 * time.Millisecond
		window                     = 3 * time.Second
		proofPings                 = 4 // 4 PINGRESPs take at least 4×PingInterval > PingInterval+ResponseTime
	)
	ctx := ctxFor(t, 30*time.Second)
	broker := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, broker.Addr())
	var c *mqttas.Client
	// Count the PINGRESPs the client receives: each proves the link for
	// one more PingInterval. pongWake holds a token after every one.
	var pongs atomic.Int64
	pongWake := make(chan struct{}, 1)
	proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type == packet.PINGRESP {
			pongs.Add(1)
			select {
			case pongWake <- struct{}{}:
			default:
			}
		}
		return mqtttest.Forward()
	})
	proven := func() { // waits until the link has proved itself
		t.Helper()
		for want := pongs.Load() + proofPings; pongs.Load() < want; {
			select {
			case <-pongWake:
			case <-ctx.Done():
				t.Fatalf("waiting for %d PINGRESPs: %v", proofPings, ctx.Err())
			}
		}
	}
	// Every attempt starts with a dial: record when.
	dials := make(chan time.Time, 256)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		select { // never block the client, even one stuck in a loop
		case dials <- time.Now():
		default:
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	dropProven := func(what string) { // a proven link drops: retried at once
		t.Helper()
		proven()
		reset := time.Now()
		proxy.Reset()
		awaitSignal(t, ctx, c.Down(), "Down")
		awaitSignal(t, ctx, c.Up(), "Up")
		if d := time.Since(reset); d >= immediate {
			t.Errorf("%s: Up %v after a proven connection was reset, want under %v (an immediate retry)", what, d, immediate)
		} else {
			t.Logf("%s: proven connection reset, Up again after %v", what, d.Round(time.Millisecond))
		}
	}
	c = newClosingClient(t, mqttas.Config{
		Server: proxy.Addr(), Dial: dial,
		ReconnectMin: reconnectMin, ReconnectMax: reconnectMax,
		KeepAlive: 2 * time.Second, PingInterval: pingInterval, ResponseTime: responseTime,
	})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	awaitSignal(t, ctx, c.Up(), "Up")
	dropProven("(a)") // the first drop of a proven link

	// (b) The broker's port answers but hangs up on every attempt: the
	// delay doubles from ReconnectMin towards ReconnectMax.
	proven()
	for len(dials) > 0 {
		<-dials
	}
	accepted := proxy.Accepted()
	proxy.Refuse(true)
	reset := time.Now()
	proxy.Reset()
	awaitSignal(t, ctx, c.Down(), "Down")
	end := time.After(window - time.Since(reset))
	var at []time.Time
collect:
	for {
		select {
		case d := <-dials:
			at = append(at, d)
		case <-end:
			break collect
		}
	}
	proxyAttempts := proxy.Accepted() - accepted
	var gaps []time.Duration // gaps[0]: from the reset to the first attempt
	for i, prev := 0, reset; i < len(at); prev, i = at[i], i+1 {
		gaps = append(gaps, at[i].Sub(prev).Round(time.Millisecond))
	}
	t.Logf("(b) refused for %v: %d dials (%d accepted by the proxy), delays %v", window, len(at), proxyAttempts, gaps)
	if len(at) < 3 || len(at) > 15 || proxyAttempts < 3 || proxyAttempts > 15 {
		t.Errorf("(b) %d attempts (%d at the proxy) in %v with backoff %v..%v, want 3 to 15: neither stuck nor a tight loop",
			len(at), proxyAttempts, window, reconnectMin, reconnectMax)
	}
	if d := len(at) - proxyAttempts; d < 0 || d > 1 { // one dial may be on its way at the window's end
		t.Errorf("(b) %d dials but the proxy accepted %d connections", len(at), proxyAttempts)
	}
	if len(gaps) >= 3 && gaps[len(gaps)-1] < 2*gaps[1] {
		t.Errorf("(b) the backoff does not grow: first gap between attempts %v, last %v, want the last at least twice the first", gaps[1], gaps[len(gaps)-1])
	}

	// The broker answers again: the next attempt, at most one jittered
	// ReconnectMax away, succeeds.
	proxy.Refuse(false)
	healed := time.Now()
	awaitSignal(t, ctx, c.Up(), "Up")
	bound := reconnectMax*5/4 + 500*time.Millisecond // 25% jitter, and the attempt itself
	if d := time.Since(healed); d > bound {
		t.Errorf("(b) Up %v after the broker answered again, want within %v", d, bound)
	} else {
		t.Logf("(b) broker answers again: Up after %v", d.Round(time.Millisecond))
	}

	// (c) The delay had grown to ReconnectMax; a proven connection resets
	// it, so the next drop is again retried at once, not after ~1.6s.
	dropProven("(c) after backing off to ReconnectMax")
	if s := c.Stats(); s.Outages != 3 || s.Reconnects != 3 {
		t.Errorf("Stats = %+v, want 3 outages and 3 reconnects", s)
	}
}

// Row 12 (paho.golang #81): concurrent writes on a tls.Conn corrupted the
// stream. On one TLS connection twenty goroutines publish, the reader
// PUBACKs the client's own messages coming back, and the pinger runs every
// 50ms: a corrupt record would kill the link or lose messages. The pinger
// speaks only after PingInterval of silence, which a steady stream never
// leaves, so the TLS front forwards to the proxy, which sees cleartext and
// holds every 200th PUBACK for 50-70ms: the pinger pings about when the
// held acknowledgements are released and every publisher writes at once.
func TestTLSConcurrentWritersSoak(t *testing.T) {
	const (
		workers, each = 20, 200
		total         = workers * each
		holdEvery     = 200
		pingInterval  = 50 * time.Millisecond
	)
	ctx := ctxFor(t, 60*time.Second)
	pki := newTestPKI(t)
	broker := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, broker.Addr())
	var pingreqs, pubacks atomic.Int64
	proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type == packet.PINGREQ {
			pingreqs.Add(1)
		}
		return mqtttest.Forward()
	})
	proxy.Rule(mqtttest.ToClient, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type != packet.PUBACK {
			return mqtttest.Forward()
		}
		if n := pubacks.Add(1); n%holdEvery == 0 {
			return mqtttest.Delay(pingInterval + time.Duration(n/holdEvery%5)*5*time.Millisecond)
		}
		return mqtttest.Forward()
	})
	arrivals := prObserve(t, broker, "tlssoak/#", total)
	addr := tlsFront(t, proxy.Addr(), &tls.Config{Certificates: []tls.Certificate{pki.server}})
	c := newClosingClient(t, mqttas.Config{
		Server:       "mqtts://" + addr,
		TLS:          &tls.Config{RootCAs: pki.pool},
		PingInterval: pingInterval,
		QueueLen:     total + 16,
	})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	} else if err := c.Subscribe(ctx, "tlssoak/#", 1); err != nil {
		t.Fatal(err)
	}

	// The subscriber side: every message comes back over the same TLS
	// connection. Close ends the collector if the test fails first.
	received, _ := prCollect(total, c.Messages(), func(m mqttas.Message) []byte { return m.Payload })
	elapsed := prPublishAll(t, total, workers, func(i int) error {
		return c.Publish(ctx, "tlssoak/"+strconv.Itoa(i%workers), prPayload(i), 1, false)
	})
	routed := arrivals.wait(t, ctx)
	got := received.wait(t, ctx)

	s := c.Stats()
	holds := total / holdEvery
	t.Logf("TLS: %d QoS 1 publishes from %d goroutines in %v; broker routed %d, client received %d; %d PUBACKs held, %d PINGREQs; %+v",
		total, workers, elapsed.Round(time.Millisecond), routed, got, holds, pingreqs.Load(), s)
	if s.Outages != 0 || s.Reconnects != 0 {
		t.Errorf("Stats = %+v: the TLS link broke under concurrent writers", s)
	}
	if s.Discards != 0 {
		t.Errorf("client discarded %d received messages", s.Discards)
	}
	if n := pingreqs.Load(); n < int64(holds)/2 {
		t.Errorf("only %d PINGREQs during %d quiet spells: the pinger was not writing alongside the publishers", n, holds)
	}
}
