package packet

// Connect is a CONNECT packet, the first packet a client sends.
type Connect struct {
	// Version is the protocol level read by Decode. AppendTo ignores it and
	// writes the level it is given, so one Connect can be sent as either.
	Version Version
	// ProtocolName is the name read by Decode; AppendTo writes "MQTT"
	// ("MQIsdp" for V31) whatever it holds.
	ProtocolName string
	CleanStart   bool   // Clean Session in 3.1.1
	KeepAlive    uint16 // seconds; 0 turns keep-alive off
	Properties   Properties
	// ClientID may be empty: the broker then assigns one (MQTT 5.0) or, in
	// 3.1.1, accepts it only with CleanStart.
	ClientID string
	Will     *Will // nil: no will message
	// Username is sent when non-empty or when UsernameFlag is set; the same
	// rule holds for Password. MQTT 3.1.1 allows a password only with a user
	// name.
	Username     string
	UsernameFlag bool
	Password     []byte
	PasswordFlag bool
}

// Will is the message a broker publishes for a client that vanishes without
// a DISCONNECT.
type Will struct {
	QoS        byte
	Retain     bool
	Topic      string
	Payload    []byte
	Properties Properties // MQTT 5.0 will properties, such as WillDelay
}

// Type returns CONNECT.
func (c *Connect) Type() Type { return CONNECT }

const (
	connReserved     = 0x01
	connCleanStart   = 0x02
	connWill         = 0x04
	connWillRetain   = 0x20
	connPasswordFlag = 0x40
	connUsernameFlag = 0x80
)

func (c *Connect) flags() byte {
	var f byte
	if c.CleanStart {
		f |= connCleanStart
	}
	if w := c.Will; w != nil {
		f |= connWill | w.QoS<<3
		if w.Retain {
			f |= connWillRetain
		}
	}
	if c.PasswordFlag || len(c.Password) > 0 {
		f |= connPasswordFlag
	}
	if c.UsernameFlag || c.Username != "" {
		f |= connUsernameFlag
	}
	return f
}

