// Command tls shows mqttas over TLS with client certificates (mutual TLS):
// the client checks the broker's certificate against a CA, and the broker
// checks the client's. It connects with a certificate, publishes a message
// and reads it back, then shows that a client without a certificate is
// refused.
//
// Run it with nothing installed but Go:
//
//	go run ./examples/tls
//
// It makes a throwaway CA and certificates in memory and starts an embedded
// broker (mochi-mqtt) that requires client certificates. To use a real
// broker instead, give its address and your PEM files:
//
//	go run ./examples/tls -server broker.local:8883 -ca ca.pem -cert client.pem -key client-key.pem
//
// Without -ca, the system's CAs are trusted. Without -cert and -key, no
// client certificate is sent (server-only TLS).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/mqttas/mqttas"
)

// options are the command-line flags.
type options struct {
	server    string // "": start an embedded TLS broker
	ca        string // PEM file of the CA that signed the broker's certificate
	cert, key string // PEM files of the client's certificate and key
	topic     string
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "", "the broker, `host:port` (port 8883 if left out; default: an embedded TLS broker)")
	flag.StringVar(&o.ca, "ca", "", "PEM `file` of the CA to trust for the broker's certificate (default: the system's CAs)")
	flag.StringVar(&o.cert, "cert", "", "PEM `file` of the client certificate")
	flag.StringVar(&o.key, "key", "", "PEM `file` of the client certificate's private key")
	flag.StringVar(&o.topic, "topic", "mqttas/examples/tls", "the `topic` to publish to and read back from")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tls: unexpected argument %q; the broker is given with -server host:port\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tls:", err)
		os.Exit(1)
	}
}

// run is the whole program.
func run(ctx context.Context, o options, out io.Writer) error {
	var tlsConfig *tls.Config
	embedded := o.server == ""
	if embedded {
		if o.ca != "" || o.cert != "" || o.key != "" {
			return errors.New("-ca, -cert and -key need -server: the embedded broker makes its own certificates")
		}
		p, err := newPKI()
		if err != nil {
			return fmt.Errorf("make certificates: %w", err)
		}
		addr, stop, err := startTLSBroker(p)
		if err != nil {
			return fmt.Errorf("start the embedded broker: %w", err)
		}
		defer stop()
		o.server = addr
		fmt.Fprintf(out, "Embedded TLS broker listening on %s, client certificate required.\n", addr)
		tlsConfig = &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}}
	} else {
		var err error
		if tlsConfig, err = loadTLS(o.ca, o.cert, o.key); err != nil {
			return err
		}
	}
	// Every step gets a minute; a broker that stops answering ends the
	// program with an error instead of a hang.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	// 1. With the certificate. Setting Config.TLS makes every connection
	// TLS. The broker's certificate is checked against RootCAs and the
	// host in Server; leave ServerName empty and mqttas fills it in.
	c, err := mqttas.New(mqttas.Config{Server: o.server, TLS: tlsConfig})
	if err != nil {
		return fmt.Errorf("bad -server: %w", err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		return fmt.Errorf("cannot connect: %w (check -server, and that -ca signed the broker's certificate)", err)
	}
	fmt.Fprintln(out, "Connected over TLS with a client certificate.")
	if err := c.Subscribe(ctx, o.topic, 1); err != nil {
		return fmt.Errorf("subscribe to %s: %w", o.topic, err)
	}
	if err := c.Publish(ctx, o.topic, []byte("hello over mutual TLS"), 1, false); err != nil {
		return fmt.Errorf("publish to %s: %w", o.topic, err)
	}
	select {
	case m := <-c.Messages():
		fmt.Fprintf(out, "Received %q on %s.\n", m.Payload, m.Topic)
	case <-ctx.Done():
		return fmt.Errorf("the message did not come back: %w", ctx.Err())
	}
	if err := c.Disconnect(ctx); err != nil {
		return err
	}

	// 2. The same configuration without the certificate.
	bare := tlsConfig.Clone()
	bare.Certificates = nil
	nc, err := mqttas.New(mqttas.Config{Server: o.server, TLS: bare})
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Connect(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(out, "Without a client certificate the broker refused us, as it should:\n  %v\n", err)
	case embedded:
		return errors.New("the embedded broker accepted a client without a certificate")
	default:
		fmt.Fprintln(out, "Without a client certificate the broker let us in too: it does not require one.")
		_ = nc.Disconnect(ctx)
	}
	return nil
}

// loadTLS builds the client's TLS configuration from PEM files: the CA to
// trust (none: the system's) and the client's certificate and key (none:
// no client certificate).
func loadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate found in the file", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-cert and -key go together: give both or neither")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("-cert and -key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
