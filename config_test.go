package mqttas_test

// Config: validation (bad values are errors naming the field, never
// panics), the server address forms and their default ports and TLS, and
// the generated client identifier. Addresses are observed where they take
// effect: the Dial hook sees the host:port, and a loopback listener sees
// whether the first bytes are a TLS ClientHello or an MQTT CONNECT.

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
)

func TestConfigValidation(t *testing.T) {
	ok := "broker.example:1883"
	cases := []struct {
		name  string
		cfg   mqttas.Config
		field string // the error must name it
	}{
		{"empty Server", mqttas.Config{}, "Config.Server"},
		{"bad scheme", mqttas.Config{Server: "http://broker:1883"}, "Config.Server"},
		{"ws scheme", mqttas.Config{Server: "ws://broker"}, "Config.Server"},
		{"port not a number", mqttas.Config{Server: "broker:mqtt"}, "Config.Server"},
		{"port zero", mqttas.Config{Server: "broker:0"}, "Config.Server"},
		{"port negative", mqttas.Config{Server: "broker:-1"}, "Config.Server"},
		{"port too big", mqttas.Config{Server: "broker:65536"}, "Config.Server"},
		{"URL port too big", mqttas.Config{Server: "mqtt://broker:99999"}, "Config.Server"},
		{"URL port not a number", mqttas.Config{Server: "mqtts://broker:x"}, "Config.Server"},
		{"no host", mqttas.Config{Server: ":1883"}, "Config.Server"},
		{"URL no host", mqttas.Config{Server: "mqtt://:1883"}, "Config.Server"},
		{"bad Backup", mqttas.Config{Server: ok, Backup: "ftp://backup"}, "Config.Backup"},
		{"Backup bad port", mqttas.Config{Server: ok, Backup: "backup:70000"}, "Config.Backup"},
		{"Will QoS 3", mqttas.Config{Server: ok, Will: &mqttas.Will{Topic: "w", QoS: 3}}, "Config.Will.QoS"},
		{"Will topic +", mqttas.Config{Server: ok, Will: &mqttas.Will{Topic: "w/+/x"}}, "Config.Will.Topic"},
		{"Will topic #", mqttas.Config{Server: ok, Will: &mqttas.Will{Topic: "w/#"}}, "Config.Will.Topic"},
		{"Will topic empty", mqttas.Config{Server: ok, Will: &mqttas.Will{Payload: []byte("x")}}, "Config.Will.Topic"},
		{"Will topic bad UTF-8", mqttas.Config{Server: ok, Will: &mqttas.Will{Topic: "w/\xff"}}, "Config.Will.Topic"},
		{"KeepAlive 65536s", mqttas.Config{Server: ok, KeepAlive: 65536 * time.Second}, "Config.KeepAlive"},
		{"KeepAlive 100000h", mqttas.Config{Server: ok, KeepAlive: 100000 * time.Hour}, "Config.KeepAlive"},
		{"KeepAlive under 1s", mqttas.Config{Server: ok, KeepAlive: 500 * time.Millisecond}, "Config.KeepAlive"},
		{"ReconnectMax < ReconnectMin", mqttas.Config{Server: ok, ReconnectMin: 5 * time.Second, ReconnectMax: time.Second}, "Config.ReconnectMax"},
		{"MaxInflight 65536", mqttas.Config{Server: ok, MaxInflight: 65536}, "Config.MaxInflight"},
		{"MaxInflight 1e6", mqttas.Config{Server: ok, MaxInflight: 1_000_000}, "Config.MaxInflight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mqttas.New(tc.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("New(%+v) succeeded, want an error naming %s", tc.cfg, tc.field)
			}
			if c != nil {
				t.Errorf("New returned a Client with error %v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "mqttas: ") || !strings.Contains(msg, tc.field) {
				t.Errorf("error %q does not start with \"mqttas: \" and name %s", msg, tc.field)
			}
			t.Logf("%s", msg)
		})
	}
}

