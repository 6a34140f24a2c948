package packet

// The packet types and protocol enums: Type() and New for every packet
// struct, the String methods of Type, Version and ReasonCode, 3.1.1 return
// codes, and which reason codes and properties each packet type allows.

import (
	"slices"
	"testing"
)

// TestPacketTypes checks Type() of every packet struct and New.
func TestPacketTypes(t *testing.T) {
	for typ := CONNECT; typ <= AUTH; typ++ {
		p := New(typ)
		if p == nil {
			t.Errorf("New(%v) = nil", typ)
			continue
		}
		if p.Type() != typ {
			t.Errorf("New(%v).Type() = %v", typ, p.Type())
		}
	}
	for _, typ := range []Type{0, 16, 255} {
		if p := New(typ); p != nil {
			t.Errorf("New(%d) = %T, want nil", typ, p)
		}
	}
	for _, c := range goldenCases {
		if got, want := c.pkt.Type(), Type(c.wire[0]>>4); got != want {
			t.Errorf("%s: Type() = %v, first byte says %v", c.name, got, want)
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	for i, s := range want {
		if got := Type(i).String(); got != s {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, s)
		}
	}
	if got := Type(16).String(); got != "Type(16)" {
		t.Errorf("Type(16).String() = %q", got)
	}
}

func TestVersionString(t *testing.T) {
	for v, s := range map[Version]string{V31: "3.1", V311: "3.1.1", V5: "5.0", 0: "Version(0)", 6: "Version(6)"} {
		if got := v.String(); got != s {
			t.Errorf("Version(%d).String() = %q, want %q", byte(v), got, s)
		}
	}
}

func TestReasonCodeString(t *testing.T) {
	for r, s := range map[ReasonCode]string{
		Success:                           "success",
		GrantedQoS1:                       "granted QoS 1",
		ContinueAuthentication:            "continue authentication",
		NotAuthorized:                     "not authorized",
		QoSNotSupported:                   "QoS not supported",
		WildcardSubscriptionsNotSupported: "wildcard subscriptions not supported",
		0x42:                              "reason code 0x42",
		0xff:                              "reason code 0xff",
	} {
		if got := r.String(); got != s {
			t.Errorf("ReasonCode(0x%02x).String() = %q, want %q", byte(r), got, s)
		}
	}
	if NormalDisconnection.String() != "success" || GrantedQoS0.String() != "success" {
		t.Errorf("aliases of 0x00 should read as success")
	}
	if Success.IsError() || ReasonCode(0x7f).IsError() || !UnspecifiedError.IsError() || !ReasonCode(0xff).IsError() {
		t.Errorf("IsError does not split at 0x80")
	}
}

func TestConnectReturnCodeReason(t *testing.T) {
	// MQTT 3.1.1 table 3.1 against the 5.0 codes with the same meaning
	// (5.0 section 3.2.2.2).
	for c, want := range map[ConnectReturnCode]ReasonCode{
		Accepted:                     Success,
		RefusedProtocolVersion:       UnsupportedProtocolVersion,
		RefusedIdentifierRejected:    ClientIdentifierNotValid,
		RefusedServerUnavailable:     ServerUnavailable,
		RefusedBadUserNameOrPassword: BadUserNameOrPassword,
		RefusedNotAuthorized:         NotAuthorized,
		6:                            UnspecifiedError,
		255:                          UnspecifiedError,
	} {
		if got := c.Reason(); got != want {
			t.Errorf("ConnectReturnCode(%d).Reason() = %v, want %v", byte(c), got, want)
		}
	}
	if got := RefusedNotAuthorized.String(); got != "not authorized" {
		t.Errorf("RefusedNotAuthorized.String() = %q", got)
	}
	if got := ConnectReturnCode(9).String(); got != "connect return code 9" {
		t.Errorf("ConnectReturnCode(9).String() = %q", got)
	}
	if got := (&Connack{ReasonCode: 5}).ReturnCode(); got != RefusedNotAuthorized {
		t.Errorf("Connack.ReturnCode() = %v", got)
	}
}

// TestReasonCodeValidFor compares ValidFor for every code and packet type
// with the lists of MQTT 5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1,
// 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1 and 3.15.2.1, written out here again.
func TestReasonCodeValidFor(t *testing.T) {
	spec := map[Type][]byte{
		CONNACK: {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c,
			0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f},
		PUBACK:   {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
		PUBREC:   {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
		PUBREL:   {0x00, 0x92},
		PUBCOMP:  {0x00, 0x92},
		SUBACK:   {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2},
		UNSUBACK: {0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91},
		DISCONNECT: {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f,
			0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2},
		AUTH: {0x00, 0x18, 0x19},
	}
	for typ := Type(0); typ < 16; typ++ {
		for r := 0; r < 256; r++ {
			want := slices.Contains(spec[typ], byte(r))
			if got := ReasonCode(r).ValidFor(typ); got != want {
				t.Errorf("ReasonCode(0x%02x).ValidFor(%v) = %v, want %v", r, typ, got, want)
			}
		}
	}
	if Success.ValidFor(Type(16)) || Success.ValidFor(Type(255)) {
		t.Errorf("ValidFor accepts a type beyond AUTH")
	}
}

// TestPropIDAllowedIn compares AllowedIn and AllowedInWill for every
// identifier and packet type with MQTT 5.0 section 2.2.2.2, written out here
// again; "will" stands for the will properties of CONNECT (3.1.3.2).
func TestPropIDAllowedIn(t *testing.T) {
	const will = Type(0xff)
	spec := map[PropID][]Type{
		0x01: {PUBLISH, will},
		0x02: {PUBLISH, will},
		0x03: {PUBLISH, will},
		0x08: {PUBLISH, will},
		0x09: {PUBLISH, will},
		0x0b: {PUBLISH, SUBSCRIBE},
		0x11: {CONNECT, CONNACK, DISCONNECT},
		0x12: {CONNACK},
		0x13: {CONNACK},
		0x15: {CONNECT, CONNACK, AUTH},
		0x16: {CONNECT, CONNACK, AUTH},
		0x17: {CONNECT},
		0x18: {will},
		0x19: {CONNECT},
		0x1a: {CONNACK},
		0x1c: {CONNACK, DISCONNECT},
		0x1f: {CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH},
		0x21: {CONNECT, CONNACK},
		0x22: {CONNECT, CONNACK},
		0x23: {PUBLISH},
		0x24: {CONNACK},
		0x25: {CONNACK},
		0x26: {CONNECT, CONNACK, PUBLISH, will, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
			UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH},
		0x27: {CONNECT, CONNACK},
		0x28: {CONNACK},
		0x29: {CONNACK},
		0x2a: {CONNACK},
	}
	for i := 0; i < 256; i++ {
		id := PropID(i)
		for typ := Type(0); typ < 20; typ++ {
			want := slices.Contains(spec[id], typ)
			if got := id.AllowedIn(typ); got != want {
				t.Errorf("PropID(0x%02x).AllowedIn(%v) = %v, want %v", i, typ, got, want)
			}
		}
		if got, want := id.AllowedInWill(), slices.Contains(spec[id], will); got != want {
			t.Errorf("PropID(0x%02x).AllowedInWill() = %v, want %v", i, got, want)
		}
	}
	if got := PropTopicAlias.String(); got != "Topic Alias" {
		t.Errorf("PropTopicAlias.String() = %q", got)
	}
	if got := PropID(0x05).String(); got != "property 0x5" {
		t.Errorf("PropID(0x05).String() = %q", got)
	}
}
