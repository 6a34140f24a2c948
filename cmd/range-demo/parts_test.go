package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWireless(t *testing.T) {
	const header = "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n" +
		" face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
	for _, tc := range []struct{ in, want string }{
		{header + " wlan0: 0000   54.  -56.  -256        0      0      0      0      0        0\n", "-56 dBm"},
		{header + " wlp2s0: 0000   70.  200.  -256        0      0      0      0      0        0\n", "-56 dBm"},
		{header, "n/a"},
		{"", "n/a"},
		{header + " wlan0: 0000   54.  junk  -256\n", "n/a"},
	} {
		if got := parseWireless(strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("parseWireless(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(5, 1, 3, 2, 4), 50, 3 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, 5 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %d) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

// The watcher must recognise exactly our own payloads, in both forms.
func TestPayloadRoundTrip(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		d := &demo{o: options{json: asJSON}, id: "rangedemo01", rec: newRecorder()}
		other := &demo{o: options{json: asJSON}, id: "rangedemo02", rec: newRecorder()}
		p := d.format(42, payloadJSON{Repubs: 1, RSSI: "n/a"})
		if n, ok := d.parsePayload(p); !ok || n != 42 {
			t.Errorf("json=%v: parsePayload(%q) = %d, %v", asJSON, p, n, ok)
		}
		if _, ok := other.parsePayload(p); ok {
			t.Errorf("json=%v: another device's payload %q was taken as ours", asJSON, p)
		}
		if _, ok := d.parsePayload([]byte(willMessage)); ok {
			t.Errorf("json=%v: the will parsed as a publish", asJSON)
		}
	}
}

func TestRecorderOutages(t *testing.T) {
	r := newRecorder()
	r.linkUp()
	if got := r.linkUp(); got != -1 {
		t.Errorf("a repeated up reported an outage of %v", got)
	}
	r.linkDown()
	r.linkDown() // coalesced duplicate: ignored
	if got := r.linkUp(); got < 0 {
		t.Error("the up after a down reported no outage")
	}
	r.linkDown() // still down at the end: counted as an open outage
	s := r.summarize("test", true, 0, 0, 0)
	if s.Outages != 2 {
		t.Errorf("outages = %d, want 2", s.Outages)
	}
	links, _, _, _ := r.snapshot()
	if len(links) != 4 {
		t.Errorf("%d link changes recorded, want 4 (up, down, up, down)", len(links))
	}
}
