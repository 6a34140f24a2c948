package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// defaultStopWait bounds each step of shutting down that waits on the
// network.
const defaultStopWait = 5 * time.Second

// The will, as range_ex.py sets it.
const (
	topic       = "shed"
	willMessage = "Goodbye cruel world!"
)

// demo is one run: the device-side client, the PC side, and the simulated
// link when there is no real broker.
type demo struct {
	o   options
	out *printer
	rec *recorder
	id  string
	c   *mqttas.Client
	pc  pcSide // nil with -pc=false

	broker *mqtttest.Broker // embedded mode only
	proxy  *mqtttest.Proxy

	lastLatency time.Duration // of the previous PUBACK; publish loop only
}

// runDemo runs until ctx ends, then winds down and returns the summary.
// hurry, when it ends, cuts the winding down short (a second Ctrl-C).
func runDemo(ctx, hurry context.Context, o options, stdout, logTo io.Writer) (summary, error) {
	d := &demo{o: o, out: &printer{w: stdout, json: o.json, start: time.Now()}, rec: newRecorder()}
	d.id = o.clientID
	if d.id == "" {
		var b [4]byte
		rand.Read(b[:])
		d.id = "rangedemo" + hex.EncodeToString(b[:])
	}
	cfg := mqttas.Config{
		Server:       o.server,
		ClientID:     d.id,
		User:         o.user,
		Password:     o.password,
		KeepAlive:    o.keepAlive,
		ResponseTime: o.responseTime,
		Will:         &mqttas.Will{Topic: topic, Payload: []byte(willMessage)},
		QueueLen:     64,
		// mqtt_as's clean_init=True, clean=False when -persistent: a fresh
		// session at start, kept through every outage after that.
		PersistentSession: o.persist,
		MQTTv5:            o.mqttv5,
	}
	if logTo != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return summary{}, err
	}
	cfg.TLS = tlsCfg
	linkName := "real"
	if o.server == "" {
		linkName = o.link
		if err := d.startEmbedded(&cfg); err != nil {
			return summary{}, err
		}
		defer d.proxy.Close()
		defer d.broker.Close()
	}

	if d.c, err = mqttas.New(cfg); err != nil {
		return summary{}, usageError{err.Error()} // a Config field the flags set
	}
	if o.pcSide {
		if d.broker != nil {
			d.pc, err = newEmbeddedPC(d.broker)
		} else {
			d.pc, err = connectPC(ctx, cfg)
		}
		if err != nil {
			d.c.Close()
			return summary{}, err
		}
	}
	var wg sync.WaitGroup
	if d.pc != nil {
		wg.Go(d.watchLoop)
		defer func() {
			d.pc.close()
			wg.Wait()
		}()
	}
	if err := d.connect(ctx); err != nil {
		d.c.Close()
		return summary{}, err
	}

	// The link simulator starts once the client is up, so a run always
	// begins connected, as a range walk begins next to the access point.
	linkCtx, stopLink := context.WithCancel(ctx)
	var linkWG sync.WaitGroup
	if d.proxy != nil {
		p := linkProfiles[o.link]
		r := mrand.New(mrand.NewPCG(uint64(o.seed), 0x6d717474))
		linkWG.Go(func() { simulateLink(linkCtx, p, d.proxy, r, d.onFault) })
	}
	clientCtx, stopClient := context.WithCancel(context.Background())
	var eventsWG sync.WaitGroup
	eventsWG.Go(func() { d.eventLoop(clientCtx) })
	stopPub := make(chan struct{})
	pubCtx, abandon := context.WithCancel(hurry)
	defer abandon()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		d.publishLoop(pubCtx, stopPub)
	}()
	pubtestDone := make(chan struct{})
	go func() {
		defer close(pubtestDone)
		d.pubtestLoop(clientCtx, stopPub)
	}()

	<-ctx.Done()
	d.out.event("info", "stopping: healing the link and waiting for the last publish (Ctrl-C again to quit at once)")
	stopLink()
	linkWG.Wait()
	close(stopPub)
	grace := time.NewTimer(3*o.responseTime + defaultStopWait)
	select {
	case <-pubDone:
	case <-grace.C:
		d.out.event("info", "the last publish is still unacknowledged: giving up on it")
		abandon()
		<-pubDone
	case <-hurry.Done():
		<-pubDone
	}
	grace.Stop()
	<-pubtestDone
	d.awaitWatcher(hurry)

	stats := d.c.Stats()
	dctx, cancel := context.WithTimeout(hurry, defaultStopWait)
	d.c.Disconnect(dctx) // DISCONNECT: the broker discards the will
	cancel()
	stopClient()
	eventsWG.Wait()

	s := d.rec.summarize(linkName, d.pc != nil, stats.Repubs, stats.Reconnects, stats.Discards)
	s.Outages = max(s.Outages, int(stats.Outages))
	s.Persistent = o.persist
	d.out.summary(s)
	if o.report != "" {
		if err := writeReport(o.report, d.reportData(s)); err != nil {
			return s, fmt.Errorf("-report: %w", err)
		}
		d.out.event("info", "report written to "+o.report, "file", o.report)
	}
	if s.Lost > 0 {
		return s, fmt.Errorf("%d acknowledged messages never reached the PC side", s.Lost)
	}
	return s, nil
}

