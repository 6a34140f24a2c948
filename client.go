package mqttas

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// Client is one resilient connection to a broker. Create it with New, start
// it with Connect; from then on it keeps itself connected until Disconnect
// or Close. All methods are safe for concurrent use.
type Client struct {
	cfg     *settings
	log     *slog.Logger
	version packet.Version
	epoch   time.Time // origin of the monotonic timestamps in conn

	ev     events
	msgs   *queue
	noMsgs chan Message // Messages() when OnMessage is set: closed by Close
	sess   *session
	slots  chan struct{} // one token per QoS 1 or 2 publish in flight
	stats  counters
	req    requests
	reauth reauth

	closing  chan struct{}        // closed by Close
	stopping atomic.Bool          // set before closing: no more reconnects
	fast     atomic.Pointer[conn] // cur, for waitLink to read without mu
	// life ends at Close, with closing: the supervisor's waits take it
	// without a goroutine of their own to turn closing into a context.
	life    context.Context
	endLife context.CancelFunc

	mu        sync.Mutex // guards the fields below
	started   bool       // Connect succeeded or is in progress
	cur       *conn      // the live connection, nil during an outage
	upCh      chan struct{}
	subs      []subscription // to restore after a reconnect, in order
	link      Link           // of the current or last connection
	clientID  string         // as configured, or as an MQTT 5.0 broker assigned it
	lastErr   error          // why the last connection or attempt ended
	redirect  *server        // a Server Reference to try next, once
	supDone   chan struct{}  // closed when the supervisor exits; nil until Connect succeeds
	closeOnce sync.Once
}

// New validates cfg and returns a Client that is not yet connected.
func New(cfg Config) (*Client, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      s,
		log:      s.Logger,
		version:  packet.V311,
		clientID: s.ClientID,
		epoch:    time.Now(),
		ev:       newEvents(),
		msgs:     newQueue(s.QueueLen),
		noMsgs:   make(chan Message),
		sess:     nil, // below: it counts into stats
		slots:    make(chan struct{}, s.MaxInflight),
		closing:  make(chan struct{}),
		upCh:     make(chan struct{}),
	}
	c.sess = newSession(&c.stats.repubs, s.MaxInflight)
	c.life, c.endLife = context.WithCancel(context.Background())
	if s.MQTTv5 {
		c.version = packet.V5
	}
	return c, nil
}

// now is a monotonic timestamp in nanoseconds.
func (c *Client) now() int64 { return int64(time.Since(c.epoch)) }

// Connect makes the first connection and hands the link to the supervisor,
// which from then on reconnects by itself after every outage. It returns
// the reason the first connection failed (a *ConnectError for a refusal,
// ErrTimeout, a dial or TLS error) unless Config.ConnectRetry is set, in
// which case it keeps trying, with backoff and failover, until ctx ends.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.stopping.Load():
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return ErrAlreadyConnected
	}
	c.started = true
	c.mu.Unlock()

	// Close must be able to interrupt a Connect in progress.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	cn, srvIdx, err := c.firstConnect(ctx)
	if err != nil {
		c.mu.Lock()
		c.started = false
		c.mu.Unlock()
		if c.stopping.Load() {
			return ErrClosed
		}
		return err
	}
	c.mu.Lock()
	if c.stopping.Load() {
		c.mu.Unlock()
		cn.nc.Close()
		return ErrClosed
	}
	c.supDone = make(chan struct{})
	c.mu.Unlock()
	if c.cfg.OnMessage != nil {
		go c.dispatch()
	}
	// Bring the link up before returning, so a caller sees IsConnected and
	// Up at once. If it dies on the way, Connect still succeeds: the link
	// never went live, so there is no Down and no outage counted, and the
	// supervisor reconnects as after any failure; Up comes then.
	if err := c.goLive(cn, false); err != nil {
		cn.fail(err)
	}
	go c.supervise(cn, srvIdx)
	return nil
}

// IsConnected reports whether the client has a live connection now.
func (c *Client) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && !c.cur.dead()
}

// waitLink returns the live connection, waiting through an outage for the
// next one.
func (c *Client) waitLink(ctx context.Context) (*conn, error) {
	if cn := c.fast.Load(); cn != nil && !cn.dead() && !c.stopping.Load() {
		return cn, nil // the common case, without the client's lock
	}
	for {
		c.mu.Lock()
		cn, ch, started := c.cur, c.upCh, c.supDone != nil
		c.mu.Unlock()
		if c.stopping.Load() {
			return nil, ErrClosed
		}
		if !started {
			return nil, ErrNotConnected
		}
		if cn != nil && !cn.dead() {
			return cn, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closing:
			return nil, ErrClosed
		}
	}
}

// Messages returns the channel of incoming messages, of capacity
// Config.QueueLen. When it is full the oldest message is dropped to make
// room and counted in Stats.Discards: a consumer that falls behind loses old
// messages, never the connection, so QoS 1 delivery to the application is
// then not guaranteed (the broker's PUBACK has been sent). With
// Config.OnMessage set, nothing is ever sent on it. Close closes it.
func (c *Client) Messages() <-chan Message {
	if c.cfg.OnMessage != nil {
		return c.noMsgs
	}
	return c.msgs.ch
}

// Disconnect sends DISCONNECT, so the broker discards the will, and then
// closes the client as Close does. ctx bounds the wait for the write.
func (c *Client) Disconnect(ctx context.Context) error {
	if c.stopping.Swap(true) {
		return c.Close()
	}
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	var err error
	if cn != nil {
		done := make(chan error, 1)
		go func() { done <- cn.write(&packet.Disconnect{}) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	c.Close()
	if err != nil {
		return fmt.Errorf("mqttas: DISCONNECT not sent, the broker will publish the will: %w", err)
	}
	return nil
}

// Close stops the client without DISCONNECT, so the broker publishes the
// will if there is one. The supervisor and the connection's reader and
// pinger have exited when Close returns; the OnMessage dispatcher finishes
// the message it is running, if any, and exits soon after, as do helpers
// of calls in progress. Those calls return ErrClosed; Messages, Up and
// Down are closed. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.stopping.Store(true)
		close(c.closing)
		c.endLife()
		c.mu.Lock()
		supDone := c.supDone
		c.mu.Unlock()
		if supDone != nil {
			<-supDone
		}
		c.sess.closeAll(ErrClosed)
		close(c.msgs.ch)
		close(c.noMsgs)
		close(c.ev.up)
		close(c.ev.down)
	})
	return nil
}
