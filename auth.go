package mqttas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// reauth serialises Reauthenticate calls and hands them the broker's AUTH
// packets, which the reader receives.
type reauth struct {
	mu sync.Mutex        // one re-authentication at a time
	ch chan *packet.Auth // set while one is in progress; guarded by Client.mu
}

// authStep answers one AUTH from the broker in the middle of an exchange:
// it must continue the exchange, and Config.Auth computes the reply, which
// send writes.
func (c *Client) authStep(ctx context.Context, h packet.FixedHeader, body []byte, send func([]byte) (int, error)) error {
	var a packet.Auth
	if err := a.Decode(h.Flags, body, c.version); err != nil {
		return fmt.Errorf("bad AUTH: %w", err)
	}
	if a.ReasonCode != packet.ContinueAuthentication {
		return fmt.Errorf("AUTH with reason %v where the exchange should continue", a.ReasonCode)
	}
	if m := a.Properties.AuthMethod; m != c.cfg.AuthMethod {
		return fmt.Errorf("AUTH for method %q, not the client's %q", m, c.cfg.AuthMethod)
	}
	data, err := c.cfg.Auth(ctx, c.cfg.AuthMethod, bytes.Clone(a.Properties.AuthData))
	if err != nil {
		return fmt.Errorf("authentication (%s): %w", c.cfg.AuthMethod, err)
	}
	reply := &packet.Auth{ReasonCode: packet.ContinueAuthentication,
		Properties: packet.Properties{AuthMethod: c.cfg.AuthMethod, AuthData: data}}
	buf, err := reply.AppendTo(nil, c.version)
	if err != nil {
		return err
	}
	_, err = send(buf)
	return err
}

// Reauthenticate runs MQTT 5.0 re-authentication on the live connection
// (Config.AuthMethod and Auth): for instance when a token is about to
// expire. It returns nil once the broker has accepted the client again. A
// broker that rejects it disconnects the client, and Reauthenticate
// returns that DISCONNECT as a *DisconnectError; the client reconnects,
// authenticating afresh. ctx and ResponseTime bound each step.
func (c *Client) Reauthenticate(ctx context.Context) error {
	if c.cfg.Auth == nil {
		return errors.New("mqttas: Reauthenticate needs enhanced authentication: set Config.AuthMethod and Config.Auth")
	}
	c.reauth.mu.Lock()
	defer c.reauth.mu.Unlock()
	cn, err := c.waitLink(ctx)
	if err != nil {
		return err
	}
	ch := make(chan *packet.Auth, 1)
	c.mu.Lock()
	c.reauth.ch = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reauth.ch = nil
		c.mu.Unlock()
	}()
	data, err := c.cfg.Auth(ctx, c.cfg.AuthMethod, nil)
	if err != nil {
		return fmt.Errorf("mqttas: re-authentication (%s): %w", c.cfg.AuthMethod, err)
	}
	code := packet.ReAuthenticate
	timer := time.NewTimer(c.cfg.ResponseTime)
	defer timer.Stop()
	for {
		out := &packet.Auth{ReasonCode: code, Properties: packet.Properties{AuthMethod: c.cfg.AuthMethod, AuthData: data}}
		if err := cn.write(out); err != nil {
			return fmt.Errorf("mqttas: re-authentication: %w", err)
		}
		timer.Reset(c.cfg.ResponseTime)
		var in *packet.Auth
		select {
		case in = <-ch:
		case <-cn.done:
			return fmt.Errorf("mqttas: re-authentication: %w", cn.cause)
		case <-timer.C:
			return fmt.Errorf("mqttas: re-authentication: %w: no AUTH from the broker within %v", ErrTimeout, c.cfg.ResponseTime)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		}
		if in.ReasonCode == packet.Success {
			if len(in.Properties.AuthData) > 0 {
				if _, err := c.cfg.Auth(ctx, c.cfg.AuthMethod, in.Properties.AuthData); err != nil {
					return fmt.Errorf("mqttas: re-authentication (%s): the client does not accept the broker's final data: %w", c.cfg.AuthMethod, err)
				}
			}
			return nil
		}
		if data, err = c.cfg.Auth(ctx, c.cfg.AuthMethod, in.Properties.AuthData); err != nil {
			return fmt.Errorf("mqttas: re-authentication (%s): %w", c.cfg.AuthMethod, err)
		}
		code = packet.ContinueAuthentication
	}
}

// handleAuth passes an AUTH that arrived on a live connection to the
// Reauthenticate in progress; one that nobody asked for is a protocol
// error.
func (c *Client) handleAuth(h packet.FixedHeader, body []byte) error {
	a := new(packet.Auth)
	if err := a.Decode(h.Flags, bytes.Clone(body), c.version); err != nil {
		return fmt.Errorf("bad AUTH: %w", err)
	}
	c.mu.Lock()
	ch := c.reauth.ch
	c.mu.Unlock()
	if ch == nil || (a.ReasonCode != packet.Success && a.ReasonCode != packet.ContinueAuthentication) {
		return fmt.Errorf("unexpected AUTH (%v) from the broker", a.ReasonCode)
	}
	select {
	case ch <- a:
	default:
		return errors.New("AUTH from the broker before the client's reply")
	}
	return nil
}
