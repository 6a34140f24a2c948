package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttas/mqttas/internal/mosquitto"
)

// counts sizes one run. full is the default; quick is for a smoke test.
type counts struct {
	rounds     int // runs of each throughput and latency scenario per library
	qos0       int // QoS 0 end to end
	qos1Seq    int
	qos1Window int
	window     int // publishes in flight for qos1Window
	qos2Seq    int
	rtt        int // round trips measured, after rttWarm unmeasured ones
	rttWarm    int
	alloc0     int // QoS 0 publishes counted, after allocWarm uncounted ones
	alloc1     int // QoS 1 publishes counted, after allocWarm uncounted ones
	allocWarm  int
	idle       int // clients connected at once
	reconnects int // broker outages per library
	down       time.Duration
	// deadline is how long the QoS 0 subscriber may take, after the last
	// publish, to receive every message before the run counts as lossy.
	deadline time.Duration
}

var (
	full = counts{
		rounds: 5, qos0: 100_000, qos1Seq: 5_000, qos1Window: 50_000, window: 100, qos2Seq: 3_000,
		rtt: 2_000, rttWarm: 100, alloc0: 50_000, alloc1: 5_000, allocWarm: 1_000,
		idle: 100, reconnects: 2, down: 3 * time.Second, deadline: 30 * time.Second,
	}
	quick = counts{
		rounds: 1, qos0: 20_000, qos1Seq: 1_000, qos1Window: 10_000, window: 100, qos2Seq: 500,
		rtt: 300, rttWarm: 30, alloc0: 10_000, alloc1: 1_000, allocWarm: 200,
		idle: 20, reconnects: 1, down: time.Second, deadline: 30 * time.Second,
	}
)

// payload64 is the 64-byte payload of every row of the main table.
var payload64 = []byte(strings.Repeat("0123456789abcdef", 4))

// env is what every scenario shares: the broker, the sizes, and a counter
// that makes client identifiers and topics unique within a run, so that
// nothing left over from one scenario reaches another.
type env struct {
	broker *mosquitto.Broker
	n      counts
	seq    atomic.Int64
}

// tag is a library's name as it may appear in a client id or topic.
func tag(lib library) string { return strings.ReplaceAll(lib.name(), ".", "") }

func (e *env) id(lib library, what string) string {
	return fmt.Sprintf("%s-%s-%d", tag(lib), what, e.seq.Add(1))
}

func (e *env) topic(lib library, what string) string {
	return fmt.Sprintf("bench/%s/%s/%d", tag(lib), what, e.seq.Add(1))
}

func (e *env) opts(lib library, what string) connOpts {
	return connOpts{addr: e.broker.Addr(), id: e.id(lib, what)}
}

// e2eResult is one QoS 0 end-to-end run.
type e2eResult struct {
	rate      float64 // messages received per second, first publish to last receipt
	received  int
	cpuPerMsg float64 // this process's CPU time per message, µs
}

