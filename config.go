package mqttas

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// DialFunc opens the byte stream to a broker. It is the transport hook: any
// net.Conn will do (TCP, a Unix socket, a tunnel, a test pipe). The client
// layers TLS on top itself when the server address asks for it. ctx bounds
// the dial alone, to Config.ResponseTime: the connection must outlive it.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures a Client. Every zero value means the default given in
// its comment, so Config{Server: "broker:1883"} is a complete configuration.
// New copies the Config; later changes to it, or to the TLS config it points
// at, do not affect the Client.
type Config struct {
	// Server is the broker: "host", "host:port" or a URL with scheme mqtt,
	// tcp (plain) or mqtts, ssl, tls (TLS). The port defaults to 1883, or
	// 8883 with TLS. Required.
	Server string
	// Backup is a second broker in the same forms. When reconnecting to one
	// server has backed off all the way to ReconnectMax, the client switches
	// to the other and starts again from ReconnectMin; it stays with whichever
	// answers (the Mongoose OS mqtt1 rule).
	Backup string

	// ClientID identifies the session. Empty: an ID is generated, once, and
	// kept for the Client's life so a persistent session can resume
	// ("mqttas" and 16 hex digits, which every 3.1.1 broker accepts). With
	// MQTTv5 an empty ClientID is sent empty instead, and the broker
	// assigns one (Link().ClientID), which the client keeps for every
	// later connection; set ClientID for ResumeOnStart, since a new run
	// would be assigned a new one.
	ClientID string
	User     string
	Password string // never logged

	// KeepAlive is the keep-alive interval sent to the broker [60s]. It must
	// be under 65,536 s; a negative value turns keep-alive off (0 on the wire).
	KeepAlive time.Duration
	// PingInterval is how long the link may stay silent before the client
	// sends PINGREQ [KeepAlive/4, or 15s with keep-alive off]. It can only
	// shorten the default, as in mqtt_as: a longer value is cut to
	// KeepAlive/4. Silence counts
	// from the last byte received (so a client that only sends still notices
	// a dead broker) and from the last packet sent (so the broker's
	// keep-alive never lapses). A dead link is reported within PingInterval
	// + ResponseTime.
	PingInterval time.Duration
	// ResponseTime bounds every wait on the broker [10s]: CONNACK, PINGRESP,
	// each PUBACK, SUBACK, UNSUBACK, and every write.
	ResponseTime time.Duration

	// TLS configures TLS. nil means plain TCP unless Server is a TLS URL,
	// which then uses a default configuration (verification on, SNI from the
	// host). Set, it makes every connection TLS, with 8883 as the default
	// port. The Client clones it.
	TLS *tls.Config
	// Dial opens connections [a net.Dialer]. The address is re-resolved on
	// every attempt, so a broker that moves is found again.
	Dial DialFunc
	// WANResolver is the "host:port" of the DNS resolver that WANOK asks
	// [8.8.8.8:53]. WANOK checks the path to the internet without the
	// broker, so that an application can tell a WiFi or WAN outage from a
	// broker outage; choose a resolver beyond the router, since one on the
	// LAN can answer from its cache while the WAN is down.
	WANResolver string

	Will *Will

	// MaxRepubs is how often an unacknowledged QoS 1 PUBLISH is resent with
	// DUP set, ResponseTime apart, before the client gives up on the link
	// and reconnects [4]. On the new connection the message is resent with
	// its original identifier and DUP if the broker kept the session, and
	// published again on a new identifier if not. Negative: never resend
	// on a live link. MQTT 5.0 forbids resends on a live link, so there
	// MaxRepubs only counts rounds of ResponseTime to wait before
	// reconnecting.
	MaxRepubs int
	// MaxInflight caps QoS 1 and 2 publishes awaiting acknowledgement;
	// further Publish calls wait for a slot [64].
	MaxInflight int
	// MaxPacketSize caps an incoming packet, fixed header included [1 MiB].
	// A larger one is refused before it is read, and the client reconnects.
	MaxPacketSize int

	// QueueLen is the capacity of the Messages channel, or of the queue in
	// front of OnMessage [64]. When it is full the oldest message is dropped
	// and counted in Stats.Discards.
	QueueLen int
	// OnMessage, if set, receives every incoming message instead of the
	// Messages channel. It runs on a goroutine of its own, one message at a
	// time, never under a client lock, and may call Publish or Subscribe.
	OnMessage func(Message)

	// PersistentSession asks the broker to keep the session (subscriptions
	// and undelivered QoS 1 and 2 messages) across outages: clean session
	// off. The default, false, is mqtt_as's clean=True: each connection
	// starts afresh and the client restores its subscriptions itself.
	PersistentSession bool
	// ResumeOnStart makes the first connection of a PersistentSession client
	// resume whatever session the broker holds from an earlier run. The
	// default, false, is mqtt_as's clean_init=True: at power-up the old
	// session and its backlog are discarded, and only outages after that are
	// ridden out with the session kept.
	ResumeOnStart bool

	// ConnectRetry makes Connect keep trying, with backoff, until it succeeds
	// or its ctx ends, instead of returning the first failure.
	ConnectRetry bool
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// reconnect attempts [1s, 60s]. Each delay is then jittered by ±25%, so
	// that clients that lost the same broker do not return in step: delays
	// run from 0.75×ReconnectMin to 1.25×ReconnectMax. A connection that stays up for
	// one keep-alive round (PingInterval + ResponseTime) proves the link: the
	// backoff starts again from ReconnectMin, and the first attempt after
	// its loss is made at once. A dial the broker's host refuses outright
	// (nothing listening: the broker is restarting) does not grow the delay:
	// it is retried within 0.75–1×ReconnectMin, so the client is back within
	// ReconnectMin of the broker's return, however long the restart took.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// Logger receives connects, outages with their cause and republishes
	// [discard].
	Logger *slog.Logger

	// MQTTv5 makes the client speak MQTT 5.0 (mqtt_as's mqttv5) instead
	// of 3.1.1: properties on messages, reason codes in every
	// acknowledgement, and the limits the broker grants in CONNACK, which
	// the client honours (see Link).
	MQTTv5 bool
	// SessionExpiry is how long an MQTT 5.0 broker keeps a
	// PersistentSession after the link drops [never]. In 5.0 it is what
	// makes a session persistent: with PersistentSession off it is 0 and
	// the session ends with the connection, as clean session does in 3.1.1.
	// Whole seconds, under 2^32 s; longer means never.
	SessionExpiry time.Duration
	// ConnectProperties are extra MQTT 5.0 CONNECT properties: Receive
	// Maximum, Topic Alias Maximum (how many topic aliases the broker may
	// use towards the client), Request Response Information, Request
	// Problem Information, user properties. Session Expiry and Maximum
	// Packet Size come from SessionExpiry and MaxPacketSize instead. The
	// Client copies them.
	ConnectProperties *Properties
	// TopicAliases makes the client replace topics with MQTT 5.0 topic
	// aliases on the wire, up to the broker's Topic Alias Maximum: each
	// topic gets an alias the first time it is published on a connection,
	// first come first served, and later publishes to it send two bytes
	// instead of the topic. Every new connection starts without aliases.
	// Worth it for long topics published often; off by default.
	TopicAliases bool
	// AuthMethod and Auth enable MQTT 5.0 enhanced authentication, such
	// as SCRAM or Kerberos: CONNECT names AuthMethod, and Auth computes
	// each step of the exchange of AUTH packets (see AuthFunc). Both or
	// neither.
	AuthMethod string
	Auth       AuthFunc
}

