package packet

import "strconv"

// ReasonCode is an MQTT 5.0 reason code: the outcome carried by CONNACK,
// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT and AUTH.
// Values below 0x80 report success, the rest failure. In MQTT 3.1.1 only
// SUBACK uses these values (0x00–0x02 and 0x80); a 3.1.1 CONNACK carries a
// ConnectReturnCode instead.
type ReasonCode byte

// The reason codes of MQTT 5.0 section 2.4. Several share a value; the names
// say which packets use which meaning.
const (
	Success                             ReasonCode = 0x00 // also NormalDisconnection and GrantedQoS0
	NormalDisconnection                 ReasonCode = 0x00
	GrantedQoS0                         ReasonCode = 0x00
	GrantedQoS1                         ReasonCode = 0x01
	GrantedQoS2                         ReasonCode = 0x02
	DisconnectWithWillMessage           ReasonCode = 0x04
	NoMatchingSubscribers               ReasonCode = 0x10
	NoSubscriptionExisted               ReasonCode = 0x11
	ContinueAuthentication              ReasonCode = 0x18
	ReAuthenticate                      ReasonCode = 0x19
	UnspecifiedError                    ReasonCode = 0x80
	MalformedPacket                     ReasonCode = 0x81
	ProtocolError                       ReasonCode = 0x82
	ImplementationSpecificError         ReasonCode = 0x83
	UnsupportedProtocolVersion          ReasonCode = 0x84
	ClientIdentifierNotValid            ReasonCode = 0x85
	BadUserNameOrPassword               ReasonCode = 0x86
	NotAuthorized                       ReasonCode = 0x87
	ServerUnavailable                   ReasonCode = 0x88
	ServerBusy                          ReasonCode = 0x89
	Banned                              ReasonCode = 0x8A
	ServerShuttingDown                  ReasonCode = 0x8B
	BadAuthenticationMethod             ReasonCode = 0x8C
	KeepAliveTimeout                    ReasonCode = 0x8D
	SessionTakenOver                    ReasonCode = 0x8E
	TopicFilterInvalid                  ReasonCode = 0x8F
	TopicNameInvalid                    ReasonCode = 0x90
	PacketIdentifierInUse               ReasonCode = 0x91
	PacketIdentifierNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded              ReasonCode = 0x93
	TopicAliasInvalid                   ReasonCode = 0x94
	PacketTooLarge                      ReasonCode = 0x95
	MessageRateTooHigh                  ReasonCode = 0x96
	QuotaExceeded                       ReasonCode = 0x97
	AdministrativeAction                ReasonCode = 0x98
	PayloadFormatInvalid                ReasonCode = 0x99
	RetainNotSupported                  ReasonCode = 0x9A
	QoSNotSupported                     ReasonCode = 0x9B
	UseAnotherServer                    ReasonCode = 0x9C
	ServerMoved                         ReasonCode = 0x9D
	SharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded              ReasonCode = 0x9F
	MaximumConnectTime                  ReasonCode = 0xA0
	SubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	WildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

var reasonNames = map[ReasonCode]string{
	Success:                             "success",
	GrantedQoS1:                         "granted QoS 1",
	GrantedQoS2:                         "granted QoS 2",
	DisconnectWithWillMessage:           "disconnect with will message",
	NoMatchingSubscribers:               "no matching subscribers",
	NoSubscriptionExisted:               "no subscription existed",
	ContinueAuthentication:              "continue authentication",
	ReAuthenticate:                      "re-authenticate",
	UnspecifiedError:                    "unspecified error",
	MalformedPacket:                     "malformed packet",
	ProtocolError:                       "protocol error",
	ImplementationSpecificError:         "implementation specific error",
	UnsupportedProtocolVersion:          "unsupported protocol version",
	ClientIdentifierNotValid:            "client identifier not valid",
	BadUserNameOrPassword:               "bad user name or password",
	NotAuthorized:                       "not authorized",
	ServerUnavailable:                   "server unavailable",
	ServerBusy:                          "server busy",
	Banned:                              "banned",
	ServerShuttingDown:                  "server shutting down",
	BadAuthenticationMethod:             "bad authentication method",
	KeepAliveTimeout:                    "keep alive timeout",
	SessionTakenOver:                    "session taken over",
	TopicFilterInvalid:                  "topic filter invalid",
	TopicNameInvalid:                    "topic name invalid",
	PacketIdentifierInUse:               "packet identifier in use",
	PacketIdentifierNotFound:            "packet identifier not found",
	ReceiveMaximumExceeded:              "receive maximum exceeded",
	TopicAliasInvalid:                   "topic alias invalid",
	PacketTooLarge:                      "packet too large",
	MessageRateTooHigh:                  "message rate too high",
	QuotaExceeded:                       "quota exceeded",
	AdministrativeAction:                "administrative action",
	PayloadFormatInvalid:                "payload format invalid",
	RetainNotSupported:                  "retain not supported",
	QoSNotSupported:                     "QoS not supported",
	UseAnotherServer:                    "use another server",
	ServerMoved:                         "server moved",
	SharedSubscriptionsNotSupported:     "shared subscriptions not supported",
	ConnectionRateExceeded:              "connection rate exceeded",
	MaximumConnectTime:                  "maximum connect time",
	SubscriptionIdentifiersNotSupported: "subscription identifiers not supported",
	WildcardSubscriptionsNotSupported:   "wildcard subscriptions not supported",
}

// String returns the specification's name for r in lower case, such as
// "not authorized", or "reason code 0x42" for a value the specification
// does not define. 0x00 reads "success" whatever the packet.
func (r ReasonCode) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "reason code 0x" + strconv.FormatUint(uint64(r), 16)
}