// endToEnd publishes n messages at QoS 0 from one client of lib to
// another subscribed to the topic, as fast as lib allows (its flood
// idiom), and waits until all have arrived or, after the last publish,
// e.n.deadline has passed. Fewer than n received is an error.
func endToEnd(ctx context.Context, e *env, lib library, payload []byte, n int) (e2eResult, error) {
	var (
		got  atomic.Int64
		end  time.Time // set by the n-th receipt, before done is closed
		done = make(chan struct{})
	)
	subOpts := e.opts(lib, "sub")
	subOpts.onMsg = func() {
		if got.Add(1) == int64(n) {
			end = time.Now()
			close(done)
		}
	}
	subOpts.queue = 1 << 16
	topic := e.topic(lib, "qos0")
	sub, err := lib.connect(ctx, subOpts)
	if err != nil {
		return e2eResult{}, fmt.Errorf("subscriber: %w", err)
	}
	defer sub.close()
	if err := sub.subscribe(ctx, topic, 0); err != nil {
		return e2eResult{}, fmt.Errorf("subscribe: %w", err)
	}
	pub, err := lib.connect(ctx, e.opts(lib, "pub"))
	if err != nil {
		return e2eResult{}, fmt.Errorf("publisher: %w", err)
	}
	defer pub.close()

	cpu0 := cpuTime()
	start := time.Now()
	if err := pub.publish(ctx, topic, payload, 0, n, 0); err != nil {
		return e2eResult{}, fmt.Errorf("publish: %w", err)
	}
	wait := time.NewTimer(e.n.deadline)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
	case <-ctx.Done():
	}
	cpu := cpuTime() - cpu0
	r := e2eResult{received: int(got.Load())}
	if r.received < n {
		return r, fmt.Errorf("LOST MESSAGES: the subscriber received %d of %d QoS 0 messages within %v of the last publish",
			r.received, n, e.n.deadline)
	}
	if mc, ok := sub.(*mqttasClient); ok {
		if d := mc.stats().Discards; d > 0 {
			return r, fmt.Errorf("the subscriber's queue dropped %d messages", d)
		}
	}
	r.rate = float64(n) / end.Sub(start).Seconds()
	r.cpuPerMsg = float64(cpu.Microseconds()) / float64(n)
	return r, nil
}

