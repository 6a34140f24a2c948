package mqttas_test

// Hostile brokers during the CONNECT/CONNACK exchange: silence, garbage,
// truncation, odd return codes, acknowledgements before the CONNACK. Each
// must make Connect fail with a clear error within ResponseTime, or, with
// ConnectRetry, be retried until a good CONNACK comes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// The broker accepts TCP and reads the CONNECT but never answers: Connect
// gives up after ResponseTime with ErrTimeout.
func TestHostileConnackNeverSent(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		for {
			if _, err := hc.next(); err != nil {
				return
			}
		}
	})
	start := time.Now()
	err := hbConnectErr(t, b, nil)
	took := time.Since(start)
	hbIs(t, err, mqttas.ErrTimeout, "no CONNACK")
	if took < hbResponse || took > hbResponse+time.Second {
		t.Fatalf("Connect took %v, want about ResponseTime %v", took, hbResponse)
	}
}

// Bytes that are not a CONNACK where the CONNACK should be.
func TestHostileGarbageInsteadOfConnack(t *testing.T) {
	http := "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
		strings.Repeat("this is not an MQTT broker\n", 5)
	cases := []struct {
		name   string
		bytes  []byte
		target error
		says   string
	}{
		// Type 0 is reserved: refused from the first byte.
		{"type0", []byte{0x00, 0x00}, packet.ErrMalformed, "reserved type 0"},
		{"0xFF", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, packet.ErrMalformed, "remaining length"},
		// 'H' reads as PUBACK with flags 8 and 'T' as 84 bytes of body.
		{"http", []byte(http), nil, "expected CONNACK"},
		// 3.1.1 has no AUTH: type 15 is just not a CONNACK.
		{"type15", []byte{0xf0, 0x00}, nil, "expected CONNACK, got AUTH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := hbStart(t, packet.V311, func(hc *hbConn) {
				if _, err := hc.next(); err == nil {
					hc.raw(tc.bytes)
					hc.next() // until the client hangs up
				}
			})
			err := hbConnectErr(t, b, nil)
			hbIs(t, err, tc.target, tc.says)
			if errors.Is(err, mqttas.ErrTimeout) {
				t.Fatalf("Connect waited for ResponseTime: %v", err)
			}
		})
	}
}

// The CONNACK is cut after every possible prefix and the socket closed:
// Connect fails with EOF (nothing came) or an unexpected EOF (a part did).
func TestHostileConnackTruncated(t *testing.T) {
	full := hbBytes(&packet.Connack{}, packet.V311)
	for n := range len(full) {
		t.Run(fmt.Sprintf("prefix=%d", n), func(t *testing.T) {
			b := hbStart(t, packet.V311, func(hc *hbConn) {
				if _, err := hc.next(); err == nil {
					hc.raw(full[:n])
				}
			})
			want := io.ErrUnexpectedEOF
			if n == 0 {
				want = io.EOF
			}
			hbIs(t, hbConnectErr(t, b, nil), want, "waiting for CONNACK")
		})
	}
}

// With ConnectRetry a truncated CONNACK is just a failed attempt: the
// client dials again, once per truncation, and connects on the first
// whole CONNACK.
func TestHostileConnackTruncatedRetry(t *testing.T) {
	full := hbBytes(&packet.Connack{}, packet.V311)
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if hc.k >= len(full) {
			hc.serve()
			return
		}
		if _, err := hc.next(); err == nil {
			hc.raw(full[:hc.k])
		}
	})
	c := hbConnect(t, b, func(cfg *mqttas.Config) { cfg.ConnectRetry = true })
	if got := b.accepted(); got != len(full)+1 {
		t.Fatalf("broker accepted %d connections, want %d", got, len(full)+1)
	}
	hbIs(t, c.LastError(), io.ErrUnexpectedEOF)
	if s := c.Stats(); s.Outages != 0 || s.Reconnects != 0 {
		t.Fatalf("failed attempts counted as outages: %+v", s)
	}
}

