package mqttas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/mqttas/mqttas/packet"
)

// newBackoff is the delay policy between attempts on one server: jittered
// doubling from ReconnectMin to ReconnectMax, forever.
func (c *Client) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = c.cfg.ReconnectMin
	b.MaxInterval = c.cfg.ReconnectMax
	b.Multiplier = 2
	b.RandomizationFactor = 0.25
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// dialer runs attempts with backoff and failover: after the delay on one
// server has grown to ReconnectMax, the next attempt goes to the other
// server with the delay back at ReconnectMin (Mongoose OS's mqtt1 rule).
type dialer struct {
	c        *Client
	b        *backoff.ExponentialBackOff
	srv      int // index into cfg.servers
	failures int // consecutive failures on srv
}

// atMax reports whether the un-jittered delay has reached ReconnectMax.
func (d *dialer) atMax() bool {
	iv := d.c.cfg.ReconnectMin
	for i := 1; i < d.failures && iv < d.c.cfg.ReconnectMax; i++ {
		iv *= 2
	}
	return iv >= d.c.cfg.ReconnectMax
}

// next waits out the delay owed after the failure err (nil: a connection
// that died young), switching servers when due. It returns false when ctx
// ends first.
//
// A dial the host refused outright (nothing listening: the broker is
// restarting) cost the broker nothing, so it is retried within
// ReconnectMin, jittered down only, however many came before: the client
// is back within ReconnectMin of the broker's return rather than after a
// delay grown long during the restart. It still counts towards switching
// servers.
func (d *dialer) next(ctx context.Context, err error) bool {
	d.failures++
	if len(d.c.cfg.servers) > 1 && d.atMax() {
		d.srv = (d.srv + 1) % len(d.c.cfg.servers)
		d.failures = 0
		d.b.Reset()
		d.c.log.Info("mqttas: switching server", "server", d.c.cfg.servers[d.srv])
	}
	var delay time.Duration
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Not NextBackOff: that would double the delay owed to the next
		// failure of another kind, such as a CONNACK timeout while the
		// broker finishes starting.
		lo := d.c.cfg.ReconnectMin * 3 / 4
		delay = lo + rand.N(d.c.cfg.ReconnectMin-lo+1)
	} else {
		delay = d.b.NextBackOff()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// firstConnect makes the connection Connect returns, honouring clean_init:
// a persistent-session client that must not resume an old session connects
// clean once, disconnects, and then connects with the session kept.
func (c *Client) firstConnect(ctx context.Context) (*conn, int, error) {
	d := &dialer{c: c, b: c.newBackoff()}
	for {
		cn, err := c.connectOnce(ctx, d.srv, true)
		if err == nil {
			return cn, d.srv, nil
		}
		if !c.cfg.ConnectRetry || ctx.Err() != nil || pointless(err) {
			return nil, 0, err
		}
		c.failed(err)
		c.log.Warn("mqttas: connect failed, retrying", "server", c.cfg.servers[d.srv], "err", err)
		if !d.next(ctx, err) {
			return nil, 0, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
	}
}

// connectOnce dials cfg.servers[srv]. On power-up (first) it applies the
// clean_init rule.
func (c *Client) connectOnce(ctx context.Context, srv int, first bool) (*conn, error) {
	s := c.cfg.servers[srv]
	c.mu.Lock()
	if r := c.redirect; r != nil {
		s, c.redirect = *r, nil // one attempt; afterwards the configured servers again
	}
	c.mu.Unlock()
	if !c.cfg.PersistentSession {
		return c.dial(ctx, s, true)
	}
	if first && !c.cfg.ResumeOnStart {
		cn, err := c.dial(ctx, s, true)
		if err != nil {
			return nil, err
		}
		cn.write(&packet.Disconnect{})
		// Wait, within ResponseTime, for the broker to hang up: a broker
		// that tears the clean session down after the connection ends
		// (mochi-mqtt does) could otherwise discard the persistent one
		// that the next connection, under the same client id, creates.
		stop := context.AfterFunc(ctx, func() { cn.nc.SetReadDeadline(time.Unix(1, 0)) })
		cn.nc.SetReadDeadline(time.Now().Add(c.cfg.ResponseTime))
		var b [64]byte
		for {
			if _, err := cn.nc.Read(b[:]); err != nil {
				break
			}
		}
		stop()
		cn.nc.Close()
		c.mu.Lock()
		c.clientID = cn.link.ClientID // an assigned one, for the session to come
		c.mu.Unlock()
	}
	return c.dial(ctx, s, false)
}

// supervise owns the link from the first connection, already live, to
// Close: it waits for each connection to die, waits for its reader and
// pinger, and reconnects.
func (c *Client) supervise(cn *conn, srv int) {
	defer close(c.supDone)
	ctx := c.life
	d := &dialer{c: c, b: c.newBackoff(), srv: srv}
	for {
		select {
		case <-cn.done:
		case <-c.closing:
		}
		cn.stop(ErrClosed)
		c.goDown(cn)
		if c.stopping.Load() {
			return
		}
		if pointless(cn.cause) {
			c.log.Error("mqttas: reconnecting would be pointless; closing", "server", cn.srv, "cause", cn.cause)
			go c.Close()
			return
		}
		// A connection that survived a keep-alive round proved the link:
		// start the backoff again, and try at once.
		if time.Since(cn.started) >= c.cfg.PingInterval+c.cfg.ResponseTime {
			d.failures = 0
			d.b.Reset()
		} else if !d.next(ctx, nil) {
			return
		}
		for {
			var err error
			if cn, err = c.connectOnce(ctx, d.srv, false); err == nil {
				if err = c.goLive(cn, true); err == nil {
					break
				}
				cn.stop(err)
			}
			if c.stopping.Load() {
				return
			}
			c.failed(err)
			if pointless(err) {
				c.log.Error("mqttas: the broker refuses this client for good; closing", "server", c.cfg.servers[d.srv], "err", err)
				go c.Close() // Close waits for this goroutine to return
				return
			}
			c.log.Warn("mqttas: reconnect failed", "server", c.cfg.servers[d.srv], "err", err)
			if !d.next(ctx, err) {
				return
			}
		}
	}
}

// goLive restores the session on a new connection and publishes it as up:
// resends and resubscriptions go out before any new publish can.
func (c *Client) goLive(cn *conn, reconnect bool) error {
	cn.start()
	if !cn.sessionPresent {
		c.sess.mu.Lock()
		clear(c.sess.rxQoS2)
		c.sess.mu.Unlock()
		if err := c.resubscribe(cn); err != nil {
			return err
		}
	}
	if err := c.resendAll(cn); err != nil {
		return err
	}
	c.mu.Lock()
	if c.stopping.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	if cn.dead() {
		c.mu.Unlock()
		return cn.cause
	}
	c.cur, cn.live = cn, true
	c.fast.Store(cn)
	c.link, c.clientID = cn.link, cn.link.ClientID
	if reconnect {
		c.stats.reconnects.Add(1) // before Up, so Up never shows a stale count
	}
	close(c.upCh)
	c.mu.Unlock()
	c.log.Info("mqttas: connected", "server", cn.srv, "session_present", cn.sessionPresent)
	signal(c.ev.up)
	return nil
}

// pointless reports whether err means the broker will never take this
// client back, so reconnecting would only hammer it: banned, or a
// authentication method it does not support, or (in a DISCONNECT) another
// client has taken the session over, where reconnecting would start a
// takeover war between two devices sharing an identifier.
func pointless(err error) bool {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce.Code == packet.Banned || ce.Code == packet.BadAuthenticationMethod
	}
	var de *DisconnectError
	return errors.As(err, &de) && de.Code == packet.SessionTakenOver
}

// failed records why a connection or an attempt ended. When the broker
// named another server (MQTT 5.0 Use Another Server or Server Moved, with
// a Server Reference), the next attempt goes there.
func (c *Client) failed(err error) {
	var ref string
	var code packet.ReasonCode
	var ce *ConnectError
	var de *DisconnectError
	switch {
	case errors.As(err, &ce):
		ref, code = ce.ServerReference, ce.Code
	case errors.As(err, &de):
		ref, code = de.ServerReference, de.Code
	}
	var redirect *server
	if ref != "" && (code == packet.UseAnotherServer || code == packet.ServerMoved) {
		// A reference may list several servers; the first is tried.
		first, _, _ := strings.Cut(strings.TrimSpace(ref), " ")
		// A reference without a scheme keeps the transport in use: TLS if
		// the configured server is TLS, however that was asked for.
		if s, perr := parseServer("ServerReference", first, c.cfg.servers[0].tls); perr == nil {
			redirect = &s
			c.log.Info("mqttas: the broker points to another server", "server", s, "code", code)
		} else {
			c.log.Warn("mqttas: ignoring an unusable Server Reference", "reference", ref, "err", perr)
		}
	}
	c.mu.Lock()
	c.lastErr = err
	if redirect != nil {
		c.redirect = redirect
	}
	c.mu.Unlock()
}

// LastError returns why the last connection, or the last attempt to make
// one, ended: a *DisconnectError when an MQTT 5.0 broker said why, a
// *ConnectError for a refusal, a timeout or a network error. nil until
// something has failed. When the client has closed itself because the
// broker refuses it for good (banned, a bad authentication method, another
// client took the session over), this is the reason.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// unlink withdraws cn as the live link, if it is; conn.fail calls it.
func (c *Client) unlink(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == cn {
		c.cur = nil
		c.fast.Store(nil)
		c.upCh = make(chan struct{})
	}
}

// goDown records an outage of an established connection.
func (c *Client) goDown(cn *conn) {
	c.mu.Lock()
	live := cn.live
	c.mu.Unlock()
	if !live {
		return // it never went live: not an outage
	}
	if errors.Is(cn.cause, ErrClosed) || c.stopping.Load() {
		// Closing: a broker that hangs up after our DISCONNECT, before the
		// supervisor has stopped the connection, is not an outage.
		return
	}
	c.stats.outages.Add(1)
	c.failed(cn.cause)
	c.log.Warn("mqttas: connection lost", "server", cn.srv, "cause", cn.cause,
		"up_for", time.Since(cn.started).Round(time.Millisecond))
	signal(c.ev.down)
}

// resubscribe restores every remembered subscription on a connection
// without a session, in one SUBSCRIBE per batch, and waits for the SUBACKs
// so that Up means the subscriptions are in place. A SUBACK that does not
// come within ResponseTime fails the connection; a refused filter is
// logged and stays remembered, to be tried again on the next reconnect.
func (c *Client) resubscribe(cn *conn) error {
	c.mu.Lock()
	subs := slices.Clone(c.subs)
	c.mu.Unlock()
	const batch = 64
	var sent []*pending
	defer func() {
		for _, p := range sent {
			c.sess.finish(p, errLinkDown) // no-op for the answered ones
		}
	}()
	for len(subs) > 0 {
		// One SUBSCRIBE carries at most one subscription identifier, so
		// a batch holds filters that share theirs (usually none).
		n := 1
		for n < min(len(subs), batch) && subs[n].id == subs[0].id {
			n++
		}
		p := &pending{kind: awaitSuback, sub: subs[0].packet(subs[:n])}
		subs = subs[n:]
		c.sess.add(p)
		sent = append(sent, p)
		if _, err := cn.sendPending(p, sendClaim, 0, false); err != nil { // SUBSCRIBE: no quota
			return err
		}
	}
	timer := time.NewTimer(c.cfg.ResponseTime)
	defer timer.Stop()
	for _, p := range sent {
		select {
		case <-p.done:
		case <-cn.done:
			return cn.cause
		case <-c.closing:
			return ErrClosed
		case <-timer.C:
			return fmt.Errorf("%w: no SUBACK for restored subscriptions within %v", ErrTimeout, c.cfg.ResponseTime)
		}
		for i, code := range p.codes {
			if code.IsError() && i < len(p.sub.Subscriptions) {
				c.log.Error("mqttas: broker refused a restored subscription",
					slog.String("filter", p.sub.Subscriptions[i].Filter), slog.String("code", code.String()))
			}
		}
	}
	return nil
}

// dispatch runs OnMessage on its own goroutine, so a slow or blocking
// callback delays only later messages, never the reader or the pinger. It
// ends at Close: messages still queued then are not delivered.
func (c *Client) dispatch() {
	for {
		select {
		case m := <-c.msgs.ch:
			select {
			case <-c.closing:
				return
			default:
			}
			c.cfg.OnMessage(m)
		case <-c.closing:
			return
		}
	}
}
