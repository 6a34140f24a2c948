package main

import (
	"slices"
	"sync"
	"time"
)

// recorder keeps everything that happened in a run, for the summary and the
// report. Times are offsets from the start of the run.
type recorder struct {
	start time.Time

	mu        sync.Mutex
	up        bool
	downAt    time.Duration // start of the current outage, while !up
	outages   []span        // closed outages, and the open one at the end
	links     []linkChange
	faults    []fault
	published int
	acks      []ack
	failed    int         // publishes that ended without PUBACK
	received  map[int]int // publish number -> copies the watcher saw
	wills     int
	incoming  int
	pubtests  int
	changed   chan struct{} // closed and replaced at each receive
}

type linkChange struct {
	At time.Duration
	Up bool
}

type ack struct {
	N       int
	At      time.Duration // when Publish returned
	Latency time.Duration // Publish call to PUBACK, outages included
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), received: map[int]int{}, changed: make(chan struct{})}
}

func (r *recorder) since() time.Duration { return time.Since(r.start) }

// linkUp and linkDown record Up and Down; they report the outage that an
// up ends, or -1.
func (r *recorder) linkUp() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return -1
	}
	now := r.since()
	last := time.Duration(-1)
	if len(r.links) > 0 {
		r.outages = append(r.outages, span{r.downAt, now})
		last = now - r.downAt
	}
	r.up = true
	r.links = append(r.links, linkChange{now, true})
	return last
}

func (r *recorder) linkDown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return
	}
	r.up = false
	r.downAt = r.since()
	r.links = append(r.links, linkChange{r.downAt, false})
}

// lastOutage is the length of the latest completed outage, 0 if none.
func (r *recorder) lastOutage() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.outages) == 0 {
		return 0
	}
	o := r.outages[len(r.outages)-1]
	return o.max - o.min
}

func (r *recorder) fault(f fault) {
	r.mu.Lock()
	r.faults = append(r.faults, f)
	r.mu.Unlock()
}

func (r *recorder) publishing() {
	r.mu.Lock()
	r.published++
	r.mu.Unlock()
}

func (r *recorder) acked(n int, latency time.Duration) {
	r.mu.Lock()
	r.acks = append(r.acks, ack{n, r.since(), latency})
	r.mu.Unlock()
}

func (r *recorder) publishFailed() {
	r.mu.Lock()
	r.failed++
	r.mu.Unlock()
}

// seen records a copy of publish n reaching the watcher; it reports
// whether this is a duplicate.
func (r *recorder) seen(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received[n]++
	close(r.changed)
	r.changed = make(chan struct{})
	return r.received[n] > 1
}

func (r *recorder) will() {
	r.mu.Lock()
	r.wills++
	r.mu.Unlock()
}

func (r *recorder) pubtest() {
	r.mu.Lock()
	r.pubtests++
	r.mu.Unlock()
}

func (r *recorder) message() {
	r.mu.Lock()
	r.incoming++
	r.mu.Unlock()
}

// missing returns how many acknowledged publishes the watcher has not seen,
// and a channel closed at the watcher's next receive.
func (r *recorder) missing() (int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.acks {
		if r.received[a.N] == 0 {
			n++
		}
	}
	return n, r.changed
}

// summary is the end-of-run account. Lost counts only acknowledged
// messages: a publish cut short by the end of the run was never promised.
type summary struct {
	Duration      time.Duration
	Link          string
	Published     int
	Acknowledged  int
	Unconfirmed   int
	Received      int
	Lost          int
	Duplicates    int
	Outages       int
	LongestOutage time.Duration
	Faults        int
	Repubs        uint64
	Reconnects    uint64
	Discards      uint64
	Incoming      int
	PubtestsSent  int
	Wills         int
	PubackP50     time.Duration
	PubackP99     time.Duration
	Persistent    bool
	Watched       bool // false without a PC side: Received and Lost mean nothing
}

// summarize closes the books; counters come from the client's Stats.
func (r *recorder) summarize(link string, watched bool, repubs, reconnects, discards uint64) summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.since()
	s := summary{
		Duration: now, Link: link, Watched: watched,
		Published: r.published, Acknowledged: len(r.acks), Unconfirmed: r.published - len(r.acks),
		Faults: len(r.faults), Repubs: repubs, Reconnects: reconnects, Discards: discards,
		Incoming: r.incoming, PubtestsSent: r.pubtests, Wills: r.wills,
	}
	outages := slices.Clone(r.outages)
	if !r.up && len(r.links) > 0 {
		outages = append(outages, span{r.downAt, now})
	}
	s.Outages = len(outages)
	for _, o := range outages {
		s.LongestOutage = max(s.LongestOutage, o.max-o.min)
	}
	for _, k := range r.received {
		s.Received++
		s.Duplicates += k - 1
	}
	for _, a := range r.acks {
		if r.received[a.N] == 0 {
			s.Lost++
		}
	}
	lat := make([]time.Duration, len(r.acks))
	for i, a := range r.acks {
		lat[i] = a.Latency
	}
	s.PubackP50, s.PubackP99 = percentile(lat, 50), percentile(lat, 99)
	return s
}

// percentile uses the nearest-rank method; 0 for no samples.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	rank := (p*len(d) + 99) / 100 // ceil(p/100 × n)
	return d[max(rank, 1)-1]
}

// snapshot copies what the report draws.
func (r *recorder) snapshot() (links []linkChange, faults []fault, acks []ack, end time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.links), slices.Clone(r.faults), slices.Clone(r.acks), r.since()
}
