// Package mosquitto runs a real mosquitto broker as a subprocess for tests:
// on a free loopback port, with a generated configuration in the test's
// temporary directory, optional persistence, password authentication and
// TLS, and the mosquitto_pub and mosquitto_sub clients at hand to check a
// client against an independent implementation.
//
// Start skips the test when mosquitto is not installed (Debian packages
// mosquitto and mosquitto-clients), unless the environment variable
// MQTTAS_REQUIRE_MOSQUITTO is set, as CI does, in which case it fails it.
//
// Every process the package starts is reaped before the test ends; the
// broker is stopped by the test's cleanup if the test has not stopped it.
// A program that is not a test (the benchmark harness) uses New and Close
// instead of Start, and stops the broker itself.
//
// Nothing here sleeps to synchronise: readiness is a bounded poll of the
// port, or of the broker's log.
package mosquitto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns "mosquitto is not
// installed" from a skip into a failure. CI sets it.
const RequireEnv = "MQTTAS_REQUIRE_MOSQUITTO"

// Bounds on the broker's life cycle.
const (
	readyTimeout = 10 * time.Second // from exec to a port that accepts
	stopTimeout  = 10 * time.Second // from SIGTERM to exit, before SIGKILL
)

// Broker is a mosquitto process bound to fixed loopback ports, which stay
// the same across Stop and Start. Its methods are safe for concurrent use;
// Stop, Kill, Start and Restart report failures as errors, so they may run
// on any goroutine.
type Broker struct {
	tb      testing.TB // nil for a Broker from New
	bins    binaries
	dir     string // the test's temporary directory, or New's: config, log, data
	ownDir  bool   // dir was made by New, and Close removes it
	conf    string // path of mosquitto.conf
	logPath string
	port    int
	tlsPort int // 0 without Options.TLS

	mu   sync.Mutex // guards proc and serialises Start, Stop and Kill
	proc *proc      // nil while stopped

	subN int // numbers Sub's generated client ids; guarded by mu
}

// proc is one run of the broker.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	err  error         // cmd.Wait's result, set before done is closed
}

// binaries are the mosquitto programs the harness runs.
type binaries struct {
	broker, pub, sub, passwd string
}

// lookBinaries finds the broker and its tools. Debian installs the broker
// in /usr/sbin, which is not on every user's PATH.
func lookBinaries() (binaries, error) {
	var b binaries
	var missing []string
	for _, x := range []struct {
		dst  *string
		name string
	}{{&b.broker, "mosquitto"}, {&b.pub, "mosquitto_pub"}, {&b.sub, "mosquitto_sub"}, {&b.passwd, "mosquitto_passwd"}} {
		p, err := exec.LookPath(x.name)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
				if fi, err := os.Stat(filepath.Join(dir, x.name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
					p = filepath.Join(dir, x.name)
					break
				}
			}
		}
		if p == "" {
			missing = append(missing, x.name)
		}
		*x.dst = p
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%s not found (install the Debian packages mosquitto and mosquitto-clients)", strings.Join(missing, ", "))
	}
	return b, nil
}

// Installed reports whether mosquitto, mosquitto_pub, mosquitto_sub and
// mosquitto_passwd can be found, in PATH or where Debian puts them, so
// that a caller of New can skip what needs them, as Start does for tests.
func Installed() error {
	_, err := lookBinaries()
	return err
}

// Start runs mosquitto with a configuration built from opts on a free
// loopback port, waits until it accepts connections and stops it when the
// test ends. Without mosquitto, mosquitto_pub, mosquitto_sub and
// mosquitto_passwd it skips the test, or fails it when MQTTAS_REQUIRE_MOSQUITTO
// is set. Start must be called from the test's goroutine.
func Start(tb testing.TB, opts Options) *Broker {
	tb.Helper()
	bins, err := lookBinaries()
	if err != nil {
		if v := os.Getenv(RequireEnv); v != "" && v != "0" {
			tb.Fatalf("mosquitto: %v, and %s is set", err, RequireEnv)
		}
		tb.Skipf("mosquitto: %v; skipping (set %s=1 to fail instead)", err, RequireEnv)
	}
	b := &Broker{tb: tb, bins: bins, dir: tb.TempDir()}
	tb.Cleanup(func() {
		if err := b.Stop(); err != nil {
			tb.Errorf("mosquitto: stopping at the end of the test: %v", err)
		}
		if tb.Failed() {
			tb.Logf("mosquitto log (%s), last lines:\n%s", b.logPath, tail(b.Log(), 80))
		}
	})
	if err := b.launch(opts); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("mosquitto: %s listening on %s", b.Version(), b.Addr())
	return b
}