// AuthFunc computes one step of an MQTT 5.0 enhanced authentication
// exchange: given the broker's authentication data (nil for the first
// step, which goes in CONNECT or in the AUTH that starts a
// re-authentication), it returns the client's. When the broker accepts
// the client with final data of its own (in CONNACK, or in the AUTH that
// ends a re-authentication), AuthFunc is called once more with it, so the
// client can verify the broker; its returned data is then unused, and an
// error fails the connection. It runs on the goroutine connecting or
// calling Reauthenticate, never on the reader.
type AuthFunc func(ctx context.Context, method string, serverData []byte) ([]byte, error)

// Will is the message the broker publishes for the client if it vanishes
// without calling Disconnect.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Properties are the will's MQTT 5.0 properties, Will Delay Interval
	// included (the broker then waits that long before publishing it, and
	// not at all if the client is back in time). They need MQTTv5.
	Properties *Properties
}

// server is a parsed Server or Backup.
type server struct {
	addr string // host:port
	host string // for SNI
	tls  bool
}

func (s server) String() string { return s.addr }

// parseServer parses Server or Backup; withTLS says Config.TLS is set,
// which makes the connection TLS, and its default port 8883, whatever the
// scheme.
func parseServer(field, s string, withTLS bool) (server, error) {
	if s == "" {
		return server{}, fmt.Errorf("mqttas: Config.%s is empty: give a host, host:port or URL such as mqtt://broker:1883", field)
	}
	srv := server{tls: withTLS}
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return server{}, fmt.Errorf("mqttas: Config.%s %q is not a valid URL: %w", field, s, err)
		}
		switch u.Scheme {
		case "mqtt", "tcp":
		case "mqtts", "ssl", "tls":
			srv.tls = true
		default:
			return server{}, fmt.Errorf("mqttas: Config.%s %q: unsupported scheme %q (use mqtt, tcp, mqtts, ssl or tls)", field, s, u.Scheme)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the whole thing is the host (brackets allowed for IPv6).
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	if host == "" {
		return server{}, fmt.Errorf("mqttas: Config.%s %q has no host", field, s)
	}
	if port == "" {
		port = "1883"
		if srv.tls {
			port = "8883"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return server{}, fmt.Errorf("mqttas: Config.%s %q: port %q is not a number from 1 to 65535", field, s, port)
	}
	srv.host = host
	srv.addr = net.JoinHostPort(host, port)
	return srv, nil
}

// settings is a validated Config with every default filled in.
type settings struct {
	Config
	servers       []server // Server, then Backup if set
	keepAlive     uint16   // seconds, as sent
	sessionExpiry uint32   // seconds, as sent in MQTT 5.0
}

func (c Config) settings() (*settings, error) {
	s := &settings{Config: c}
	primary, err := parseServer("Server", c.Server, c.TLS != nil)
	if err != nil {
		return nil, err
	}
	s.servers = []server{primary}
	if c.Backup != "" {
		backup, err := parseServer("Backup", c.Backup, c.TLS != nil)
		if err != nil {
			return nil, err
		}
		s.servers = append(s.servers, backup)
	}
	if c.TLS != nil {
		s.TLS = c.TLS.Clone()
	}
	if s.ClientID == "" && !c.MQTTv5 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		// Letters and digits only, at most 23 of them: the identifiers
		// every 3.1.1 broker must accept.
		s.ClientID = "mqttas" + hex.EncodeToString(b[:])
	}
	switch {
	case c.KeepAlive == 0:
		s.KeepAlive = 60 * time.Second
	case c.KeepAlive < 0:
		s.KeepAlive = 0
	case c.KeepAlive >= 65536*time.Second:
		return nil, fmt.Errorf("mqttas: Config.KeepAlive %v is too long: MQTT allows at most 65535s", c.KeepAlive)
	case c.KeepAlive < time.Second:
		return nil, fmt.Errorf("mqttas: Config.KeepAlive %v is under the protocol's one-second resolution", c.KeepAlive)
	}
	s.keepAlive = uint16(s.KeepAlive / time.Second)
	// As in mqtt_as, PingInterval can only shorten the default: a longer one
	// would let the broker's keep-alive lapse.
	switch def := s.KeepAlive / 4; {
	case s.KeepAlive == 0 && s.PingInterval <= 0:
		s.PingInterval = 15 * time.Second
	case s.KeepAlive > 0 && (s.PingInterval <= 0 || s.PingInterval > def):
		s.PingInterval = def
	}
	if s.ResponseTime <= 0 {
		s.ResponseTime = 10 * time.Second
	}
	if s.Dial == nil {
		var d net.Dialer
		s.Dial = d.DialContext
	}
	if s.WANResolver == "" {
		s.WANResolver = "8.8.8.8:53"
	} else if host, port, err := net.SplitHostPort(s.WANResolver); err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("mqttas: Config.WANResolver %q is not a host:port such as 8.8.8.8:53 or [2001:4860:4860::8888]:53", s.WANResolver)
	}
	if w := c.Will; w != nil {
		if w.QoS > 2 {
			return nil, fmt.Errorf("mqttas: Config.Will.QoS %d is not 0, 1 or 2", w.QoS)
		}
		if err := packet.TopicNameError(w.Topic); err != nil {
			return nil, fmt.Errorf("mqttas: Config.Will.Topic: %w", err)
		}
		cp := *w
		cp.Payload = bytes.Clone(w.Payload)
		if w.Properties != nil {
			props := *w.Properties
			props.User = slices.Clone(props.User)
			props.CorrelationData = bytes.Clone(props.CorrelationData)
			cp.Properties = &props
		}
		s.Will = &cp
	}
	if s.MaxRepubs == 0 {
		s.MaxRepubs = 4
	} else if s.MaxRepubs < 0 {
		s.MaxRepubs = 0
	}
	if s.MaxInflight <= 0 {
		s.MaxInflight = 64
	} else if s.MaxInflight > 65000 {
		return nil, fmt.Errorf("mqttas: Config.MaxInflight %d exceeds the 65,000 packet identifiers the client can have in use", s.MaxInflight)
	}
	if s.MaxPacketSize <= 0 {
		s.MaxPacketSize = 1 << 20
	}
	if s.QueueLen <= 0 {
		s.QueueLen = 64
	}
	if s.ReconnectMin <= 0 {
		s.ReconnectMin = time.Second
	}
	if s.ReconnectMax <= 0 {
		s.ReconnectMax = 60 * time.Second
	}
	if s.ReconnectMax < s.ReconnectMin {
		return nil, fmt.Errorf("mqttas: Config.ReconnectMax %v is shorter than ReconnectMin %v", s.ReconnectMax, s.ReconnectMin)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ConnectProperties != nil {
		if !c.MQTTv5 {
			return nil, fmt.Errorf("mqttas: Config.ConnectProperties are MQTT 5.0 properties: set MQTTv5 too")
		}
		p := cloneProperties(c.ConnectProperties)
		s.ConnectProperties = &p
		if p.AuthMethod != "" || len(p.AuthData) > 0 {
			return nil, fmt.Errorf("mqttas: Config.ConnectProperties: set enhanced authentication with Config.AuthMethod and Config.Auth, which answer the broker's AUTH packets")
		}
		if _, err := (&packet.Connect{ClientID: "x", Properties: p}).AppendTo(nil, packet.V5); err != nil {
			return nil, fmt.Errorf("mqttas: Config.ConnectProperties cannot go in CONNECT: %w", err)
		}
	}
	if (c.AuthMethod == "") != (c.Auth == nil) {
		return nil, fmt.Errorf("mqttas: Config.AuthMethod and Config.Auth go together: set both for enhanced authentication, or neither")
	}
	if c.Auth != nil && !c.MQTTv5 {
		return nil, fmt.Errorf("mqttas: Config.Auth is MQTT 5.0 enhanced authentication: set MQTTv5 too")
	}
	if c.TopicAliases && !c.MQTTv5 {
		return nil, fmt.Errorf("mqttas: Config.TopicAliases are an MQTT 5.0 feature: set MQTTv5 too")
	}
	if w := s.Will; w != nil && w.Properties != nil {
		if !c.MQTTv5 {
			return nil, fmt.Errorf("mqttas: Config.Will.Properties are MQTT 5.0 properties: set MQTTv5 too")
		}
		will := &packet.Will{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Properties: *w.Properties}
		if _, err := (&packet.Connect{ClientID: "x", Will: will}).AppendTo(nil, packet.V5); err != nil {
			return nil, fmt.Errorf("mqttas: Config.Will.Properties cannot go in a will: %w", err)
		}
	}
	switch {
	case !s.PersistentSession:
		s.sessionExpiry = 0
	case c.SessionExpiry <= 0 || c.SessionExpiry >= 0xFFFFFFFF*time.Second:
		s.sessionExpiry = 0xFFFFFFFF
	default:
		s.sessionExpiry = uint32((c.SessionExpiry + time.Second - 1) / time.Second)
	}
	return s, nil
}
