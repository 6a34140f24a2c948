package mqttas_test

// TestChaosSoak: two clients exchange QoS 1 and QoS 2 messages through a
// real mosquitto while a fault proxy in front of each breaks its link at
// random every 100–500 ms (the first time after 20–100 ms, always with a
// reset). At the end nothing acknowledged may be missing
// and nothing sent at QoS 2 may have arrived twice.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/internal/mosquitto"
	"github.com/mqttas/mqttas/mqtttest"
)

// chaosScaleEnv multiplies the soak's message counts. The default run is
// the full one, 100,000 QoS 1 and 20,000 QoS 2 messages each way (about a
// minute under -race on two cores; 2,000 and 400 with -short); a scale
// of 10 runs ten times as many (give go test a -timeout to match: the
// run's bound is 10 minutes per unit of scale).
const (
	chaosScaleEnv = "MQTTAS_SOAK_SCALE"
	chaosSeedEnv  = "MQTTAS_SOAK_SEED" // replays a run's fault sequence
)

// chaosHeapBound is the most live heap (after GC, clients closed) that the
// run may leave; chaosPeakBound the most in use at any sample during it.
// The receivers' tallies are a few bytes per message, so neither grows with
// the scale beyond that.
const (
	chaosHeapBound = 64 << 20
	chaosPeakBound = 512 << 20
)

// chaosSide is one client and what the other side has received from it.
type chaosSide struct {
	name  string
	proxy *mqtttest.Proxy
	c     *mqttas.Client

	mu       sync.Mutex // guards recv and dupIn
	recv     [3][]int32 // recv[qos][seq]: deliveries of the peer's message seq
	endSeen  bool       // the peer's QoS 2 end marker arrived
	strays   []string   // messages that match no sequence
	notify   chan struct{}
	acked    [3][]atomic.Bool // acked[qos][seq]: this side's Publish returned nil
	sent     [3]atomic.Int64
	okCount  [3]atomic.Int64
	pubErrs  atomic.Int64
	firstErr atomic.Value
}

func chaosTopic(from string, qos byte) string { return "chaos/" + from + "/" + strconv.Itoa(int(qos)) }

