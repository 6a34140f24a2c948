package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// options are the parsed and checked command line.
type options struct {
	server       string // "" runs the embedded broker behind a simulated link
	user         string
	password     string
	clientID     string
	useTLS       bool
	caFile       string
	certFile     string
	keyFile      string
	keepAlive    time.Duration
	responseTime time.Duration

	link     string // a linkProfiles key; embedded mode only
	seed     int64  // 0: random
	interval time.Duration
	duration time.Duration // 0: until interrupted
	pcSide   bool          // run the pubtest publisher and the shed watcher
	json     bool
	report   string // HTML report path, "" for none
	verbose  bool
	persist  bool
	mqttv5   bool
}

// errUsage marks errors that are the caller's command line, so that the
// exit status can say so (2, as the flag package does).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Is(t error) bool {
	return t == errUsage
}

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// parseOptions reads args (without the program name). Usage text and flag
// errors go to stderr.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("range-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.server, "server", "", "broker `host:port` or URL (mqtt://, mqtts://); empty: embedded broker behind a simulated link")
	fs.StringVar(&o.user, "user", "", "user name for the broker")
	fs.StringVar(&o.password, "password", "", "password for the broker")
	fs.StringVar(&o.clientID, "client-id", "", "client identifier (default: generated)")
	fs.BoolVar(&o.useTLS, "tls", false, "connect with TLS (default port 8883)")
	fs.StringVar(&o.caFile, "ca", "", "PEM `file` of CA certificates to verify the broker with (implies -tls)")
	fs.StringVar(&o.certFile, "cert", "", "PEM client certificate `file` for mutual TLS (implies -tls; needs -key)")
	fs.StringVar(&o.keyFile, "key", "", "PEM private key `file` for -cert")
	fs.DurationVar(&o.keepAlive, "keepalive", 0, "MQTT keep-alive (default 120s with -server, as range_ex.py; 10s on the simulated link)")
	fs.DurationVar(&o.responseTime, "response-time", 0, "how long to wait for each broker reply (default 10s with -server; 2s on the simulated link)")
	fs.StringVar(&o.link, "link", "", "simulated link without -server: "+strings.Join(profileNames(), ", ")+" (default edge-of-range)")
	fs.Int64Var(&o.seed, "seed", 0, "seed for the simulated link's faults, to replay a run (default: random)")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "time between publishes to shed (and pubtest messages)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	fs.BoolVar(&o.pcSide, "pc", true, "run the PC side in-process: publish to foo_topic and watch shed, which counts lost messages")
	fs.BoolVar(&o.json, "json", false, "publish JSON payloads and print JSON lines instead of mqtt_as's text")
	fs.BoolVar(&o.mqttv5, "mqttv5", false, "speak MQTT 5.0 instead of 3.1.1 (mqtt_as's mqttv5)")
	fs.BoolVar(&o.persist, "persistent", false, "keep the session across outages (clean session off), so messages to foo_topic sent while the device is offline still arrive")
	fs.BoolVar(&o.verbose, "v", false, "log the client's connects, outages and resends to stderr")
	fs.StringVar(&o.report, "report", "", "write a self-contained HTML `file` with the run's timeline when it ends")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q: every setting is a flag (see -h)", fs.Arg(0))
	}
	if o.caFile != "" || o.certFile != "" {
		o.useTLS = true
	}
	switch {
	case o.server != "" && o.link != "":
		return o, usagef("-link simulates the link to the embedded broker and cannot be combined with -server: a real broker's link is whatever your network is")
	case o.server == "" && (o.useTLS || o.user != "" || o.password != ""):
		return o, usagef("-tls, -ca, -cert, -user and -password are for a real broker: add -server host:port")
	case (o.certFile == "") != (o.keyFile == ""):
		return o, usagef("-cert and -key go together: give both the client certificate and its private key")
	case o.interval <= 0:
		return o, usagef("-interval %v: must be positive, e.g. 5s", o.interval)
	case o.duration < 0:
		return o, usagef("-duration %v: must be positive (or 0 to run until Ctrl-C)", o.duration)
	case o.keepAlive < 0 || o.responseTime < 0:
		return o, usagef("-keepalive and -response-time must not be negative")
	}
	if o.server == "" {
		if o.link == "" {
			o.link = "edge-of-range"
		}
		if _, ok := linkProfiles[o.link]; !ok {
			return o, usagef("-link %q is not a known link: choose %s", o.link, strings.Join(profileNames(), ", "))
		}
		if o.keepAlive == 0 {
			o.keepAlive = 10 * time.Second
		}
		if o.responseTime == 0 {
			o.responseTime = 2 * time.Second
		}
	} else {
		if o.keepAlive == 0 {
			o.keepAlive = 120 * time.Second
		}
		if o.responseTime == 0 {
			o.responseTime = 10 * time.Second
		}
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o, nil
}

// tlsConfig loads the TLS files; nil without -tls.
func (o options) tlsConfig() (*tls.Config, error) {
	if !o.useTLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, usagef("-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usagef("-ca %s: no PEM certificate found in the file", o.caFile)
		}
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, usagef("-cert/-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

const usageText = `range-demo is mqtt_as's range test for mqttas: it publishes to "shed" at QoS 1
every -interval, prints the link going down and up, and at the end says how many
messages were lost (always 0 is the point).

Without -server it needs nothing installed: an embedded broker runs on loopback
behind a simulated flaky link, and an in-process PC side publishes to foo_topic
and watches shed.

  go run ./cmd/range-demo                       # edge-of-range link, until Ctrl-C
  go run ./cmd/range-demo -link awful -duration 1m -report run.html
  go run ./cmd/range-demo -server broker.local:1883

Flags:
`