// New runs mosquitto as Start does, for a program rather than a test (the
// benchmark harness in bench/cmd/mqttbench): it returns an error where
// Start would skip or fail the test, keeps its files in a temporary
// directory of its own, and leaves stopping the broker to the caller, who
// must call Close. A Sub started on such a Broker must be closed by the
// caller too, since there is no test cleanup to do it.
func New(opts Options) (*Broker, error) {
	bins, err := lookBinaries()
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	dir, err := os.MkdirTemp("", "mqttas-mosquitto-")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	b := &Broker{bins: bins, dir: dir, ownDir: true}
	if err := b.launch(opts); err != nil {
		_ = b.Stop()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

// Close stops the broker as Stop does and, for a Broker from New, removes
// its directory. A Broker from Start is closed by the test's cleanup.
func (b *Broker) Close() error {
	err := b.Stop()
	if b.ownDir {
		if rerr := os.RemoveAll(b.dir); err == nil {
			err = rerr
		}
	}
	return err
}

// launch writes the configuration for opts into b.dir and starts the
// broker on a free port, trying another port if that one is taken first.
func (b *Broker) launch(opts Options) error {
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	b.logPath = filepath.Join(b.dir, "mosquitto.log")
	if opts.Persistence {
		if err := os.Mkdir(filepath.Join(b.dir, "data"), 0o700); err != nil {
			return fmt.Errorf("mosquitto: %w", err)
		}
	}
	var passwd string
	if len(opts.Users) > 0 {
		var err error
		if passwd, err = writePasswd(b.bins.passwd, b.dir, opts.Users); err != nil {
			return fmt.Errorf("mosquitto: %w", err)
		}
	}
	// A free port can be taken between our probe and mosquitto's bind:
	// then mosquitto exits at once, and another port is tried.
	const attempts = 5
	for i := 1; ; i++ {
		var err error
		if b.port, err = freePort(); err != nil {
			return fmt.Errorf("mosquitto: %w", err)
		}
		if opts.TLS != nil {
			if b.tlsPort, err = freePort(); err != nil {
				return fmt.Errorf("mosquitto: %w", err)
			}
		}
		conf, err := opts.render(b.dir, b.port, b.tlsPort, passwd)
		if err != nil {
			return err
		}
		if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
			return fmt.Errorf("mosquitto: %w", err)
		}
		err = b.Start()
		if err == nil {
			return nil
		}
		if !errors.Is(err, errInUse) || i == attempts {
			return fmt.Errorf("mosquitto: %w", err)
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// errInUse: mosquitto could not bind its port.
var errInUse = errors.New("listen port already in use")

// Addr returns "127.0.0.1:port" of the plain MQTT listener.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// Port returns the plain listener's port.
func (b *Broker) Port() int { return b.port }

// TLSAddr returns "127.0.0.1:port" of the TLS listener, or "" without
// Options.TLS.
func (b *Broker) TLSAddr() string {
	if b.tlsPort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.tlsPort))
}

// Dir returns the broker's directory: mosquitto.conf, mosquitto.log, and
// data/ for persistence. Files a test puts there (a dynamic-security
// configuration, say) go when the test ends.
func (b *Broker) Dir() string { return b.dir }

// Running reports whether the broker process is alive.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc != nil && !b.proc.exited()
}

// Start runs the broker again on the same ports, after Stop or Kill, and
// waits until every listener accepts connections. With persistence it
// loads what the last run saved.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc != nil && !b.proc.exited() {
		return errors.New("mosquitto: Start: already running")
	}
	logf, err := os.OpenFile(b.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bins.broker, "-c", b.conf)
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = logf, logf // *os.File: no copying goroutines
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("mosquitto: %w", err)
	}
	logf.Close() // the child has its own copy
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.proc = p
	if err := b.waitReady(p); err != nil {
		p.kill()
		return err
	}
	return nil
}

// waitReady polls the listeners until each accepts a TCP connection, the
// process exits, or readyTimeout passes. The poll backs off from 2 ms to
// 50 ms.
func (b *Broker) waitReady(p *proc) error {
	deadline := time.Now().Add(readyTimeout)
	addrs := []string{b.Addr()}
	if t := b.TLSAddr(); t != "" {
		addrs = append(addrs, t)
	}
	wait := 2 * time.Millisecond
	for len(addrs) > 0 {
		select {
		case <-p.done:
			log := b.Log()
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("%w: mosquitto exited: %v", errInUse, p.err)
			}
			return fmt.Errorf("mosquitto exited while starting (%v); log:\n%s", p.err, tail(log, 30))
		default:
		}
		nc, err := net.DialTimeout("tcp", addrs[0], 200*time.Millisecond)
		if err == nil {
			nc.Close()
			addrs = addrs[1:]
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto did not accept connections on %s within %v: %v; log:\n%s",
				addrs[0], readyTimeout, err, tail(b.Log(), 30))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.done:
			t.Stop()
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	// A process that exited right after the dial had not bound the port:
	// someone else had it.
	select {
	case <-p.done:
		return fmt.Errorf("%w: mosquitto exited: %v", errInUse, p.err)
	default:
	}
	return nil
}