func TestChaosSoak(t *testing.T) {
	n1, n2 := 100000, 20000
	if testing.Short() {
		n1, n2 = 2000, 400
	}
	scale := 1.0
	if s := os.Getenv(chaosScaleEnv); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("%s=%q: want a positive number", chaosScaleEnv, s)
		}
		scale = v
		n1, n2 = int(float64(n1)*scale), int(float64(n2)*scale)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(chaosSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", chaosSeedEnv, s)
		}
		seed = v
	}
	t.Logf("chaos soak: %d QoS 1 + %d QoS 2 messages each way, fault seed %d (%s=%d replays it)", n1, n2, seed, chaosSeedEnv, seed)
	// The whole run is bounded: ten minutes at the default scale.
	bound := time.Duration(float64(10*time.Minute) * max(scale, 1))
	runCtx, cancelRun := context.WithTimeout(context.Background(), bound)
	defer cancelRun()

	// mosquitto queues messages for an offline persistent client, but by
	// default only 1,000 of them (max_queued_messages), dropping the rest
	// silently: a client away for a few hundred milliseconds while its
	// peer publishes flat out would lose messages the broker acknowledged
	// to the publisher, which the test would then blame on the client.
	// 0 means no limit. max_inflight_messages (default 20) is the window
	// of QoS 1 and 2 messages the broker has on the wire to one 3.1.1
	// client; 100 keeps the receiver busy without flooding a link that has
	// just come back. (A 5.0 client sets it itself with Receive Maximum.)
	broker := mosquitto.Start(t, mosquitto.Options{Extra: []string{
		"max_queued_messages 0",
		"max_inflight_messages 100",
	}})
	leaks := goleak.IgnoreCurrent()
	base := runtime.NumGoroutine()

	sides := []*chaosSide{{name: "a"}, {name: "b"}}
	for i, s := range sides {
		s.proxy = mqtttest.StartProxy(t, broker.Addr())
		s.notify = make(chan struct{}, 1)
		for q, n := range []int{0, n1, n2} {
			s.recv[q] = make([]int32, n)
			s.acked[q] = make([]atomic.Bool, n)
		}
		cfg := mqttas.Config{
			Server:            s.proxy.Addr(),
			ClientID:          "chaos-" + s.name,
			PersistentSession: true,
			KeepAlive:         2 * time.Second, // pings every 500 ms
			ResponseTime:      time.Second,
			ReconnectMin:      10 * time.Millisecond,
			ReconnectMax:      200 * time.Millisecond,
			QueueLen:          8192,
			ConnectRetry:      true,
			Logger:            slog.New(slog.DiscardHandler),
			MQTTv5:            i == 1, // a speaks 3.1.1, b 5.0
			OnMessage:         s.receive,
		}
		c, err := mqttas.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.c = c
		ctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
		err = c.Connect(ctx)
		cancel()
		if err != nil {
			c.Close()
			t.Fatalf("%s: connect: %v", s.name, err)
		}
		defer c.Close() // on a failure; the end of the test closes it too
	}
	for i, s := range sides {
		peer := sides[1-i]
		for _, q := range []byte{1, 2} {
			ctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
			err := s.c.Subscribe(ctx, chaosTopic(peer.name, q), q)
			cancel()
			if err != nil {
				t.Fatalf("%s: subscribe: %v", s.name, err)
			}
		}
	}

	// The injector: one random fault every 100–500 ms on a random proxy,
	// timed faults lifted before the next. Heal clears the whole proxy, and
	// only one fault is ever active, so it lifts exactly that one.
	start := time.Now()
	rng := rand.New(rand.NewPCG(seed, 0x636861_6f73))
	stopFaults := make(chan struct{})
	faultsDone := make(chan struct{})
	injected := map[string]int{}
	var peakHeap uint64
	go func() {
		defer close(faultsDone)
		var ms runtime.MemStats
		hold := func(lo, hi time.Duration) bool { // false when told to stop
			tm := time.NewTimer(lo + time.Duration(rng.Int64N(int64(hi-lo))))
			defer tm.Stop()
			select {
			case <-tm.C:
				return true
			case <-stopFaults:
				return false
			}
		}
		// The first fault comes early and always breaks a link, so that
		// even a short run that the client gets through quickly has at
		// least one outage to ride out.
		first := true
		next := func() bool {
			if first {
				return hold(20*time.Millisecond, 100*time.Millisecond)
			}
			return hold(100*time.Millisecond, 500*time.Millisecond)
		}
		for next() {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			p := sides[rng.IntN(2)].proxy
			var kind string
			choice := rng.IntN(5)
			if first {
				choice, first = 1, false
			}
			switch choice {
			case 0:
				// A half-open link, and then its end. TCP never loses bytes
				// from the middle of a live stream, but a blackhole that
				// healed on the same connections would: and no broker
				// repairs that, since MQTT resends only on a new
				// connection. mosquitto would keep the lost PUBLISHes in
				// its in-flight window for good, and a 3.1.1 receiver
				// stalls once max_inflight_messages of them pile up. So
				// the link is reset before it heals, if the client's
				// keep-alive (1.5 s here) has not ended it already.
				kind = "blackhole"
				p.Blackhole(mqtttest.Both)
				hold(50*time.Millisecond, 2*time.Second)
				p.Reset()
				p.Heal()
			case 1:
				kind = "reset"
				p.Reset()
			case 2:
				kind = "close"
				p.CloseConns()
			case 3:
				kind = "latency"
				p.Latency(time.Duration(20+rng.IntN(180))*time.Millisecond, 50*time.Millisecond)
				hold(100*time.Millisecond, 600*time.Millisecond)
				p.Heal()
			case 4:
				kind = "chunk1"
				p.Chunk(1)
				hold(50*time.Millisecond, 300*time.Millisecond)
				p.Heal()
			}
			injected[kind]++
		}
	}()

	// The publishers: several goroutines per client and QoS, sharing
	// one sequence per client and QoS.
	var pubs sync.WaitGroup
	for _, s := range sides {
		for q, workers := range []int{0, 6, 2} {
			var next atomic.Int64
			for range workers {
				pubs.Add(1)
				go func() {
					defer pubs.Done()
					s.publishLoop(runCtx, byte(q), &next)
				}()
			}
		}
	}
	pubs.Wait()
	pubTime := time.Since(start)
	close(stopFaults)
	<-faultsDone
	for _, s := range sides {
		s.proxy.Heal()
	}

	// Now the link is healed: a QoS 2 end marker each way, published after
	// everything else, and then a wait (bounded) until every acknowledged
	// message and the marker have arrived. The marker gives a duplicate
	// still on its way a chance to be counted.
	for _, s := range sides {
		ctx, cancel := context.WithTimeout(runCtx, 30*time.Second)
		if err := s.c.Publish(ctx, chaosTopic(s.name, 2), []byte("end"), 2, false); err != nil {
			t.Errorf("%s: end marker: %v", s.name, err)
		}
		cancel()
	}
	settle := time.Now()
	for i, s := range sides {
		if err := sides[1-i].waitAll(runCtx, s, 60*time.Second); err != nil {
			t.Errorf("%s → %s: %v", s.name, sides[1-i].name, err)
			t.Logf("mosquitto's QoS 1 and 2 exchanges with chaos-%s left open on its last connection: %s",
				sides[1-i].name, chaosOpenExchanges(broker.Log(), "chaos-"+sides[1-i].name))
		}
	}
	settleTime := time.Since(settle)

	// Close both, then the goroutines must drain back to the baseline.
	stats := make([]mqttas.Stats, len(sides))
	for i, s := range sides {
		stats[i] = s.c.Stats()
		if err := s.c.Close(); err != nil {
			t.Errorf("%s: close: %v", s.name, err)
		}
	}
	for _, s := range sides {
		s.proxy.Close()
	}
	if err := chaosWaitGoroutines(base, 10*time.Second); err != nil {
		t.Error(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	elapsed := time.Since(start)

	// The report.
	totalFaults := 0
	for _, n := range injected {
		totalFaults += n
	}
	t.Logf("faults injected: %d %v; publishing took %v, settling %v, total %v; heap in use after GC %.1f MiB, peak sampled %.1f MiB",
		totalFaults, injected, pubTime.Round(time.Millisecond), settleTime.Round(time.Millisecond),
		elapsed.Round(time.Millisecond), float64(ms.HeapInuse)/(1<<20), float64(peakHeap)/(1<<20))
	for i, s := range sides {
		r := sides[1-i]
		st := stats[i]
		for _, q := range []byte{1, 2} {
			lost, dups, received := r.tally(s, q)
			t.Logf("%s → %s QoS %d: sent=%d acknowledged=%d received=%d lost=%d duplicates=%d",
				s.name, r.name, q, s.sent[q].Load(), s.okCount[q].Load(), received, len(lost), dups)
			if len(lost) > 0 {
				t.Errorf("%s → %s QoS %d: %d acknowledged messages never arrived, e.g. %v", s.name, r.name, q, len(lost), lost[:min(len(lost), 10)])
			}
			if q == 2 && dups > 0 {
				t.Errorf("%s → %s QoS 2: %d duplicates", s.name, r.name, dups)
			}
		}
		t.Logf("%s (MQTT %s): outages=%d reconnects=%d repubs=%d discards=%d publish errors=%d",
			s.name, map[bool]string{false: "3.1.1", true: "5.0"}[i == 1], st.Outages, st.Reconnects, st.Repubs, st.Discards, s.pubErrs.Load())
		if n := s.pubErrs.Load(); n > 0 {
			t.Errorf("%s: %d publishes failed, first: %v", s.name, n, s.firstErr.Load())
		}
		if st.Discards > 0 {
			t.Errorf("%s: %d incoming messages discarded: the receiver fell behind QueueLen", s.name, st.Discards)
		}
		if strays := r.strayList(); len(strays) > 0 {
			t.Errorf("%s: %d unexpected messages, e.g. %q", r.name, len(strays), strays[:min(len(strays), 5)])
		}
	}
	if stats[0].Outages+stats[1].Outages == 0 {
		t.Error("no outage at all: the faults did not bite")
	}
	if ms.HeapInuse > chaosHeapBound {
		t.Errorf("heap in use after GC: %d bytes, over the %d bound", ms.HeapInuse, chaosHeapBound)
	}
	if peakHeap > chaosPeakBound {
		t.Errorf("peak heap in use: %d bytes, over the %d bound", peakHeap, chaosPeakBound)
	}
	goleak.VerifyNone(t, leaks)
}

// publishLoop publishes the next sequence numbers at qos until they are all
// taken or ctx ends.
func (s *chaosSide) publishLoop(ctx context.Context, qos byte, next *atomic.Int64) {
	topic := chaosTopic(s.name, qos)
	for {
		seq := int(next.Add(1) - 1)
		if seq >= len(s.acked[qos]) || ctx.Err() != nil {
			return
		}
		s.sent[qos].Add(1)
		if err := s.c.Publish(ctx, topic, []byte(strconv.Itoa(seq)), qos, false); err != nil {
			if s.pubErrs.Add(1) == 1 {
				s.firstErr.Store(fmt.Errorf("publish %s %d: %w", topic, seq, err))
			}
			continue
		}
		s.acked[qos][seq].Store(true)
		s.okCount[qos].Add(1)
	}
}

// receive is the OnMessage callback: it counts the peer's messages.
func (s *chaosSide) receive(m mqttas.Message) {
	parts := strings.Split(m.Topic, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}()
	if len(parts) == 3 && parts[2] == "2" && string(m.Payload) == "end" {
		s.endSeen = true
		return
	}
	q, err1 := strconv.Atoi(parts[len(parts)-1])
	seq, err2 := strconv.Atoi(string(m.Payload))
	if len(parts) != 3 || err1 != nil || err2 != nil || q < 1 || q > 2 || seq < 0 || seq >= len(s.recv[q]) {
		if len(s.strays) < 100 {
			s.strays = append(s.strays, m.Topic+" "+string(m.Payload))
		}
		return
	}
	s.recv[q][seq]++
}

// tally compares what s (the receiver) got at qos with what from had
// acknowledged: the acknowledged sequence numbers never received, the
// extra deliveries and the distinct numbers received.
func (s *chaosSide) tally(from *chaosSide, qos byte) (lost []int, dups, received int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq, n := range s.recv[qos] {
		if n > 0 {
			received++
			dups += int(n) - 1
		} else if from.acked[qos][seq].Load() {
			lost = append(lost, seq)
		}
	}
	return lost, dups, received
}

func (s *chaosSide) strayList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.strays...)
}

