package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mqttas/mqttas"
)

// eventLoop is range_ex.py's up/down/messages coroutines in one: it prints
// the link changes and the messages that arrive on foo_topic, and
// subscribes again on every Up as range_ex does (mqttas restores
// subscriptions by itself; the repeat is harmless and shows the pattern).
func (d *demo) eventLoop(ctx context.Context) {
	up, down, msgs := d.c.Up(), d.c.Down(), d.c.Messages()
	var subs sync.WaitGroup
	defer subs.Wait()
	onUp := func() {
		text := "We are connected to broker."
		if last := d.rec.linkUp(); last >= 0 {
			text += fmt.Sprintf(" (outage lasted %s)", fmtDur(last))
		}
		d.out.event("up", text)
		subs.Go(func() {
			if err := d.c.Subscribe(ctx, "foo_topic", 1); err != nil && ctx.Err() == nil && !errors.Is(err, mqttas.ErrClosed) {
				d.out.event("error", "subscribe to foo_topic: "+err.Error())
			}
		})
	}
	onDown := func() {
		d.rec.linkDown()
		d.out.event("down", "WiFi or broker is down.")
	}
	// Up and Down each hold one pending signal. When both are pending the
	// order is lost; the link's current state says which came last.
	both := func() {
		if d.c.IsConnected() {
			onDown()
			onUp()
		} else {
			onUp()
			onDown()
		}
	}
	for {
		select {
		case _, ok := <-down:
			if !ok {
				return
			}
			select {
			case <-up:
				both()
			default:
				onDown()
			}
		case _, ok := <-up:
			if !ok {
				return
			}
			select {
			case <-down:
				both()
			default:
				onUp()
			}
		case m, ok := <-msgs:
			if !ok {
				return
			}
			d.rec.message()
			d.out.event("message", fmt.Sprintf("Topic: \"%s\" Message: \"%s\" Retained: %t", m.Topic, m.Payload, m.Retained),
				"topic", m.Topic, "payload", string(m.Payload), "retained", m.Retained)
		}
	}
}

// publishLoop publishes to shed at QoS 1 every interval, each Publish
// blocking through outages until its PUBACK, as range.py's main loop does.
func (d *demo) publishLoop(ctx context.Context, stop <-chan struct{}) {
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		payload := d.payload(n)
		d.rec.publishing()
		t0 := time.Now()
		err := d.c.Publish(ctx, topic, payload, 1, false)
		lat := time.Since(t0)
		if err != nil {
			d.rec.publishFailed()
			d.out.event("error", fmt.Sprintf("publish %d not acknowledged: %v", n, err), "n", n)
			return // only the end of the run stops a QoS 1 Publish
		}
		d.rec.acked(n, lat)
		d.lastLatency = lat
		d.out.event("published", fmt.Sprintf("publish %d acknowledged after %s", n, fmtDur(lat)),
			"n", n, "puback_ms", float64(lat.Microseconds())/1000)
		if !waitOrStop(stop, d.o.interval) {
			return
		}
	}
}

// payloadJSON is the -json form of a publish to shed.
type payloadJSON struct {
	N            int     `json:"n"`
	Repubs       uint64  `json:"repubs"`
	Outages      uint64  `json:"outages"`
	Discards     uint64  `json:"discards"`
	Mem          uint64  `json:"mem"`
	RSSI         string  `json:"rssi"`
	Reconnects   uint64  `json:"reconnects"`
	LastOutageMS int64   `json:"last_outage_ms"`
	PubackMS     float64 `json:"puback_ms"`
	ID           string  `json:"id"`
}

// payload is range_ex.py's message, with mqttas's extra counters and the
// client ID, which lets the watcher ignore other devices on a shared broker.
func (d *demo) payload(n int) []byte {
	st := d.c.Stats()
	return d.format(n, payloadJSON{
		Repubs: st.Repubs, Outages: st.Outages, Discards: st.Discards,
		Mem: memInUse(), RSSI: rssi(), Reconnects: st.Reconnects,
		LastOutageMS: d.rec.lastOutage().Milliseconds(),
		PubackMS:     float64(d.lastLatency.Microseconds()) / 1000,
	})
}

// format renders publish n with the counters in p, as JSON or text.
func (d *demo) format(n int, p payloadJSON) []byte {
	p.N, p.ID = n, d.id
	if d.o.json {
		b, _ := json.Marshal(p)
		return b
	}
	return fmt.Appendf(nil, "%d repubs: %d outages: %d discards: %d mem: %d rssi: %s reconnects: %d last_outage: %s puback: %s id: %s",
		p.N, p.Repubs, p.Outages, p.Discards, p.Mem, p.RSSI, p.Reconnects,
		fmtDur(time.Duration(p.LastOutageMS)*time.Millisecond), fmtDur(time.Duration(p.PubackMS*1e6)), p.ID)
}

// parsePayload returns the publish number in one of our payloads; false
// for anything else, such as another device's.
func (d *demo) parsePayload(b []byte) (int, bool) {
	if d.o.json {
		var p payloadJSON
		if json.Unmarshal(b, &p) != nil || p.ID != d.id || p.N <= 0 {
			return 0, false
		}
		return p.N, true
	}
	s := string(b)
	var n int
	if !strings.HasSuffix(s, " id: "+d.id) {
		return 0, false
	}
	if _, err := fmt.Sscanf(s, "%d ", &n); err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// pubtestLoop is mqtt_as's pubtest: the PC side publishes to foo_topic
// every interval.
func (d *demo) pubtestLoop(ctx context.Context, stop <-chan struct{}) {
	if d.pc == nil {
		return
	}
	for i := 1; waitOrStop(stop, d.o.interval); i++ {
		err := d.pc.pubtest(ctx, fmt.Appendf(nil, "pubtest %d", i))
		if err != nil && ctx.Err() == nil {
			d.out.event("error", "[pc] pubtest: "+err.Error())
		} else if err == nil {
			d.rec.pubtest()
		}
	}
}

// watchLoop is the PC side's `mosquitto_sub -t shed`: it counts each of
// our publishes that the broker delivered.
func (d *demo) watchLoop() {
	for b := range d.pc.shed() {
		if string(b) == willMessage {
			d.rec.will()
			d.out.event("will", `[pc] shed: "`+willMessage+`" (the broker saw the device's connection die and published its will)`)
			continue
		}
		n, ok := d.parsePayload(b)
		if !ok {
			continue
		}
		if d.rec.seen(n) {
			d.out.event("duplicate", fmt.Sprintf("[pc] publish %d arrived again (a QoS 1 resend whose first copy got through)", n), "n", n)
		}
	}
}

// awaitWatcher gives the PC side a moment to see the last acknowledged
// publishes, which may still be on their way through the broker.
func (d *demo) awaitWatcher(hurry context.Context) {
	if d.pc == nil {
		return
	}
	t := time.NewTimer(defaultStopWait)
	defer t.Stop()
	for {
		missing, changed := d.rec.missing()
		if missing == 0 {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		case <-hurry.Done():
			return
		}
	}
}

// waitOrStop waits d; false if stop closes first.
func waitOrStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
