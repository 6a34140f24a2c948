package mqtttest

import (
	"log/slog"
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener is the broker's TCP listener, a mochi listeners.Listener that,
// unlike mochi's own, can close its connections abruptly and wait until the
// broker has finished with every one of them. One is made per Start.
type listener struct {
	ln      net.Listener
	serveWG sync.WaitGroup // the Serve loop; Add(1) by Broker.Start
	connWG  sync.WaitGroup // one per connection being served

	mu      sync.Mutex // guards conns and stopped
	conns   map[net.Conn]struct{}
	stopped bool
}

var _ listeners.Listener = (*listener)(nil)

func newListener(ln net.Listener) *listener {
	return &listener{ln: ln, conns: make(map[net.Conn]struct{})}
}

func (l *listener) ID() string                { return listenerID }
func (l *listener) Address() string           { return l.ln.Addr().String() }
func (l *listener) Protocol() string          { return "tcp" }
func (l *listener) Init(_ *slog.Logger) error { return nil }

// Serve accepts connections and hands each to establish, mochi's
// per-client loop, on a goroutine of its own.
func (l *listener) Serve(establish listeners.EstablishFn) {
	defer l.serveWG.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.stopped {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.conns[c] = struct{}{}
		l.connWG.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.connWG.Done()
			_ = establish(listenerID, c) // mochi logs the reason a client ended
			_ = c.Close()
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// Close implements listeners.Listener for mochi's own Close; the Broker
// stops listeners itself. The CloseFn, which would send each client a
// DISCONNECT, is not used.
func (l *listener) Close(listeners.CloseFn) {
	l.stopAccepting()
	l.closeConns()
}

// stopAccepting closes the listening socket and waits for Serve to return.
func (l *listener) stopAccepting() {
	_ = l.ln.Close()
	l.serveWG.Wait()
}

// closeConns closes every connection and waits until mochi has finished
// with each: its session is then detached and its will dealt with.
func (l *listener) closeConns() {
	l.mu.Lock()
	l.stopped = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	l.connWG.Wait()
}
