package mqttas_test

// The Eclipse Paho interoperability client scenarios (paho.mqtt.testing's
// client_test.py and client_test5.py), ported to mqttas's public API and
// run against two brokers: the embedded mochi and a real mosquitto. This
// file holds what the scenarios share: the broker table, the topic
// fixtures, connected clients, a sentinel barrier for "nothing else
// arrives" checks, and a raw packet-level client for what the public API
// deliberately cannot express.
//
// The tests are TestPaho311 and TestPaho5, with subtests broker/scenario,
// so that go test -v lists every scenario with its pass status per broker
// and protocol version. Each scenario runs against a broker of its own,
// in parallel with the others.

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/internal/mosquitto"
	"github.com/mqttas/mqttas/mqtttest"
	"github.com/mqttas/mqttas/packet"
)

// pahoWait bounds every single wait of a scenario.
const pahoWait = 5 * time.Second

// pahoOpts asks a broker for the configuration a scenario needs. The zero
// value is an anonymous broker with its defaults.
type pahoOpts struct {
	denySub         string // a topic filter whose SUBSCRIBE the broker refuses
	maxPacketSize   uint32 // the broker's Maximum Packet Size (5.0 CONNACK)
	serverKeepAlive uint16 // seconds: the most keep-alive the broker allows
	receiveMaximum  uint16 // the broker's Receive Maximum (5.0 CONNACK)
}

// pahoBroker is one column of the table: how to start that broker with
// pahoOpts, returning its address.
type pahoBroker struct {
	name  string
	start func(t *testing.T, o pahoOpts) string
}

var pahoBrokers = []pahoBroker{
	{"mochi", startPahoMochi},
	{"mosquitto", startPahoMosquitto},
}

// pahoScenario is one row: a named check run against a broker.
type pahoScenario struct {
	name string
	run  func(t *testing.T, bk pahoBroker)
}

// runPaho runs every scenario against every broker as subtests
// broker/scenario, each in parallel with a broker of its own.
func runPaho(t *testing.T, scenarios []pahoScenario) {
	for _, bk := range pahoBrokers {
		t.Run(bk.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, bk)
				})
			}
		})
	}
}

