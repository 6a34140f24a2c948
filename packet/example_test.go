package packet_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/mqttas/mqttas/packet"
)

// Encode a QoS 1 PUBLISH for MQTT 3.1.1 into a buffer that can be reused for
// the next packet.
func ExamplePublish_AppendTo() {
	p := packet.Publish{QoS: 1, PacketID: 10, Topic: "shed/temp", Payload: []byte("21.5")}
	buf, err := p.AppendTo(nil, packet.V311)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", buf)
	// Output: 32 11 00 09 73 68 65 64 2f 74 65 6d 70 00 0a 32 31 2e 35
}

// Read packets from a stream, such as a net.Conn, with a 64 KiB limit on
// the size of any one packet.
func ExampleReader() {
	var stream []byte
	stream, _ = (&packet.Publish{Topic: "a/b", Payload: []byte("hello")}).AppendTo(stream, packet.V311)
	stream, _ = (&packet.Pingresp{}).AppendTo(stream, packet.V311)

	r := packet.NewReader(bytes.NewReader(stream), 64<<10)
	var pub packet.Publish // reused for every PUBLISH: no allocation per message
	for {
		h, body, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		switch h.Type {
		case packet.PUBLISH:
			if err := pub.Decode(h.Flags, body, packet.V311); err != nil {
				log.Fatal(err)
			}
			fmt.Printf("PUBLISH %s %q\n", pub.Topic, pub.Payload)
		default:
			fmt.Println(h.Type)
		}
	}
	// Output:
	// PUBLISH a/b "hello"
	// PINGRESP
}

// MQTT 5.0 properties are typed fields. A zero that means something, such
// as a Maximum QoS of 0, is sent by marking the property present.
func ExampleProperties() {
	ack := packet.Connack{}
	ack.Properties.MaximumQoS = 0
	ack.Properties.MarkPresent(packet.PropMaximumQoS)
	ack.Properties.TopicAliasMaximum = 10
	ack.Properties.User = []packet.UserProperty{{Key: "region", Value: "eu"}}
	buf, err := ack.AppendTo(nil, packet.V5)
	if err != nil {
		log.Fatal(err)
	}

	var got packet.Connack
	h, body, _ := packet.NewReader(bytes.NewReader(buf), 0).Next()
	if err := got.Decode(h.Flags, body, packet.V5); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Properties.Has(packet.PropMaximumQoS), got.Properties.MaximumQoS)
	fmt.Println(got.Properties.Has(packet.PropRetainAvailable))
	fmt.Println(got.Properties.TopicAliasMaximum, got.Properties.User)
	// Output:
	// true 0
	// false
	// 10 [{region eu}]
}

// Errors name the packet and the field, and wrap a class for errors.Is.
func ExampleError() {
	p := packet.Publish{Topic: "sensors/+/temp"}
	_, err := p.AppendTo(nil, packet.V311)
	fmt.Println(err)
	var perr *packet.Error
	if errors.As(err, &perr) {
		fmt.Printf("send reason code 0x%x (%v)\n", byte(perr.ReasonCode()), perr.ReasonCode())
	}
	// Output:
	// packet: protocol violation: PUBLISH topic name: contains a wildcard (+ or #)
	// send reason code 0x82 (protocol error)
}

func ExampleMatchTopic() {
	fmt.Println(packet.MatchTopic("sport/tennis/+", "sport/tennis/player1"))
	fmt.Println(packet.MatchTopic("sport/#", "sport"))
	fmt.Println(packet.MatchTopic("#", "$SYS/uptime"))
	fmt.Println(packet.MatchTopic("$share/workers/jobs/+", "jobs/42"))
	// Output:
	// true
	// true
	// false
	// true
}
