package packet

// Reader protocol version: SetVersion, and ReadPacket adopting the level of
// the CONNECT it reads.

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReaderSetVersion(t *testing.T) {
	r := NewReader(bytes.NewReader(nil), 0)
	if r.Version() != V311 {
		t.Errorf("default Version() = %v, want 3.1.1", r.Version())
	}
	for _, v := range []Version{V5, V31, V311} {
		r.SetVersion(v)
		if r.Version() != v {
			t.Errorf("after SetVersion(%v): Version() = %v", v, r.Version())
		}
	}

	// The version decides how strictly the remaining length is read: MQTT
	// 5.0 insists on the shortest encoding [MQTT-1.5.5-1].
	loose := []byte{0xC0, 0x80, 0x00, 0xC0, 0x80, 0x80, 0x00} // two PINGREQs, lengths in two and three bytes
	r = NewReader(bytes.NewReader(loose), 0)
	for i := range 2 {
		h, body, err := r.Next()
		if err != nil || h.Type != PINGREQ || len(body) != 0 {
			t.Fatalf("3.1.1 packet %d: %+v %v", i, h, err)
		}
	}
	r = NewReader(bytes.NewReader(loose), 0)
	r.SetVersion(V5)
	if _, _, err := r.Next(); !errors.Is(err, ErrMalformed) {
		t.Errorf("5.0: %v, want ErrMalformed", err)
	}
}

// TestReaderReadPacketAdoptsV5Connect starts a broker-side Reader at its
// default version and feeds it a 5.0 CONNECT followed by 5.0 packets whose
// properties only decode correctly once the Reader has switched.
func TestReaderReadPacketAdoptsV5Connect(t *testing.T) {
	connect := &Connect{ClientID: "c1", CleanStart: true, KeepAlive: 30,
		Properties: Properties{SessionExpiry: 3600, ReceiveMaximum: 20}}
	publish := &Publish{QoS: 1, PacketID: 7, Topic: "a/b", Payload: []byte("hello"),
		Properties: Properties{MessageExpiry: 60, ContentType: "text/plain", TopicAlias: 3,
			User: []UserProperty{{"k", "v"}}}}
	puback := &Puback{PacketID: 9, ReasonCode: NoMatchingSubscribers}
	wire := rdrWire(t, V5, connect, publish, puback)

	r := NewReader(bytes.NewReader(wire), 0)
	if r.Version() != V311 {
		t.Fatalf("initial Version() = %v", r.Version())
	}
	p, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := p.(*Connect)
	if !ok || c.Version != V5 || c.ClientID != "c1" || c.Properties.SessionExpiry != 3600 || c.Properties.ReceiveMaximum != 20 {
		t.Fatalf("CONNECT decoded as %#v", p)
	}
	if r.Version() != V5 {
		t.Fatalf("Version() after a 5.0 CONNECT = %v", r.Version())
	}
	p, err = r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := p.(*Publish)
	if !ok || pub.Topic != "a/b" || pub.PacketID != 7 || string(pub.Payload) != "hello" ||
		pub.Properties.MessageExpiry != 60 || pub.Properties.ContentType != "text/plain" ||
		pub.Properties.TopicAlias != 3 || len(pub.Properties.User) != 1 || pub.Properties.User[0] != (UserProperty{"k", "v"}) {
		t.Fatalf("PUBLISH decoded as %#v", p)
	}
	p, err = r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := p.(*Puback); !ok || ack.PacketID != 9 || ack.ReasonCode != NoMatchingSubscribers {
		t.Fatalf("PUBACK decoded as %#v", p)
	}
	if _, err := r.ReadPacket(); err != io.EOF {
		t.Errorf("end of stream: %v", err)
	}

	// Without the switch the same PUBLISH bytes read as 3.1.1 put the
	// properties into the payload: the version is not guessable from them.
	r = NewReader(bytes.NewReader(rdrWire(t, V5, publish)), 0)
	p, err = r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if string(p.(*Publish).Payload) == "hello" {
		t.Errorf("a 5.0 PUBLISH read as 3.1.1 came out right; the test proves nothing")
	}
}

// TestReaderReadPacketConnectVersions covers the other levels a CONNECT can
// switch to, and a refused CONNECT, which switches nothing.
func TestReaderReadPacketConnectVersions(t *testing.T) {
	for _, v := range []Version{V31, V311} {
		r := NewReader(bytes.NewReader(rdrWire(t, v, &Connect{ClientID: "c"})), 0)
		r.SetVersion(V5)
		p, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if p.(*Connect).Version != v || r.Version() != v {
			t.Errorf("%v CONNECT: packet %v, Reader %v", v, p.(*Connect).Version, r.Version())
		}
	}
	bad := rdrWire(t, V5, &Connect{ClientID: "c"})
	bad[8] = 6 // protocol level
	r := NewReader(bytes.NewReader(bad), 0)
	if _, err := r.ReadPacket(); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("level 6: %v", err)
	}
	if r.Version() != V311 {
		t.Errorf("a refused CONNECT changed the version to %v", r.Version())
	}
}
