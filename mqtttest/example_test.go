package mqtttest_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// A client connects to the embedded broker through the fault proxy; then
// the link goes silent both ways while the sockets stay open. The client's
// PINGREQ is written without error, but no PINGRESP ever comes: the fault a
// keep-alive exists to detect. In a test, use StartBroker and StartProxy,
// which clean up by themselves.
func Example() {
	broker, err := mqtttest.NewBroker(mqtttest.BrokerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	proxy, err := mqtttest.NewProxy(broker.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer proxy.Close()

	conn, err := net.Dial("tcp", proxy.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	r := packet.NewReader(conn, 1<<16)
	send := func(p packet.Packet) error {
		b, err := p.AppendTo(nil, packet.V311)
		if err != nil {
			return err
		}
		_, err = conn.Write(b)
		return err
	}

	if err := send(&packet.Connect{ClientID: "example", CleanStart: true, KeepAlive: 30}); err != nil {
		log.Fatal(err)
	}
	p, err := r.ReadPacket()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("received", p.Type(), "return code", p.(*packet.Connack).ReturnCode())

	proxy.Blackhole(mqtttest.Both)
	fmt.Println("PINGREQ write error:", send(&packet.Pingreq{}))
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = r.ReadPacket()
	fmt.Println("PINGRESP missing:", errors.Is(err, os.ErrDeadlineExceeded))
	fmt.Println("connections still open:", proxy.Conns())
	// Output:
	// received CONNACK return code connection accepted
	// PINGREQ write error: <nil>
	// PINGRESP missing: true
	// connections still open: 1
}
