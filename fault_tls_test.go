package mqttas_test

// Fault tests of TLS: a stalled handshake and certificate failures,
// against the fake broker behind a TLS listener.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// fxTLS makes a CA and a server certificate for 127.0.0.1 and broker.test,
// and returns the server's configuration and a pool trusting the CA.
func fxTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqttas test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker.test"},
		DNSNames: []string{"broker.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestTLSFaults: a TLS handshake that stalls fails after ResponseTime, and
// a TLS link reset again and again under concurrent publishers and a busy
// pinger never carries a corrupted record (one writer owns the tls.Conn:
// paho.golang #81). Certificate verification is tls_test.go's.
func TestTLSFaults(t *testing.T) {
	serverTLS, pool := fxTLS(t)
	start := func(t *testing.T) (*fxFakeBroker, *mqtttest.Proxy) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fb := fxServeFakeBroker(t, tls.NewListener(ln, serverTLS), func(int, string) []byte { return nil })
		return fb, mqtttest.StartProxy(t, ln.Addr().String())
	}
	config := func(t *testing.T, addr string, tc *tls.Config) mqttas.Config {
		return mqttas.Config{
			Server: "mqtts://" + addr, TLS: tc, KeepAlive: fxKeepAlive, PingInterval: fxPingInterval,
			ResponseTime: fxResponseTime, ReconnectMin: fxReconnectMin, ReconnectMax: fxReconnectMax,
			Logger: fxNewLogSink(t).logger(),
		}
	}

	t.Run("handshake stall", func(t *testing.T) {
		_, proxy := start(t)
		proxy.Blackhole(mqtttest.ToClient) // the ClientHello arrives, nothing comes back
		c := fxNewClient(t, config(t, proxy.Addr(), &tls.Config{RootCAs: pool}))
		begin := time.Now()
		err := c.Connect(fxCtx(t, 5*time.Second))
		el := time.Since(begin)
		t.Logf("Connect: %v after %v", err, el.Round(time.Millisecond))
		if err == nil {
			t.Fatal("Connect succeeded through a stalled handshake")
		}
		if el < fxResponseTime-20*time.Millisecond || el > fxResponseTime+fxTolerance {
			t.Errorf("gave up after %v, want about ResponseTime %v", el, fxResponseTime)
		}
		// The caller's ctx did not expire: the error must not say it did.
		if !errors.Is(err, mqttas.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a TLS handshake stall returned %v: want ErrTimeout (no answer within ResponseTime), not context.DeadlineExceeded while the caller's ctx is live", err)
		}
	})

	t.Run("resets under concurrent writers", func(t *testing.T) {
		fb, proxy := start(t)
		cfg := config(t, proxy.Addr(), &tls.Config{RootCAs: pool})
		cfg.PingInterval = 20 * time.Millisecond // the pinger writes often too
		c := fxNewClient(t, cfg)
		if err := c.Connect(fxCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		const publishers, each, resets = 8, 100, 5
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, publishers)
		for p := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					payload := fmt.Sprintf("%d-%d", p, i)
					if err := c.Publish(ctx, "tls/t", []byte(payload), 1, false); err != nil {
						errs <- fmt.Errorf("%s: %w", payload, err)
						return
					}
					_ = c.Publish(ctx, "tls/q0", make([]byte, 2048), 0, false)
				}
			}()
		}
		for range resets {
			fxWaitUp(t, c, 5*time.Second)
			timer := time.NewTimer(50 * time.Millisecond) // the fault's timing
			<-timer.C
			proxy.Reset()
			fxWaitDown(t, c, 5*time.Second)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		fb.mu.Lock()
		defer fb.mu.Unlock()
		for p := range publishers {
			for i := range each {
				if fb.pubs[fmt.Sprintf("%d-%d", p, i)] == 0 {
					t.Errorf("message %d-%d never reached the broker", p, i)
				}
			}
		}
		for _, err := range fb.errs {
			t.Errorf("the broker read a damaged stream: %v", err)
		}
		t.Logf("stats %+v, broker connections %d", c.Stats(), fb.n.Load())
		if st := c.Stats(); st.Outages < resets {
			t.Errorf("Outages = %d, want >= %d", st.Outages, resets)
		}
	})
}
