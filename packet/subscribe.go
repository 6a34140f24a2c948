package packet

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter string
	QoS    byte // the maximum QoS the subscriber accepts
	// The options below are MQTT 5.0 only; 3.1.1 encoders refuse them set.
	NoLocal           bool // do not send the subscriber its own publishes; not for shared subscriptions
	RetainAsPublished bool // keep the retain flag of forwarded messages
	RetainHandling    byte // 0: send retained messages, 1: only for a new subscription, 2: never
}

// options encodes the subscription options byte.
func (s *Subscription) options() byte {
	o := s.QoS | s.RetainHandling<<4
	if s.NoLocal {
		o |= 0x04
	}
	if s.RetainAsPublished {
		o |= 0x08
	}
	return o
}

// checkOptions validates the options of s for version v; decoding and
// encoding share it.
func (s *Subscription) checkOptions(v Version) error {
	if s.QoS > 2 {
		// 3.1.1 calls this malformed ([MQTT-3.8.3-4]), 5.0 a protocol error
		// (section 3.8.3.1).
		kind := ErrMalformed
		if v == V5 {
			kind = ErrProtocolViolation
		}
		return newError(kind, SUBSCRIBE, "subscription options", "QoS must be 0, 1 or 2, got "+itoa(int(s.QoS)))
	}
	if v != V5 {
		if s.NoLocal || s.RetainAsPublished || s.RetainHandling != 0 {
			return newError(ErrProtocolViolation, SUBSCRIBE, "subscription options", "No Local, Retain As Published and Retain Handling exist only in MQTT 5.0")
		}
		return nil
	}
	if s.RetainHandling > 2 {
		return newError(ErrProtocolViolation, SUBSCRIBE, "subscription options", "Retain Handling must be 0, 1 or 2, got "+itoa(int(s.RetainHandling)))
	}
	if _, _, shared := ParseShared(s.Filter); shared && s.NoLocal {
		return newError(ErrProtocolViolation, SUBSCRIBE, "subscription options", "No Local is not allowed on a shared subscription")
	}
	return nil
}

// Subscribe is a SUBSCRIBE packet: one or more topic filters.
type Subscribe struct {
	PacketID      uint16
	Properties    Properties // MQTT 5.0 only: at most one subscription identifier, user properties
	Subscriptions []Subscription
}

// Type returns SUBSCRIBE.
func (s *Subscribe) Type() Type { return SUBSCRIBE }

// AppendTo implements Packet.
func (s *Subscribe) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(SUBSCRIBE, v); err != nil {
		return dst, err
	}
	if err := checkID(SUBSCRIBE, s.PacketID); err != nil {
		return dst, err
	}
	if len(s.Subscriptions) == 0 {
		return dst, newError(ErrProtocolViolation, SUBSCRIBE, "payload", "needs at least one topic filter")
	}
	props, block, err := s.Properties.block(SUBSCRIBE, v)
	if err != nil {
		return dst, err
	}
	remaining := 2 + block
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		if err := checkFilter(SUBSCRIBE, sub.Filter, v); err != nil {
			return dst, err
		}
		if err := sub.checkOptions(v); err != nil {
			return dst, err
		}
		remaining += 3 + len(sub.Filter)
	}
	dst, err = appendHeader(dst, SUBSCRIBE, fixedFlags[SUBSCRIBE], remaining)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, s.PacketID)
	if v == V5 {
		dst = s.Properties.appendTo(dst, props)
	}
	for i := range s.Subscriptions {
		dst = appendString(dst, s.Subscriptions[i].Filter)
		dst = append(dst, s.Subscriptions[i].options())
	}
	return dst, nil
}

