package mqttas_test

// WANOK: one DNS query to Config.WANResolver, true on a reply to it,
// false on silence, strays, ctx end or Close; independent of the broker.
// Every resolver here is a loopback responder: no test sends to a real one.

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// dnsMode is how a fakeResolver answers each query.
type dnsMode int

const (
	dnsAnswer        dnsMode = iota // a correct A answer
	dnsNXDomain                     // "no such name", no answer
	dnsServFail                     // "server failure", no answer
	dnsWrongIDFirst                 // a reply with another ID, then the right one
	dnsWrongIDOnly                  // only a reply with another ID
	dnsShort                        // 5 bytes that start with the right ID
	dnsEcho                         // the query itself, response bit clear
	dnsOtherQuestion                // the right ID, for another name
	dnsSilent                       // nothing
)

// fakeResolver is a DNS responder on loopback UDP.
type fakeResolver struct {
	addr    string
	queries chan []byte // every query received, until it is full
}

func startResolver(t *testing.T, mode dnsMode) *fakeResolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeResolver{addr: pc.LocalAddr().String(), queries: make(chan []byte, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := bytes.Clone(buf[:n])
			select {
			case r.queries <- q:
			default:
			}
			for _, reply := range dnsReplies(q, mode) {
				pc.WriteTo(reply, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return r
}

// dnsReplies returns the datagrams mode answers query q with, in order.
func dnsReplies(q []byte, mode dnsMode) [][]byte {
	if len(q) < 12 || mode == dnsSilent {
		return nil
	}
	reply := func(id uint16, rcode byte, question []byte, answer bool) []byte {
		b := binary.BigEndian.AppendUint16(nil, id)
		b = append(b, 0x80|q[2]&0x01, 0x80|rcode) // QR, RD copied; RA
		an := byte(0)
		if answer {
			an = 1
		}
		b = append(b, 0, 1, 0, an, 0, 0, 0, 0)
		b = append(b, question...)
		if answer { // name at offset 12, A, IN, TTL 60, 127.0.0.1
			b = append(b, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
		}
		return b
	}
	id, question := binary.BigEndian.Uint16(q), q[12:]
	switch mode {
	case dnsAnswer:
		return [][]byte{reply(id, 0, question, true)}
	case dnsNXDomain:
		return [][]byte{reply(id, 3, question, false)}
	case dnsServFail:
		return [][]byte{reply(id, 2, question, false)}
	case dnsWrongIDFirst:
		return [][]byte{reply(id^0x8000, 0, question, true), reply(id, 0, question, true)}
	case dnsWrongIDOnly:
		return [][]byte{reply(id^0x8000, 0, question, true)}
	case dnsShort:
		return [][]byte{reply(id, 0, nil, false)[:5]}
	case dnsEcho:
		return [][]byte{q}
	case dnsOtherQuestion:
		return [][]byte{reply(id, 0, []byte("\x07example\x03org\x00\x00\x01\x00\x01"), true)}
	}
	return nil
}

// query waits for the next query the resolver receives.
func (r *fakeResolver) query(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	select {
	case q := <-r.queries:
		return q
	case <-ctx.Done():
		t.Fatalf("resolver got no query: %v", ctx.Err())
	}
	panic("unreachable")
}

// noMoreQueries fails t if the resolver holds a query not yet taken.
func (r *fakeResolver) noMoreQueries(t *testing.T) {
	t.Helper()
	select {
	case q := <-r.queries:
		t.Errorf("resolver got an extra query % x", q)
	default:
	}
}

// wanClient is a client that is never connected, its broker refusing.
func wanClient(t *testing.T, resolver string, rt time.Duration) *mqttas.Client {
	t.Helper()
	return newClosingClient(t, mqttas.Config{Server: refusedAddr(t), WANResolver: resolver, ResponseTime: rt})
}

// wanOKAsync runs WANOK on its own goroutine.
func wanOKAsync(ctx context.Context, c *mqttas.Client) <-chan bool {
	res := make(chan bool, 1)
	go func() { res <- c.WANOK(ctx) }()
	return res
}

func TestWANOKReplies(t *testing.T) {
	const rt = 300 * time.Millisecond
	cases := []struct {
		name string
		mode dnsMode
		want bool
	}{
		{"answer", dnsAnswer, true},
		{"NXDOMAIN still proves the path", dnsNXDomain, true},
		{"SERVFAIL still proves the path", dnsServFail, true},
		{"wrong ID ignored, then the answer", dnsWrongIDFirst, true},
		{"wrong ID only", dnsWrongIDOnly, false},
		{"short datagram", dnsShort, false},
		{"query echoed without the response bit", dnsEcho, false},
		{"reply to another question", dnsOtherQuestion, false},
		{"no answer", dnsSilent, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t, 5*time.Second)
			r := startResolver(t, tc.mode)
			c := wanClient(t, r.addr, rt)
			start := time.Now()
			got := c.WANOK(ctx)
			d := time.Since(start)
			if got != tc.want {
				t.Fatalf("WANOK = %v after %v, want %v", got, d, tc.want)
			}
			if tc.want && d >= rt {
				t.Errorf("WANOK took %v with the answer there: it waited for the deadline", d)
			}
			// A stray datagram is ignored, not taken as failure: false
			// comes only at the deadline.
			if !tc.want && (d < rt*9/10 || d > rt+time.Second) {
				t.Errorf("WANOK false after %v, want at the ResponseTime deadline %v", d, rt)
			}
			r.query(t, ctx)
			r.noMoreQueries(t) // one query per call, no retries
		})
	}
}

// TestWANOKQuery: the query is a standard recursive A query with one
// question, under a fresh random ID each time.
func TestWANOKQuery(t *testing.T) {
	ctx := ctxFor(t, 5*time.Second)
	r := startResolver(t, dnsAnswer)
	c := wanClient(t, r.addr, time.Second)
	ids := map[uint16]bool{}
	for range 3 {
		if !c.WANOK(ctx) {
			t.Fatal("WANOK false")
		}
		q := r.query(t, ctx)
		if len(q) < 17 {
			t.Fatalf("query % x too short", q)
		}
		ids[binary.BigEndian.Uint16(q)] = true
		if flags := binary.BigEndian.Uint16(q[2:]); flags != 0x0100 {
			t.Errorf("query flags %#04x, want 0x0100 (standard query, RD)", flags)
		}
		if counts := q[4:12]; !bytes.Equal(counts, []byte{0, 1, 0, 0, 0, 0, 0, 0}) {
			t.Errorf("query counts % x, want one question and nothing else", counts)
		}
		if tail := q[len(q)-5:]; !bytes.Equal(tail, []byte{0, 0, 1, 0, 1}) {
			t.Errorf("question ends % x, want root label, type A, class IN", tail)
		}
	}
	if len(ids) == 1 {
		t.Errorf("three queries share one ID %v: it must be random", ids)
	}
}

// TestWANOKWithoutBroker: WANOK needs no broker and no Connect.
func TestWANOKWithoutBroker(t *testing.T) {
	ctx := ctxFor(t, 5*time.Second)
	r := startResolver(t, dnsAnswer)
	c := wanClient(t, r.addr, time.Second)
	if !c.WANOK(ctx) {
		t.Fatal("WANOK false before Connect, broker absent")
	}
	if c.IsConnected() {
		t.Error("WANOK connected the client")
	}
}

func TestWANOKResolverPortClosed(t *testing.T) {
	ctx := ctxFor(t, 5*time.Second)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	const rt = 300 * time.Millisecond
	c := wanClient(t, addr, rt)
	start := time.Now()
	if c.WANOK(ctx) {
		t.Fatal("WANOK true with no resolver")
	}
	if d := time.Since(start); d > rt+time.Second {
		t.Errorf("WANOK took %v, want at most ResponseTime %v", d, rt)
	}
}

func TestWANOKCtxBounds(t *testing.T) {
	t.Run("done before the call", func(t *testing.T) {
		r := startResolver(t, dnsAnswer)
		c := wanClient(t, r.addr, 10*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		if c.WANOK(ctx) {
			t.Fatal("WANOK true with its ctx done")
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("WANOK took %v with its ctx done", d)
		}
		r.noMoreQueries(t)
	})
	t.Run("deadline", func(t *testing.T) {
		r := startResolver(t, dnsSilent)
		c := wanClient(t, r.addr, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if c.WANOK(ctx) {
			t.Fatal("WANOK true")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("WANOK ignored its 100ms ctx: took %v", d)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		r := startResolver(t, dnsSilent)
		c := wanClient(t, r.addr, 10*time.Second)
		bound := ctxFor(t, 5*time.Second)
		ctx, cancel := context.WithCancel(bound)
		defer cancel()
		res := wanOKAsync(ctx, c)
		r.query(t, bound) // the query is out; WANOK is waiting
		cancel()
		select {
		case ok := <-res:
			if ok {
				t.Error("WANOK true after cancel")
			}
		case <-time.After(time.Second):
			t.Fatal("WANOK still waiting 1s after its ctx was cancelled")
		}
	})
}

func TestWANOKAfterClose(t *testing.T) {
	ctx := ctxFor(t, 5*time.Second)
	r := startResolver(t, dnsAnswer)
	c := wanClient(t, r.addr, time.Second)
	c.Close()
	if c.WANOK(ctx) {
		t.Error("WANOK true after Close")
	}
	r.noMoreQueries(t)
}

// TestWANOKCloseEndsWait: Close ends a WANOK in progress.
func TestWANOKCloseEndsWait(t *testing.T) {
	ctx := ctxFor(t, 5*time.Second)
	r := startResolver(t, dnsSilent)
	c := wanClient(t, r.addr, 10*time.Second)
	res := wanOKAsync(ctx, c)
	r.query(t, ctx)
	c.Close()
	select {
	case ok := <-res:
		if ok {
			t.Error("WANOK true after Close")
		}
	case <-time.After(time.Second):
		t.Fatal("WANOK still waiting 1s after Close")
	}
}

// TestWANOKTellsBrokerOutageApart: with the broker unreachable, blackholed
// or gone, WANOK still reports the internet, and BrokerUp the broker. Its
// reply is not broker traffic: BrokerUp after it still has to ask the
// broker, and times out.
func TestWANOKTellsBrokerOutageApart(t *testing.T) {
	ctx := ctxFor(t, 15*time.Second)
	broker := mqtttest.StartBroker(t)
	proxy := mqtttest.StartProxy(t, broker.Addr())
	r := startResolver(t, dnsAnswer)
	const rt = 300 * time.Millisecond
	c := newClosingClient(t, mqttas.Config{
		Server:       proxy.Addr(),
		WANResolver:  r.addr,
		KeepAlive:    10 * time.Minute, // the pinger stays out of the way
		ResponseTime: rt,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 100 * time.Millisecond,
	})
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.WANOK(ctx) {
		t.Fatal("WANOK false on a live link")
	}

	proxy.Blackhole(mqtttest.Both)
	<-time.After(1100 * time.Millisecond) // the quiet second under test
	if !c.WANOK(ctx) {
		t.Fatal("WANOK false while only the broker is silent")
	}
	start := time.Now()
	if c.BrokerUp(ctx) {
		t.Fatal("BrokerUp true through a blackhole: WANOK's reply counted as broker traffic?")
	}
	if d := time.Since(start); d < rt*9/10 {
		t.Errorf("BrokerUp false after %v, before its ResponseTime %v", d, rt)
	}

	proxy.Heal()
	proxy.Refuse(true)
	proxy.CloseConns()
	awaitSignal(t, ctx, c.Down(), "Down")
	if !c.WANOK(ctx) {
		t.Fatal("WANOK false during a broker outage")
	}
	if c.BrokerUp(ctx) {
		t.Fatal("BrokerUp true during an outage")
	}
}

// TestWANOKDoesNotBlockClient: a WANOK waiting on its resolver holds
// nothing that Publish or BrokerUp need.
func TestWANOKDoesNotBlockClient(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	b := startMochi(t, mochiOpts{})
	r := startResolver(t, dnsSilent)
	c := connectedClient(t, ctx, b, mqttas.Config{WANResolver: r.addr})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := wanOKAsync(wctx, c)
	r.query(t, ctx)
	if err := c.Publish(ctx, "wan/t", []byte("x"), 1, false); err != nil {
		t.Fatalf("Publish during WANOK: %v", err)
	}
	if !c.BrokerUp(ctx) {
		t.Error("BrokerUp false during WANOK")
	}
	select {
	case ok := <-res:
		t.Fatalf("WANOK returned %v with a silent resolver before its deadline", ok)
	default:
	}
	cancel()
	if <-res {
		t.Error("WANOK true after cancel")
	}
}

func TestWANResolverConfig(t *testing.T) {
	bad := []string{"8.8.8.8", ":53", "8.8.8.8:", "::1:53", "dns.example"}
	for _, v := range bad {
		c, err := mqttas.New(mqttas.Config{Server: "broker", WANResolver: v})
		if err == nil {
			c.Close()
			t.Errorf("New accepted WANResolver %q", v)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "mqttas: ") || !strings.Contains(msg, "Config.WANResolver") {
			t.Errorf("WANResolver %q: error %q does not name Config.WANResolver", v, msg)
		}
	}
	// Empty is the default, 8.8.8.8:53; nothing is sent to it here.
	good := []string{"", "8.8.8.8:53", "[2001:4860:4860::8888]:53", "dns.example:53", "localhost:domain"}
	for _, v := range good {
		c, err := mqttas.New(mqttas.Config{Server: "broker", WANResolver: v})
		if err != nil {
			t.Errorf("New with WANResolver %q: %v", v, err)
			continue
		}
		c.Close()
	}
}
