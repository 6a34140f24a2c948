package packet_test

import (
	"testing"

	"github.com/mqttas/mqttas/packet"
)

// The hot path of a connection, encoding and decoding PUBLISH and its
// acknowledgement, must not allocate once the buffers and structs it reuses
// are warm. These tests hold the codec to that budget; the benchmarks in
// bench_test.go measure the same packets.

const allocRuns = 1000

// allocBudget fails t when f allocates. f reports its own failure through
// the returned error rather than calling t from inside the measured loop.
func allocBudget(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil { // warm up reused slices and buffers
		t.Fatal(err)
	}
	var failed error
	allocs := testing.AllocsPerRun(allocRuns, func() {
		if err := f(); err != nil && failed == nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per op, want 0", allocs)
	}
}

// allocVersions names the cases of every test: MQTT 3.1.1, and MQTT 5.0
// with properties so that the property codec is on the measured path.
var allocVersions = []struct {
	name string
	v    packet.Version
}{
	{"V311", packet.V311},
	{"V5", packet.V5},
}

func TestAllocsPublishEncode(t *testing.T) {
	for _, tc := range allocVersions {
		t.Run(tc.name, func(t *testing.T) {
			p := benchPublish(tc.v)
			dst := benchWire(t, p, tc.v)
			allocBudget(t, func() (err error) {
				dst, err = p.AppendTo(dst[:0], tc.v)
				return err
			})
		})
	}
}

func TestAllocsPublishDecode(t *testing.T) {
	for _, tc := range allocVersions {
		t.Run(tc.name, func(t *testing.T) {
			h, body := benchSplit(t, benchWire(t, benchPublish(tc.v), tc.v), tc.v)
			var p packet.Publish
			allocBudget(t, func() error {
				return p.Decode(h.Flags, body, tc.v)
			})
			if want := benchPublish(tc.v); p.Topic != want.Topic || p.PacketID != want.PacketID ||
				string(p.Payload) != string(want.Payload) || len(p.Properties.User) != len(want.Properties.User) {
				t.Errorf("decoded %+v, want %+v", p, *want)
			}
		})
	}
}

// allocPuback is a PUBACK; the MQTT 5.0 one refuses the message with a
// reason string, which takes the long form with properties.
func allocPuback(v packet.Version) *packet.Puback {
	p := &packet.Puback{PacketID: 4242}
	if v == packet.V5 {
		p.ReasonCode = packet.NoMatchingSubscribers
		p.Properties.ReasonString = "no subscriber for this topic"
	}
	return p
}

func TestAllocsPubackEncode(t *testing.T) {
	for _, tc := range allocVersions {
		t.Run(tc.name, func(t *testing.T) {
			p := allocPuback(tc.v)
			dst := benchWire(t, p, tc.v)
			allocBudget(t, func() (err error) {
				dst, err = p.AppendTo(dst[:0], tc.v)
				return err
			})
		})
	}
}

func TestAllocsPubackDecode(t *testing.T) {
	for _, tc := range allocVersions {
		t.Run(tc.name, func(t *testing.T) {
			want := allocPuback(tc.v)
			h, body := benchSplit(t, benchWire(t, want, tc.v), tc.v)
			var p packet.Puback
			allocBudget(t, func() error {
				return p.Decode(h.Flags, body, tc.v)
			})
			if p.PacketID != want.PacketID || p.ReasonCode != want.ReasonCode ||
				p.Properties.ReasonString != want.Properties.ReasonString {
				t.Errorf("decoded %+v, want %+v", p, *want)
			}
		})
	}
}

// TestAllocsReaderPublish covers the receive path: Reader.Next over an
// endless stream of PUBLISH packets, each decoded into one reused struct.
func TestAllocsReaderPublish(t *testing.T) {
	for _, tc := range allocVersions {
		t.Run(tc.name, func(t *testing.T) {
			wire := benchWire(t, benchPublish(tc.v), tc.v)
			r := packet.NewReader(newBenchLoopReader(wire), 0)
			r.SetVersion(tc.v)
			var p packet.Publish
			allocBudget(t, func() error {
				h, body, err := r.Next()
				if err != nil {
					return err
				}
				return p.Decode(h.Flags, body, tc.v)
			})
			if p.Topic != benchTopic || string(p.Payload) != string(benchPayload) {
				t.Errorf("decoded topic %q payload %q", p.Topic, p.Payload)
			}
		})
	}
}
