package packet

import (
	"errors"
	"strconv"
)

// The classes of failure. Every error this package returns for bad content
// wraps exactly one of them (test with errors.Is) inside an *Error that
// names the packet and the field.
var (
	// ErrMalformed: the bytes cannot be parsed as the packet they claim to
	// be: a truncated field, an invalid variable byte integer, ill-formed
	// UTF-8, reserved bits set, QoS 3, an unknown property or one not valid
	// for the packet. A peer that sends
	// one must be disconnected (reason code 0x81).
	ErrMalformed = errors.New("packet: malformed packet")

	// ErrProtocolViolation: the packet parses but breaks a rule of the
	// protocol: packet identifier 0, a wildcard in a topic name, a property
	// given twice, a zero Topic Alias. Reason code
	// 0x82.
	ErrProtocolViolation = errors.New("packet: protocol violation")

	// ErrPacketTooLarge: the packet is larger than the caller's maximum or
	// than the protocol's 268,435,455-byte remaining length. The stream
	// reader reports it before allocating anything for the body. Reason code
	// 0x95.
	ErrPacketTooLarge = errors.New("packet: packet too large")

	// ErrUnsupportedVersion: a CONNECT names a protocol or level this package
	// does not speak, or an encoder was given one. A broker answers it with
	// CONNACK 0x01 (3.1.1) or 0x84 (5.0).
	ErrUnsupportedVersion = errors.New("packet: unsupported protocol version")
)

// Error describes what is wrong with a packet. Kind is one of the sentinel
// errors above; Unwrap returns it so errors.Is works.
type Error struct {
	Kind   error  // ErrMalformed, ErrProtocolViolation, ErrPacketTooLarge or ErrUnsupportedVersion
	Packet Type   // the packet being decoded or encoded; 0 when not yet known
	Field  string // the field at fault, such as "topic name" or "property 0x23"
	Detail string // what is wrong with it
}

func newError(kind error, t Type, field, detail string) *Error {
	return &Error{Kind: kind, Packet: t, Field: field, Detail: detail}
}

// Error formats as "packet: malformed packet: PUBLISH topic name: contains a wildcard".
func (e *Error) Error() string {
	s := e.Kind.Error() + ": "
	if e.Packet != 0 {
		s += e.Packet.String() + " "
	}
	return s + e.Field + ": " + e.Detail
}

// Unwrap returns Kind.
func (e *Error) Unwrap() error { return e.Kind }

// ReasonCode is the MQTT 5.0 reason code a receiver should send when it
// rejects a packet because of e.
func (e *Error) ReasonCode() ReasonCode {
	switch e.Kind {
	case ErrProtocolViolation:
		return ProtocolError
	case ErrPacketTooLarge:
		return PacketTooLarge
	case ErrUnsupportedVersion:
		return UnsupportedProtocolVersion
	}
	return MalformedPacket
}

func itoa(n int) string { return strconv.Itoa(n) }
