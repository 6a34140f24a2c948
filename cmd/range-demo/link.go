package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mqttas/mqttas/mqtttest"
)

// span is a range of durations a fault draws from, uniformly.
type span struct{ min, max time.Duration }

func (s span) draw(r *rand.Rand) time.Duration {
	if s.max <= s.min {
		return s.min
	}
	return s.min + time.Duration(r.Int64N(int64(s.max-s.min)))
}

// linkProfile describes a simulated radio link: a base latency, and faults
// that arrive every gap. The weights choose between walking out of range
// (silence, and no new connections: what a device sees when WiFi drops), an
// abrupt reset (an access point rebooting), and a latency spike (a weak
// signal retrying frames).
type linkProfile struct {
	about                   string
	latency, jitter         time.Duration
	gap                     span // between the end of one fault and the next
	first                   span // before the first fault
	outage, spike           span // how long each lasts
	spikeLatency            span
	wOutage, wReset, wSpike int
	firstIsReset            bool // show an outage and a recovery early in every run
}

var linkProfiles = map[string]linkProfile{
	"good": {
		about:   "a wired link: a few milliseconds of latency, no faults",
		latency: 2 * time.Millisecond, jitter: time.Millisecond,
	},
	"edge-of-range": {
		about:   "a device at the edge of WiFi range: a dropout or a slow patch every 10-40 s",
		latency: 15 * time.Millisecond, jitter: 20 * time.Millisecond,
		first:  span{3 * time.Second, 10 * time.Second},
		gap:    span{10 * time.Second, 40 * time.Second},
		outage: span{2 * time.Second, 15 * time.Second}, spike: span{2 * time.Second, 8 * time.Second},
		spikeLatency: span{200 * time.Millisecond, 800 * time.Millisecond},
		wOutage:      3, wReset: 1, wSpike: 2,
	},
	"awful": {
		about:   "a device walking in and out of range: a fault every 1-6 s",
		latency: 40 * time.Millisecond, jitter: 60 * time.Millisecond,
		first:  span{500 * time.Millisecond, 1500 * time.Millisecond},
		gap:    span{time.Second, 6 * time.Second},
		outage: span{time.Second, 8 * time.Second}, spike: span{time.Second, 5 * time.Second},
		spikeLatency: span{300 * time.Millisecond, 1500 * time.Millisecond},
		wOutage:      3, wReset: 2, wSpike: 2,
		firstIsReset: true,
	},
}

func profileNames() []string {
	names := make([]string, 0, len(linkProfiles))
	for n := range linkProfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// fault is one thing the simulated link did, for the log and the report.
type fault struct {
	At   time.Duration `json:"at_ms"`
	For  time.Duration `json:"for_ms"`
	Kind string        `json:"kind"` // "out-of-range", "reset", "latency"
	Note string        `json:"note"`
}

// simulateLink breaks and mends the proxy's link by profile p until ctx
// ends, then heals it, so that whatever is in flight can finish. Every fault
// is handed to onFault as it starts.
func simulateLink(ctx context.Context, p linkProfile, px *mqtttest.Proxy, r *rand.Rand, onFault func(kind string, d time.Duration, note string)) {
	calm := func() {
		px.Heal()
		px.Latency(p.latency, p.jitter)
	}
	calm()
	defer calm()
	total := p.wOutage + p.wReset + p.wSpike
	if total == 0 {
		<-ctx.Done()
		return
	}
	wait := p.first.draw(r)
	for i := 0; ; i++ {
		if !sleepCtx(ctx, wait) {
			return
		}
		wait = p.gap.draw(r)
		k := r.IntN(total)
		switch {
		case i == 0 && p.firstIsReset, k >= p.wOutage && k < p.wOutage+p.wReset:
			onFault("reset", 0, "the access point reset the connection")
			px.Reset()
		case k < p.wOutage:
			d := p.outage.draw(r)
			onFault("out-of-range", d, fmt.Sprintf("out of range for %v: silence, and no new connections", d.Round(100*time.Millisecond)))
			// Stalled, not discarded: out of range, TCP holds on to what it
			// could not deliver and retransmits it if the link comes back
			// before a side gives up, so no byte goes missing mid-stream.
			px.Refuse(true)
			px.StopReading(mqtttest.Both)
			ok := sleepCtx(ctx, d)
			calm()
			if !ok {
				return
			}
		default:
			d, lat := p.spike.draw(r), p.spikeLatency.draw(r)
			onFault("latency", d, fmt.Sprintf("weak signal for %v: %v latency", d.Round(100*time.Millisecond), lat.Round(10*time.Millisecond)))
			px.Latency(lat, lat/4)
			ok := sleepCtx(ctx, d)
			calm()
			if !ok {
				return
			}
		}
	}
}

// sleepCtx waits d, or less if ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
