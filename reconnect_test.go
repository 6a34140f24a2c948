package mqttas_test

// Reconnect and teardown tests: a thousand reconnect cycles must leave no
// goroutine or memory behind (paho.mqtt.golang #675 #600 #262), and Close
// and Disconnect racing an outage and busy callers must return promptly,
// without panics or leaks (paho.mqtt.golang #501, at-wat/mqtt-go #199).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// fxLeakCheck fails t if goroutines started during the test outlive it. It
// runs after every other cleanup (client, proxy and broker Close).
func fxLeakCheck(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// TestThousandReconnects: 1,000 outages (RST) and reconnects, each
// restoring a subscription. The goroutine count returns to its baseline and
// the heap does not grow; after Close nothing is left running.
func TestThousandReconnects(t *testing.T) {
	fxLeakCheck(t)
	cycles := 1000
	if testing.Short() {
		cycles = 100
	}
	const warmup = 20
	r := fxNewRig(t)
	cfg := r.config()
	cfg.ReconnectMin = time.Millisecond
	cfg.ReconnectMax = 2 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler) // a log kept in memory would grow the heap
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "tr/t", 1); err != nil {
		t.Fatal(err)
	}
	cycle := func() {
		t.Helper()
		r.proxy.Reset()
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
	}
	for range warmup {
		cycle()
	}
	fxSettle(t, r)
	baseG, baseHeap := runtime.NumGoroutine(), fxHeapInuse()

	start := time.Now()
	for range cycles {
		cycle()
	}
	el := time.Since(start)
	fxSettle(t, r)
	var g int
	fxEventually(t, 5*time.Second, "goroutines back to baseline", func() bool {
		g = runtime.NumGoroutine()
		return g <= baseG
	})
	h := fxHeapInuse()
	st := c.Stats()
	t.Logf("%d reconnects in %v (%v each): goroutines %d -> %d, heap in use %d KiB -> %d KiB; stats %+v",
		cycles, el.Round(time.Millisecond), (el / time.Duration(cycles)).Round(time.Microsecond), baseG, g, baseHeap>>10, h>>10, st)
	if limit := 2*baseHeap + 1<<20; h > limit {
		t.Errorf("heap in use grew from %d to %d bytes over %d reconnects (limit %d)", baseHeap, h, cycles, limit)
	}
	if want := uint64(warmup + cycles); st.Reconnects != want || st.Outages != want {
		t.Errorf("stats %+v, want %d reconnects and outages", st, want)
	}
	fxRoundTrip(t, c, "tr/t")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// fxSettle waits until the old connections have gone from the proxy and
// the broker, so that only the live one is counted.
func fxSettle(t *testing.T, r *fxRig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.proxy.WaitConns(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fxEventually(t, 5*time.Second, "broker down to one client", func() bool { return r.broker.Clients() == 1 })
}

// fxHeapInuse is the heap in use after a full collection.
func fxHeapInuse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestFailedRestoreReleasesConnection pins down a leak across reconnects.
// After each reconnect the client restores its subscriptions and waits for
// the SUBACK before Up. When the link dies first, the SUBSCRIBE's entry
// must leave the session with the connection: otherwise every such
// reconnect keeps, for good, a packet identifier and, through the entry,
// the dead connection with its buffers (an early version kept ~6.5 KB per
// reconnect, and 65,535 of them would have exhausted the identifiers). The
// control phase shows what a reconnect costs when nothing fails.
func TestFailedRestoreReleasesConnection(t *testing.T) {
	fxLeakCheck(t)
	attempts := 200
	if testing.Short() {
		attempts = 50
	}
	r := fxNewRig(t)
	cfg := r.config()
	cfg.ReconnectMin = time.Millisecond
	cfg.ReconnectMax = 2 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	c := r.connect(cfg)
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "ls/t", 1); err != nil {
		t.Fatal(err)
	}
	cycle := func() {
		t.Helper()
		r.proxy.Reset()
		fxWaitDown(t, c, 3*time.Second)
		fxWaitUp(t, c, 3*time.Second)
	}
	fxSettle(t, r)
	before := fxHeapInuse()
	for range attempts {
		cycle()
	}
	fxSettle(t, r)
	control := (float64(fxHeapInuse()) - float64(before)) / float64(attempts)

	// Now every restoring SUBSCRIBE kills its connection.
	var resets atomic.Int64
	before = fxHeapInuse()
	r.proxy.Rule(mqtttest.ToBroker, func(h packet.FixedHeader, _ []byte) mqtttest.Action {
		if h.Type == packet.SUBSCRIBE {
			resets.Add(1)
			return mqtttest.ResetConn()
		}
		return mqtttest.Forward()
	})
	r.proxy.Reset()
	fxWaitDown(t, c, 3*time.Second)
	fxEventually(t, 20*time.Second, "restores failed", func() bool { return resets.Load() >= int64(attempts) })
	r.proxy.Heal()
	fxWaitUp(t, c, 5*time.Second)
	fxSettle(t, r)
	failed := (float64(fxHeapInuse()) - float64(before)) / float64(resets.Load())
	t.Logf("heap growth per reconnect: %.0f B when it succeeds, %.0f B when the restore fails (%d failed restores)", control, failed, resets.Load())
	if failed > 1024 {
		t.Errorf("every reconnect whose restoring SUBSCRIBE dies with the link keeps %.0f bytes for good", failed)
	}
	fxRoundTrip(t, c, "ls/t")
}

