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

	// ErrNotAuthorized: the broker refused the connection or the
	// subscription for lack of authorization.
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
)

// ConnectError is the broker's refusal of a CONNECT. It matches
// ErrRefused and the sentinel for its code (ErrNotAuthorized,
// ErrBadCredentials, ...) with errors.Is.
type ConnectError struct {
	Server string
	// Code is the refusal as an MQTT 5.0 reason code; a 3.1.1 return code
	// is mapped to the 5.0 code with the same meaning.
	Code packet.ReasonCode
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("mqttas: %s refused the connection: %v (reason code 0x%02x)", e.Server, e.Code, byte(e.Code))
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
}

func (e *AckError) Error() string {
	return fmt.Sprintf("mqttas: %s %q refused by the broker: %v (reason code 0x%02x)", e.Op, e.Target, e.Code, byte(e.Code))
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
	}
	return nil
}