// Decode implements Packet. An invalid topic filter fails the whole packet
// with ErrProtocolViolation; a broker that prefers to refuse just that
// filter in its SUBACK can check filters itself with TopicFilterError.
func (s *Subscribe) Decode(flags byte, body []byte, v Version) error {
	if err := checkVersion(SUBSCRIBE, v); err != nil {
		return err
	}
	if err := checkFlags(SUBSCRIBE, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: SUBSCRIBE}
	s.PacketID = d.uint16("packet identifier")
	if d.err == nil && s.PacketID == 0 {
		return newError(ErrProtocolViolation, SUBSCRIBE, "packet identifier", "must not be 0")
	}
	if v == V5 {
		s.Properties.decode(&d, SUBSCRIBE)
	} else {
		s.Properties.Reset()
	}
	s.Subscriptions = s.Subscriptions[:0]
	for d.err == nil && d.remaining() > 0 {
		filter := d.string("topic filter")
		o := d.byte("subscription options")
		if d.err != nil {
			break
		}
		reserved := byte(0xfc) // 3.1.1: everything above the QoS bits
		if v == V5 {
			reserved = 0xc0
		}
		if o&reserved != 0 {
			return newError(ErrMalformed, SUBSCRIBE, "subscription options", "reserved bits are set")
		}
		sub := Subscription{
			Filter:            filter,
			QoS:               o & 3,
			NoLocal:           o&0x04 != 0,
			RetainAsPublished: o&0x08 != 0,
			RetainHandling:    o >> 4 & 3,
		}
		if err := checkDecodedFilter(SUBSCRIBE, filter, v); err != nil {
			return err
		}
		if err := sub.checkOptions(v); err != nil {
			return err
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	if d.err == nil && len(s.Subscriptions) == 0 {
		return newError(ErrProtocolViolation, SUBSCRIBE, "payload", "needs at least one topic filter")
	}
	return d.end()
}

// Suback is a SUBACK packet: one reason code per filter of the SUBSCRIBE it
// answers, in the same order. In MQTT 3.1.1 the codes are GrantedQoS0-2 or
// UnspecifiedError (0x80, "failure").
type Suback struct {
	PacketID    uint16
	Properties  Properties // MQTT 5.0 only
	ReasonCodes []ReasonCode
}

// Type returns SUBACK.
func (s *Suback) Type() Type { return SUBACK }

// AppendTo implements Packet.
func (s *Suback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, SUBACK, v, s.PacketID, &s.Properties, s.ReasonCodes)
}

// Decode implements Packet.
func (s *Suback) Decode(flags byte, body []byte, v Version) error {
	return decodeCodes(SUBACK, flags, body, v, &s.PacketID, &s.Properties, &s.ReasonCodes)
}

// checkCode validates one SUBACK or UNSUBACK code for v. MQTT 3.1.1 has a
// short list for SUBACK and no codes at all in UNSUBACK.
func checkCode(t Type, v Version, r ReasonCode) error {
	if v == V5 {
		return checkReason(t, r)
	}
	if r > GrantedQoS2 && r != UnspecifiedError {
		return newError(ErrProtocolViolation, t, "return code", "MQTT 3.1.1 allows 0, 1, 2 and 0x80")
	}
	return nil
}

// appendCodes encodes SUBACK and UNSUBACK, which differ only in their codes
// and in UNSUBACK carrying none in MQTT 3.1.1.
func appendCodes(dst []byte, t Type, v Version, id uint16, p *Properties, codes []ReasonCode) ([]byte, error) {
	if err := checkVersion(t, v); err != nil {
		return dst, err
	}
	if err := checkID(t, id); err != nil {
		return dst, err
	}
	withCodes := t == SUBACK || v == V5
	if withCodes && len(codes) == 0 {
		return dst, newError(ErrProtocolViolation, t, "payload", "needs at least one reason code")
	}
	props, block, err := p.block(t, v)
	if err != nil {
		return dst, err
	}
	remaining := 2 + block
	if withCodes {
		for _, r := range codes {
			if err := checkCode(t, v, r); err != nil {
				return dst, err
			}
		}
		remaining += len(codes)
	}
	dst, err = appendHeader(dst, t, 0, remaining)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, id)
	if v == V5 {
		dst = p.appendTo(dst, props)
	}
	if withCodes {
		for _, r := range codes {
			dst = append(dst, byte(r))
		}
	}
	return dst, nil
}

func decodeCodes(t Type, flags byte, body []byte, v Version, id *uint16, p *Properties, codes *[]ReasonCode) error {
	if err := checkVersion(t, v); err != nil {
		return err
	}
	if err := checkFlags(t, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: t}
	*id = d.uint16("packet identifier")
	if d.err == nil && *id == 0 {
		return newError(ErrProtocolViolation, t, "packet identifier", "must not be 0")
	}
	if v == V5 {
		p.decode(&d, t)
	} else {
		p.Reset()
	}
	*codes = (*codes)[:0]
	if t == UNSUBACK && v != V5 {
		return d.end()
	}
	for _, c := range d.rest() {
		if err := checkCode(t, v, ReasonCode(c)); err != nil {
			return err
		}
		*codes = append(*codes, ReasonCode(c))
	}
	if d.err == nil && len(*codes) == 0 {
		return newError(ErrProtocolViolation, t, "payload", "needs at least one reason code")
	}
	return d.err
}