func TestConfigValidValues(t *testing.T) {
	cases := []struct {
		name string
		cfg  mqttas.Config
	}{
		{"host only", mqttas.Config{Server: "broker"}},
		{"host:port", mqttas.Config{Server: "broker:1999"}},
		{"port 65535", mqttas.Config{Server: "broker:65535"}},
		{"IPv6 bracketed", mqttas.Config{Server: "[::1]:1883"}},
		{"IPv6 bare", mqttas.Config{Server: "::1"}},
		{"mqtt URL", mqttas.Config{Server: "mqtt://broker"}},
		{"tcp URL", mqttas.Config{Server: "tcp://broker:1883"}},
		{"mqtts URL", mqttas.Config{Server: "mqtts://broker"}},
		{"ssl URL", mqttas.Config{Server: "ssl://broker:8883"}},
		{"tls URL", mqttas.Config{Server: "tls://broker"}},
		{"with Backup", mqttas.Config{Server: "a", Backup: "mqtt://b:1884"}},
		{"KeepAlive 65535s", mqttas.Config{Server: "b", KeepAlive: 65535 * time.Second}},
		{"KeepAlive off", mqttas.Config{Server: "b", KeepAlive: -1}},
		{"ReconnectMax == ReconnectMin", mqttas.Config{Server: "b", ReconnectMin: time.Second, ReconnectMax: time.Second}},
		{"MaxInflight 65000", mqttas.Config{Server: "b", MaxInflight: 65000}},
		{"MaxRepubs negative", mqttas.Config{Server: "b", MaxRepubs: -1}},
		{"Will QoS 2 retained", mqttas.Config{Server: "b", Will: &mqttas.Will{Topic: "w/x", QoS: 2, Retain: true}}},
		{"Will UTF-8 topic", mqttas.Config{Server: "b", Will: &mqttas.Will{Topic: "état/ü/日本"}}},
		{"every field", mqttas.Config{
			Server: "mqtts://broker", Backup: "tls://backup:9999", ClientID: "id", User: "u", Password: "p",
			KeepAlive: 30 * time.Second, PingInterval: time.Second, ResponseTime: time.Second,
			TLS: &tls.Config{MinVersion: tls.VersionTLS12}, MaxRepubs: 2, MaxInflight: 10, MaxPacketSize: 4096,
			QueueLen: 3, OnMessage: func(mqttas.Message) {}, PersistentSession: true, ResumeOnStart: true,
			ConnectRetry: true, ReconnectMin: time.Millisecond, ReconnectMax: time.Second,
			WANResolver: "[::1]:5353",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mqttas.New(tc.cfg)
			if err != nil {
				t.Fatalf("New(%+v) = %v", tc.cfg, err)
			}
			c.Close()
		})
	}
}

// tlsSniffer is a loopback listener that reports the first byte each
// connection sends, then hangs up: 0x16 is a TLS handshake record, 0x10 an
// MQTT CONNECT.
func tlsSniffer(t *testing.T) (addr string, first <-chan byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan byte, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var b [1]byte
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Read(b[:]); err == nil {
				ch <- b[0]
			}
			nc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), ch
}

// observedDial connects with cfg through a Dial hook that records the address
// the client asks for and connects to the sniffer instead. It returns that
// address and whether the client spoke TLS.
func observedDial(t *testing.T, cfg mqttas.Config) (addr string, tlsUsed bool) {
	t.Helper()
	sniff, first := tlsSniffer(t)
	asked := make(chan string, 16)
	cfg.Dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		if network != "tcp" {
			t.Errorf("Dial network %q, want tcp", network)
		}
		asked <- a
		var d net.Dialer
		return d.DialContext(ctx, "tcp", sniff)
	}
	cfg.ResponseTime = 2 * time.Second
	c := newClosingClient(t, cfg)
	ctx := ctxFor(t, 10*time.Second)
	if err := c.Connect(ctx); err == nil {
		t.Fatal("Connect to the sniffer succeeded")
	}
	select {
	case addr = <-asked:
	default:
		t.Fatal("Dial was not called")
	}
	select {
	case b := <-first:
		return addr, b == 0x16
	case <-ctx.Done():
		t.Fatal("the client sent nothing")
	}
	return "", false
}

