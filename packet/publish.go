package packet

// Publish is a PUBLISH packet: an application message on its way from
// client to broker or broker to client.
type Publish struct {
	Dup    bool // a resend of an earlier attempt; must be false at QoS 0
	QoS    byte // 0, 1 or 2
	Retain bool
	// Topic is the topic name. In MQTT 5.0 it may be empty when
	// Properties.TopicAlias names a topic set earlier on the connection.
	Topic string
	// PacketID identifies a QoS 1 or 2 exchange; it must be non-zero then
	// and is neither written nor read at QoS 0.
	PacketID   uint16
	Properties Properties // MQTT 5.0 only
	Payload    []byte
}

// Type returns PUBLISH.
func (p *Publish) Type() Type { return PUBLISH }

// Flags returns the fixed header flag bits carrying Dup, QoS and Retain.
func (p *Publish) Flags() byte {
	f := p.QoS << 1
	if p.Dup {
		f |= 0x08
	}
	if p.Retain {
		f |= 0x01
	}
	return f
}

// AppendTo implements Packet.
func (p *Publish) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(PUBLISH, v); err != nil {
		return dst, err
	}
	if p.QoS > 2 {
		return dst, newError(ErrMalformed, PUBLISH, "QoS", "must be 0, 1 or 2, got "+itoa(int(p.QoS)))
	}
	if p.QoS == 0 && p.Dup {
		return dst, newError(ErrProtocolViolation, PUBLISH, "DUP flag", "must be 0 at QoS 0")
	}
	if p.QoS > 0 && p.PacketID == 0 {
		return dst, newError(ErrProtocolViolation, PUBLISH, "packet identifier", "must not be 0 at QoS "+itoa(int(p.QoS)))
	}
	if why := stringError(p.Topic); why != "" {
		return dst, newError(ErrMalformed, PUBLISH, "topic name", why)
	}
	remaining := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		remaining += 2
	}
	props, block, err := p.Properties.block(PUBLISH, v)
	if err != nil {
		return dst, err
	}
	remaining += block
	if err := p.checkTopic(v); err != nil {
		return dst, err
	}
	dst, err = appendHeader(dst, PUBLISH, p.Flags(), remaining)
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Properties.appendTo(dst, props)
	}
	return append(dst, p.Payload...), nil
}

// checkTopic applies the topic name rules once the properties are known.
func (p *Publish) checkTopic(v Version) error {
	if p.Topic == "" {
		if v == V5 && p.Properties.TopicAlias != 0 {
			return nil
		}
		return newError(ErrProtocolViolation, PUBLISH, "topic name", "empty (allowed only in MQTT 5.0 with a Topic Alias)")
	}
	if hasWildcard(p.Topic) {
		return newError(ErrProtocolViolation, PUBLISH, "topic name", "contains a wildcard (+ or #)")
	}
	return nil
}

// Decode implements Packet. Topic, Payload and the properties alias body.
func (p *Publish) Decode(flags byte, body []byte, v Version) error {
	if err := checkVersion(PUBLISH, v); err != nil {
		return err
	}
	p.QoS = flags >> 1 & 3
	p.Dup = flags&0x08 != 0
	p.Retain = flags&0x01 != 0
	if p.QoS == 3 {
		return newError(ErrMalformed, PUBLISH, "QoS", "both QoS bits are set")
	}
	if p.QoS == 0 && p.Dup {
		return newError(ErrProtocolViolation, PUBLISH, "DUP flag", "must be 0 at QoS 0")
	}
	d := decoder{b: body, t: PUBLISH}
	p.Topic = d.string("topic name")
	p.PacketID = 0
	if p.QoS > 0 {
		p.PacketID = d.uint16("packet identifier")
		if d.err == nil && p.PacketID == 0 {
			return newError(ErrProtocolViolation, PUBLISH, "packet identifier", "must not be 0 at QoS "+itoa(int(p.QoS)))
		}
	}
	if v == V5 {
		p.Properties.decode(&d, PUBLISH)
	} else {
		p.Properties.Reset()
	}
	if d.err != nil {
		return d.err
	}
	if err := p.checkTopic(v); err != nil {
		return err
	}
	p.Payload = d.rest()
	return nil
}
