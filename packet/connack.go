package packet

// Connack is a CONNACK packet, the broker's answer to CONNECT.
type Connack struct {
	SessionPresent bool
	// ReasonCode is the outcome. In MQTT 3.1.1 it holds the return code
	// byte (see ReturnCode); in 5.0 a reason code valid for CONNACK.
	ReasonCode ReasonCode
	Properties Properties // MQTT 5.0 only
}

// Type returns CONNACK.
func (c *Connack) Type() Type { return CONNACK }

// ReturnCode interprets ReasonCode as an MQTT 3.1.1 return code.
func (c *Connack) ReturnCode() ConnectReturnCode { return ConnectReturnCode(c.ReasonCode) }

// AppendTo implements Packet.
func (c *Connack) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(CONNACK, v); err != nil {
		return dst, err
	}
	if err := c.check(v); err != nil {
		return dst, err
	}
	props, block, err := c.Properties.block(CONNACK, v)
	if err != nil {
		return dst, err
	}
	dst, err = appendHeader(dst, CONNACK, 0, 2+block)
	if err != nil {
		return dst, err
	}
	var flags byte
	if c.SessionPresent {
		flags = 1
	}
	dst = append(dst, flags, byte(c.ReasonCode))
	if v == V5 {
		dst = c.Properties.appendTo(dst, props)
	}
	return dst, nil
}

func (c *Connack) check(v Version) error {
	if v == V5 && !c.ReasonCode.ValidFor(CONNACK) {
		return newError(ErrProtocolViolation, CONNACK, "reason code", c.ReasonCode.String()+" is not valid in CONNACK")
	}
	if c.SessionPresent && c.ReasonCode != 0 {
		return newError(ErrProtocolViolation, CONNACK, "session present", "must be 0 when the connection is refused")
	}
	return nil
}

// Decode implements Packet.
func (c *Connack) Decode(flags byte, body []byte, v Version) error {
	if err := checkVersion(CONNACK, v); err != nil {
		return err
	}
	if err := checkFlags(CONNACK, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: CONNACK}
	f := d.byte("acknowledge flags")
	c.ReasonCode = ReasonCode(d.byte("reason code"))
	if d.err != nil {
		return d.err
	}
	if f&^1 != 0 {
		return newError(ErrMalformed, CONNACK, "acknowledge flags", "reserved bits 7-1 are set")
	}
	c.SessionPresent = f == 1
	if v == V5 {
		c.Properties.decode(&d, CONNACK)
	} else {
		c.Properties.Reset()
	}
	if err := d.end(); err != nil {
		return err
	}
	return c.check(v)
}
