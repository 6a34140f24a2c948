package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// printer writes the run's console output from several goroutines: mqtt_as's
// text lines, prefixed with the time into the run, or one JSON object per
// line with -json.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
}

// event prints text, or with -json an object holding kind, text and the
// key/value pairs in kv.
func (p *printer) event(kind, text string, kv ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := time.Since(p.start)
	if !p.json {
		fmt.Fprintf(p.w, "%8.1fs  %s\n", at.Seconds(), text)
		return
	}
	m := map[string]any{"t_ms": at.Milliseconds(), "event": kind, "text": text}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	p.w.Write(append(b, '\n'))
}

// summary prints the end-of-run account as a table, or as one JSON object.
func (p *printer) summary(s summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, _ := json.Marshal(struct {
			Event string `json:"event"`
			summaryJSON
		}{"summary", s.json()})
		p.w.Write(append(b, '\n'))
		return
	}
	ms := func(d time.Duration) string { return fmtDur(d) }
	fmt.Fprintf(p.w, "\n--- range-demo summary: %s, link %s ---\n", ms(s.Duration), s.Link)
	row := func(name string, v any, note string) {
		fmt.Fprintf(p.w, "%-14s %10v  %s\n", name, v, note)
	}
	row("published", s.Published, "QoS 1 to shed")
	row("acknowledged", s.Acknowledged, "PUBACK received")
	if s.Unconfirmed > 0 {
		row("unconfirmed", s.Unconfirmed, "cut short by the end of the run: never promised, not lost")
	}
	if s.Watched {
		row("received", s.Received, "by the PC side watching shed")
		verdict := "every acknowledged message arrived"
		if s.Lost > 0 {
			verdict = "ACKNOWLEDGED BUT NEVER DELIVERED: a bug, please report it"
		}
		row("lost", s.Lost, verdict)
		row("duplicates", s.Duplicates, "QoS 1 allows these: a resend whose first copy got through")
	} else {
		row("received", "n/a", "no PC side (-pc=false): nothing watched shed")
	}
	if s.Outages > 0 {
		row("outages", s.Outages, "longest "+ms(s.LongestOutage)+", from the client noticing to its reconnecting")
	} else {
		row("outages", 0, "")
	}
	if s.Link != "real" {
		row("faults", s.Faults, "injected by the simulated link")
	}
	row("repubs", s.Repubs, "resends (DUP on a live link, or after reconnecting)")
	row("reconnects", s.Reconnects, "")
	row("discards", s.Discards, "incoming messages dropped because the queue was full")
	switch {
	case s.PubtestsSent == 0:
		row("incoming", s.Incoming, "messages received on foo_topic")
	case s.Incoming < s.PubtestsSent && !s.Persistent:
		row("incoming", s.Incoming, fmt.Sprintf("of %d pubtest messages: the rest were sent while the device was offline (-persistent keeps them)", s.PubtestsSent))
	default:
		row("incoming", s.Incoming, fmt.Sprintf("of %d pubtest messages", s.PubtestsSent))
	}
	row("PUBACK p50", ms(s.PubackP50), "publish to PUBACK, waiting through outages included")
	row("PUBACK p99", ms(s.PubackP99), "")
}

// summaryJSON is summary with durations in milliseconds.
type summaryJSON struct {
	DurationMS      int64   `json:"duration_ms"`
	Link            string  `json:"link"`
	Published       int     `json:"published"`
	Acknowledged    int     `json:"acknowledged"`
	Unconfirmed     int     `json:"unconfirmed"`
	Received        int     `json:"received"`
	Lost            int     `json:"lost"`
	Duplicates      int     `json:"duplicates"`
	Outages         int     `json:"outages"`
	LongestOutageMS int64   `json:"longest_outage_ms"`
	Faults          int     `json:"faults"`
	Repubs          uint64  `json:"repubs"`
	Reconnects      uint64  `json:"reconnects"`
	Discards        uint64  `json:"discards"`
	Incoming        int     `json:"incoming"`
	PubtestsSent    int     `json:"pubtests_sent"`
	Wills           int     `json:"wills_seen"`
	PubackP50MS     float64 `json:"puback_p50_ms"`
	PubackP99MS     float64 `json:"puback_p99_ms"`
	Watched         bool    `json:"watched"`
}

func (s summary) json() summaryJSON {
	fms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return summaryJSON{
		DurationMS: s.Duration.Milliseconds(), Link: s.Link,
		Published: s.Published, Acknowledged: s.Acknowledged, Unconfirmed: s.Unconfirmed,
		Received: s.Received, Lost: s.Lost, Duplicates: s.Duplicates,
		Outages: s.Outages, LongestOutageMS: s.LongestOutage.Milliseconds(), Faults: s.Faults,
		Repubs: s.Repubs, Reconnects: s.Reconnects, Discards: s.Discards,
		Incoming: s.Incoming, PubtestsSent: s.PubtestsSent, Wills: s.Wills,
		PubackP50MS: fms(s.PubackP50), PubackP99MS: fms(s.PubackP99), Watched: s.Watched,
	}
}

// fmtDur rounds a duration for people: 0.4ms, 12ms, 3.2s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