// raceWorkers keeps a client busy from every side until it closes:
// publishers at each QoS (one with large payloads, to fill buffers), a
// subscriber that subscribes and unsubscribes, and readers of Messages, Up
// and Down. wait returns the first unexpected error of each worker.
type raceWorkers struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	active chan struct{} // closed when the first message comes back
}

// startRaceWorkers starts the workers on c, which is subscribed to race/#
// so that its own messages come back, and waits until they flow.
func startRaceWorkers(t *testing.T, c *mqttas.Client) *raceWorkers {
	t.Helper()
	if err := c.Subscribe(fxCtx(t, 3*time.Second), "race/#", 2); err != nil {
		t.Fatal(err)
	}
	w := &raceWorkers{active: make(chan struct{})}
	defer func() {
		t.Helper()
		timer := time.NewTimer(3 * time.Second)
		defer timer.Stop()
		select {
		case <-w.active:
		case <-timer.C:
			t.Fatal("the workers' messages never came back")
		}
	}()
	fail := func(err error) {
		w.mu.Lock()
		w.errs = append(w.errs, err)
		w.mu.Unlock()
	}
	// A worker's loop ends when its call returns ErrClosed; the ctx is only
	// a bound, and its expiry is a failure.
	loop := func(name string, call func(ctx context.Context) error) {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for {
				err := call(ctx)
				switch {
				case err == nil:
				case errors.Is(err, mqttas.ErrClosed):
					return
				default:
					fail(fmt.Errorf("%s: %w", name, err))
					return
				}
			}
		}()
	}
	big := make([]byte, 64<<10)
	for q := range byte(3) {
		loop("publish QoS "+strconv.Itoa(int(q)), func(ctx context.Context) error {
			return c.Publish(ctx, "race/"+strconv.Itoa(int(q)), []byte("x"), q, false)
		})
	}
	loop("publish large QoS 0", func(ctx context.Context) error { return c.Publish(ctx, "race/big", big, 0, false) })
	loop("publish large QoS 1", func(ctx context.Context) error { return c.Publish(ctx, "race/big", big, 1, false) })
	i := 0
	loop("subscribe/unsubscribe", func(ctx context.Context) error {
		i++
		f := "race/s/" + strconv.Itoa(i%4)
		if err := c.Subscribe(ctx, f, byte(i%3)); err != nil {
			return err
		}
		return c.Unsubscribe(ctx, f)
	})
	for _, ch := range []<-chan struct{}{c.Up(), c.Down()} {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for range ch {
			}
		}()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		first := true
		for range c.Messages() {
			if first {
				first = false
				close(w.active)
			}
		}
	}()
	return w
}

// wait waits for every worker to end, at most d.
func (w *raceWorkers) wait(t *testing.T, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		buf := make([]byte, 1<<20)
		t.Fatalf("workers still running %v after the client closed:\n%s", d, buf[:runtime.Stack(buf, true)])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.errs {
		t.Error(err)
	}
}

// raceFaults are the outages Close and Disconnect race with. Each breaks
// the link and keeps it broken; the rig's cleanup heals nothing, the
// client is gone by then.
type raceFault struct {
	name   string
	inject func(r *fxRig)
}

var raceFaults = []raceFault{
	{"reset and refuse", func(r *fxRig) { r.proxy.Refuse(true); r.proxy.Reset() }},
	{"FIN", func(r *fxRig) { r.proxy.CloseConns() }},
	{"blackhole", func(r *fxRig) { r.proxy.Blackhole(mqtttest.Both) }},
	{"broker stops reading", func(r *fxRig) { r.proxy.StopReading(mqtttest.ToBroker) }},
	{"broker stop", func(r *fxRig) { _ = r.broker.Stop() }},
	{"no CONNACK on reconnect", func(r *fxRig) { r.proxy.Blackhole(mqtttest.ToClient); r.proxy.Reset() }},
}

