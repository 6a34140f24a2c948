package packet

// Puback is a PUBACK packet, the end of a QoS 1 exchange. Pubrec, Pubrel and
// Pubcomp, the three legs of QoS 2, have the same fields.
type Puback struct {
	PacketID uint16
	// ReasonCode is MQTT 5.0 only; 3.1.1 encoders ignore it and decoders
	// set it to Success.
	ReasonCode ReasonCode
	Properties Properties // MQTT 5.0 only
}

// Pubrec is a PUBREC packet, the first answer in a QoS 2 exchange.
type Pubrec Puback

// Pubrel is a PUBREL packet, the sender's release in a QoS 2 exchange.
type Pubrel Puback

// Pubcomp is a PUBCOMP packet, the end of a QoS 2 exchange.
type Pubcomp Puback

// Type returns PUBACK.
func (p *Puback) Type() Type { return PUBACK }

// Type returns PUBREC.
func (p *Pubrec) Type() Type { return PUBREC }

// Type returns PUBREL.
func (p *Pubrel) Type() Type { return PUBREL }

// Type returns PUBCOMP.
func (p *Pubcomp) Type() Type { return PUBCOMP }

// AppendTo implements Packet.
func (p *Puback) AppendTo(dst []byte, v Version) ([]byte, error) { return p.appendAs(dst, PUBACK, v) }

// AppendTo implements Packet.
func (p *Pubrec) AppendTo(dst []byte, v Version) ([]byte, error) {
	return (*Puback)(p).appendAs(dst, PUBREC, v)
}

// AppendTo implements Packet.
func (p *Pubrel) AppendTo(dst []byte, v Version) ([]byte, error) {
	return (*Puback)(p).appendAs(dst, PUBREL, v)
}

// AppendTo implements Packet.
func (p *Pubcomp) AppendTo(dst []byte, v Version) ([]byte, error) {
	return (*Puback)(p).appendAs(dst, PUBCOMP, v)
}

// Decode implements Packet.
func (p *Puback) Decode(flags byte, body []byte, v Version) error {
	return p.decodeAs(PUBACK, flags, body, v)
}

// Decode implements Packet.
func (p *Pubrec) Decode(flags byte, body []byte, v Version) error {
	return (*Puback)(p).decodeAs(PUBREC, flags, body, v)
}

// Decode implements Packet.
func (p *Pubrel) Decode(flags byte, body []byte, v Version) error {
	return (*Puback)(p).decodeAs(PUBREL, flags, body, v)
}

// Decode implements Packet.
func (p *Pubcomp) Decode(flags byte, body []byte, v Version) error {
	return (*Puback)(p).decodeAs(PUBCOMP, flags, body, v)
}

// appendAs encodes any of the four acknowledgements. MQTT 5.0 lets the
// reason code and properties be left off when they are Success and empty,
// which keeps the common case at the 3.1.1 size of two bytes.
func (p *Puback) appendAs(dst []byte, t Type, v Version) ([]byte, error) {
	if err := checkVersion(t, v); err != nil {
		return dst, err
	}
	if err := checkID(t, p.PacketID); err != nil {
		return dst, err
	}
	remaining, props := 2, 0
	if v == V5 {
		if err := checkReason(t, p.ReasonCode); err != nil {
			return dst, err
		}
		var err error
		if props, err = p.Properties.size(t); err != nil {
			return dst, err
		}
		switch {
		case props > 0:
			remaining += 1 + varintLen(props) + props
		case p.ReasonCode != Success:
			remaining++
		}
	}
	dst, err := appendHeader(dst, t, fixedFlags[t], remaining)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	if remaining > 2 {
		dst = append(dst, byte(p.ReasonCode))
	}
	if remaining > 3 {
		dst = p.Properties.appendTo(dst, props)
	}
	return dst, nil
}

func (p *Puback) decodeAs(t Type, flags byte, body []byte, v Version) error {
	if err := checkVersion(t, v); err != nil {
		return err
	}
	if err := checkFlags(t, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: t}
	p.PacketID = d.uint16("packet identifier")
	if d.err == nil && p.PacketID == 0 {
		return newError(ErrProtocolViolation, t, "packet identifier", "must not be 0")
	}
	p.ReasonCode = Success
	p.Properties.Reset()
	var reasonErr error
	if v == V5 && d.remaining() > 0 {
		p.ReasonCode = ReasonCode(d.byte("reason code"))
		// A code not valid for this packet is reported, but only once the
		// rest is decoded: a lenient receiver may then go on (some
		// brokers acknowledge a QoS 1 PUBLISH with 0x01, "granted QoS 1").
		reasonErr = checkReason(t, p.ReasonCode)
		if d.remaining() > 0 {
			p.Properties.decode(&d, t)
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	return reasonErr
}
