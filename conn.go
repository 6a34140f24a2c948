package mqttas

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// conn is one network connection to a broker, from CONNACK until it dies.
// The supervisor owns it: it starts the reader and the pinger, and waits for
// both before dialling again, so no goroutine outlives its connection.
type conn struct {
	c              *Client
	nc             net.Conn
	rd             *packet.Reader
	srv            server
	sessionPresent bool
	started        time.Time
	live           bool // went up; guarded by Client.mu

	// What the broker granted in CONNACK, fixed for the connection.
	link         Link
	pingInterval time.Duration // PingInterval, or shorter for a Server Keep Alive
	maxOut       int           // the broker's Maximum Packet Size; 0: none

	// Receive Maximum accounting, guarded by session.mu; see republish.go.
	quota    int           // the broker's Receive Maximum; 0: no limit
	inflight int           // QoS 1 and 2 messages counted on this connection
	freed    chan struct{} // closed when inflight drops; nil if nobody waits

	// aliases maps the broker's MQTT 5.0 topic aliases to topics; the
	// reader alone uses it, and it lives and dies with the connection.
	aliases map[uint16]string
	// outAliases are the client's own, guarded by w.mu: assigned as
	// PUBLISHes are queued, so the broker learns each before its use.
	outAliases map[string]uint16

	// w is the write side; outAliases are guarded by its lock.
	w writer

	// Times since c.epoch, in nanoseconds, of the last byte read and the
	// last packet written; the pinger works from them.
	lastRx atomic.Int64
	lastTx atomic.Int64

	done     chan struct{} // closed when the connection is dead
	failOnce sync.Once
	cause    error // why it died; written once, before done is closed
	wg       sync.WaitGroup

	// pinging is set while a PINGREQ is unanswered; the reader then wakes
	// the pinger through pong on the next packet, so the next silence is
	// timed from that packet rather than from the ping's deadline.
	pinging atomic.Bool
	pong    chan struct{}

	// rxWake is signalled for every packet read; BrokerUp waits on it.
	rxMu   sync.Mutex
	rxWake chan struct{}
}

// readBuffer is the size a connection's read buffer starts at: half the
// codec's default, so that an idle client stays small, and still a few
// dozen small packets per read under load. A larger packet grows it.
const readBuffer = 2048

// errLinkDown reports a write on a connection that has already died; the
// caller waits for the next one.
var errLinkDown = errors.New("mqttas: connection lost")

// fail marks the connection dead with cause and closes the socket, which
// unblocks the reader. Only the first cause is kept. If it was the live
// link, the client stops handing it out at the same moment, so callers
// wait for the next link rather than retry on a dead one.
func (cn *conn) fail(cause error) {
	cn.failOnce.Do(func() {
		cn.cause = cause
		cn.c.unlink(cn)
		close(cn.done)
		cn.nc.Close()
	})
}

func (cn *conn) dead() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

// rxCounter notes the time of every successful read, so a large packet
// arriving slowly still counts as life on the link.
type rxCounter struct{ cn *conn }

func (r rxCounter) Read(b []byte) (int, error) {
	n, err := r.cn.nc.Read(b)
	if n > 0 {
		r.cn.lastRx.Store(r.cn.c.now())
	}
	return n, err
}

