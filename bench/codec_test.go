package bench_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	pahogolang "github.com/eclipse/paho.golang/packets"
	pahomqtt "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqttas/mqttas/packet"
)

// Every library encodes and decodes the same message: a QoS 1 PUBLISH with a
// 64-byte payload, in MQTT 3.1.1 and in MQTT 5.0 with three properties.
// TestEncodeAgrees checks that all encoders produce the same bytes and
// TestDecodeAgrees that all decoders read the same message back, so each
// benchmark group compares like with like.
//
// paho.golang speaks only MQTT 5.0 and paho.mqtt.golang only 3.1.1, so each
// version's group has mqttas and the one peer that can handle it.

const (
	topic       = "sensors/eu-west/building-7/floor-3/temperature"
	packetID    = 4242
	expiry      = 3600
	contentType = "application/json"
	userKey     = "trace-id"
	userValue   = "4bf92f3577b34da6"
)

var payload = []byte(strings.Repeat("0123456789abcdef", 4)) // 64 bytes

func mqttasPublish(v packet.Version) *packet.Publish {
	p := &packet.Publish{QoS: 1, PacketID: packetID, Topic: topic, Payload: payload}
	if v == packet.V5 {
		p.Properties.MessageExpiry = expiry
		p.Properties.ContentType = contentType
		p.Properties.User = []packet.UserProperty{{Key: userKey, Value: userValue}}
	}
	return p
}

func pahogolangPublish() *pahogolang.Publish {
	exp := uint32(expiry)
	return &pahogolang.Publish{
		QoS:      1,
		PacketID: packetID,
		Topic:    topic,
		Payload:  payload,
		Properties: &pahogolang.Properties{
			MessageExpiry: &exp,
			ContentType:   contentType,
			User:          []pahogolang.User{{Key: userKey, Value: userValue}},
		},
	}
}

func pahomqttPublish() *pahomqtt.PublishPacket {
	p := pahomqtt.NewControlPacket(pahomqtt.Publish).(*pahomqtt.PublishPacket)
	p.Qos = 1
	p.MessageID = packetID
	p.TopicName = topic
	p.Payload = payload
	return p
}

// wire returns the bench packet as mqttas encodes it; TestEncodeAgrees
// shows the peers write the same bytes.
func wire(tb testing.TB, v packet.Version) []byte {
	tb.Helper()
	b, err := mqttasPublish(v).AppendTo(nil, v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// loopReader is an endless stream that replays buf, a whole number of
// packets, from the start each time it runs out. Every decoder reads from
// one, so they all pay for their own framing and buffering.
type loopReader struct {
	buf []byte
	off int
}

func newLoopReader(wire []byte) *loopReader {
	// A period of at least the mqttas Reader's buffer keeps the cost of
	// the source itself to one or two copies per Read.
	return &loopReader{buf: bytes.Repeat(wire, packet.DefaultBufferSize/len(wire)+1)}
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.buf[r.off:])
		n += c
		r.off += c
		if r.off == len(r.buf) {
			r.off = 0
		}
	}
	return n, nil
}

// The decoders, one packet per call, as an application would use them.

func decodeMqttas(r *packet.Reader, p *packet.Publish) error {
	h, body, err := r.Next()
	if err != nil {
		return err
	}
	return p.Decode(h.Flags, body, r.Version())
}

// decodeMqttasOwned is decodeMqttas for a caller that keeps the message:
// it copies the body out of the Reader's buffer first, so the result owns
// its memory the way the peers' results do.
func decodeMqttasOwned(r *packet.Reader, p *packet.Publish) error {
	h, body, err := r.Next()
	if err != nil {
		return err
	}
	return p.Decode(h.Flags, bytes.Clone(body), r.Version())
}

func decodePahogolang(r *loopReader) (*pahogolang.Publish, error) {
	cp, err := pahogolang.ReadPacket(r)
	if err != nil {
		return nil, err
	}
	return cp.Content.(*pahogolang.Publish), nil
}

func decodePahomqtt(r *loopReader) (*pahomqtt.PublishPacket, error) {
	cp, err := pahomqtt.ReadPacket(r)
	if err != nil {
		return nil, err
	}
	return cp.(*pahomqtt.PublishPacket), nil
}

// benchDecodeMqttas runs mqttas's two decode arms over w: into the
// Reader's buffer, and into a copy the caller owns.
func benchDecodeMqttas(b *testing.B, v packet.Version, w []byte) {
	arm := func(name string, decode func(*packet.Reader, *packet.Publish) error) {
		b.Run(name, func(b *testing.B) {
			r := packet.NewReader(newLoopReader(w), 0)
			r.SetVersion(v)
			var p packet.Publish
			benchLoop(b, len(w), func() error { return decode(r, &p) })
		})
	}
	arm("mqttas", decodeMqttas)
	arm("mqttas-owned", decodeMqttasOwned)
}

func BenchmarkDecodePublishV311(b *testing.B) {
	v := packet.V311
	w := wire(b, v)
	benchDecodeMqttas(b, v, w)
	b.Run("pahomqtt", func(b *testing.B) {
		r := newLoopReader(w)
		benchLoop(b, len(w), func() error { _, err := decodePahomqtt(r); return err })
	})
}

func BenchmarkDecodePublishV5(b *testing.B) {
	v := packet.V5
	w := wire(b, v)
	benchDecodeMqttas(b, v, w)
	b.Run("pahogolang", func(b *testing.B) {
		r := newLoopReader(w)
		benchLoop(b, len(w), func() error { _, err := decodePahogolang(r); return err })
	})
}

