package mqttas_test

// Traffic: many concurrent publishes at each QoS, and the Stats counters
// after a known amount of traffic.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

// concurrentPublish publishes workers×each messages at qos from workers
// goroutines, each on its own topic with payloads "w-i" in order, and
// checks that all return nil and all arrive, in order per topic.
func concurrentPublish(t *testing.T, qos byte, workers, each int) {
	ctx := ctxFor(t, 30*time.Second)
	b := startMochi(t, mochiOpts{})
	total := workers * each
	sub := connectedClient(t, ctx, b, mqttas.Config{QueueLen: total + 16})
	if err := sub.Subscribe(ctx, "conc/#", qos); err != nil {
		t.Fatal(err)
	}
	pub := connectedClient(t, ctx, b, mqttas.Config{})

	received := make(chan map[string][]string, 1)
	go func() {
		byTopic := map[string][]string{}
		n := 0
		for n < total {
			select {
			case m, ok := <-sub.Messages():
				if !ok {
					received <- byTopic
					return
				}
				byTopic[m.Topic] = append(byTopic[m.Topic], string(m.Payload))
				n++
			case <-ctx.Done():
				received <- byTopic
				return
			}
		}
		received <- byTopic
	}()

	start := time.Now()
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("conc/%d", w)
			for i := range each {
				if err := pub.Publish(ctx, topic, fmt.Appendf(nil, "%d-%d", w, i), qos, false); err != nil {
					errs <- fmt.Errorf("worker %d message %d: %w", w, i, err)
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
	elapsed := time.Since(start)
	if s := pub.Stats(); s.InFlight != 0 || s.UnsentBytes != 0 {
		t.Errorf("publisher Stats after all Publish calls returned = %+v, want InFlight 0, UnsentBytes 0", s)
	}
	byTopic := <-received
	got, dups := 0, 0
	for w := range workers {
		topic := fmt.Sprintf("conc/%d", w)
		msgs := byTopic[topic]
		next := 0
		for _, p := range msgs {
			got++
			switch want := fmt.Sprintf("%d-%d", w, next); {
			case p == want:
				next++
			case next > 0 && p == fmt.Sprintf("%d-%d", w, next-1):
				dups++
			default:
				t.Errorf("%s: got %q, want %q (out of order or lost)", topic, p, want)
			}
		}
		if next != each {
			t.Errorf("%s: %d of %d messages arrived", topic, next, each)
		}
	}
	if qos == 2 && dups != 0 {
		t.Errorf("%d duplicates at QoS 2", dups)
	}
	t.Logf("%d QoS %d publishes from %d goroutines in %v; subscriber got %d (%d duplicates); publisher %+v; subscriber %+v",
		total, qos, workers, elapsed, got, dups, pub.Stats(), sub.Stats())
	if s := sub.Stats(); s.Discards != 0 {
		t.Errorf("subscriber discarded %d messages", s.Discards)
	}
}

func TestConcurrentQoS1Publishes(t *testing.T) { concurrentPublish(t, 1, 50, 40) }

func TestConcurrentQoS2Publishes(t *testing.T) { concurrentPublish(t, 2, 50, 10) }

func TestConcurrentQoS0Publishes(t *testing.T) { concurrentPublish(t, 0, 20, 25) }

func TestStatsAfterTraffic(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{
		ClientID: "stats", QueueLen: 100, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	if err := c.Subscribe(ctx, "st/#", 2); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := c.Publish(ctx, "st/x", []byte(fmt.Sprint(i)), byte(i%3), false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		expectMessage(t, ctx, c.Messages(), "st/x", fmt.Sprint(i))
	}
	want := mqttas.Stats{}
	if s := c.Stats(); s != want {
		t.Errorf("Stats after loss-free traffic = %+v, want all zero", s)
	}

	// One outage: counted once, and the reconnection once.
	awaitSignal(t, ctx, c.Up(), "Up")
	b.kick(t, "stats")
	awaitSignal(t, ctx, c.Down(), "Down")
	awaitSignal(t, ctx, c.Up(), "Up")
	if err := c.Publish(ctx, "st/x", []byte("after"), 1, false); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ctx, c.Messages(), "st/x", "after")
	// goLive counts the reconnection before it signals Up, so the count is
	// already right here.
	s := c.Stats()
	if s.Outages != 1 || s.Reconnects != 1 || s.InFlight != 0 || s.UnsentBytes != 0 || s.Discards != 0 {
		t.Errorf("Stats after one outage = %+v, want Outages 1, Reconnects 1, rest 0", s)
	}
	if hasSignal(c.Down()) || hasSignal(c.Up()) {
		t.Error("one outage signalled more than one Down/Up")
	}
}