// waitAll waits until s has received every message from acknowledged and
// its end marker, woken by each delivery, for at most d.
func (s *chaosSide) waitAll(ctx context.Context, from *chaosSide, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		lost1, _, _ := s.tally(from, 1)
		lost2, _, _ := s.tally(from, 2)
		s.mu.Lock()
		end := s.endSeen
		s.mu.Unlock()
		if len(lost1) == 0 && len(lost2) == 0 && end {
			return nil
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return fmt.Errorf("after %v still missing %d QoS 1 and %d QoS 2 messages (end marker seen: %v)", d, len(lost1), len(lost2), end)
		}
	}
}

// chaosWaitGoroutines polls (bounded) until no more goroutines run than
// base: the proxies' and clients' goroutines exit as their connections end,
// which raises no event to wait on.
func chaosWaitGoroutines(base int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d goroutines still running %v after Close, %d before the clients started", runtime.NumGoroutine(), d, base)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// chaosOpenExchanges reads mosquitto's log (log_type all) for the PUBLISHes
// it sent to id on id's last connection that id never completed (PUBACK,
// PUBCOMP): the broker's in-flight window towards the client, which a
// stalled delivery explains.
func chaosOpenExchanges(log, id string) string {
	open := map[string]string{}
	var order []string
	for _, line := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "New client connected") && strings.Contains(rest, " as "+id+" "):
			open, order = map[string]string{}, nil
		case strings.HasPrefix(rest, "Sending PUBLISH to "+id+" ("):
			f := strings.Split(strings.TrimPrefix(rest, "Sending PUBLISH to "+id+" ("), ", ")
			if len(f) > 3 && f[1] != "q0" {
				if _, dup := open[f[3]]; !dup {
					order = append(order, f[3])
				}
				open[f[3]] = f[1]
			}
		case strings.HasPrefix(rest, "Received PUBACK from "+id+" (Mid: "),
			strings.HasPrefix(rest, "Received PUBCOMP from "+id+" (Mid: "):
			mid, _, _ := strings.Cut(rest[strings.Index(rest, "Mid: ")+5:], ",")
			mid, _, _ = strings.Cut(mid, ")")
			delete(open, "m"+mid)
		}
	}
	var out []string
	for _, m := range order {
		if q, ok := open[m]; ok {
			out = append(out, m+"/"+q)
			delete(open, m) // a reused identifier is listed once
		}
	}
	if len(out) > 20 {
		return fmt.Sprintf("%d, first %v", len(out), out[:20])
	}
	return fmt.Sprintf("%d %v", len(out), out)
}
