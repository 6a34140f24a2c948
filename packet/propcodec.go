package packet

import (
	"math/bits"
	"strconv"
)

// allowedMask[t] has bit id set for every property legal in context t
// (willContext for the will properties).
var allowedMask = func() (m [16]uint64) {
	for id, info := range propTable {
		for t := 0; t < 16; t++ {
			if info.allowed&(1<<t) != 0 {
				m[t] |= 1 << id
			}
		}
	}
	return m
}()

// setMask returns a bit for every single-valued property the encoder will
// write: marked present or holding a non-zero value. It is written out field
// by field because it runs for every MQTT 5.0 packet encoded.
func (p *Properties) setMask() uint64 {
	m := p.present
	bit := func(c bool, id PropID) {
		if c {
			m |= 1 << id
		}
	}
	bit(p.PayloadFormat != 0, PropPayloadFormat)
	bit(p.MessageExpiry != 0, PropMessageExpiry)
	bit(p.ContentType != "", PropContentType)
	bit(p.ResponseTopic != "", PropResponseTopic)
	bit(len(p.CorrelationData) != 0, PropCorrelationData)
	bit(p.SessionExpiry != 0, PropSessionExpiry)
	bit(p.AssignedClientID != "", PropAssignedClientID)
	bit(p.ServerKeepAlive != 0, PropServerKeepAlive)
	bit(p.AuthMethod != "", PropAuthMethod)
	bit(len(p.AuthData) != 0, PropAuthData)
	bit(p.RequestProblemInfo != 0, PropRequestProblemInfo)
	bit(p.WillDelay != 0, PropWillDelay)
	bit(p.RequestResponseInfo != 0, PropRequestResponseInfo)
	bit(p.ResponseInfo != "", PropResponseInfo)
	bit(p.ServerReference != "", PropServerReference)
	bit(p.ReasonString != "", PropReasonString)
	bit(p.ReceiveMaximum != 0, PropReceiveMaximum)
	bit(p.TopicAliasMaximum != 0, PropTopicAliasMaximum)
	bit(p.TopicAlias != 0, PropTopicAlias)
	bit(p.MaximumQoS != 0, PropMaximumQoS)
	bit(p.RetainAvailable != 0, PropRetainAvailable)
	bit(p.MaximumPacketSize != 0, PropMaximumPacketSize)
	bit(p.WildcardSubAvailable != 0, PropWildcardSubAvailable)
	bit(p.SubscriptionIDAvailable != 0, PropSubscriptionIDAvailable)
	bit(p.SharedSubAvailable != 0, PropSharedSubAvailable)
	return m
}

// propError builds the error for property id in context ctx; the will's
// properties are reported as fields of CONNECT.
func propError(kind error, ctx Type, id PropID, detail string) *Error {
	t, field := ctx, id.String()
	if ctx == willContext {
		t, field = CONNECT, "will property "+field
	}
	return newError(kind, t, field, detail)
}

// checkValue applies the value rules of section 3 that make a present
// property a protocol error.
func checkValue(id PropID, n uint32, s string) string {
	switch id {
	case PropPayloadFormat, PropRequestProblemInfo, PropRequestResponseInfo, PropMaximumQoS,
		PropRetainAvailable, PropWildcardSubAvailable, PropSubscriptionIDAvailable, PropSharedSubAvailable:
		if n > 1 {
			return "must be 0 or 1, got " + strconv.Itoa(int(n))
		}
	case PropReceiveMaximum, PropTopicAlias, PropMaximumPacketSize:
		if n == 0 {
			return "must not be 0"
		}
	case PropResponseTopic:
		if why := topicNameError(s); why != "" {
			return why
		}
	}
	return ""
}

func checkSubscriptionID(v int) string {
	if v == 0 {
		return "must not be 0"
	}
	if v > MaxVarint {
		return "exceeds 268,435,455"
	}
	return ""
}

// block validates p for packet t and returns the length of its properties
// (n) and of the whole property block with its length prefix. MQTT 3.1.1
// has no properties, so both are 0 for any other version.
func (p *Properties) block(t Type, v Version) (n, block int, err error) {
	if v != V5 {
		return 0, 0, nil
	}
	if n, err = p.size(t); err != nil {
		return 0, 0, err
	}
	return n, varintLen(n) + n, nil
}