// raceDelays place the Close at different points of the outage: at once,
// during detection and during the reconnect loop. They are the fault's
// timing, not synchronisation.
var raceDelays = []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond}

// fxRaceDelays is raceDelays, fewer under -short.
func fxRaceDelays() []time.Duration {
	if testing.Short() {
		return []time.Duration{0, 10 * time.Millisecond, 100 * time.Millisecond}
	}
	return raceDelays
}

// TestCloseRacesOutage: Close during each kind of outage, at several

// startRace connects a client with workers calling it concurrently, injects
// fault f and lets delay pass: the common start of the close-race tests.
func startRace(t *testing.T, f raceFault, delay time.Duration) (*mqttas.Client, *raceWorkers) {
	t.Helper()
	r := fxNewRig(t)
	c := r.connect(r.config())
	w := startRaceWorkers(t, c)
	f.inject(r)
	if delay > 0 {
		timer := time.NewTimer(delay)
		<-timer.C
	}
	return c, w
}

// moments, with publishers and subscribers busy, returns promptly; every
// blocked call returns ErrClosed; later calls return ErrClosed; no panic
// and no goroutine left.
func TestCloseRacesOutage(t *testing.T) {
	fxLeakCheck(t)
	for _, f := range raceFaults {
		for _, delay := range fxRaceDelays() {
			t.Run(fmt.Sprintf("%s/after %v", f.name, delay), func(t *testing.T) {
				t.Parallel()
				c, w := startRace(t, f, delay)
				start := time.Now()
				closed := make(chan error, 1)
				go func() { closed <- c.Close() }()
				timer := time.NewTimer(2 * time.Second)
				defer timer.Stop()
				select {
				case err := <-closed:
					if err != nil {
						t.Errorf("Close: %v", err)
					}
				case <-timer.C:
					t.Fatal("Close did not return within 2s")
				}
				if el := time.Since(start); el > fxResponseTime {
					t.Errorf("Close took %v", el)
				}
				w.wait(t, 2*time.Second)
				fxCheckClosed(t, c)
			})
		}
	}
}

// TestDisconnectRacesDrop: Disconnect during each kind of outage returns
// within its ctx (paho.mqtt.golang #501), whether or not the DISCONNECT
// could be sent, and leaves the client closed.
func TestDisconnectRacesDrop(t *testing.T) {
	fxLeakCheck(t)
	const bound = 300 * time.Millisecond
	for _, f := range raceFaults {
		for _, delay := range fxRaceDelays() {
			t.Run(fmt.Sprintf("%s/after %v", f.name, delay), func(t *testing.T) {
				t.Parallel()
				c, w := startRace(t, f, delay)
				ctx, cancel := context.WithTimeout(context.Background(), bound)
				defer cancel()
				start := time.Now()
				done := make(chan error, 1)
				go func() { done <- c.Disconnect(ctx) }()
				timer := time.NewTimer(2 * time.Second)
				defer timer.Stop()
				select {
				case err := <-done:
					if err != nil {
						t.Logf("Disconnect: %v", err)
					}
				case <-timer.C:
					t.Fatal("Disconnect did not return within 2s")
				}
				if el := time.Since(start); el > bound+100*time.Millisecond {
					t.Errorf("Disconnect took %v with a ctx of %v", el, bound)
				}
				w.wait(t, 2*time.Second)
				fxCheckClosed(t, c)
			})
		}
	}
}

// fxCheckClosed checks a closed client: every call returns ErrClosed at
// once, the channels are closed, Close and Disconnect stay idempotent.
func fxCheckClosed(t *testing.T, c *mqttas.Client) {
	t.Helper()
	ctx := fxCtx(t, time.Second)
	if err := c.Publish(ctx, "x", nil, 1, false); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Publish after close: %v", err)
	}
	if err := c.Subscribe(ctx, "x", 1); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Subscribe after close: %v", err)
	}
	if err := c.Unsubscribe(ctx, "x"); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Unsubscribe after close: %v", err)
	}
	if err := c.Connect(ctx); !errors.Is(err, mqttas.ErrClosed) {
		t.Errorf("Connect after close: %v", err)
	}
	if c.IsConnected() || c.BrokerUp(ctx) {
		t.Error("closed client reports a link")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_ = c.Disconnect(ctx)
	for name, ch := range map[string]<-chan struct{}{"Up": c.Up(), "Down": c.Down()} {
		select {
		case _, ok := <-ch:
			if ok {
				for range ch {
				}
			}
		default:
			t.Errorf("%s not closed", name)
		}
	}
}
