package bench_test

// What one QoS 1 publish at a time costs, against mosquitto, for three
// clients: the raw socket, where one goroutine writes the PUBLISH and
// then reads its PUBACK; the same raw client with the PUBACK read by a
// goroutine of its own and handed over on a channel, as every client with
// a dedicated reader must do; and mqttas. It isolates the hand-over from
// the reading goroutine to the waiting one, which is most of the gap
// between mqttas and the raw socket in the harness's sequential rows.

import (
	"bufio"
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/internal/mosquitto"
	"github.com/mqttas/mqttas/packet"
)

func startMosquitto(b *testing.B) *mosquitto.Broker {
	if err := mosquitto.Installed(); err != nil {
		if os.Getenv("MQTTAS_REQUIRE_MOSQUITTO") != "" {
			b.Fatal(err)
		}
		b.Skipf("mosquitto is not installed: %v", err)
	}
	br, err := mosquitto.New(mosquitto.Options{Quiet: true, Extra: []string{"set_tcp_nodelay true"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	return br
}

// rawConn is a connected raw client: a buffered writer and a Reader.
func rawConn(b *testing.B, addr string) (net.Conn, *bufio.Writer, *packet.Reader) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	connect, err := (&packet.Connect{ClientID: "raw-" + b.Name(), CleanStart: true, KeepAlive: 60}).AppendTo(nil, packet.V311)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nc.Write(connect); err != nil {
		b.Fatal(err)
	}
	rd := packet.NewReader(nc, 0)
	if h, _, err := rd.Next(); err != nil || h.Type != packet.CONNACK {
		b.Fatalf("CONNACK: %v %v", h.Type, err)
	}
	return nc, bufio.NewWriter(nc), rd
}

func BenchmarkSequentialQoS1(b *testing.B) {
	br := startMosquitto(b)
	payload := make([]byte, 64)
	publish := func(w *bufio.Writer, id uint16) {
		p := packet.Publish{Topic: "seq/t", Payload: payload, QoS: 1, PacketID: id}
		buf, err := p.AppendTo(w.AvailableBuffer(), packet.V311)
		if err == nil {
			_, err = w.Write(buf)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("raw", func(b *testing.B) {
		_, w, rd := rawConn(b, br.Addr())
		id := uint16(0)
		for b.Loop() {
			id = id%65535 + 1
			publish(w, id)
			if h, _, err := rd.Next(); err != nil || h.Type != packet.PUBACK {
				b.Fatalf("PUBACK: %v %v", h.Type, err)
			}
		}
	})
	b.Run("raw-reader-goroutine", func(b *testing.B) {
		nc, w, rd := rawConn(b, br.Addr())
		acks := make(chan error, 1)
		go func() {
			for {
				_, _, err := rd.Next()
				acks <- err
				if err != nil {
					return
				}
			}
		}()
		id := uint16(0)
		for b.Loop() {
			id = id%65535 + 1
			publish(w, id)
			if err := <-acks; err != nil {
				b.Fatal(err)
			}
		}
		nc.Close()
		for range acks {
			break // the reader's last error: it has returned
		}
	})
	b.Run("mqttas", func(b *testing.B) {
		c, err := mqttas.New(mqttas.Config{Server: br.Addr()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for b.Loop() {
			if err := c.Publish(context.Background(), "seq/t", payload, 1, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