// dial opens a connection to srv and completes the CONNECT/CONNACK
// exchange within ctx and ResponseTime.
func (c *Client) dial(ctx context.Context, srv server, clean bool) (*conn, error) {
	cfg := c.cfg
	// A host that drops SYNs would otherwise hold the attempt for the OS
	// connect timeout (minutes on Linux), far past ResponseTime.
	dctx, cancel := context.WithTimeout(ctx, cfg.ResponseTime)
	nc, err := cfg.Dial(dctx, "tcp", srv.addr)
	timedOut := errors.Is(dctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		if ctx.Err() == nil && timedOut {
			err = fmt.Errorf("%w: connection not established within %v (%v)", ErrTimeout, cfg.ResponseTime, err)
		}
		return nil, fmt.Errorf("mqttas: dial %s: %w", srv, c.ctxErr(ctx, err))
	}
	if srv.tls {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{}
		}
		if tc.ServerName == "" && !tc.InsecureSkipVerify {
			tc = tc.Clone()
			tc.ServerName = srv.host
		}
		tlsConn := tls.Client(nc, tc)
		hctx, cancel := context.WithTimeout(ctx, cfg.ResponseTime)
		err := tlsConn.HandshakeContext(hctx)
		timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			nc.Close()
			if ctx.Err() == nil && timedOut {
				err = fmt.Errorf("%w: TLS handshake not finished within %v", ErrTimeout, cfg.ResponseTime)
			}
			return nil, fmt.Errorf("mqttas: TLS handshake with %s: %w", srv, c.ctxErr(ctx, err))
		}
		nc = tlsConn
	}
	// The CONNECT/CONNACK exchange gets ResponseTime in all, and ctx
	// ending poisons the deadline so the exchange stops at once. The
	// deadline is set first so nothing later can undo the poison.
	nc.SetDeadline(time.Now().Add(cfg.ResponseTime))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	cn := &conn{c: c, nc: nc, srv: srv, done: make(chan struct{}), pong: make(chan struct{}, 1), started: time.Now()}
	cn.w.cond.L = &cn.w.mu
	cn.rd = packet.NewReaderSize(rxCounter{cn}, cfg.MaxPacketSize, readBuffer)
	cn.rd.SetVersion(c.version)
	now := c.now()
	cn.lastRx.Store(now)
	cn.lastTx.Store(now)

	cp := c.connectPacket(clean)
	if cfg.Auth != nil {
		cp.Properties.AuthMethod = cfg.AuthMethod
		if cp.Properties.AuthData, err = cfg.Auth(ctx, cfg.AuthMethod, nil); err != nil {
			nc.Close()
			return nil, fmt.Errorf("mqttas: authentication (%s) for %s: %w", cfg.AuthMethod, srv, err)
		}
	}
	buf, err := cp.AppendTo(nil, c.version)
	if err == nil {
		_, err = nc.Write(buf)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("mqttas: send CONNECT to %s: %w", srv, c.ctxErr(ctx, err))
	}
	h, body, err := cn.rd.Next()
	for err == nil && h.Type == packet.AUTH && cfg.Auth != nil {
		// An enhanced authentication step before the CONNACK.
		if err = c.authStep(ctx, h, body, nc.Write); err == nil {
			h, body, err = cn.rd.Next()
		}
	}
	if err != nil {
		nc.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
			err = fmt.Errorf("%w: no CONNACK within %v", ErrTimeout, cfg.ResponseTime)
		}
		return nil, fmt.Errorf("mqttas: waiting for CONNACK from %s: %w", srv, c.ctxErr(ctx, err))
	}
	var ack packet.Connack
	if h.Type != packet.CONNACK {
		err = fmt.Errorf("expected CONNACK, got %v", h.Type)
	} else {
		err = ack.Decode(h.Flags, body, c.version)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("mqttas: bad CONNACK from %s: %w", srv, err)
	}
	code := ack.ReasonCode
	if c.version != packet.V5 {
		code = ack.ReturnCode().Reason()
	}
	if code != packet.Success {
		nc.Close()
		return nil, &ConnectError{Server: srv.addr, Code: code,
			Reason: ack.Properties.ReasonString, ServerReference: ack.Properties.ServerReference}
	}
	if !stop() {
		nc.Close() // ctx ended as we finished: the deadline is already poisoned
		return nil, fmt.Errorf("mqttas: connect to %s: %w", srv, ctx.Err())
	}
	if data := ack.Properties.AuthData; cfg.Auth != nil && len(data) > 0 {
		// The broker's final word: let the client verify it.
		if _, err := cfg.Auth(ctx, cfg.AuthMethod, bytes.Clone(data)); err != nil {
			nc.Close()
			return nil, fmt.Errorf("mqttas: authentication (%s): the client does not accept %s's final data: %w", cfg.AuthMethod, srv, err)
		}
	}
	nc.SetDeadline(time.Time{})
	cn.sessionPresent = ack.SessionPresent
	if clean && ack.SessionPresent {
		// The specification has the broker answer a clean start with no
		// session, and the client hang up if it does not. Hanging up on a
		// broker that always does it would loop forever; believing it would
		// skip restoring the subscriptions. The client asked for nothing to
		// be kept, so it proceeds as if nothing was.
		c.log.Warn("mqttas: broker claims a session after a clean start; restoring subscriptions anyway", "server", srv)
		cn.sessionPresent = false
		ack.SessionPresent = false
	}
	c.mu.Lock()
	id := c.clientID
	c.mu.Unlock()
	cn.link = newLink(c.version, &ack, id, cfg.KeepAlive, cfg.sessionExpiry)
	cn.pingInterval = cfg.PingInterval
	if ka := cn.link.KeepAlive; ka > 0 && ka/4 < cn.pingInterval {
		cn.pingInterval = ka / 4 // the broker's Server Keep Alive rules
	}
	cn.maxOut = int(cn.link.MaximumPacketSize)
	if c.version == packet.V5 {
		cn.quota = int(cn.link.ReceiveMaximum)
	}
	return cn, nil
}