// size validates p for context ctx and returns the length of the encoded
// properties, not counting the property length prefix.
func (p *Properties) size(ctx Type) (int, error) {
	n := 0
	mask := p.setMask()
	if bad := mask &^ allowedMask[ctx]; bad != 0 {
		id := PropID(bits.TrailingZeros64(bad))
		return 0, propError(ErrMalformed, ctx, id, "not valid in this packet (a malformed packet, 5.0 section 2.2.2.2)")
	}
	for m := mask; m != 0; m &= m - 1 {
		id := PropID(bits.TrailingZeros64(m))
		f := p.field(id)
		switch propTable[id].kind {
		case kindByte:
			n += 2
		case kindUint16:
			n += 3
		case kindUint32:
			n += 5
		case kindString:
			if why := stringError(*f.s); why != "" {
				return 0, propError(ErrMalformed, ctx, id, why)
			}
			n += 3 + len(*f.s)
		case kindBinary:
			if len(*f.bin) > 65535 {
				return 0, propError(ErrMalformed, ctx, id, "longer than 65,535 bytes")
			}
			n += 3 + len(*f.bin)
		}
		if why := checkValue(id, f.num(), stringOf(f)); why != "" {
			return 0, propError(ErrProtocolViolation, ctx, id, why)
		}
	}
	if len(p.SubscriptionIDs) > 0 {
		if !PropSubscriptionID.allowedCtx(ctx) {
			return 0, propError(ErrMalformed, ctx, PropSubscriptionID, "not valid in this packet (a malformed packet, 5.0 section 2.2.2.2)")
		}
		if ctx == SUBSCRIBE && len(p.SubscriptionIDs) > 1 {
			return 0, propError(ErrProtocolViolation, ctx, PropSubscriptionID, "a SUBSCRIBE carries at most one")
		}
		for _, v := range p.SubscriptionIDs {
			if why := checkSubscriptionID(int(v)); why != "" {
				return 0, propError(ErrProtocolViolation, ctx, PropSubscriptionID, why)
			}
			n += 1 + varintLen(int(v))
		}
	}
	if len(p.User) > 0 {
		if !PropUserProperty.allowedCtx(ctx) {
			return 0, propError(ErrMalformed, ctx, PropUserProperty, "not valid in this packet (a malformed packet, 5.0 section 2.2.2.2)")
		}
		for _, u := range p.User {
			if why := stringError(u.Key); why != "" {
				return 0, propError(ErrMalformed, ctx, PropUserProperty, "name: "+why)
			}
			if why := stringError(u.Value); why != "" {
				return 0, propError(ErrMalformed, ctx, PropUserProperty, "value: "+why)
			}
			n += 5 + len(u.Key) + len(u.Value)
		}
	}
	return n, nil
}

func (id PropID) allowedCtx(ctx Type) bool { return allowedMask[ctx]&(1<<id) != 0 }

func stringOf(f fieldRef) string {
	if f.s != nil {
		return *f.s
	}
	return ""
}

// appendTo writes the property length n (from size) and the properties.
func (p *Properties) appendTo(dst []byte, n int) []byte {
	dst = appendVarint(dst, n)
	if n == 0 {
		return dst
	}
	for m := p.setMask(); m != 0; m &= m - 1 {
		id := PropID(bits.TrailingZeros64(m))
		f := p.field(id)
		dst = append(dst, byte(id))
		switch propTable[id].kind {
		case kindByte:
			dst = append(dst, *f.b)
		case kindUint16:
			dst = appendUint16(dst, *f.u16)
		case kindUint32:
			dst = appendUint32(dst, *f.u32)
		case kindString:
			dst = appendString(dst, *f.s)
		case kindBinary:
			dst = appendBinary(dst, *f.bin)
		}
	}
	for _, v := range p.SubscriptionIDs {
		dst = append(dst, byte(PropSubscriptionID))
		dst = appendVarint(dst, int(v))
	}
	for _, u := range p.User {
		dst = append(dst, byte(PropUserProperty))
		dst = appendString(dst, u.Key)
		dst = appendString(dst, u.Value)
	}
	return dst
}

// decode replaces p with the property block at the decoder's position.
func (p *Properties) decode(d *decoder, ctx Type) {
	p.Reset()
	n := d.varint("property length")
	if d.err != nil {
		return
	}
	if n > d.remaining() {
		d.fail(ErrMalformed, "property length", itoa(n)+" bytes of properties but only "+itoa(d.remaining())+" left in the packet")
		return
	}
	end := d.off + n
	sub := decoder{b: d.b[:end], off: d.off, t: d.t}
	var seen uint64
	for sub.off < end && sub.err == nil {
		raw := sub.varint("property identifier")
		if sub.err != nil {
			break
		}
		id := PropID(raw)
		info, ok := id.info()
		if raw > 0xff || !ok {
			sub.err = newError(ErrMalformed, d.t, "properties", "unknown property identifier 0x"+strconv.FormatUint(uint64(raw), 16))
			break
		}
		if !id.allowedCtx(ctx) {
			sub.err = propError(ErrMalformed, ctx, id, "not valid in this packet (a malformed packet, 5.0 section 2.2.2.2)")
			break
		}
		switch id {
		case PropUserProperty:
			k := sub.string(info.name)
			v := sub.string(info.name)
			if sub.err == nil {
				p.User = append(p.User, UserProperty{k, v})
			}
			continue
		case PropSubscriptionID:
			v := sub.varint(info.name)
			if sub.err != nil {
				continue
			}
			if why := checkSubscriptionID(v); why != "" {
				sub.err = propError(ErrProtocolViolation, ctx, id, why)
			} else if ctx == SUBSCRIBE && len(p.SubscriptionIDs) > 0 {
				sub.err = propError(ErrProtocolViolation, ctx, id, "a SUBSCRIBE carries at most one")
			} else {
				p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
			}
			continue
		}
		if seen&(1<<id) != 0 {
			sub.err = propError(ErrProtocolViolation, ctx, id, "included more than once")
			break
		}
		seen |= 1 << id
		f := p.field(id)
		var num uint32
		var s string
		switch info.kind {
		case kindByte:
			num = uint32(sub.byte(info.name))
		case kindUint16:
			num = uint32(sub.uint16(info.name))
		case kindUint32:
			num = sub.uint32(info.name)
		case kindString:
			s = sub.string(info.name)
		case kindBinary:
			f.set(0, "", sub.binary(info.name))
		}
		if sub.err != nil {
			break
		}
		if info.kind != kindBinary {
			f.set(num, s, nil)
		}
		if why := checkValue(id, num, s); why != "" {
			sub.err = propError(ErrProtocolViolation, ctx, id, why)
		}
	}
	p.present = seen
	if sub.err != nil {
		d.err = sub.err
		return
	}
	d.off = end
}
