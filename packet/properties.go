package packet

import "strconv"

// PropID identifies an MQTT 5.0 property.
type PropID byte

// The properties of MQTT 5.0 section 2.2.2.2.
const (
	PropPayloadFormat           PropID = 0x01 // byte; PUBLISH, will
	PropMessageExpiry           PropID = 0x02 // four-byte integer; PUBLISH, will
	PropContentType             PropID = 0x03 // UTF-8 string; PUBLISH, will
	PropResponseTopic           PropID = 0x08 // UTF-8 string; PUBLISH, will
	PropCorrelationData         PropID = 0x09 // binary; PUBLISH, will
	PropSubscriptionID          PropID = 0x0B // variable byte integer; PUBLISH (repeatable), SUBSCRIBE
	PropSessionExpiry           PropID = 0x11 // four-byte integer; CONNECT, CONNACK, DISCONNECT
	PropAssignedClientID        PropID = 0x12 // UTF-8 string; CONNACK
	PropServerKeepAlive         PropID = 0x13 // two-byte integer; CONNACK
	PropAuthMethod              PropID = 0x15 // UTF-8 string; CONNECT, CONNACK, AUTH
	PropAuthData                PropID = 0x16 // binary; CONNECT, CONNACK, AUTH
	PropRequestProblemInfo      PropID = 0x17 // byte; CONNECT
	PropWillDelay               PropID = 0x18 // four-byte integer; will
	PropRequestResponseInfo     PropID = 0x19 // byte; CONNECT
	PropResponseInfo            PropID = 0x1A // UTF-8 string; CONNACK
	PropServerReference         PropID = 0x1C // UTF-8 string; CONNACK, DISCONNECT
	PropReasonString            PropID = 0x1F // UTF-8 string; every acknowledgement, DISCONNECT, AUTH
	PropReceiveMaximum          PropID = 0x21 // two-byte integer; CONNECT, CONNACK
	PropTopicAliasMaximum       PropID = 0x22 // two-byte integer; CONNECT, CONNACK
	PropTopicAlias              PropID = 0x23 // two-byte integer; PUBLISH
	PropMaximumQoS              PropID = 0x24 // byte; CONNACK
	PropRetainAvailable         PropID = 0x25 // byte; CONNACK
	PropUserProperty            PropID = 0x26 // UTF-8 string pair; every packet with properties (repeatable)
	PropMaximumPacketSize       PropID = 0x27 // four-byte integer; CONNECT, CONNACK
	PropWildcardSubAvailable    PropID = 0x28 // byte; CONNACK
	PropSubscriptionIDAvailable PropID = 0x29 // byte; CONNACK
	PropSharedSubAvailable      PropID = 0x2A // byte; CONNACK
)

type propKind byte

const (
	kindByte propKind = iota + 1
	kindUint16
	kindUint32
	kindVarint
	kindString
	kindBinary
	kindPair
)

// willContext stands for the will properties of CONNECT in the legality
// table; type 0 never appears on the wire, so its bit is free.
const willContext Type = 0

type propInfo struct {
	name    string
	kind    propKind
	allowed uint16 // bit t set: legal in packet type t; bit 0: legal in the will
}

