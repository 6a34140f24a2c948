package mosquitto_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttas/mqttas/internal/mosquitto"
)

// The harness starts processes and a reader goroutine per subscriber: all
// of them must be gone when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func next(t *testing.T, ctx context.Context, s *mosquitto.Sub) string {
	t.Helper()
	l, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	return l
}

// TestPubSubRoundTrip: the broker starts, mosquitto_sub is subscribed when
// Sub returns, and a message from mosquitto_pub reaches it.
func TestPubSubRoundTrip(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := ctxFor(t, 10*time.Second)
	s, err := b.Sub(ctx, "-q", "2", "-t", "h/#", "-F", "%q %r %t %p")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"0", "1", "2"} {
		if err := b.Pub(ctx, "-q", q, "-t", "h/"+q, "-m", "hello "+q); err != nil {
			t.Fatal(err)
		}
		if got, want := next(t, ctx, s), q+" 0 h/"+q+" hello "+q; got != want {
			t.Errorf("mosquitto_sub printed %q, want %q", got, want)
		}
	}
	s.Close()
	if _, ok := <-s.Lines(); ok {
		t.Error("Lines still open after Close")
	}
}

// TestSubExitsByItself: with -C the subscriber exits after its messages,
// and Wait reports a clean exit.
func TestSubExitsByItself(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := ctxFor(t, 10*time.Second)
	s, err := b.Sub(ctx, "-i", "counted", "-q", "1", "-t", "c", "-C", "2")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != "counted" {
		t.Errorf("ID %q, want the one given", s.ID())
	}
	for _, m := range []string{"one", "two"} {
		if err := b.Pub(ctx, "-q", "1", "-t", "c", "-m", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for l := range s.Lines() {
		got = append(got, l)
	}
	if strings.Join(got, ",") != "one,two" {
		t.Errorf("got %q", got)
	}
}

// TestStopStartSamePort: after Stop the port refuses connections; Start
// listens on the same port again.
func TestStopStartSamePort(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	addr := b.Addr()
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if b.Running() {
		t.Fatal("Running after Stop")
	}
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Fatalf("%s accepts connections after Stop", addr)
	}
	if err := b.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if b.Addr() != addr {
		t.Fatalf("address moved from %s to %s", addr, b.Addr())
	}
	if err := b.Start(); err == nil {
		t.Error("Start of a running broker succeeded")
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := b.Pub(ctxFor(t, 10*time.Second), "-t", "x", "-m", "y"); err != nil {
		t.Fatal(err)
	}
}

// TestPersistence: with persistence a retained message and a QoS 1
// message queued for an offline persistent session survive both a clean
// Stop and, after Sync, a Kill.
func TestPersistence(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "Stop"
		if kill {
			name = "Kill"
		}
		t.Run(name, func(t *testing.T) {
			b := mosquitto.Start(t, mosquitto.Options{Persistence: true})
			ctx := ctxFor(t, 20*time.Second)
			// Register the persistent session, then leave (-E).
			s, err := b.Sub(ctx, "-c", "-i", "keeper", "-q", "1", "-t", "p/queue", "-E")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Pub(ctx, "-r", "-q", "1", "-t", "p/retained", "-m", "kept"); err != nil {
				t.Fatal(err)
			}
			if err := b.Pub(ctx, "-q", "1", "-t", "p/queue", "-m", "queued"); err != nil {
				t.Fatal(err)
			}
			if kill {
				// Without Sync a kill right after the PUBACK can beat the
				// save (Options.Persistence).
				if err := b.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if err := b.Kill(); err != nil {
					t.Fatal(err)
				}
			} else if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			r, err := b.Sub(ctx, "-t", "p/retained", "-C", "1", "-F", "%r %p")
			if err != nil {
				t.Fatal(err)
			}
			if got := next(t, ctx, r); got != "1 kept" {
				t.Errorf("retained message after restart: %q, want %q", got, "1 kept")
			}
			q, err := b.Sub(ctx, "-c", "-i", "keeper", "-q", "1", "-t", "p/queue", "-C", "1")
			if err != nil {
				t.Fatal(err)
			}
			if got := next(t, ctx, q); got != "queued" {
				t.Errorf("queued message after restart: %q", got)
			}
		})
	}
}

// TestWithoutPersistence: Restart forgets retained messages.
func TestWithoutPersistence(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := ctxFor(t, 10*time.Second)
	if err := b.Pub(ctx, "-r", "-t", "np", "-m", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	// Nothing retained: the first message is the one published now.
	s, err := b.Sub(ctx, "-t", "np", "-C", "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Pub(ctx, "-t", "np", "-m", "fresh"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, ctx, s); got != "fresh" {
		t.Errorf("retained message survived a restart without persistence: got %q first", got)
	}
}

// TestLog: the log records every run and the packets of log_type all.
func TestLog(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	if v := b.Version(); !strings.HasPrefix(v, "mosquitto version ") {
		t.Errorf("Version() = %q", v)
	}
	ctx := ctxFor(t, 10*time.Second)
	if err := b.Pub(ctx, "-i", "logged", "-q", "1", "-t", "l", "-m", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitLog(ctx, "Received PUBLISH from logged (d0, q1, r0, m1, 'l'", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.Log(), " running"); n != 2 {
		t.Errorf("log shows %d runs, want 2:\n%s", n, b.Log())
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), "mosquitto.conf")); err != nil {
		t.Error(err)
	}
}

// TestPasswords: only the configured users get in.
func TestPasswords(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{Users: map[string]string{"alice": "secret", "bob": "hunter2"}})
	ctx := ctxFor(t, 10*time.Second)
	for _, args := range [][]string{{"-u", "alice", "-P", "secret"}, {"-u", "bob", "-P", "hunter2"}} {
		if err := b.Pub(ctx, append(args, "-t", "a", "-m", "x")...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	for _, args := range [][]string{{"-u", "alice", "-P", "wrong"}, {"-u", "mallory", "-P", "secret"}, {}} {
		if err := b.Pub(ctx, append(args, "-t", "a", "-m", "x")...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	// Sync works without credentials: a refusal is an answer too.
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTLS: the TLS listener presents the configured certificate, and with
// RequireCertificate refuses a client without one.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	serverCert, serverKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", ca.cert.Raw)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	t.Run("server", func(t *testing.T) {
		b := mosquitto.Start(t, mosquitto.Options{TLS: &mosquitto.TLS{CertFile: serverCert, KeyFile: serverKey}})
		if b.TLSAddr() == "" || b.TLSAddr() == b.Addr() {
			t.Fatalf("TLSAddr %q, Addr %q", b.TLSAddr(), b.Addr())
		}
		if err := handshake(b.TLSAddr(), &tls.Config{RootCAs: roots}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mutual", func(t *testing.T) {
		b := mosquitto.Start(t, mosquitto.Options{TLS: &mosquitto.TLS{
			CertFile: serverCert, KeyFile: serverKey, CAFile: caFile, RequireCertificate: true}})
		pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := handshake(b.TLSAddr(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}); err != nil {
			t.Fatalf("with a client certificate: %v", err)
		}
		if err := handshake(b.TLSAddr(), &tls.Config{RootCAs: roots}); err == nil {
			t.Fatal("without a client certificate: accepted")
		}
	})
}

// handshake completes a TLS handshake and one CONNECT/CONNACK exchange
// (TLS 1.3 reports a refused client certificate only on the first read).
func handshake(addr string, cfg *tls.Config) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	connect := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 'x'}
	if _, err := nc.Write(connect); err != nil {
		return err
	}
	var connack [4]byte
	_, err = nc.Read(connack[:])
	return err
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqttas test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue writes a certificate for 127.0.0.1 and its key as PEM files.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
