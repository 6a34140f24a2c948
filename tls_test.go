package mqttas_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// testPKI is a throwaway certificate authority with a server certificate
// valid only for the IP 127.0.0.1 and a client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqttas test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "leaf"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.client = leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

// tlsFront terminates TLS on a loopback port and pipes each connection to
// target in the clear: a TLS broker made of the plain embedded one.
func tlsFront(t *testing.T, target string, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(cs ...net.Conn) {
		mu.Lock()
		open = append(open, cs...)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			track(in, out)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func tlsClient(t *testing.T, server string, cfg *tls.Config) *mqttas.Client {
	t.Helper()
	c, err := mqttas.New(mqttas.Config{Server: server, TLS: cfg, ResponseTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTLSVerifiedRoundTrip(t *testing.T) {
	pki := newTestPKI(t)
	b := mqtttest.StartBroker(t)
	addr := tlsFront(t, b.Addr(), &tls.Config{Certificates: []tls.Certificate{pki.server}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The URL scheme asks for TLS; verification stays on, against our CA.
	c := tlsClient(t, "mqtts://"+addr, &tls.Config{RootCAs: pki.pool})
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect over TLS: %v", err)
	}
	if err := c.Subscribe(ctx, "tls/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "tls/x", []byte("secret"), 1, false); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c.Messages():
		if m.Topic != "tls/x" || string(m.Payload) != "secret" {
			t.Fatalf("got %q %q", m.Topic, m.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no message over TLS")
	}
}

func TestTLSUnknownAuthorityRefused(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	b := mqtttest.StartBroker(t)
	addr := tlsFront(t, b.Addr(), &tls.Config{Certificates: []tls.Certificate{pki.server}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := tlsClient(t, "tls://"+addr, &tls.Config{RootCAs: other.pool})
	err := c.Connect(ctx)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("Connect with the wrong CA: got %v, want a TLS handshake error wrapping x509.UnknownAuthorityError", err)
	}
}

// The server name is taken from the host in Server: "localhost" is not in
// a certificate issued for the IP 127.0.0.1, so verification must fail
// even though both reach the same socket.
func TestTLSHostnameVerified(t *testing.T) {
	pki := newTestPKI(t)
	b := mqtttest.StartBroker(t)
	addr := tlsFront(t, b.Addr(), &tls.Config{Certificates: []tls.Certificate{pki.server}})
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := tlsClient(t, "ssl://localhost:"+port, &tls.Config{RootCAs: pki.pool})
	err := c.Connect(ctx)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("Connect to a name the certificate does not cover: got %v, want x509.HostnameError", err)
	}
}

func TestTLSMutual(t *testing.T) {
	pki := newTestPKI(t)
	b := mqtttest.StartBroker(t)
	addr := tlsFront(t, b.Addr(), &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	without := tlsClient(t, "mqtts://"+addr, &tls.Config{RootCAs: pki.pool})
	if err := without.Connect(ctx); err == nil {
		t.Fatal("Connect without a client certificate succeeded against a broker that requires one")
	}
	with := tlsClient(t, "mqtts://"+addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
	if err := with.Connect(ctx); err != nil {
		t.Fatalf("Connect with a client certificate: %v", err)
	}
	if err := with.Publish(ctx, "mtls", []byte("ok"), 1, false); err != nil {
		t.Fatal(err)
	}
}

// New clones the caller's tls.Config: changing it afterwards must not
// reach the client.
func TestTLSConfigCloned(t *testing.T) {
	pki := newTestPKI(t)
	b := mqtttest.StartBroker(t)
	addr := tlsFront(t, b.Addr(), &tls.Config{Certificates: []tls.Certificate{pki.server}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg := &tls.Config{RootCAs: pki.pool}
	c := tlsClient(t, "mqtts://"+addr, cfg)
	cfg.RootCAs = x509.NewCertPool() // would fail verification if shared
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect after the caller changed its tls.Config: %v", err)
	}
}