// IsError reports whether r reports a failure (0x80 and above).
func (r ReasonCode) IsError() bool { return r >= 0x80 }

// ConnectReturnCode is the result byte of an MQTT 3.1.1 CONNACK.
type ConnectReturnCode byte

// The return codes of MQTT 3.1.1 section 3.2.2.3.
const (
	Accepted                     ConnectReturnCode = 0
	RefusedProtocolVersion       ConnectReturnCode = 1
	RefusedIdentifierRejected    ConnectReturnCode = 2
	RefusedServerUnavailable     ConnectReturnCode = 3
	RefusedBadUserNameOrPassword ConnectReturnCode = 4
	RefusedNotAuthorized         ConnectReturnCode = 5
)

// String returns the specification's description of c.
func (c ConnectReturnCode) String() string {
	switch c {
	case Accepted:
		return "connection accepted"
	case RefusedProtocolVersion:
		return "unacceptable protocol version"
	case RefusedIdentifierRejected:
		return "identifier rejected"
	case RefusedServerUnavailable:
		return "server unavailable"
	case RefusedBadUserNameOrPassword:
		return "bad user name or password"
	case RefusedNotAuthorized:
		return "not authorized"
	}
	return "connect return code " + strconv.Itoa(int(c))
}

// Reason maps c to the MQTT 5.0 reason code with the same meaning, so that
// code handling both versions can test one set of values. Undefined return
// codes map to UnspecifiedError.
func (c ConnectReturnCode) Reason() ReasonCode {
	switch c {
	case Accepted:
		return Success
	case RefusedProtocolVersion:
		return UnsupportedProtocolVersion
	case RefusedIdentifierRejected:
		return ClientIdentifierNotValid
	case RefusedServerUnavailable:
		return ServerUnavailable
	case RefusedBadUserNameOrPassword:
		return BadUserNameOrPassword
	case RefusedNotAuthorized:
		return NotAuthorized
	}
	return UnspecifiedError
}

// reasonSets[t] has bit r set when reason code r may appear in packet type
// t (MQTT 5.0 sections 3.2.2.2 to 3.15.2.1).
var reasonSets = func() (s [16][4]uint64) {
	add := func(t Type, codes ...ReasonCode) {
		for _, r := range codes {
			s[t][r>>6] |= 1 << (r & 63)
		}
	}
	add(CONNACK, 0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
		0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)
	add(PUBACK, 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)
	add(PUBREC, 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)
	add(PUBREL, 0x00, 0x92)
	add(PUBCOMP, 0x00, 0x92)
	add(SUBACK, 0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
	add(UNSUBACK, 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
	add(DISCONNECT, 0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
		0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2)
	add(AUTH, 0x00, 0x18, 0x19)
	return s
}()

// ValidFor reports whether MQTT 5.0 allows r in a packet of type t.
// Encoders and decoders refuse any other code as a protocol violation.
func (r ReasonCode) ValidFor(t Type) bool {
	return t < 16 && reasonSets[t][r>>6]&(1<<(r&63)) != 0
}

// checkReason is the shared refusal for a code not valid in t.
func checkReason(t Type, r ReasonCode) error {
	if !r.ValidFor(t) {
		return newError(ErrProtocolViolation, t, "reason code", r.String()+" (0x"+strconv.FormatUint(uint64(r), 16)+") is not valid in "+t.String())
	}
	return nil
}