// startEmbedded starts the broker and the proxy that plays the radio link,
// and points cfg at the proxy.
func (d *demo) startEmbedded(cfg *mqttas.Config) error {
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{})
	if err != nil {
		return fmt.Errorf("starting the embedded broker: %w", err)
	}
	px, err := mqtttest.NewProxy(b.Addr())
	if err != nil {
		b.Close()
		return fmt.Errorf("starting the simulated link: %w", err)
	}
	d.broker, d.proxy = b, px
	cfg.Server = px.Addr()
	// Short backoff so that recovery shows as soon as the link returns;
	// a real deployment keeps the defaults (1s to 60s).
	cfg.ReconnectMin, cfg.ReconnectMax = 250*time.Millisecond, 4*time.Second
	p := linkProfiles[d.o.link]
	d.out.event("info", fmt.Sprintf("embedded broker on %s; the client reaches it through a simulated %q link at %s (%s); seed %d. Ctrl-C to stop.",
		b.Addr(), d.o.link, px.Addr(), p.about, d.o.seed), "broker", b.Addr(), "link", d.o.link, "seed", d.o.seed)
	return nil
}

// connectPC connects the PC side to a real broker, with advice on failure.
func connectPC(ctx context.Context, cfg mqttas.Config) (pcSide, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*cfg.ResponseTime)
	defer cancel()
	pc, err := newClientPC(cctx, cfg)
	if err != nil {
		return nil, advise(cfg.Server, err)
	}
	return pc, nil
}

// connect makes the device side's first connection. Against a real broker
// the first failure is reported, as range_ex.py does; the embedded broker
// is always there.
func (d *demo) connect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 2*d.o.responseTime)
	defer cancel()
	if err := d.c.Connect(cctx); err != nil {
		return advise(d.o.server, err)
	}
	d.out.event("info", "connected as "+d.id, "client_id", d.id)
	return nil
}

// advise turns a connection failure into what failed and what to try.
func advise(server string, err error) error {
	var ce *mqttas.ConnectError
	switch {
	case errors.Is(err, mqttas.ErrBadCredentials), errors.Is(err, mqttas.ErrNotAuthorized):
		return fmt.Errorf("%w\n  the broker at %s refused these credentials: check -user and -password", err, server)
	case errors.Is(err, mqttas.ErrIdentifierRejected):
		return fmt.Errorf("%w\n  try a shorter -client-id of letters and digits only", err)
	case errors.As(err, &ce):
		return fmt.Errorf("%w\n  the broker at %s is up but refused the connection", err, server)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, mqttas.ErrTimeout):
		return fmt.Errorf("cannot connect to %s: no answer in time (%w)\n  is it an MQTT broker, and is -tls right for that port? Or run without -server to use the built-in broker", server, err)
	}
	return fmt.Errorf("cannot connect to %s: %w\n  is the broker running and reachable from here? Check -server (host:port) and firewalls, or run without -server to use the built-in broker", server, err)
}

// onFault logs a fault of the simulated link.
func (d *demo) onFault(kind string, dur time.Duration, note string) {
	d.rec.fault(fault{At: d.rec.since(), For: dur, Kind: kind, Note: note})
	d.out.event("fault", "[link] "+note, "kind", kind, "for_ms", dur.Milliseconds())
}
