package mqttas_test

// FuzzClientBrokerStream puts the whole client, not just the codec, in front
// of a broker that sends anything: the fuzzer writes every byte the "broker"
// sends after the client's CONNECT. Whatever arrives, the client must not
// panic, hang, leak a goroutine, write a malformed packet or hand the
// application a message larger than MaxPacketSize.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/packet"
)

// The fuzz input is one flags byte followed by chunks, each a big-endian
// uint16 length and that many bytes (a length past the end takes the rest).
// The chunks are what the broker writes, in order, on each connection.
const (
	fcbV5         = 1 << iota // speak MQTT 5.0
	fcbPaced                  // write chunk k only after the client's k-th packet
	fcbPersistent             // PersistentSession
	fcbOnMessage              // deliver through OnMessage instead of Messages
	fcbHold                   // keep the connection open after the last chunk
	fcbAliases                // TopicAliases (5.0 only)
)

// Every step of an execution is bounded, and short, so that the fuzzer
// gets its throughput: the client waits ResponseTime at most for any answer,
// the operations share one short deadline, and the broker serves at most
// fcbConns connections before the dial fails.
const (
	fcbResponseTime = 25 * time.Millisecond
	fcbOpsTime      = 15 * time.Millisecond
	fcbConnectTime  = 200 * time.Millisecond
	fcbMaxPacket    = 64 << 10
	fcbConns        = 2
	// fcbWatchdog: an execution still running after this long has hung;
	// the watchdog panics with every goroutine's stack, which the fuzzer
	// records as a crash with its input.
	fcbWatchdog = 5 * time.Second
)

func FuzzClientBrokerStream(f *testing.F) {
	for _, s := range fcbSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fcbRun(t, data)
	})
}

// fcbSeeds are well-formed conversations in both protocol versions, paced
// to answer the operations fcbRun performs (SUBSCRIBE id 1, QoS 1 PUBLISH
// id 2, QoS 2 PUBLISH id 3 and its PUBREL, QoS 0 PUBLISH), then messages
// from the broker at every QoS, PINGRESP and DISCONNECT.
func fcbSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		enc := func(p packet.Packet) []byte {
			b, err := p.AppendTo(nil, v)
			if err != nil {
				f.Fatalf("seed %T: %v", p, err)
			}
			return b
		}
		connack := &packet.Connack{}
		if v == packet.V5 {
			connack.Properties.TopicAliasMaximum = 4
			connack.Properties.ReceiveMaximum = 8
			connack.Properties.MaximumPacketSize = 1 << 16
		}
		pubrelIn := packet.Pubrel{PacketID: 7}
		script := [][]byte{
			enc(connack),
			enc(&packet.Suback{PacketID: 1, ReasonCodes: []packet.ReasonCode{packet.GrantedQoS2}}),
			enc(&packet.Puback{PacketID: 2}),
			enc(&packet.Pubrec{PacketID: 3}),
			enc(&packet.Pubcomp{PacketID: 3}),
			enc(&packet.Publish{QoS: 2, PacketID: 7, Topic: "fz/in", Payload: []byte("two")}),
			enc((*packet.Pubrel)(&pubrelIn)),
			enc(&packet.Publish{QoS: 1, PacketID: 8, Topic: "fz/in", Payload: []byte("one")}),
			append(append(enc(&packet.Publish{Topic: "fz/in", Payload: []byte("zero")}),
				enc(&packet.Pingresp{})...), enc(&packet.Disconnect{ReasonCode: packet.NormalDisconnection})...),
		}
		flags, refusal := byte(fcbPaced), packet.ReasonCode(0x05) // not authorized
		if v == packet.V5 {
			flags, refusal = flags|fcbV5, 0x87
		}
		seeds = append(seeds,
			fcbEncode(flags, script...),
			fcbEncode(flags|fcbPersistent|fcbOnMessage, script...),
			fcbEncode(flags|fcbHold|fcbAliases, script...),
			fcbEncode(flags&^fcbPaced, bytes.Join(script, nil)), // all at once
			fcbEncode(flags, script[0]),                         // CONNACK, then EOF
			fcbEncode(flags, enc(&packet.Connack{ReasonCode: refusal})),
			fcbEncode(flags),
		)
	}
	return seeds
}

func fcbEncode(flags byte, chunks ...[]byte) []byte {
	out := []byte{flags}
	for _, c := range chunks {
		out = binary.BigEndian.AppendUint16(out, uint16(len(c)))
		out = append(out, c...)
	}
	return out
}

func fcbDecode(data []byte) (flags byte, chunks [][]byte) {
	if len(data) == 0 {
		return 0, nil
	}
	flags, data = data[0], data[1:]
	for len(data) > 0 {
		n := len(data)
		if len(data) >= 2 {
			n = min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			data = data[2:]
		}
		chunks = append(chunks, data[:n:n])
		data = data[n:]
	}
	return flags, chunks
}

