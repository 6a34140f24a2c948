package mqtttest

import (
	"strconv"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// Direction selects one or both halves of a proxied connection. The values
// are bits, so ToBroker|ToClient is Both.
type Direction int

// The directions of a proxied connection.
const (
	// ToBroker is the client-to-broker half: CONNECT, PUBLISH from the
	// client, PINGREQ and the client's acknowledgements.
	ToBroker Direction = 1 << iota
	// ToClient is the broker-to-client half: CONNACK, PUBLISH from the
	// broker, PINGRESP and the broker's acknowledgements.
	ToClient
	// Both is ToBroker|ToClient.
	Both = ToBroker | ToClient
)

// String returns "ToBroker", "ToClient", "Both" or "Direction(n)".
func (d Direction) String() string {
	switch d {
	case ToBroker:
		return "ToBroker"
	case ToClient:
		return "ToClient"
	case Both:
		return "Both"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// dirs lists the single directions contained in d.
func dirs(d Direction) []int {
	var out []int
	if d&ToBroker != 0 {
		out = append(out, 0)
	}
	if d&ToClient != 0 {
		out = append(out, 1)
	}
	return out
}

// Rule decides the fate of one MQTT control packet crossing the proxy. h is
// the packet's fixed header and raw the whole packet as it was read, fixed
// header included; raw must not be modified. To look inside, decode the body
// (raw[len(raw)-h.RemainingLength:]) with the packet package and the
// protocol version the test uses.
//
// Rules run on the proxy's reading goroutines, one per direction of each
// connection, so a Rule shared by several connections or directions must be
// safe for concurrent use. A Rule must not block for long: the direction it
// judges is stalled until it returns.
type Rule func(h packet.FixedHeader, raw []byte) Action

// Action is what a Rule tells the proxy to do with a packet. The zero Action
// is Forward. Build one with the constructors below.
type Action struct {
	kind  actionKind
	delay time.Duration
	n     int
}

type actionKind int

const (
	actForward actionKind = iota
	actDrop
	actDuplicate
	actDelay
	actTruncate
	actReset
	actBlackhole
)

// Forward passes the packet on unchanged (subject to the proxy's latency
// and chunking). A Rule that has no opinion returns Forward, and the next
// Rule of the direction is asked.
func Forward() Action { return Action{} }

// Drop discards the packet; the rest of the stream flows on, so the
// receiver sees a well-formed stream with one packet missing.
func Drop() Action { return Action{kind: actDrop} }

// Duplicate sends the packet twice in a row.
func Duplicate() Action { return Action{kind: actDuplicate} }

// Delay holds the packet for d on top of the proxy's latency. Order is
// preserved: the packets behind it in the same direction wait for it.
func Delay(d time.Duration) Action { return Action{kind: actDelay, delay: d} }

// TruncateAndClose sends only the first n bytes of the packet (all of it if
// n is larger; none if n is 0) and then closes the connection with FIN in
// both directions, so the receiver meets end of stream inside the packet
// (io.ErrUnexpectedEOF from a packet.Reader) when 0 < n < len(raw).
// Packets queued before it are delivered first.
func TruncateAndClose(n int) Action { return Action{kind: actTruncate, n: max(n, 0)} }

// ResetConn resets the connection (RST to both peers) in place of sending
// the packet. Packets queued before it are delivered first.
func ResetConn() Action { return Action{kind: actReset} }

// BlackholeFrom discards this packet and everything after it in the same
// direction of the same connection, keeping the socket open: a link that
// goes silent one way in the middle of a session. It lasts until the
// connection ends or Proxy.Heal is called.
func BlackholeFrom() Action { return Action{kind: actBlackhole} }

// String describes the action, such as "Delay(10ms)".
func (a Action) String() string {
	switch a.kind {
	case actDrop:
		return "Drop"
	case actDuplicate:
		return "Duplicate"
	case actDelay:
		return "Delay(" + a.delay.String() + ")"
	case actTruncate:
		return "TruncateAndClose(" + strconv.Itoa(a.n) + ")"
	case actReset:
		return "ResetConn"
	case actBlackhole:
		return "BlackholeFrom"
	}
	return "Forward"
}

// judge asks the rules in order and returns the first action that is not
// Forward.
func judge(rules []Rule, h packet.FixedHeader, raw []byte) Action {
	for _, r := range rules {
		if a := r(h, raw); a.kind != actForward {
			return a
		}
	}
	return Action{}
}