// startPahoMochi starts the embedded mochi broker: mqtttest's, which
// announces in CONNACK the limits mochi enforces but leaves out (Maximum
// Packet Size, Topic Alias Maximum); or, for a refused SUBSCRIBE,
// helpers_test.go's startMochi, whose ACL hook can refuse (mqtttest's
// allows everything, and mochi allows what any hook allows).
func startPahoMochi(t *testing.T, o pahoOpts) string {
	t.Helper()
	if o.denySub != "" {
		return startMochi(t, mochiOpts{acl: func(topic string, write bool) bool {
			return write || topic != o.denySub
		}}).addr
	}
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{Capabilities: func(c *mqtt.Capabilities) {
		if o.maxPacketSize != 0 {
			c.MaximumPacketSize = o.maxPacketSize
		}
		if o.receiveMaximum != 0 {
			c.ReceiveMaximum = o.receiveMaximum
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if o.serverKeepAlive != 0 {
		if err := b.Server().AddHook(&pahoMaxKeepAlive{max: o.serverKeepAlive}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return b.Addr()
}

// pahoMaxKeepAlive caps the keep-alive of mochi's clients. mochi has no
// maximum keep-alive setting, but a keep-alive changed by an OnConnect
// hook is sent back as Server Keep Alive.
type pahoMaxKeepAlive struct {
	mqtt.HookBase
	max uint16
}

func (h *pahoMaxKeepAlive) ID() string { return "paho-max-keepalive" }

func (h *pahoMaxKeepAlive) Provides(b byte) bool { return b == mqtt.OnConnect }

func (h *pahoMaxKeepAlive) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	if cl.State.Keepalive > h.max {
		cl.State.Keepalive, cl.State.ServerKeepalive = h.max, true
	}
	return nil
}

// startPahoMosquitto starts mosquitto (skipping where it is absent unless
// MQTTAS_REQUIRE_MOSQUITTO is set). A refused SUBSCRIBE needs the
// dynamic-security plugin: stock ACLs never fail one.
func startPahoMosquitto(t *testing.T, o pahoOpts) string {
	t.Helper()
	var extra []string
	if o.denySub != "" {
		conf := filepath.Join(t.TempDir(), "dynsec.json")
		js := fmt.Sprintf(`{"defaultACLAccess":{"publishClientSend":true,"publishClientReceive":true,"subscribe":true,"unsubscribe":true},`+
			`"clients":[],"roles":[{"rolename":"t","acls":[{"acltype":"subscribePattern","topic":%q,"priority":0,"allow":false}]}],`+
			`"groups":[{"groupname":"anon","roles":[{"rolename":"t"}],"clients":[]}],"anonymousGroup":"anon"}`, o.denySub)
		if err := os.WriteFile(conf, []byte(js), 0o600); err != nil {
			t.Fatal(err)
		}
		extra = append(extra,
			"plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
			"plugin_opt_config_file "+conf)
	}
	if o.maxPacketSize != 0 {
		extra = append(extra, fmt.Sprintf("max_packet_size %d", o.maxPacketSize))
	}
	if o.serverKeepAlive != 0 {
		extra = append(extra, fmt.Sprintf("max_keepalive %d", o.serverKeepAlive))
	}
	if o.receiveMaximum != 0 {
		extra = append(extra, fmt.Sprintf("max_inflight_messages %d", o.receiveMaximum))
	}
	return mosquitto.Start(t, mosquitto.Options{Extra: extra}).Addr()
}

// pahoFix holds the Paho fixtures under a prefix unique to the run:
// topics TopicA, TopicA/B, Topic/C, TopicA/C, /TopicA and wildcards
// TopicA/+, +/C, #, /#, /+, +/+, TopicA/#.
type pahoFix struct {
	pfx      string
	topics   [5]string
	wild     [7]string
	sentinel string // a topic of no fixture's, for barriers
}

func newPahoFix() pahoFix {
	f := pahoFix{pfx: "paho" + rand.Text()[:10] + "/"}
	for i, s := range []string{"TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"} {
		f.topics[i] = f.pfx + s
	}
	for i, s := range []string{"TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#"} {
		f.wild[i] = f.pfx + s
	}
	f.sentinel = f.pfx + "sentinel"
	return f
}

// pahoConfig is a client configuration for either broker: short timings,
// the log kept for a failure report.
func pahoConfig(t *testing.T, addr, id string, v5 bool) mqttas.Config {
	cfg := mosqConfig(t, addr, id)
	cfg.MQTTv5 = v5
	return cfg
}

// pahoConnect returns a connected client of cfg, its first Up consumed.
func pahoConnect(t *testing.T, cfg mqttas.Config) *mqttas.Client {
	t.Helper()
	return mosqConnect(t, cfg)
}

// pahoSub subscribes c to filter, failing the test on error.
func pahoSub(t *testing.T, c *mqttas.Client, filter string, qos byte, opts ...mqttas.SubscribeOption) {
	t.Helper()
	if err := c.Subscribe(fxCtx(t, pahoWait), filter, qos, opts...); err != nil {
		t.Fatalf("Subscribe %q: %v", filter, err)
	}
}

// pahoPub publishes, failing the test on error.
func pahoPub(t *testing.T, c *mqttas.Client, topic, payload string, qos byte, retain bool, opts ...mqttas.PublishOption) {
	t.Helper()
	if err := c.Publish(fxCtx(t, pahoWait), topic, []byte(payload), qos, retain, opts...); err != nil {
		t.Fatalf("Publish %q: %v", topic, err)
	}
}

func pahoRecv(t *testing.T, c *mqttas.Client) mqttas.Message {
	t.Helper()
	return fxRecv(t, c, pahoWait)
}

var pahoSentinels atomic.Int64

// pahoBarrier proves that nothing else is on its way to sub: pub publishes
// a sentinel at QoS 1 to f.sentinel (to which sub must be subscribed) and
// the sentinel must be the next message sub receives. Brokers forward one
// publisher's messages in order and answer one connection's packets in
// order, so whatever pub published before, and whatever sub's earlier
// SUBSCRIBE drew (when pub is sub), would have arrived first.
func pahoBarrier(t *testing.T, f pahoFix, pub, sub *mqttas.Client) {
	t.Helper()
	want := fmt.Sprintf("sentinel-%d", pahoSentinels.Add(1))
	pahoPub(t, pub, f.sentinel, want, 1, false)
	if m := pahoRecv(t, sub); m.Topic != f.sentinel || string(m.Payload) != want {
		t.Fatalf("unexpected message %q %q (retained %v, QoS %d) before the sentinel", m.Topic, m.Payload, m.Retained, m.QoS)
	}
}

// pahoUntilSentinel publishes a sentinel from c to itself (subscribed to
// f.sentinel) and returns the messages that arrive before it.
func pahoUntilSentinel(t *testing.T, f pahoFix, c *mqttas.Client) []mqttas.Message {
	t.Helper()
	want := fmt.Sprintf("sentinel-%d", pahoSentinels.Add(1))
	pahoPub(t, c, f.sentinel, want, 1, false)
	var out []mqttas.Message
	for {
		m := pahoRecv(t, c)
		if m.Topic == f.sentinel && string(m.Payload) == want {
			return out
		}
		out = append(out, m)
	}
}

// pahoEndSession closes c and discards its persistent session with a
// clean-session connection under the same identifier, so that the broker
// holds no session when the test ends (mochi counts a stored session as a
// client, and the orderly shutdown of startMochi waits for every client to
// be gone).
func pahoEndSession(t *testing.T, c *mqttas.Client, cfg mqttas.Config) {
	t.Helper()
	_ = c.Close() // it may be closed already
	cfg.PersistentSession, cfg.ResumeOnStart, cfg.SessionExpiry, cfg.Will = false, false, 0, nil
	if err := pahoConnect(t, cfg).Disconnect(fxCtx(t, pahoWait)); err != nil {
		t.Fatal(err)
	}
}

// pahoRawConnect dials addr, sends c encoded for version v and returns
// the broker's CONNACK: a packet-level client, for the CONNECT the public
// API will not send. The connection is closed when the test ends.
func pahoRawConnect(t *testing.T, addr string, c packet.Connect, v packet.Version) *packet.Connack {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, pahoWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(pahoWait)); err != nil {
		t.Fatal(err)
	}
	r := packet.NewReader(nc, 1<<20)
	r.SetVersion(v)
	b, err := c.AppendTo(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	p, err := r.ReadPacket()
	if err != nil {
		t.Fatalf("reading CONNACK: %v", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		t.Fatalf("got %T, want CONNACK", p)
	}
	return ack
}