// ctxErr prefers the context's error when ctx caused a failure.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (c *Client) connectPacket(clean bool) *packet.Connect {
	cfg := c.cfg
	c.mu.Lock()
	id := c.clientID
	c.mu.Unlock()
	p := &packet.Connect{
		CleanStart: clean,
		KeepAlive:  cfg.keepAlive,
		ClientID:   id,
		Username:   cfg.User,
		Password:   []byte(cfg.Password),
	}
	if c.version == packet.V5 {
		if cfg.ConnectProperties != nil {
			p.Properties = *cfg.ConnectProperties
		}
		// In 5.0 the session outlives the connection only by its expiry:
		// the clean connect of clean_init sends none, so nothing is kept.
		p.Properties.SessionExpiry = 0
		p.Properties.Clear(packet.PropSessionExpiry)
		if !clean {
			p.Properties.SessionExpiry = cfg.sessionExpiry
		}
		p.Properties.MaximumPacketSize = uint32(min(cfg.MaxPacketSize, 268435460))
	}
	if w := cfg.Will; w != nil {
		p.Will = &packet.Will{QoS: w.QoS, Retain: w.Retain, Topic: w.Topic, Payload: w.Payload}
		if w.Properties != nil && c.version == packet.V5 {
			p.Will.Properties = *w.Properties
		}
	}
	return p
}

// start launches the reader and the pinger.
func (cn *conn) start() {
	cn.wg.Add(2)
	go func() {
		defer cn.wg.Done()
		cn.fail(cn.readLoop())
	}()
	go func() {
		defer cn.wg.Done()
		if err := cn.pingLoop(); err != nil {
			cn.fail(err)
		}
	}()
}

// stop kills the connection and waits for its goroutines.
func (cn *conn) stop(cause error) {
	cn.fail(cause)
	cn.wg.Wait()
}

// readLoop is the only reader of the socket. It returns why the
// connection ended; every failure, a malformed or oversized packet
// included, ends the connection and the supervisor reconnects.
func (cn *conn) readLoop() error {
	for {
		h, body, err := cn.rd.Next()
		if err != nil {
			if cn.dead() {
				return cn.cause
			}
			if err == io.EOF {
				return errors.New("broker closed the connection")
			}
			return fmt.Errorf("read: %w", err)
		}
		cn.wakeRx()
		if cn.pinging.Load() {
			select {
			case cn.pong <- struct{}{}:
			default:
			}
		}
		if err := cn.c.handle(cn, h, body); err != nil {
			return err
		}
	}
}

func (cn *conn) wakeRx() {
	cn.rxMu.Lock()
	if cn.rxWake != nil {
		close(cn.rxWake)
		cn.rxWake = nil
	}
	cn.rxMu.Unlock()
}

// rxSignal returns a channel closed when the next packet arrives.
func (cn *conn) rxSignal() <-chan struct{} {
	cn.rxMu.Lock()
	defer cn.rxMu.Unlock()
	if cn.rxWake == nil {
		cn.rxWake = make(chan struct{})
	}
	return cn.rxWake
}

// pingLoop sends PINGREQ whenever nothing has been received, or nothing
// sent, for PingInterval, and declares the link dead when a PINGREQ has had
// no answer, nor any other byte, for ResponseTime. It only decides: the
// PINGREQ goes through the same serialised writer as everything else.
func (cn *conn) pingLoop() error {
	interval := int64(cn.pingInterval)
	response := int64(cn.c.cfg.ResponseTime)
	pingAt := int64(-1) // when the unanswered PINGREQ went out
	t := time.NewTimer(cn.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-cn.done:
			return nil
		case <-t.C:
		case <-cn.pong:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		now := cn.c.now()
		rx, tx := cn.lastRx.Load(), cn.lastTx.Load()
		if pingAt >= 0 && rx >= pingAt {
			pingAt = -1 // something arrived since the ping
			cn.pinging.Store(false)
		}
		if pingAt >= 0 && now-pingAt >= response {
			return fmt.Errorf("%w: no PINGRESP or other packet within %v of PINGREQ (last byte received %v ago)",
				ErrTimeout, cn.c.cfg.ResponseTime, time.Duration(now-rx).Round(time.Millisecond))
		}
		if pingAt < 0 && (now-rx >= interval || now-tx >= interval) {
			cn.pinging.Store(true)
			if err := cn.write(&packet.Pingreq{}); err != nil {
				return nil // the write has already failed the connection
			}
			pingAt = now
		}
		next := min(rx, cn.lastTx.Load()) + interval
		if pingAt >= 0 {
			next = pingAt + response
		}
		t.Reset(time.Duration(max(next-cn.c.now(), int64(time.Millisecond))))
	}
}
