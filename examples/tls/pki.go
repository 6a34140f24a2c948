package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// pki is a throwaway certificate authority and the two certificates it
// issued: one for the broker at 127.0.0.1 and one for the client. In real
// life these come from files (see loadTLS), made with openssl, step or
// your organisation's CA.
type pki struct {
	ca     *x509.Certificate
	pool   *x509.CertPool // trusts ca
	server tls.Certificate
	client tls.Certificate
}

// newPKI makes a CA valid for an hour and issues the two certificates.
func newPKI() (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqttas example CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	// issue signs a leaf certificate for a server or a client.
	issue := func(serial int64, name string, usage x509.ExtKeyUsage, ips []net.IP) (tls.Certificate, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Minute),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips, // what the client checks the server's address against
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, err
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
	}

	p := &pki{ca: ca, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	if p.server, err = issue(2, "broker", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}); err != nil {
		return nil, err
	}
	if p.client, err = issue(3, "mqttas-example-client", x509.ExtKeyUsageClientAuth, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// startTLSBroker starts a mochi-mqtt broker with one TLS listener on a free
// loopback port that requires a client certificate issued by p's CA. It
// returns the broker's host:port and a function that stops it and waits
// for its connections to end.
func startTLSBroker(p *pki) (addr string, stop func(), err error) {
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	// The certificate is the client's credential: anyone the TLS listener
	// lets in may connect.
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return "", nil, err
	}
	l := listeners.NewTCP(listeners.Config{
		ID:      "tls",
		Address: "127.0.0.1:0",
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{p.server},
			ClientAuth:   tls.RequireAndVerifyClientCert, // mutual TLS
			ClientCAs:    p.pool,
			MinVersion:   tls.VersionTLS12,
		},
	})
	if err := srv.AddListener(l); err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return "", nil, err
	}
	return l.Address(), func() { _ = srv.Close() }, nil
}