func fcbRun(t *testing.T, data []byte) {
	flags, chunks := fcbDecode(data)
	base := runtime.NumGoroutine()
	watchdog := time.AfterFunc(fcbWatchdog, func() {
		panic(fmt.Sprintf("FuzzClientBrokerStream: execution still running after %v (flags %#x, %d chunks):\n%s",
			fcbWatchdog, flags, len(chunks), fcbStacks()))
	})
	defer watchdog.Stop()

	b := &fcbBroker{flags: flags, chunks: chunks, allWritten: make(chan struct{})}
	var delivered atomic.Int64
	check := func(m mqttas.Message) {
		delivered.Add(1)
		if len(m.Payload)+len(m.Topic) > fcbMaxPacket {
			t.Errorf("delivered a %d-byte message over the %d-byte MaxPacketSize", len(m.Payload)+len(m.Topic), fcbMaxPacket)
		}
		if m.QoS > 2 {
			t.Errorf("delivered a message with QoS %d", m.QoS)
		}
		if flags&fcbV5 == 0 && m.Properties != nil {
			t.Errorf("3.1.1 message with properties %+v", m.Properties)
		}
	}
	cfg := mqttas.Config{
		Server:            "fuzz.invalid:1883",
		ClientID:          "fuzz",
		ResponseTime:      fcbResponseTime,
		Dial:              b.dial,
		MaxPacketSize:     fcbMaxPacket,
		QueueLen:          2,
		ReconnectMin:      time.Millisecond,
		ReconnectMax:      2 * time.Millisecond,
		MQTTv5:            flags&fcbV5 != 0,
		PersistentSession: flags&fcbPersistent != 0,
		TopicAliases:      flags&fcbV5 != 0 && flags&fcbAliases != 0,
	}
	if flags&fcbOnMessage != 0 {
		cfg.OnMessage = check
	}
	c, err := mqttas.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var consumer sync.WaitGroup
	if cfg.OnMessage == nil {
		consumer.Add(1)
		go func() {
			defer consumer.Done()
			for m := range c.Messages() {
				check(m)
			}
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), fcbConnectTime)
	err = c.Connect(ctx)
	cancel()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), fcbOpsTime)
		// The results do not matter, only that each call returns in time.
		_ = c.Subscribe(ctx, "fz/#", 2)
		_ = c.Publish(ctx, "fz/out", []byte("one"), 1, false)
		_ = c.Publish(ctx, "fz/out", []byte("two"), 2, false)
		_ = c.Publish(ctx, "fz/out", []byte("zero"), 0, false)
		select { // let the broker's last words arrive before Close
		case <-b.allWritten:
		case <-ctx.Done():
		}
		cancel()
		_ = c.Stats()
		_ = c.Link()
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		panic("FuzzClientBrokerStream: Close did not return within 2s:\n" + fcbStacks())
	}
	consumer.Wait()
	b.shutdown()
	if err := b.err(); err != nil {
		t.Error(err)
	}
	fcbWaitGoroutines(t, base)
}

// fcbWaitGoroutines waits, bounded, for the goroutine count to come back
// to base: Close promises that the client's goroutines have exited or are
// about to (the OnMessage dispatcher finishes its message first).
func fcbWaitGoroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines running after Close, %d before the client:\n%s", runtime.NumGoroutine(), base, fcbStacks())
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // bounded poll: goroutine exits raise no event
	}
}

func fcbStacks() string {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	return buf.String()
}

var errFcbNoMore = errors.New("fuzz broker: no more connections")

// fcbBroker is the broker end of net.Pipe connections: it reads and checks
// what the client writes and writes the fuzz chunks.
type fcbBroker struct {
	flags      byte
	chunks     [][]byte
	allWritten chan struct{} // closed when a connection has had every chunk

	mu       sync.Mutex // guards the fields below
	dials    int
	closed   bool
	conns    []net.Conn
	firstErr error
	once     sync.Once

	wg sync.WaitGroup
}

func (b *fcbBroker) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.dials >= fcbConns {
		return nil, errFcbNoMore
	}
	b.dials++
	client, server := net.Pipe()
	b.conns = append(b.conns, server)
	var seen atomic.Int64
	notify := make(chan struct{}, 1)
	readDone := make(chan struct{})
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		defer close(readDone)
		b.readLoop(server, &seen, notify)
	}()
	go func() {
		defer b.wg.Done()
		b.writeLoop(server, &seen, notify, readDone)
	}()
	return client, nil
}

// readLoop reads the client's packets, counting them for the pacing. The
// client must never write a packet that does not decode.
func (b *fcbBroker) readLoop(conn net.Conn, seen *atomic.Int64, notify chan<- struct{}) {
	r := packet.NewReader(conn, 1<<20)
	for {
		p, err := r.ReadPacket()
		var perr *packet.Error
		if errors.As(err, &perr) {
			b.fail(fmt.Errorf("the client wrote a malformed packet: %w", err))
			_, _ = io.Copy(io.Discard, conn)
			return
		}
		if err != nil {
			return
		}
		if c, ok := p.(*packet.Connect); ok {
			want := packet.V311
			if b.flags&fcbV5 != 0 {
				want = packet.V5
			}
			if c.Version != want {
				b.fail(fmt.Errorf("CONNECT for version %v, want %v", c.Version, want))
			}
		}
		seen.Add(1)
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

// writeLoop writes the chunks (paced: chunk k once the client has sent k
// packets, its CONNECT being the first) and then closes the connection, so
// that the client meets end of stream and reconnects; with fcbHold it
// leaves it open.
func (b *fcbBroker) writeLoop(conn net.Conn, seen *atomic.Int64, notify <-chan struct{}, readDone <-chan struct{}) {
	for i, ch := range b.chunks {
		for b.flags&fcbPaced != 0 && seen.Load() < int64(i+1) {
			select {
			case <-notify:
			case <-readDone:
				return
			}
		}
		if _, err := conn.Write(ch); err != nil {
			return
		}
	}
	b.once.Do(func() { close(b.allWritten) })
	if b.flags&fcbHold == 0 {
		conn.Close()
	}
}

func (b *fcbBroker) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.firstErr == nil {
		b.firstErr = err
	}
}

func (b *fcbBroker) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.firstErr
}

// shutdown closes every connection and waits for the broker's goroutines.
func (b *fcbBroker) shutdown() {
	b.mu.Lock()
	b.closed = true
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