// publishRate publishes n messages at qos with window outstanding (1:
// each waited for) from one client with no subscriber, and returns
// messages per second.
func publishRate(ctx context.Context, e *env, lib library, payload []byte, qos byte, n, window int) (float64, error) {
	o := e.opts(lib, "pub")
	o.inflight = window
	c, err := lib.connect(ctx, o)
	if err != nil {
		return 0, err
	}
	defer c.close()
	topic := e.topic(lib, fmt.Sprintf("q%dw%d", qos, window))
	start := time.Now()
	if err := c.publish(ctx, topic, payload, qos, n, window); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// roundTripLib is implemented by libraries that time the round trip in
// their own way (raw reads its socket inline, on the publishing
// goroutine, instead of through onMsg). It connects with o, subscribes to
// topic at QoS 1 and returns n durations in nanoseconds, each from the
// start of a QoS 1 publish to the receipt of that message.
type roundTripLib interface {
	roundTrip(ctx context.Context, o connOpts, topic string, payload []byte, n int) ([]int64, error)
}

// roundTrips has one client subscribed at QoS 1 to its own topic publish
// one QoS 1 message at a time and wait until it has both the PUBACK and
// the message back. It returns p50 and p99 in µs, after e.n.rttWarm
// unmeasured round trips.
func roundTrips(ctx context.Context, e *env, lib library) (p50, p99 float64, err error) {
	topic := e.topic(lib, "rtt")
	total := e.n.rttWarm + e.n.rtt
	var rtts []int64
	if rt, ok := lib.(roundTripLib); ok {
		rtts, err = rt.roundTrip(ctx, e.opts(lib, "rtt"), topic, payload64, total)
	} else {
		rtts, err = genericRoundTrips(ctx, e, lib, topic, total)
	}
	if err != nil {
		return math.NaN(), math.NaN(), err
	}
	rtts = rtts[e.n.rttWarm:]
	return percentile(rtts, 50) / 1e3, percentile(rtts, 99) / 1e3, nil
}

func genericRoundTrips(ctx context.Context, e *env, lib library, topic string, n int) ([]int64, error) {
	recv := make(chan time.Time, 1)
	o := e.opts(lib, "rtt")
	o.onMsg = func() {
		select {
		case recv <- time.Now():
		default: // a duplicate: only the first receipt counts
		}
	}
	c, err := lib.connect(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.subscribe(ctx, topic, 1); err != nil {
		return nil, err
	}
	rtts := make([]int64, 0, n)
	for range n {
		start := time.Now()
		if err := c.publish(ctx, topic, payload64, 1, 1, 1); err != nil {
			return nil, err
		}
		select {
		case t := <-recv:
			rtts = append(rtts, int64(t.Sub(start)))
		case <-ctx.Done():
			return nil, fmt.Errorf("own message not received: %w", ctx.Err())
		}
	}
	return rtts, nil
}

// allocsPerPublish counts heap allocations in the whole process per
// publish, over n publishes at qos made one at a time after warm
// uncounted ones, with no subscriber and no other client alive.
func allocsPerPublish(ctx context.Context, e *env, lib library, qos byte, warm, n int) (float64, error) {
	c, err := lib.connect(ctx, e.opts(lib, "alloc"))
	if err != nil {
		return math.NaN(), err
	}
	defer c.close()
	topic := e.topic(lib, fmt.Sprintf("alloc%d", qos))
	if err := c.publish(ctx, topic, payload64, qos, warm, 1); err != nil {
		return math.NaN(), err
	}
	m0 := mallocs()
	if err := c.publish(ctx, topic, payload64, qos, n, 1); err != nil {
		return math.NaN(), err
	}
	return float64(mallocs()-m0) / float64(n), nil
}

// idle connects n clients of lib with its default configuration and
// returns, per client, the goroutines and the KB of live heap they added
// once connected and quiet.
func idle(ctx context.Context, e *env, lib library, n int) (goroutines, kb float64, err error) {
	g0, h0 := settled()
	var (
		mu      sync.Mutex
		clients = make([]client, 0, n)
	)
	defer func() { closeAll(clients) }()
	err = fanOut(ctx, 16, n, func(ctx context.Context) error {
		o := e.opts(lib, "idle")
		o.defaults = true
		c, err := lib.connect(ctx, o)
		if err != nil {
			return err
		}
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return math.NaN(), math.NaN(), err
	}
	// Let each library's background goroutines start and its first
	// timers fire.
	time.Sleep(200 * time.Millisecond)
	g1, h1 := settled()
	return float64(g1-g0) / float64(n), (float64(h1) - float64(h0)) / float64(n) / 1024, nil
}

// closeAll closes clients concurrently: some libraries take a while to
// say goodbye.
func closeAll(clients []client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(c.close)
	}
	wg.Wait()
}

// reconnect connects one client of lib with its default configuration,
// kills the broker, keeps it down for e.n.down, starts it again on the
// same port and measures from the moment it accepts connections until the
// library reports that it is connected again. It does that e.n.reconnects
// times, with a new client each time, and returns the median in ms.
func reconnect(ctx context.Context, e *env, lib library) (float64, error) {
	if _, ok := lib.(rawLib); ok {
		return math.NaN(), nil // raw does not reconnect
	}
	var ms []float64
	for range e.n.reconnects {
		ups := make(chan time.Time, 1)
		o := e.opts(lib, "reconn")
		o.defaults = true
		o.onUp = func() {
			select {
			case ups <- time.Now():
			default:
			}
		}
		c, err := lib.connect(ctx, o)
		if err != nil {
			return math.NaN(), err
		}
		d, err := outage(ctx, e, ups)
		c.close()
		if err != nil {
			return math.NaN(), err
		}
		ms = append(ms, float64(d.Microseconds())/1e3)
	}
	return median(ms), nil
}

// outage kills the broker, restarts it after e.n.down and waits for a
// receipt on ups, which it returns the time to, from the broker's
// readiness. A reconnection that lands between mosquitto's bind and the
// readiness poll counts as 0.
func outage(ctx context.Context, e *env, ups <-chan time.Time) (time.Duration, error) {
	if err := e.broker.Kill(); err != nil {
		return 0, err
	}
	down := time.NewTimer(e.n.down)
	select {
	case <-down.C:
	case <-ctx.Done():
		down.Stop()
		_ = e.broker.Start()
		return 0, ctx.Err()
	}
	if err := e.broker.Start(); err != nil {
		return 0, fmt.Errorf("restarting mosquitto: %w", err)
	}
	ready := time.Now()
	select {
	case up := <-ups:
		return max(0, up.Sub(ready)), nil
	case <-ctx.Done():
		return 0, errors.New("not reconnected before the scenario's time limit")
	}
}
