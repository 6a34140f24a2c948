package packet

// Unsubscribe is an UNSUBSCRIBE packet: one or more topic filters to drop.
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties // MQTT 5.0 only: user properties
	Filters    []string
}

// Type returns UNSUBSCRIBE.
func (u *Unsubscribe) Type() Type { return UNSUBSCRIBE }

// AppendTo implements Packet.
func (u *Unsubscribe) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(UNSUBSCRIBE, v); err != nil {
		return dst, err
	}
	if err := checkID(UNSUBSCRIBE, u.PacketID); err != nil {
		return dst, err
	}
	if len(u.Filters) == 0 {
		return dst, newError(ErrProtocolViolation, UNSUBSCRIBE, "payload", "needs at least one topic filter")
	}
	props, block, err := u.Properties.block(UNSUBSCRIBE, v)
	if err != nil {
		return dst, err
	}
	remaining := 2 + block
	for _, f := range u.Filters {
		if err := checkFilter(UNSUBSCRIBE, f, v); err != nil {
			return dst, err
		}
		remaining += 2 + len(f)
	}
	dst, err = appendHeader(dst, UNSUBSCRIBE, fixedFlags[UNSUBSCRIBE], remaining)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, u.PacketID)
	if v == V5 {
		dst = u.Properties.appendTo(dst, props)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// checkFilter validates a topic filter the encoder is about to write.
func checkFilter(t Type, f string, v Version) error {
	if why := stringError(f); why != "" {
		return newError(ErrMalformed, t, "topic filter", why)
	}
	return checkDecodedFilter(t, f, v)
}

// checkDecodedFilter applies the wildcard rules to a filter whose UTF-8 the
// decoder has already checked.
func checkDecodedFilter(t Type, f string, v Version) error {
	if why := topicFilterError(f, v == V5); why != "" {
		return newError(ErrProtocolViolation, t, "topic filter", why+" in "+quote(f))
	}
	return nil
}

// Decode implements Packet.
func (u *Unsubscribe) Decode(flags byte, body []byte, v Version) error {
	if err := checkVersion(UNSUBSCRIBE, v); err != nil {
		return err
	}
	if err := checkFlags(UNSUBSCRIBE, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: UNSUBSCRIBE}
	u.PacketID = d.uint16("packet identifier")
	if d.err == nil && u.PacketID == 0 {
		return newError(ErrProtocolViolation, UNSUBSCRIBE, "packet identifier", "must not be 0")
	}
	if v == V5 {
		u.Properties.decode(&d, UNSUBSCRIBE)
	} else {
		u.Properties.Reset()
	}
	u.Filters = u.Filters[:0]
	for d.err == nil && d.remaining() > 0 {
		f := d.string("topic filter")
		if d.err != nil {
			break
		}
		if err := checkDecodedFilter(UNSUBSCRIBE, f, v); err != nil {
			return err
		}
		u.Filters = append(u.Filters, f)
	}
	if d.err == nil && len(u.Filters) == 0 {
		return newError(ErrProtocolViolation, UNSUBSCRIBE, "payload", "needs at least one topic filter")
	}
	return d.end()
}

// Unsuback is an UNSUBACK packet. MQTT 3.1.1 carries only the packet
// identifier; 5.0 adds one reason code per filter of the UNSUBSCRIBE.
type Unsuback struct {
	PacketID    uint16
	Properties  Properties   // MQTT 5.0 only
	ReasonCodes []ReasonCode // MQTT 5.0 only
}

// Type returns UNSUBACK.
func (u *Unsuback) Type() Type { return UNSUBACK }

// AppendTo implements Packet.
func (u *Unsuback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, UNSUBACK, v, u.PacketID, &u.Properties, u.ReasonCodes)
}

// Decode implements Packet.
func (u *Unsuback) Decode(flags byte, body []byte, v Version) error {
	return decodeCodes(UNSUBACK, flags, body, v, &u.PacketID, &u.Properties, &u.ReasonCodes)
}
