package mqttas_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/mqttas/mqttas"
)

// startExampleResolver answers every DNS query on a loopback port with an
// empty reply, which is all WANOK needs. In an application WANResolver is
// left at its default, 8.8.8.8:53, or names a resolver beyond the router.
func startExampleResolver() (addr string, stop func()) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 12 {
				buf[2] |= 0x80 // QR: the query, turned into its response
				pc.WriteTo(buf[:n], from)
			}
		}
	}()
	return pc.LocalAddr().String(), func() { pc.Close(); <-done }
}

// WANOK and BrokerUp together say where an outage is. Here the broker was
// never reached, but the resolver answers.
func ExampleClient_WANOK() {
	resolver, stop := startExampleResolver()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := mqttas.New(mqttas.Config{
		Server:       "broker.invalid:1883",
		WANResolver:  resolver,
		ResponseTime: 2 * time.Second, // bounds each check
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	switch {
	case c.BrokerUp(ctx):
		fmt.Println("broker up")
	case c.WANOK(ctx):
		fmt.Println("internet up, broker down")
	default:
		fmt.Println("internet down: check the WiFi")
	}
	// Output: internet up, broker down
}