func TestConfigServerAddressForms(t *testing.T) {
	cases := []struct {
		server string
		addr   string
		tls    bool
	}{
		{"broker.example", "broker.example:1883", false},
		{"broker.example:2883", "broker.example:2883", false},
		{"10.1.2.3", "10.1.2.3:1883", false},
		{"mqtt://broker.example", "broker.example:1883", false},
		{"tcp://broker.example:1999", "broker.example:1999", false},
		{"mqtts://broker.example", "broker.example:8883", true},
		{"ssl://broker.example", "broker.example:8883", true},
		{"tls://broker.example:9883", "broker.example:9883", true},
		{"mqtts://broker.example:1883", "broker.example:1883", true},
		{"[::1]:1883", "[::1]:1883", false},
		{"[::1]", "[::1]:1883", false},
		{"::1", "[::1]:1883", false},
		{"mqtt://[::1]", "[::1]:1883", false},
		{"mqtts://[::1]", "[::1]:8883", true},
		{"mqtt://[fe80::1]:1884", "[fe80::1]:1884", false},
	}
	for _, tc := range cases {
		t.Run(tc.server, func(t *testing.T) {
			addr, tlsUsed := observedDial(t, mqttas.Config{Server: tc.server})
			if addr != tc.addr || tlsUsed != tc.tls {
				t.Errorf("Server %q dialled %q with TLS %v, want %q with TLS %v", tc.server, addr, tlsUsed, tc.addr, tc.tls)
			}
		})
	}
}

// With Config.TLS set the client speaks TLS, so an address without a port
// means the TLS port, as the Server doc comment ("8883 with TLS") and
// mqtt_as (port 0 → 8883 when ssl is on) both say.
func TestConfigTLSConfigDefaultsPort8883(t *testing.T) {
	addr, tlsUsed := observedDial(t, mqttas.Config{Server: "broker.example", TLS: &tls.Config{ServerName: "broker.example"}})
	if !tlsUsed {
		t.Fatal("Config.TLS set but the client did not start TLS")
	}
	if addr != "broker.example:8883" {
		t.Errorf("Server %q with Config.TLS dialled %q, want broker.example:8883", "broker.example", addr)
	}
}

func TestConfigNotAliasedAfterNew(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	will := &mqttas.Will{Topic: "alias/will", Payload: []byte("original")}
	cfg := mqttas.Config{Server: b.addr, ClientID: "aliased", Will: will}
	c := newClosingClient(t, cfg)
	// Changing the caller's Config and Will after New must not reach the client.
	will.Topic = "alias/changed"
	cfg.Server = refusedAddr(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect after the caller changed its Config = %v", err)
	}
	b.hook.waitCount(t, ctx, "session", "aliased", 1)
	if got := b.hook.lastClient("aliased").Properties.Will.TopicName; got != "alias/will" {
		t.Errorf("broker got will topic %q, want alias/will", got)
	}
}

// sessionIDs returns the client identifiers of the sessions the broker
// established, in order.
func sessionIDs(h *mochiHook) []string {
	var ids []string
	for _, e := range h.snapshot() {
		if e.kind == "session" {
			ids = append(ids, e.id)
		}
	}
	return ids
}

