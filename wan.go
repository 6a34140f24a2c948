package mqttas

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// BrokerUp reports whether the broker is answering: true at once if
// anything arrived in the last second, else it sends PINGREQ and waits up
// to ResponseTime (or ctx) for any packet. It is mqtt_as's broker_up. False
// at once with no live link: before Connect, during an outage and after
// Close. A PINGREQ that goes unanswered does not end the link; the
// keep-alive decides that.
func (c *Client) BrokerUp(ctx context.Context) bool {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil || cn.dead() {
		return false
	}
	if time.Duration(c.now()-cn.lastRx.Load()) < time.Second {
		return true
	}
	rx := cn.rxSignal()
	if cn.write(&packet.Pingreq{}) != nil {
		return false
	}
	t := time.NewTimer(c.cfg.ResponseTime)
	defer t.Stop()
	select {
	case <-rx:
		return true
	case <-cn.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// wanQuestion is the question section of WANOK's query: google.com, type
// A, class IN. The name hardly matters; a popular one is likely to be in
// the resolver's cache, so the answer comes back quickly.
const wanQuestion = "\x06google\x03com\x00\x00\x01\x00\x01"

// WANOK reports whether the internet is reachable, independently of the
// broker: it sends one DNS query over UDP to Config.WANResolver and waits
// up to ResponseTime (or ctx) for the reply. It is mqtt_as's wan_ok. With
// BrokerUp it tells the outages apart: WANOK false means the WiFi or the
// WAN is down, WANOK true while BrokerUp is false means the broker is.
//
// Any reply to this query counts, whatever its response code: an
// NXDOMAIN or SERVFAIL still came back from the resolver across the WAN,
// which is all WANOK asks. A reply is the query's own when it is at least
// a header long, carries the query's random 16-bit ID and the response
// bit, and echoes the question if it has one. Other datagrams (stale
// replies to an earlier call, spoofs, garbage) are ignored, and WANOK
// goes on waiting for the real one until the deadline. It returns false
// when ctx ends, at the deadline and on any network error.
//
// WANOK neither needs nor touches the connection to the broker: it works
// before Connect and during an outage, takes no lock that Publish or the
// keep-alive need, and its traffic is not mistaken for the broker's. After
// Close it returns false at once, and Close ends a call in progress.
func (c *Client) WANOK(ctx context.Context) bool {
	select {
	case <-c.closing:
		return false
	case <-ctx.Done():
		return false
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ResponseTime)
	defer cancel()
	// Close must be able to interrupt the wait.
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	var d net.Dialer
	nc, err := d.DialContext(ctx, "udp", c.cfg.WANResolver)
	if err != nil {
		return false
	}
	defer nc.Close()
	// A connected UDP socket only receives datagrams from the resolver.
	deadline, _ := ctx.Deadline() // always set: WithTimeout
	nc.SetDeadline(deadline)
	// Cancellation ends the wait at once. Registered after SetDeadline, so
	// that for a ctx already done its SetDeadline(now) is the one that stays.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()

	var buf [512]byte // the largest reply to a query without EDNS
	id := uint16(rand.Uint32())
	query := binary.BigEndian.AppendUint16(buf[:0], id)
	query = append(query, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; one question
	query = append(query, wanQuestion...)
	if _, err := nc.Write(query); err != nil {
		return false
	}
	for {
		n, err := nc.Read(buf[:])
		if err != nil {
			// The deadline, ctx, Close, or an ICMP port unreachable from a
			// host with no resolver.
			return false
		}
		if dnsReplyTo(buf[:n], id) {
			return true
		}
	}
}

// dnsReplyTo reports whether b is a DNS response to WANOK's query id.
func dnsReplyTo(b []byte, id uint16) bool {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != id || b[2]&0x80 == 0 {
		return false
	}
	if binary.BigEndian.Uint16(b[4:]) == 0 {
		return true // no question section, as in some error replies
	}
	return bytes.HasPrefix(b[12:], []byte(wanQuestion))
}