// AppendTo implements Packet, writing protocol level v.
func (c *Connect) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(CONNECT, v); err != nil {
		return dst, err
	}
	name := "MQTT"
	if v == V31 {
		name = "MQIsdp"
	}
	flags := c.flags()
	if v != V5 && flags&connPasswordFlag != 0 && flags&connUsernameFlag == 0 {
		return dst, newError(ErrProtocolViolation, CONNECT, "password", "MQTT 3.1.1 allows a password only with a user name")
	}
	remaining := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	if err := checkString(CONNECT, "client identifier", c.ClientID); err != nil {
		return dst, err
	}
	props, willProps := 0, 0
	if v == V5 {
		var err error
		if props, err = c.Properties.size(CONNECT); err != nil {
			return dst, err
		}
		remaining += varintLen(props) + props
	}
	if w := c.Will; w != nil {
		if w.QoS > 2 {
			return dst, newError(ErrMalformed, CONNECT, "will QoS", "must be 0, 1 or 2, got "+itoa(int(w.QoS)))
		}
		if err := TopicNameError(w.Topic); err != nil {
			e := err.(*Error)
			return dst, newError(e.Kind, CONNECT, "will topic", e.Detail)
		}
		if err := checkBinary(CONNECT, "will payload", w.Payload); err != nil {
			return dst, err
		}
		if v == V5 {
			var err error
			if willProps, err = w.Properties.size(willContext); err != nil {
				return dst, err
			}
			remaining += varintLen(willProps) + willProps
		}
		remaining += 4 + len(w.Topic) + len(w.Payload)
	}
	if flags&connUsernameFlag != 0 {
		if err := checkString(CONNECT, "user name", c.Username); err != nil {
			return dst, err
		}
		remaining += 2 + len(c.Username)
	}
	if flags&connPasswordFlag != 0 {
		if err := checkBinary(CONNECT, "password", c.Password); err != nil {
			return dst, err
		}
		remaining += 2 + len(c.Password)
	}
	dst, err := appendHeader(dst, CONNECT, 0, remaining)
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, name)
	dst = append(dst, byte(v), flags)
	dst = appendUint16(dst, c.KeepAlive)
	if v == V5 {
		dst = c.Properties.appendTo(dst, props)
	}
	dst = appendString(dst, c.ClientID)
	if w := c.Will; w != nil {
		if v == V5 {
			dst = w.Properties.appendTo(dst, willProps)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if flags&connUsernameFlag != 0 {
		dst = appendString(dst, c.Username)
	}
	if flags&connPasswordFlag != 0 {
		dst = appendBinary(dst, c.Password)
	}
	return dst, nil
}

// Decode implements Packet. The protocol level comes from the packet
// itself, so v is ignored; an unknown protocol name or level is reported as
// ErrUnsupportedVersion with Version set to the level read, so a broker can
// answer with the right CONNACK. A Will already held is reused.
func (c *Connect) Decode(flags byte, body []byte, _ Version) error {
	if err := checkFlags(CONNECT, flags); err != nil {
		return err
	}
	d := decoder{b: body, t: CONNECT}
	c.ProtocolName = d.string("protocol name")
	c.Version = Version(d.byte("protocol level"))
	if d.err != nil {
		return d.err
	}
	if !(c.ProtocolName == "MQTT" && (c.Version == V311 || c.Version == V5)) &&
		!(c.ProtocolName == "MQIsdp" && c.Version == V31) {
		return newError(ErrUnsupportedVersion, CONNECT, "protocol", "name "+quote(c.ProtocolName)+" with level "+itoa(int(c.Version)))
	}
	f := d.byte("connect flags")
	c.KeepAlive = d.uint16("keep alive")
	if d.err != nil {
		return d.err
	}
	if f&connReserved != 0 {
		return newError(ErrMalformed, CONNECT, "connect flags", "reserved bit 0 is set")
	}
	willQoS := f >> 3 & 3
	if willQoS == 3 {
		return newError(ErrMalformed, CONNECT, "will QoS", "both QoS bits are set")
	}
	if f&connWill == 0 && (willQoS != 0 || f&connWillRetain != 0) {
		return newError(ErrMalformed, CONNECT, "connect flags", "will QoS or will retain set without the will flag")
	}
	c.CleanStart = f&connCleanStart != 0
	c.UsernameFlag = f&connUsernameFlag != 0
	c.PasswordFlag = f&connPasswordFlag != 0
	if c.Version != V5 && c.PasswordFlag && !c.UsernameFlag {
		return newError(ErrProtocolViolation, CONNECT, "password", "MQTT 3.1.1 allows a password only with a user name")
	}
	if c.Version == V5 {
		c.Properties.decode(&d, CONNECT)
	} else {
		c.Properties.Reset()
	}
	c.ClientID = d.string("client identifier")
	if f&connWill != 0 {
		w := c.Will
		if w == nil {
			w = new(Will)
			c.Will = w
		}
		w.QoS, w.Retain = willQoS, f&connWillRetain != 0
		if c.Version == V5 {
			w.Properties.decode(&d, willContext)
		} else {
			w.Properties.Reset()
		}
		w.Topic = d.string("will topic")
		w.Payload = d.binary("will payload")
		if d.err == nil {
			if why := topicNameError(w.Topic); why != "" {
				return newError(ErrProtocolViolation, CONNECT, "will topic", why)
			}
		}
	} else {
		c.Will = nil
	}
	c.Username, c.Password = "", nil
	if c.UsernameFlag {
		c.Username = d.string("user name")
	}
	if c.PasswordFlag {
		c.Password = d.binary("password")
	}
	return d.end()
}

func quote(s string) string {
	const max = 32
	if len(s) > max {
		s = s[:max] + "..."
	}
	return "\"" + s + "\""
}