// Stop sends SIGTERM and waits for the broker to exit; with persistence it
// saves its database first. If it has not exited after 10s it is killed
// and Stop reports that. Stopping a stopped broker does nothing.
//
// mosquitto 2.0.11 opens its listeners before it installs its signal
// handlers, so a Stop right after Start can catch it in between. A
// SIGTERM before the handlers are in place ends it by the signal's
// default action, which is a clean stop too: its main loop has not yet
// run, so there is nothing unsaved. One that arrives after them but before
// the main loop starts is forgotten (about one Restart in 150 under load),
// so SIGTERM is repeated every second while waiting.
func (b *Broker) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.proc
	b.proc = nil
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	again := time.NewTicker(time.Second)
	defer again.Stop()
	for {
		select {
		case <-p.done:
			if p.err != nil && !killedBy(p.err, syscall.SIGTERM) {
				return fmt.Errorf("mosquitto exited badly after SIGTERM: %v", p.err)
			}
			return nil
		case <-again.C:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		case <-t.C:
			p.kill()
			return fmt.Errorf("mosquitto still running %v after SIGTERM; killed", stopTimeout)
		}
	}
}

// killedBy reports whether err, from exec.Cmd.Wait, says the process was
// ended by sig.
func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// Kill sends SIGKILL and waits for the broker to exit: nothing is saved,
// so with persistence only the last autosave survives (see
// Options.Persistence). Killing a stopped broker does nothing.
func (b *Broker) Kill() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.proc
	b.proc = nil
	if p != nil {
		p.kill()
	}
	return nil
}

// Restart is Stop then Start, on the same ports.
func (b *Broker) Restart() error {
	if err := b.Stop(); err != nil {
		return err
	}
	return b.Start()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be reaped, which the
// kernel makes prompt.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Log returns the broker's log so far, every run of it: mosquitto runs
// with log_type all, so it shows each packet with its DUP flag, QoS and
// packet identifier, such as
// "Received PUBLISH from id (d1, q1, r0, m5, 'topic', ... (3 bytes))".
func (b *Broker) Log() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(data)
}

// WaitLog waits until the log contains substr at least n times, polling
// it (backing off to 20 ms) until ctx ends. It returns the number of
// occurrences seen.
func (b *Broker) WaitLog(ctx context.Context, substr string, n int) (int, error) {
	wait := time.Millisecond
	for {
		got := strings.Count(b.Log(), substr)
		if got >= n {
			return got, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return got, fmt.Errorf("mosquitto log has %q %d times, want %d: %w", substr, got, n, ctx.Err())
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// Sync makes one MQTT 3.1.1 CONNECT/CONNACK round trip with the broker on
// a new connection (clean session, then DISCONNECT) and returns when it is
// done. mosquitto's main loop is single-threaded and accepts the new
// connection only in a later iteration than any packet it had already
// acknowledged, and, with persistence, an iteration that changed anything
// ends with its save: so once Sync returns, every change acknowledged
// before Sync was called is on disk, and Kill cannot lose it (see
// Options.Persistence). The
// CONNACK may be a refusal (without credentials on a broker that wants
// them): any answer will do.
func (b *Broker) Sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", b.Addr())
	if err != nil {
		return fmt.Errorf("mosquitto: Sync: %w", err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	id := "mqttas-sync-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 10, 0, byte(len(id))}
	body = append(body, id...)
	connect := append([]byte{0x10, byte(len(body))}, body...) // < 128 bytes
	if _, err := nc.Write(connect); err != nil {
		return fmt.Errorf("mosquitto: Sync: %w", err)
	}
	var connack [4]byte
	if _, err := io.ReadFull(nc, connack[:]); err != nil {
		return fmt.Errorf("mosquitto: Sync: no CONNACK: %w", err)
	}
	if connack[0] != 0x20 {
		return fmt.Errorf("mosquitto: Sync: got % x, want a CONNACK", connack)
	}
	if connack[3] == 0 {
		_, _ = nc.Write([]byte{0xe0, 0})
	}
	return nil
}

var versions sync.Map // binary path → version line

// Version returns the first line of "mosquitto -h", such as
// "mosquitto version 2.0.11".
func (b *Broker) Version() string {
	if v, ok := versions.Load(b.bins.broker); ok {
		return v.(string)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// mosquitto -h exits with status 3 on some versions: use the output.
	out, _ := exec.CommandContext(ctx, b.bins.broker, "-h").CombinedOutput()
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if v == "" {
		v = "mosquitto (unknown version)"
	}
	versions.Store(b.bins.broker, v)
	return v
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
