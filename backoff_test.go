package mqttas_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

// refusingDialer dials a port nothing listens on while down is set, so
// the kernel refuses the connection (ECONNREFUSED, as while a broker
// restarts), and the real address otherwise. It records when each refused
// attempt was made.
type refusingDialer struct {
	closed string
	mu     sync.Mutex
	down   bool
	tries  []time.Time
	tried  chan struct{}
}

func newRefusingDialer(t *testing.T) *refusingDialer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &refusingDialer{closed: addr, tried: make(chan struct{}, 64)}
}

func (d *refusingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if d.down {
		addr = d.closed
	}
	down := d.down
	d.mu.Unlock()
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if down {
		d.mu.Lock()
		d.tries = append(d.tries, time.Now())
		d.mu.Unlock()
		select {
		case d.tried <- struct{}{}:
		default:
		}
	}
	return nc, err
}

func (d *refusingDialer) setDown(on bool) {
	d.mu.Lock()
	d.down = on
	d.mu.Unlock()
}

// A broker that is restarting refuses connections; each refusal is retried
// within ReconnectMin however long the restart takes, so the client is
// back within ReconnectMin of the broker's return. Other failures still
// back off exponentially (TestBackoffResetsAndGrows,
// TestHostileGarbageConnectRetryBounded).
func TestRefusedDialsRetryWithinReconnectMin(t *testing.T) {
	r := fxNewRig(t)
	d := newRefusingDialer(t)
	cfg := r.config()
	cfg.Dial = d.dial
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = 10 * time.Second
	c := r.connect(cfg)

	// Refuse long enough for a doubling backoff to reach 50ms×2⁷ = 6.4s.
	d.setDown(true)
	r.proxy.CloseConns()
	fxWaitDown(t, c, 5*time.Second)
	const refusals = 9
	deadline := time.After(10 * time.Second)
	for range refusals {
		select {
		case <-d.tried:
		case <-deadline:
			d.mu.Lock()
			n := len(d.tries)
			d.mu.Unlock()
			t.Fatalf("%d refused attempts in 10s, want %d: the delay after a refusal grew", n, refusals)
		}
	}
	d.setDown(false)
	back := time.Now()
	fxWaitUp(t, c, 5*time.Second)
	t.Logf("up %v after the broker came back", time.Since(back).Round(time.Millisecond))

	d.mu.Lock()
	defer d.mu.Unlock()
	for i := 1; i < len(d.tries); i++ {
		// Timers fire late under load, never early: the bound is loose on
		// top and exact underneath (jitter only shortens the delay).
		gap := d.tries[i].Sub(d.tries[i-1])
		if gap < cfg.ReconnectMin*3/4 {
			t.Errorf("attempt %d came %v after the previous one, under 0.75×ReconnectMin", i, gap)
		}
		if gap > cfg.ReconnectMin+time.Second {
			t.Errorf("attempt %d came %v after the previous one: the backoff grew on refusals", i, gap)
		}
	}
}

// The dial error the test relies on is the kernel's refusal.
func TestRefusingDialerRefuses(t *testing.T) {
	d := newRefusingDialer(t)
	d.setDown(true)
	_, err := d.dial(context.Background(), "tcp", "127.0.0.1:1")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of a closed port: %v, want ECONNREFUSED", err)
	}
	var _ mqttas.DialFunc = d.dial
}
