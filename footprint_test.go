package mqttas_test

import (
	"context"
	"math"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

// idlePeer accepts connections, answers the CONNECT with connack and then
// only reads, into one small buffer per connection, so that the peer's
// own share of the heap is a few hundred bytes per connection. It counts
// as one goroutine per connection.
func idlePeer(tb testing.TB, connack []byte) string {
	tb.Helper()
	return servePeer(tb, func(nc net.Conn) {
		var buf [64]byte
		sent := false
		for {
			n, err := nc.Read(buf[:])
			if err != nil {
				return
			}
			// The CONNECT is the first packet, under 64 bytes.
			if !sent && n > 0 {
				sent = true
				if _, err := nc.Write(connack); err != nil {
					return
				}
			}
		}
	})
}

// An idle connected client costs three goroutines (supervisor, reader,
// pinger) and at most 16 KB of heap, so a process can hold thousands.
// The heap figure includes the peer's few hundred bytes per connection.
func TestIdleClientFootprint(t *testing.T) {
	const n = 100
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			connack := connack311
			if v.v5 {
				connack = connackV5
			}
			addr := idlePeer(t, connack)
			heap := func() uint64 {
				var ms runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			g0, h0 := runtime.NumGoroutine(), heap()
			clients := make([]*mqttas.Client, n)
			for i := range clients {
				c, err := mqttas.New(mqttas.Config{Server: addr, MQTTv5: v.v5})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = c.Connect(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				clients[i] = c
			}
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			// Connect's helper goroutine ends just after Connect returns.
			// Goroutines of earlier tests may still be ending, so the
			// count is allowed a little slack rather than an exact match.
			const slack = 3
			fxEventually(t, 5*time.Second, "Connect's helpers to end", func() bool {
				return runtime.NumGoroutine()-g0 <= (3+1)*n+slack
			})
			g1, h1 := runtime.NumGoroutine(), heap()
			perG := float64(g1-g0)/n - 1 // minus the peer's
			perH := float64(int64(h1)-int64(h0)) / n
			t.Logf("%s: per idle client %.2f goroutines, %.0f bytes of heap", v.name, perG, perH)
			if math.Abs(perG-3) > float64(slack)/n {
				t.Errorf("an idle client runs %.2f goroutines, want 3 (supervisor, reader, pinger)", perG)
			}
			if perH > 16<<10 {
				t.Errorf("an idle client holds %.0f bytes of heap, budget 16 KiB", perH)
			}
			runtime.KeepAlive(clients)
		})
	}
}
