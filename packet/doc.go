// Package packet encodes and decodes MQTT 3.1.1 and 5.0 control packets.
//
// It is the wire codec of the mqttas client, published on its own for
// anyone building a gateway, a proxy, a test broker or another client: bytes
// in, structs out, with no goroutines, locks, timers or network code. The
// only I/O is Reader, which pulls whole packets out of a byte stream.
//
// # Packets
//
// Each of the fifteen control packets is a struct (Connect, Connack,
// Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback, Unsubscribe,
// Unsuback, Pingreq, Pingresp, Disconnect, Auth) whose pointer implements
// Packet. Both directions are supported for every packet, so a broker can
// decode CONNECT and encode CONNACK as readily as a client does the reverse.
// The protocol version is an argument of every call, because the same
// struct encodes differently under 3.1.1 and 5.0; fields that exist only in
// 5.0 (reason codes of acknowledgements, Properties) are ignored by 3.1.1
// encoders and cleared by 3.1.1 decoders.
//
// # Encoding
//
// AppendTo appends a whole packet, fixed header included, to a slice the
// caller owns and returns it, the way strconv.AppendInt does. Encoding into
// a reused buffer does not allocate. Content the protocol forbids (QoS 3, a
// wildcard in a topic name, packet identifier 0 where one is required, a
// property illegal for the packet, a string over 65,535 bytes) is refused
// with the error a decoder would give for the same bytes, so nothing this
// package writes is rejected by a conforming peer.
//
// # Decoding
//
// Decode fills a caller-supplied struct from a packet body. To stay free of
// allocations it does not copy: strings and byte slices in the result alias
// the body, so the body must not be modified while the packet is in use,
// and anything kept longer must be copied (strings.Clone, bytes.Clone).
// Slices the struct already holds are reused, so decoding over and over into
// one value costs nothing once it has warmed up.
//
// Reader reads packets from an io.Reader. It takes a maximum packet size and
// refuses a larger packet from its fixed header alone, before reading or
// allocating anything for the body: a peer that announces a 256 MiB packet
// costs a few bytes, not 256 MiB.
//
// # Properties
//
// Properties holds every MQTT 5.0 property as a typed field; user
// properties keep their order and may repeat, and a PUBLISH may carry
// several subscription identifiers. One table records which property may
// appear in which packet (PropID.AllowedIn); encoders and decoders both
// enforce it, and refuse a single-valued property given twice.
//
// # Errors
//
// Every content error is an *Error naming the packet and the field, and
// wraps one of four classes for errors.Is: ErrMalformed, ErrProtocolViolation,
// ErrPacketTooLarge and ErrUnsupportedVersion. (*Error).ReasonCode gives the
// MQTT 5.0 reason code to send to a peer that broke the rule. A stream that
// ends inside a packet yields io.ErrUnexpectedEOF, between packets io.EOF.
//
// # Topics
//
// MatchTopic matches topic names against subscription filters, including
// the rule that wildcards at the first level do not match topics starting
// with "$", and shared subscriptions ("$share/group/filter", see
// ParseShared). TopicNameError and TopicFilterError validate names and
// filters with the same rules the codec applies.
package packet
