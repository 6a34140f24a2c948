package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if the program leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEmbedded runs the program against its embedded mutual-TLS broker:
// the message comes back, and the client without a certificate is refused.
func TestEmbedded(t *testing.T) {
	var out bytes.Buffer
	err := run(testCtx(t), options{topic: "tls/demo"}, &out)
	got := out.String()
	t.Logf("output:\n%s", got)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{
		"Connected over TLS with a client certificate.",
		`Received "hello over mutual TLS" on tls/demo.`,
		"Without a client certificate the broker refused us",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestServerWithFiles runs the -server mode against a mutual-TLS broker,
// with the CA, certificate and key read from PEM files.
func TestServerWithFiles(t *testing.T) {
	p, err := newPKI()
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := startTLSBroker(p)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, err := x509.MarshalPKCS8PrivateKey(p.client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	o := options{
		server: addr,
		ca:     write("ca.pem", "CERTIFICATE", p.ca.Raw),
		cert:   write("client.pem", "CERTIFICATE", p.client.Certificate[0]),
		key:    write("client-key.pem", "PRIVATE KEY", key),
		topic:  "tls/files",
	}
	var out bytes.Buffer
	if err := run(testCtx(t), o, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "the broker refused us") {
		t.Errorf("output:\n%s\nwant the client without a certificate refused", &out)
	}

	// A CA that did not sign the broker's certificate: the handshake fails
	// and the error says so.
	other, err := newPKI()
	if err != nil {
		t.Fatal(err)
	}
	o.ca = write("other-ca.pem", "CERTIFICATE", other.ca.Raw)
	err = run(testCtx(t), o, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("run with the wrong CA: got %v, want a certificate verification error", err)
	}
	t.Log(err)
}

// TestBadFlags: flag mistakes are reported before anything is dialled.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    options
		want string
	}{
		{options{cert: "c.pem", key: "k.pem"}, "need -server"},
		{options{server: "127.0.0.1:1", cert: "c.pem"}, "-cert and -key go together"},
		{options{server: "127.0.0.1:1", ca: filepath.Join(dir, "missing.pem")}, "no such file"},
		{options{server: "127.0.0.1:1", ca: notPEM}, "no PEM certificate"},
	} {
		err := run(t.Context(), tc.o, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%+v): got %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
}