// A 3.1.1 return code the specification does not define (6..255) is a
// refusal like any other: *ConnectError with UnspecifiedError.
func TestHostileConnackUnknownReturnCode(t *testing.T) {
	for _, code := range []byte{0x06, 0x80, 0xff} {
		t.Run(fmt.Sprintf("0x%02x", code), func(t *testing.T) {
			b := hbStart(t, packet.V311, func(hc *hbConn) {
				if _, err := hc.next(); err == nil {
					hc.raw([]byte{0x20, 0x02, 0x00, code})
				}
			})
			err := hbConnectErr(t, b, nil)
			var ce *mqttas.ConnectError
			if !errors.As(err, &ce) || ce.Code != packet.UnspecifiedError {
				t.Fatalf("Connect: %v, want a *ConnectError with UnspecifiedError", err)
			}
			hbIs(t, err, mqttas.ErrRefused)
		})
	}
}

// Reserved bits in the acknowledge flags make the CONNACK malformed.
func TestHostileConnackReservedFlags(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.next(); err == nil {
			hc.raw([]byte{0x20, 0x02, 0x02, 0x00})
		}
	})
	hbIs(t, hbConnectErr(t, b, nil), packet.ErrMalformed, "bad CONNACK", "acknowledge flags")
}

// A CONNACK that is a refusal and says session present is a protocol
// violation (MQTT-3.2.2-4 in 3.1.1): Connect reports it as a bad CONNACK.
func TestHostileConnackRefusedWithSessionPresent(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.next(); err == nil {
			hc.raw([]byte{0x20, 0x02, 0x01, 0x05})
		}
	})
	hbIs(t, hbConnectErr(t, b, nil), packet.ErrProtocolViolation, "bad CONNACK")
}

// A SUBACK or PUBACK (or a PUBLISH) before the CONNACK: nothing may come
// first, and Connect fails at once rather than waiting for ResponseTime.
func TestHostileAckBeforeConnack(t *testing.T) {
	for _, p := range []packet.Packet{
		&packet.Suback{PacketID: 1, ReasonCodes: []packet.ReasonCode{0}},
		&packet.Puback{PacketID: 1},
		&packet.Publish{Topic: "early", Payload: []byte("x")},
	} {
		t.Run(p.Type().String(), func(t *testing.T) {
			b := hbStart(t, packet.V311, func(hc *hbConn) {
				if _, err := hc.next(); err == nil {
					hc.send(p)
					hc.send(&packet.Connack{})
					hc.next()
				}
			})
			start := time.Now()
			err := hbConnectErr(t, b, nil)
			hbIs(t, err, nil, "expected CONNACK, got "+p.Type().String())
			if d := time.Since(start); d >= hbResponse {
				t.Fatalf("Connect took %v: it waited instead of failing at once", d)
			}
		})
	}
}

// A second CONNACK on a live link is a protocol error: the client drops
// the link and reconnects.
func TestHostileSecondConnack(t *testing.T) {
	trigger := make(chan struct{})
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.accept(nil); err != nil {
			return
		}
		if hc.k == 0 {
			select {
			case <-trigger:
				hc.send(&packet.Connack{SessionPresent: true})
			case <-hc.quit:
				return
			}
		}
		hc.serveRest()
	})
	c := hbConnect(t, b, nil)
	close(trigger)
	hbIs(t, hbOutage(t, c), nil, "unexpected CONNACK")
	if s := c.Stats(); s.Outages != 1 || s.Reconnects != 1 {
		t.Fatalf("stats %+v, want one outage and one reconnect", s)
	}
}

// With ConnectRetry, a broker that answers with garbage is retried with
// backoff, not in a spin, until ctx ends; Connect then reports the
// context's error, and LastError the last failed attempt.
func TestHostileGarbageConnectRetryBounded(t *testing.T) {
	b := hbStart(t, packet.V311, func(hc *hbConn) {
		if _, err := hc.next(); err == nil {
			hc.raw([]byte{0x00, 0x00})
		}
	})
	cfg := hbConfig(b)
	cfg.ConnectRetry = true
	c := hbNew(t, cfg)
	ctx, cancel := context.WithCancel(fxCtx(t, hbWait))
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- c.Connect(ctx) }()
	fxEventually(t, hbWait, "four attempts", func() bool { return b.accepted() >= 4 })
	took := time.Since(start)
	cancel()
	hbIs(t, <-errc, context.Canceled)
	hbIs(t, c.LastError(), packet.ErrMalformed, "reserved type 0")
	// Three delays of at least 0.75 × 10, 20 and 40 ms separate them.
	if minimum := (hbReconnectMin + 2*hbReconnectMin + hbReconnectMax) * 3 / 4; took < minimum {
		t.Fatalf("four attempts in %v: the backoff (at least %v) did not hold", took, minimum)
	}
}
