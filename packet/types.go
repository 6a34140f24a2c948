package packet

import "strconv"

// Type is an MQTT control packet type, the high nibble of a packet's first
// byte. The zero value is reserved and never appears on the wire.
type Type byte

// The control packet types, named as in the specification.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15 // MQTT 5.0 only
)

var typeNames = [...]string{
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// String returns the specification's name for t, such as "PUBLISH".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// fixedFlags holds the flag nibble that every type but PUBLISH must carry;
// the specification makes any other value a malformed packet.
var fixedFlags = [16]byte{PUBREL: 0x02, SUBSCRIBE: 0x02, UNSUBSCRIBE: 0x02}

// Version is the protocol level carried in CONNECT. It decides the encoding
// of every packet on a connection, so encoders and decoders take it as an
// argument rather than guessing from the bytes.
type Version byte

// The protocol levels this package speaks. V31 (protocol name "MQIsdp") is
// accepted when decoding CONNECT and otherwise treated exactly like V311.
const (
	V31  Version = 3
	V311 Version = 4
	V5   Version = 5
)

// String returns "3.1", "3.1.1" or "5.0".
func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

func (v Version) valid() bool { return v == V31 || v == V311 || v == V5 }

// FixedHeader is the part of every packet that precedes its body: the type,
// the four flag bits (meaningful only for PUBLISH) and the length of the body.
type FixedHeader struct {
	Type            Type
	Flags           byte
	RemainingLength int
}

// Size is the number of bytes the fixed header occupies on the wire.
func (h FixedHeader) Size() int { return 1 + varintLen(h.RemainingLength) }

// Packet is implemented by a pointer to each of the fifteen packet structs.
type Packet interface {
	// Type reports the control packet type.
	Type() Type
	// AppendTo appends the whole packet, fixed header included, encoded for
	// protocol version v, and returns the extended slice. Invalid content is
	// reported with the same error classes the decoder uses, and dst is then
	// returned unchanged.
	AppendTo(dst []byte, v Version) ([]byte, error)
	// Decode replaces the packet's contents with the body of a packet of
	// this type sent with the given fixed-header flags. Strings and byte
	// slices in the result alias body: body must stay unmodified for as long
	// as the packet is used. Slices already held by the packet are reused, so
	// decoding repeatedly into one value does not allocate.
	Decode(flags byte, body []byte, v Version) error
}

// New returns a new zero packet of type t, or nil if t is not a packet type.
func New(t Type) Packet {
	switch t {
	case CONNECT:
		return new(Connect)
	case CONNACK:
		return new(Connack)
	case PUBLISH:
		return new(Publish)
	case PUBACK:
		return new(Puback)
	case PUBREC:
		return new(Pubrec)
	case PUBREL:
		return new(Pubrel)
	case PUBCOMP:
		return new(Pubcomp)
	case SUBSCRIBE:
		return new(Subscribe)
	case SUBACK:
		return new(Suback)
	case UNSUBSCRIBE:
		return new(Unsubscribe)
	case UNSUBACK:
		return new(Unsuback)
	case PINGREQ:
		return new(Pingreq)
	case PINGRESP:
		return new(Pingresp)
	case DISCONNECT:
		return new(Disconnect)
	case AUTH:
		return new(Auth)
	}
	return nil
}

// Decode decodes a body read with fixed header h into a newly allocated
// packet of the right type. The result aliases body as Packet.Decode says.
func Decode(h FixedHeader, body []byte, v Version) (Packet, error) {
	p := New(h.Type)
	if p == nil {
		return nil, newError(ErrMalformed, h.Type, "packet type", "reserved type 0")
	}
	if err := p.Decode(h.Flags, body, v); err != nil {
		return nil, err
	}
	return p, nil
}
