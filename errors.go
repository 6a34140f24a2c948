package mqttas

import (
	"errors"
	"fmt"

	"github.com/mqttas/mqttas/packet"
)

// Errors reported by the client. Refusals by the broker are *ConnectError
// or *AckError values that match these sentinels with errors.Is.
var (
	// ErrClosed is returned by every call made after Close or Disconnect,
	// and by calls still waiting when the client closes.
	ErrClosed = errors.New("mqttas: client closed")
	// ErrAlreadyConnected is returned by a second call to Connect.
	ErrAlreadyConnected = errors.New("mqttas: Connect already called")
	// ErrNotConnected is returned by calls that need Connect to have
	// succeeded first.
	ErrNotConnected = errors.New("mqttas: Connect has not succeeded yet")

	// ErrNotAuthorized: the broker refused the connection, a subscription
	// or (MQTT 5.0) a publish for lack of authorization.
	ErrNotAuthorized = errors.New("mqttas: not authorized")
	// ErrBadCredentials: the broker refused the user name or password.
	ErrBadCredentials = errors.New("mqttas: bad user name or password")
	// ErrIdentifierRejected: the broker refused the client identifier.
	ErrIdentifierRejected = errors.New("mqttas: client identifier rejected")
	// ErrServerUnavailable: the broker is up but not serving MQTT now.
	ErrServerUnavailable = errors.New("mqttas: server unavailable")
	// ErrUnsupportedVersion: the broker does not speak this protocol level.
	ErrUnsupportedVersion = errors.New("mqttas: protocol version not supported by the broker")
	// ErrRefused: any refusal, whatever its code.
	ErrRefused = errors.New("mqttas: refused by the broker")
	// ErrTimeout: the broker did not answer within ResponseTime.
	ErrTimeout = errors.New("mqttas: no response within ResponseTime")

	// The MQTT 5.0 refusals below come in reason codes of CONNACK, the
	// acknowledgements and DISCONNECT, or from limits the broker granted,
	// which the client enforces before sending.

	// ErrBanned: the broker banned this client (CONNACK 0x8A). The client
	// does not reconnect after it.
	ErrBanned = errors.New("mqttas: banned by the broker")
	// ErrQuotaExceeded: the broker's quota for the client is used up.
	ErrQuotaExceeded = errors.New("mqttas: quota exceeded")
	// ErrPacketTooLarge: a packet exceeds the broker's Maximum Packet
	// Size. Publish returns it without sending when the broker announced
	// its limit in CONNACK.
	ErrPacketTooLarge = errors.New("mqttas: packet too large for the broker")
	// ErrTopicNameInvalid: the broker refused the topic name.
	ErrTopicNameInvalid = errors.New("mqttas: topic name invalid")
	// ErrPayloadFormatInvalid: the payload does not match its Payload
	// Format Indicator.
	ErrPayloadFormatInvalid = errors.New("mqttas: payload format invalid")
	// ErrRetainNotSupported: the broker does not keep retained messages
	// (CONNACK Retain Available 0); Publish with retain returns it unsent.
	ErrRetainNotSupported = errors.New("mqttas: retained messages not supported by the broker")
	// ErrSubscriptionIDsNotSupported: the broker does not support
	// subscription identifiers.
	ErrSubscriptionIDsNotSupported = errors.New("mqttas: subscription identifiers not supported by the broker")
	// ErrUseAnotherServer: the broker sent the client elsewhere (0x9C, 0x9D);
	// the error carries the Server Reference when one was given.
	ErrUseAnotherServer = errors.New("mqttas: the broker asks the client to use another server")
)

// ConnectError is the broker's refusal of a CONNECT. It matches
// ErrRefused and the sentinel for its code (ErrNotAuthorized,
// ErrBadCredentials, ...) with errors.Is.
type ConnectError struct {
	Server string
	// Code is the refusal as an MQTT 5.0 reason code; a 3.1.1 return code
	// is mapped to the 5.0 code with the same meaning.
	Code packet.ReasonCode
	// Reason and ServerReference are MQTT 5.0's Reason String and Server
	// Reference (where to go instead, with 0x9C and 0x9D), if sent.
	Reason          string
	ServerReference string
}

func (e *ConnectError) Error() string {
	s := fmt.Sprintf("mqttas: %s refused the connection: %v (reason code 0x%02x)%s", e.Server, e.Code, byte(e.Code), reasonSuffix(e.Reason))
	if e.ServerReference != "" {
		s += "; server reference " + e.ServerReference
	}
	return s
}

// Is matches ErrRefused and the sentinel for e.Code.
func (e *ConnectError) Is(target error) bool {
	return target == ErrRefused || target == reasonSentinel(e.Code)
}

// AckError is a failure code in a SUBACK (or, with MQTT 5.0, any other
// acknowledgement). It matches ErrRefused and the sentinel for its code.
type AckError struct {
	Op     string // "subscribe", "publish", ...
	Target string // the topic or filter
	Code   packet.ReasonCode
	Reason string // the broker's MQTT 5.0 Reason String, if it sent one
}

func (e *AckError) Error() string {
	return fmt.Sprintf("mqttas: %s %q refused by the broker: %v (reason code 0x%02x)%s", e.Op, e.Target, e.Code, byte(e.Code), reasonSuffix(e.Reason))
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return fmt.Sprintf(": %q", r)
}

// DisconnectError is an MQTT 5.0 DISCONNECT from the broker: why it ended
// the connection. The client reconnects after it unless the code makes
// that pointless; Client.LastError returns it. It matches the sentinel for
// its code with errors.Is.
type DisconnectError struct {
	Code            packet.ReasonCode
	Reason          string // the Reason String, if any
	ServerReference string // where to go instead, with 0x9C and 0x9D
}

func (e *DisconnectError) Error() string {
	s := fmt.Sprintf("mqttas: the broker disconnected the client: %v (reason code 0x%02x)%s", e.Code, byte(e.Code), reasonSuffix(e.Reason))
	if e.ServerReference != "" {
		s += "; server reference " + e.ServerReference
	}
	return s
}

// Is matches the sentinel for e.Code.
func (e *DisconnectError) Is(target error) bool {
	return target != nil && target == reasonSentinel(e.Code)
}

// Is matches ErrRefused and the sentinel for e.Code.
func (e *AckError) Is(target error) bool {
	return target == ErrRefused || target == reasonSentinel(e.Code)
}

func reasonSentinel(r packet.ReasonCode) error {
	switch r {
	case packet.NotAuthorized:
		return ErrNotAuthorized
	case packet.BadUserNameOrPassword:
		return ErrBadCredentials
	case packet.ClientIdentifierNotValid:
		return ErrIdentifierRejected
	case packet.ServerUnavailable, packet.ServerBusy:
		return ErrServerUnavailable
	case packet.UnsupportedProtocolVersion:
		return ErrUnsupportedVersion
	case packet.Banned:
		return ErrBanned
	case packet.QuotaExceeded:
		return ErrQuotaExceeded
	case packet.PacketTooLarge:
		return ErrPacketTooLarge
	case packet.TopicNameInvalid:
		return ErrTopicNameInvalid
	case packet.PayloadFormatInvalid:
		return ErrPayloadFormatInvalid
	case packet.RetainNotSupported:
		return ErrRetainNotSupported
	case packet.SubscriptionIdentifiersNotSupported:
		return ErrSubscriptionIDsNotSupported
	case packet.UseAnotherServer, packet.ServerMoved:
		return ErrUseAnotherServer
	}
	return nil
}
