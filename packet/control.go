package packet

// Pingreq is a PINGREQ packet: the client's keep-alive probe. It has no body.
type Pingreq struct{}

// Pingresp is a PINGRESP packet: the broker's answer to PINGREQ.
type Pingresp struct{}

// Type returns PINGREQ.
func (*Pingreq) Type() Type { return PINGREQ }

// Type returns PINGRESP.
func (*Pingresp) Type() Type { return PINGRESP }

// AppendTo implements Packet.
func (*Pingreq) AppendTo(dst []byte, v Version) ([]byte, error) { return appendEmpty(dst, PINGREQ, v) }

// AppendTo implements Packet.
func (*Pingresp) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendEmpty(dst, PINGRESP, v)
}

// Decode implements Packet.
func (*Pingreq) Decode(flags byte, body []byte, v Version) error {
	return decodeEmpty(PINGREQ, flags, body, v)
}

// Decode implements Packet.
func (*Pingresp) Decode(flags byte, body []byte, v Version) error {
	return decodeEmpty(PINGRESP, flags, body, v)
}

func appendEmpty(dst []byte, t Type, v Version) ([]byte, error) {
	if err := checkVersion(t, v); err != nil {
		return dst, err
	}
	return append(dst, byte(t)<<4, 0), nil
}

func decodeEmpty(t Type, flags byte, body []byte, v Version) error {
	if err := checkVersion(t, v); err != nil {
		return err
	}
	if err := checkFlags(t, flags); err != nil {
		return err
	}
	if len(body) != 0 {
		return newError(ErrMalformed, t, "remaining length", "must be 0, got "+itoa(len(body)))
	}
	return nil
}

// Disconnect is a DISCONNECT packet. In MQTT 3.1.1 it is empty and only a
// client sends it; in 5.0 either side may, with a reason code.
type Disconnect struct {
	ReasonCode ReasonCode // MQTT 5.0 only
	Properties Properties // MQTT 5.0 only
}

// Type returns DISCONNECT.
func (d *Disconnect) Type() Type { return DISCONNECT }

// AppendTo implements Packet.
func (d *Disconnect) AppendTo(dst []byte, v Version) ([]byte, error) {
	if v != V5 {
		return appendEmpty(dst, DISCONNECT, v)
	}
	return appendReasoned(dst, DISCONNECT, d.ReasonCode, &d.Properties)
}

// Decode implements Packet.
func (d *Disconnect) Decode(flags byte, body []byte, v Version) error {
	if v != V5 {
		d.ReasonCode = NormalDisconnection
		d.Properties.Reset()
		return decodeEmpty(DISCONNECT, flags, body, v)
	}
	return decodeReasoned(DISCONNECT, flags, body, &d.ReasonCode, &d.Properties)
}

// Auth is an AUTH packet, MQTT 5.0's step of an enhanced authentication
// exchange. Encoding or decoding it for 3.1.1 is a protocol violation.
type Auth struct {
	ReasonCode ReasonCode // Success, ContinueAuthentication or ReAuthenticate
	Properties Properties // Authentication Method and Data, Reason String, user properties
}

// Type returns AUTH.
func (a *Auth) Type() Type { return AUTH }

// AppendTo implements Packet.
func (a *Auth) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := checkAuthVersion(v); err != nil {
		return dst, err
	}
	return appendReasoned(dst, AUTH, a.ReasonCode, &a.Properties)
}

// Decode implements Packet.
func (a *Auth) Decode(flags byte, body []byte, v Version) error {
	if err := checkAuthVersion(v); err != nil {
		return err
	}
	return decodeReasoned(AUTH, flags, body, &a.ReasonCode, &a.Properties)
}

func checkAuthVersion(v Version) error {
	if err := checkVersion(AUTH, v); err != nil {
		return err
	}
	if v != V5 {
		return newError(ErrProtocolViolation, AUTH, "packet type", "AUTH exists only in MQTT 5.0")
	}
	return nil
}

// appendReasoned encodes the MQTT 5.0 DISCONNECT and AUTH bodies. Both may
// leave everything off when the code is Success and there are no
// properties; only DISCONNECT may also stop right after the reason code
// (sections 3.14.2.2.1 and 3.15.2.1).
func appendReasoned(dst []byte, t Type, r ReasonCode, p *Properties) ([]byte, error) {
	if err := checkReason(t, r); err != nil {
		return dst, err
	}
	props, err := p.size(t)
	if err != nil {
		return dst, err
	}
	remaining := 0
	switch {
	case props > 0 || (t == AUTH && r != Success):
		remaining = 1 + varintLen(props) + props
	case r != Success:
		remaining = 1
	}
	if err := checkAuthMethod(t, remaining, p); err != nil {
		return dst, err
	}
	dst, err = appendHeader(dst, t, 0, remaining)
	if err != nil {
		return dst, err
	}
	if remaining > 0 {
		dst = append(dst, byte(r))
	}
	if remaining > 1 {
		dst = p.appendTo(dst, props)
	}
	return dst, nil
}

func decodeReasoned(t Type, flags byte, body []byte, r *ReasonCode, p *Properties) error {
	if err := checkFlags(t, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: t}
	*r = Success
	p.Reset()
	if d.remaining() > 0 {
		*r = ReasonCode(d.byte("reason code"))
		if err := checkReason(t, *r); err != nil {
			return err
		}
	}
	if d.remaining() > 0 {
		p.decode(&d, t)
	}
	if err := d.end(); err != nil {
		return err
	}
	return checkAuthMethod(t, len(body), p)
}

// checkAuthMethod enforces section 3.15.2.2.2: an AUTH that carries more
// than the bare success form must name its authentication method.
func checkAuthMethod(t Type, remaining int, p *Properties) error {
	if t == AUTH && remaining > 0 && p.AuthMethod == "" {
		return newError(ErrProtocolViolation, AUTH, "Authentication Method", "required in every AUTH but the empty success form")
	}
	return nil
}