func TestGeneratedClientIDStableAcrossReconnects(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	c := connectedClient(t, ctx, b, mqttas.Config{ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	b.hook.waitCount(t, ctx, "session", "", 1)
	id := sessionIDs(b.hook)[0]
	if id == "" {
		t.Fatal("empty generated client id")
	}
	awaitSignal(t, ctx, c.Up(), "Up")
	for i := range 2 {
		b.kick(t, id)
		awaitSignal(t, ctx, c.Down(), "Down")
		awaitSignal(t, ctx, c.Up(), "Up")
		b.hook.waitCount(t, ctx, "session", "", i+2)
	}
	for i, got := range sessionIDs(b.hook) {
		if got != id {
			t.Errorf("connection %d used client id %q, first used %q", i+1, got, id)
		}
	}
}

func TestGeneratedClientIDDiffersBetweenClients(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	const n = 5
	for range n {
		connectedClient(t, ctx, b, mqttas.Config{})
	}
	b.hook.waitCount(t, ctx, "session", "", n)
	seen := map[string]bool{}
	for _, id := range sessionIDs(b.hook) {
		if seen[id] {
			t.Errorf("two Clients generated the same id %q", id)
		}
		seen[id] = true
	}
	// The same Config value used twice still gives two identities.
	cfg := mqttas.Config{Server: b.addr}
	connectedClient(t, ctx, b, cfg)
	connectedClient(t, ctx, b, cfg)
	b.hook.waitCount(t, ctx, "session", "", n+2)
	if ids := sessionIDs(b.hook); ids[n] == ids[n+1] {
		t.Errorf("two Clients from one Config share id %q", ids[n])
	}
	if countEvents(b.hook.snapshot(), "disconnect", "") != 0 {
		t.Error("a client was disconnected: generated ids collided (session takeover)")
	}
}

// MQTT 3.1.1 section 3.1.3.1 [MQTT-3.1.3-5]: a server must accept client
// ids of 1 to 23 bytes made of 0-9, a-z, A-Z; anything else it MAY refuse
// (with return code 2). A generated id should be one every broker accepts.
func TestGeneratedClientIDSpecSafe(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	connectedClient(t, ctx, b, mqttas.Config{})
	b.hook.waitCount(t, ctx, "session", "", 1)
	id := sessionIDs(b.hook)[0]
	if len(id) < 1 || len(id) > 23 {
		t.Errorf("generated client id %q is %d bytes, want 1 to 23", id, len(id))
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}); i >= 0 {
		t.Errorf("generated client id %q has %q, outside the 0-9a-zA-Z every 3.1.1 broker must accept", id, id[i])
	}
}

func TestConfigExplicitClientIDUsed(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	connectedClient(t, ctx, b, mqttas.Config{ClientID: "my-device-42"})
	b.hook.waitCount(t, ctx, "session", "my-device-42", 1)
}

// New copies the Config, Will included: changing the caller's Will payload
// bytes afterwards must not change the will the broker is given.
func TestConfigWillPayloadCopiedByNew(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	payload := []byte("original")
	c := newClosingClient(t, mqttas.Config{Server: b.addr, ClientID: "will-copy", Will: &mqttas.Will{Topic: "w/copy", Payload: payload}})
	copy(payload, "CHANGED!")
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	b.hook.waitCount(t, ctx, "session", "will-copy", 1)
	if got := string(b.hook.lastClient("will-copy").Properties.Will.Payload); got != "original" {
		t.Errorf("broker got will payload %q, want %q: New kept a reference to the caller's bytes", got, "original")
	}
}

// A PingInterval longer than KeepAlive must not let the broker's
// keep-alive lapse: the client promises to send something within
// KeepAlive ("so the broker's keep-alive never lapses"). New may refuse
// such a Config instead; what it must not do is accept it and then be
// dropped by the broker.
func TestConfigPingIntervalLongerThanKeepAlive(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	b := startMochi(t, mochiOpts{})
	cfg := mqttas.Config{Server: b.addr, ClientID: "long-ping", KeepAlive: 2 * time.Second, PingInterval: 10 * time.Second, ResponseTime: 500 * time.Millisecond}
	c, err := mqttas.New(cfg)
	if err != nil {
		if !strings.Contains(err.Error(), "Config.PingInterval") {
			t.Fatalf("New refused PingInterval > KeepAlive with %q, which does not name Config.PingInterval", err)
		}
		return
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// mochi drops a client silent for 1.5 × KeepAlive (3 s). Wait for
	// whichever comes first: two PINGREQs, or the broker dropping it.
	b.hook.wait(ctx, func(evs []mochiEvent) bool {
		return countEvents(evs, "pingreq", "long-ping") >= 2 || countEvents(evs, "disconnect", "long-ping") > 0
	})
	if n := countEvents(b.hook.snapshot(), "disconnect", "long-ping"); n > 0 {
		t.Errorf("KeepAlive 2s with PingInterval 10s: the broker dropped the client for silence "+
			"(PINGREQs sent: %d; client Stats %+v)", countEvents(b.hook.snapshot(), "pingreq", "long-ping"), c.Stats())
	}
}