func in(ts ...Type) uint16 {
	var m uint16
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

// propTable is the one place that says which property may appear where
// (MQTT 5.0 section 2.2.2.2) and how it is encoded.
var propTable = [PropSharedSubAvailable + 1]propInfo{
	PropPayloadFormat:           {"Payload Format Indicator", kindByte, in(PUBLISH, willContext)},
	PropMessageExpiry:           {"Message Expiry Interval", kindUint32, in(PUBLISH, willContext)},
	PropContentType:             {"Content Type", kindString, in(PUBLISH, willContext)},
	PropResponseTopic:           {"Response Topic", kindString, in(PUBLISH, willContext)},
	PropCorrelationData:         {"Correlation Data", kindBinary, in(PUBLISH, willContext)},
	PropSubscriptionID:          {"Subscription Identifier", kindVarint, in(PUBLISH, SUBSCRIBE)},
	PropSessionExpiry:           {"Session Expiry Interval", kindUint32, in(CONNECT, CONNACK, DISCONNECT)},
	PropAssignedClientID:        {"Assigned Client Identifier", kindString, in(CONNACK)},
	PropServerKeepAlive:         {"Server Keep Alive", kindUint16, in(CONNACK)},
	PropAuthMethod:              {"Authentication Method", kindString, in(CONNECT, CONNACK, AUTH)},
	PropAuthData:                {"Authentication Data", kindBinary, in(CONNECT, CONNACK, AUTH)},
	PropRequestProblemInfo:      {"Request Problem Information", kindByte, in(CONNECT)},
	PropWillDelay:               {"Will Delay Interval", kindUint32, in(willContext)},
	PropRequestResponseInfo:     {"Request Response Information", kindByte, in(CONNECT)},
	PropResponseInfo:            {"Response Information", kindString, in(CONNACK)},
	PropServerReference:         {"Server Reference", kindString, in(CONNACK, DISCONNECT)},
	PropReasonString:            {"Reason String", kindString, in(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH)},
	PropReceiveMaximum:          {"Receive Maximum", kindUint16, in(CONNECT, CONNACK)},
	PropTopicAliasMaximum:       {"Topic Alias Maximum", kindUint16, in(CONNECT, CONNACK)},
	PropTopicAlias:              {"Topic Alias", kindUint16, in(PUBLISH)},
	PropMaximumQoS:              {"Maximum QoS", kindByte, in(CONNACK)},
	PropRetainAvailable:         {"Retain Available", kindByte, in(CONNACK)},
	PropUserProperty:            {"User Property", kindPair, in(CONNECT, CONNACK, PUBLISH, willContext, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH)},
	PropMaximumPacketSize:       {"Maximum Packet Size", kindUint32, in(CONNECT, CONNACK)},
	PropWildcardSubAvailable:    {"Wildcard Subscription Available", kindByte, in(CONNACK)},
	PropSubscriptionIDAvailable: {"Subscription Identifier Available", kindByte, in(CONNACK)},
	PropSharedSubAvailable:      {"Shared Subscription Available", kindByte, in(CONNACK)},
}

func (id PropID) info() (propInfo, bool) {
	if int(id) < len(propTable) && propTable[id].kind != 0 {
		return propTable[id], true
	}
	return propInfo{}, false
}

// String returns the specification's name, such as "Topic Alias".
func (id PropID) String() string {
	if info, ok := id.info(); ok {
		return info.name
	}
	return "property 0x" + strconv.FormatUint(uint64(id), 16)
}

// AllowedIn reports whether the property may appear in packets of type t.
func (id PropID) AllowedIn(t Type) bool {
	info, ok := id.info()
	return ok && t != willContext && info.allowed&(1<<t) != 0
}

// AllowedInWill reports whether the property may appear among the will
// properties of a CONNECT.
func (id PropID) AllowedInWill() bool {
	info, ok := id.info()
	return ok && info.allowed&1 != 0
}

// UserProperty is one name/value pair. MQTT 5.0 keeps their order and allows
// a name to repeat.
type UserProperty struct {
	Key, Value string
}

// Properties holds the MQTT 5.0 properties of a packet or a will. Encoders
// ignore it for MQTT 3.1.1.
//
// A single-valued property is encoded when its field is non-zero or when it
// has been marked present with MarkPresent; the second form exists for the
// few properties whose zero means something other than absence, such as a
// Maximum QoS of 0 or a Request Problem Information of 0. Decoders mark every
// property they read, so Has tells a zero sent on the wire from an absent one.
//
// The struct is plain data and safe to copy; the slices are shared by a copy.
type Properties struct {
	present uint64 // bit id: property id was marked or decoded

	PayloadFormat           byte   // 0 unspecified bytes, 1 UTF-8
	MessageExpiry           uint32 // seconds
	ContentType             string // MIME type of the payload
	ResponseTopic           string
	CorrelationData         []byte
	SubscriptionIDs         []uint32 // at most one in SUBSCRIBE; any number in PUBLISH
	SessionExpiry           uint32   // seconds; 0xFFFFFFFF never expires
	AssignedClientID        string
	ServerKeepAlive         uint16 // seconds; mark present to send 0
	AuthMethod              string
	AuthData                []byte
	RequestProblemInfo      byte // absent means 1; mark present to send 0
	WillDelay               uint32
	RequestResponseInfo     byte
	ResponseInfo            string
	ServerReference         string
	ReasonString            string
	ReceiveMaximum          uint16 // absent means 65,535; 0 is a protocol error
	TopicAliasMaximum       uint16
	TopicAlias              uint16 // 0 is a protocol error
	MaximumQoS              byte   // absent means 2; mark present to send 0
	RetainAvailable         byte   // absent means 1; mark present to send 0
	User                    []UserProperty
	MaximumPacketSize       uint32 // absent means no limit; 0 is a protocol error
	WildcardSubAvailable    byte   // absent means 1; mark present to send 0
	SubscriptionIDAvailable byte   // absent means 1; mark present to send 0
	SharedSubAvailable      byte   // absent means 1; mark present to send 0
}

// Has reports whether the property was decoded from the wire, marked present
// or, for the multi-valued ones, has at least one value.
func (p *Properties) Has(id PropID) bool {
	switch id {
	case PropUserProperty:
		return len(p.User) > 0
	case PropSubscriptionID:
		return len(p.SubscriptionIDs) > 0
	}
	return p.present&(1<<id) != 0
}

// MarkPresent makes the encoder write single-valued property id even when
// its field holds zero. User Property and Subscription Identifier are
// present exactly when their slices are non-empty, so marking them, or an
// unknown id, does nothing.
func (p *Properties) MarkPresent(id PropID) {
	if p.field(id).ok {
		p.present |= 1 << id
	}
}

// Clear removes property id: it zeroes the field and the mark (for User
// Property and Subscription Identifier it empties the slice).
func (p *Properties) Clear(id PropID) {
	switch id {
	case PropUserProperty:
		p.User = p.User[:0]
		return
	case PropSubscriptionID:
		p.SubscriptionIDs = p.SubscriptionIDs[:0]
		return
	}
	if f := p.field(id); f.ok {
		f.set(0, "", nil)
	}
	if id < 64 {
		p.present &^= 1 << id
	}
}

// Empty reports whether p holds no property at all: nothing the encoder
// would write and nothing a decoder read.
func (p *Properties) Empty() bool {
	return p.setMask() == 0 && len(p.User) == 0 && len(p.SubscriptionIDs) == 0
}

// Reset removes every property but keeps the capacity of the slices, so a
// Properties value can be decoded into again without allocating.
func (p *Properties) Reset() {
	*p = Properties{User: p.User[:0], SubscriptionIDs: p.SubscriptionIDs[:0]}
}

// fieldRef points at the storage of one single-valued property.
type fieldRef struct {
	ok  bool
	b   *byte
	u16 *uint16
	u32 *uint32
	s   *string
	bin *[]byte
}

func (p *Properties) field(id PropID) fieldRef {
	switch id {
	case PropPayloadFormat:
		return fieldRef{ok: true, b: &p.PayloadFormat}
	case PropMessageExpiry:
		return fieldRef{ok: true, u32: &p.MessageExpiry}
	case PropContentType:
		return fieldRef{ok: true, s: &p.ContentType}
	case PropResponseTopic:
		return fieldRef{ok: true, s: &p.ResponseTopic}
	case PropCorrelationData:
		return fieldRef{ok: true, bin: &p.CorrelationData}
	case PropSessionExpiry:
		return fieldRef{ok: true, u32: &p.SessionExpiry}
	case PropAssignedClientID:
		return fieldRef{ok: true, s: &p.AssignedClientID}
	case PropServerKeepAlive:
		return fieldRef{ok: true, u16: &p.ServerKeepAlive}
	case PropAuthMethod:
		return fieldRef{ok: true, s: &p.AuthMethod}
	case PropAuthData:
		return fieldRef{ok: true, bin: &p.AuthData}
	case PropRequestProblemInfo:
		return fieldRef{ok: true, b: &p.RequestProblemInfo}
	case PropWillDelay:
		return fieldRef{ok: true, u32: &p.WillDelay}
	case PropRequestResponseInfo:
		return fieldRef{ok: true, b: &p.RequestResponseInfo}
	case PropResponseInfo:
		return fieldRef{ok: true, s: &p.ResponseInfo}
	case PropServerReference:
		return fieldRef{ok: true, s: &p.ServerReference}
	case PropReasonString:
		return fieldRef{ok: true, s: &p.ReasonString}
	case PropReceiveMaximum:
		return fieldRef{ok: true, u16: &p.ReceiveMaximum}
	case PropTopicAliasMaximum:
		return fieldRef{ok: true, u16: &p.TopicAliasMaximum}
	case PropTopicAlias:
		return fieldRef{ok: true, u16: &p.TopicAlias}
	case PropMaximumQoS:
		return fieldRef{ok: true, b: &p.MaximumQoS}
	case PropRetainAvailable:
		return fieldRef{ok: true, b: &p.RetainAvailable}
	case PropMaximumPacketSize:
		return fieldRef{ok: true, u32: &p.MaximumPacketSize}
	case PropWildcardSubAvailable:
		return fieldRef{ok: true, b: &p.WildcardSubAvailable}
	case PropSubscriptionIDAvailable:
		return fieldRef{ok: true, b: &p.SubscriptionIDAvailable}
	case PropSharedSubAvailable:
		return fieldRef{ok: true, b: &p.SharedSubAvailable}
	}
	return fieldRef{}
}

// num returns a numeric field's value widened to uint32.
func (f fieldRef) num() uint32 {
	switch {
	case f.b != nil:
		return uint32(*f.b)
	case f.u16 != nil:
		return uint32(*f.u16)
	case f.u32 != nil:
		return *f.u32
	}
	return 0
}

func (f fieldRef) set(n uint32, s string, b []byte) {
	switch {
	case f.b != nil:
		*f.b = byte(n)
	case f.u16 != nil:
		*f.u16 = uint16(n)
	case f.u32 != nil:
		*f.u32 = n
	case f.s != nil:
		*f.s = s
	case f.bin != nil:
		*f.bin = b
	}
}