// The encoders write into a buffer reused across iterations, the way a
// connection's writer would.

func BenchmarkEncodePublishV311(b *testing.B) {
	size := len(wire(b, packet.V311))
	b.Run("mqttas", func(b *testing.B) {
		p := mqttasPublish(packet.V311)
		var dst []byte
		benchLoop(b, size, func() (err error) {
			dst, err = p.AppendTo(dst[:0], packet.V311)
			return err
		})
	})
	b.Run("pahomqtt", func(b *testing.B) {
		p := pahomqttPublish()
		var buf bytes.Buffer
		benchLoop(b, size, func() error {
			buf.Reset()
			return p.Write(&buf)
		})
	})
}

func BenchmarkEncodePublishV5(b *testing.B) {
	size := len(wire(b, packet.V5))
	b.Run("mqttas", func(b *testing.B) {
		p := mqttasPublish(packet.V5)
		var dst []byte
		benchLoop(b, size, func() (err error) {
			dst, err = p.AppendTo(dst[:0], packet.V5)
			return err
		})
	})
	b.Run("pahogolang", func(b *testing.B) {
		p := pahogolangPublish()
		var buf bytes.Buffer
		benchLoop(b, size, func() error {
			buf.Reset()
			_, err := p.WriteTo(&buf)
			return err
		})
	})
}

// benchLoop runs op once to warm up reused buffers, then measures it.
func benchLoop(b *testing.B, size int, op func() error) {
	if err := op(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
}

// message is what TestDecodeAgrees compares: the fields every decoder must
// agree on.
type message struct {
	topic       string
	payload     string
	id          uint16
	qos         byte
	expiry      uint32
	contentType string
	user        []string // key, value, key, value...
}

func want(v packet.Version) message {
	m := message{topic: topic, payload: string(payload), id: packetID, qos: 1}
	if v == packet.V5 {
		m.expiry, m.contentType, m.user = expiry, contentType, []string{userKey, userValue}
	}
	return m
}

func (m message) equal(o message) bool {
	return m.topic == o.topic && m.payload == o.payload && m.id == o.id && m.qos == o.qos &&
		m.expiry == o.expiry && m.contentType == o.contentType && slices.Equal(m.user, o.user)
}

// TestDecodeAgrees reads several packets in a row from the benchmarks'
// stream with each decoder and checks each one finds the bench message, so
// the decode benchmarks measure the same work.
func TestDecodeAgrees(t *testing.T) {
	const packets = 100 // enough to wrap the mqttas Reader's buffer
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		w := wire(t, v)
		decoders := map[string]func() (message, error){}

		for name, decode := range map[string]func(*packet.Reader, *packet.Publish) error{
			"mqttas":       decodeMqttas,
			"mqttas-owned": decodeMqttasOwned,
		} {
			r := packet.NewReader(newLoopReader(w), 0)
			r.SetVersion(v)
			var p packet.Publish
			decoders[name] = func() (message, error) {
				err := decode(r, &p)
				m := message{topic: p.Topic, payload: string(p.Payload), id: p.PacketID, qos: p.QoS,
					expiry: p.Properties.MessageExpiry, contentType: p.Properties.ContentType}
				for _, u := range p.Properties.User {
					m.user = append(m.user, u.Key, u.Value)
				}
				return m, err
			}
		}
		if v == packet.V5 {
			lr := newLoopReader(w)
			decoders["pahogolang"] = func() (message, error) {
				p, err := decodePahogolang(lr)
				if err != nil {
					return message{}, err
				}
				m := message{topic: p.Topic, payload: string(p.Payload), id: p.PacketID, qos: p.QoS,
					contentType: p.Properties.ContentType}
				if p.Properties.MessageExpiry != nil {
					m.expiry = *p.Properties.MessageExpiry
				}
				for _, u := range p.Properties.User {
					m.user = append(m.user, u.Key, u.Value)
				}
				return m, nil
			}
		} else {
			lr := newLoopReader(w)
			decoders["pahomqtt"] = func() (message, error) {
				p, err := decodePahomqtt(lr)
				if err != nil {
					return message{}, err
				}
				return message{topic: p.TopicName, payload: string(p.Payload), id: p.MessageID, qos: p.Qos}, nil
			}
		}

		for name, decode := range decoders {
			for i := range packets {
				got, err := decode()
				if err != nil {
					t.Fatalf("%v %s: packet %d: %v", v, name, i, err)
				}
				if !got.equal(want(v)) {
					t.Fatalf("%v %s: packet %d: got %+v, want %+v", v, name, i, got, want(v))
				}
			}
		}
	}
}

// TestEncodeAgrees checks that every encoder writes the bench message as
// the same bytes, so the encode benchmarks produce the same output.
func TestEncodeAgrees(t *testing.T) {
	var buf bytes.Buffer
	if err := pahomqttPublish().Write(&buf); err != nil {
		t.Fatal(err)
	}
	if w := wire(t, packet.V311); !bytes.Equal(buf.Bytes(), w) {
		t.Errorf("3.1.1: paho.mqtt.golang wrote\n% x\nmqttas wrote\n% x", buf.Bytes(), w)
	}

	buf.Reset()
	if _, err := pahogolangPublish().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if w := wire(t, packet.V5); !bytes.Equal(buf.Bytes(), w) {
		t.Errorf("5.0: paho.golang wrote\n% x\nmqttas wrote\n% x", buf.Bytes(), w)
	}
}
