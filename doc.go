// Package mqttas is an MQTT client for devices and services on bad
// networks. It keeps its connection up through WiFi dropouts, broker
// restarts and half-open links, and it never reports a message as sent
// before it is. Its behaviour is modelled on mqtt_as, the resilient
// MicroPython client.
//
// # Lifecycle
//
// New validates a Config and returns a Client; Connect makes the first
// connection and returns its failure, if any (or, with Config.ConnectRetry,
// keeps trying until its context ends). From then on the client reconnects
// by itself after every outage, with jittered exponential backoff between
// Config.ReconnectMin and ReconnectMax, switching to Config.Backup when one
// server stays unreachable. Disconnect ends the session politely (the
// broker discards the will); Close just stops. After either, every call
// returns ErrClosed.
//
// # Delivery
//
// Publish returns when the message is done: written (QoS 0), acknowledged
// by PUBACK (QoS 1) or by PUBCOMP (QoS 2). Through an outage it waits for
// the link. An unacknowledged QoS 1 message is resent with DUP set up to
// Config.MaxRepubs times; then the link is declared dead, the client
// reconnects and publishes the message again, as mqtt_as does. After a
// reconnect that resumes the session, unacknowledged messages are resent
// first, in order, with their original packet identifiers; without a
// session they are published again as new messages. A QoS 2 message is
// never published again once the broker has acknowledged it with PUBREC, so
// the broker sees it once.
//
// Incoming messages arrive on Messages, a bounded channel that drops the
// oldest message when the application falls behind and counts the drops in
// Stats.Discards, or on a Config.OnMessage callback. Subscriptions are
// remembered and restored after any reconnect on which the broker kept no
// session.
//
// # Link state
//
// Up receives a value after each connection is established and restored,
// Down once per outage. Both are buffered and coalescing: the client never
// blocks on them. The link is probed with PINGREQ whenever nothing has been
// received (or sent) for Config.PingInterval, and declared dead when a probe
// draws no answer within Config.ResponseTime, so a half-open link is
// detected within PingInterval + ResponseTime. BrokerUp asks the broker
// directly; WANOK asks a DNS resolver, so that an application can tell a
// WiFi or WAN outage from a broker outage, as mqtt_as's wan_ok does.
//
// # MQTT 5.0
//
// Config.MQTTv5 switches the protocol; 3.1.1 stays the default. With 5.0:
//
//   - messages carry Properties both ways (WithProperties on Publish,
//     Message.Properties on receipt), with any number of user properties in
//     order; the will takes properties too, will delay included;
//   - Subscribe takes NoLocal, RetainAsPublished, RetainHandling and
//     SubscriptionID;
//   - every failure code in an acknowledgement is an *AckError that
//     matches a sentinel (ErrNotAuthorized, ErrQuotaExceeded, ...); "no
//     matching subscribers" is a success;
//   - the limits the broker grants in CONNACK are honoured and readable
//     through Link: Receive Maximum (Publish waits rather than exceed it),
//     Maximum QoS (a higher QoS is downgraded), Retain Available, Maximum
//     Packet Size (an oversized packet is refused locally with
//     ErrPacketTooLarge instead of costing the connection), Server Keep
//     Alive (adopted), Assigned Client Identifier (kept for reconnects);
//   - PersistentSession is expressed as Session Expiry (Config.SessionExpiry)
//     with the same power-up and outage rules as 3.1.1;
//   - Config.TopicAliases shortens repeated topics on the wire; the
//     broker's aliases are resolved per connection;
//   - a broker's DISCONNECT is reported by LastError as a *DisconnectError
//     before the client reconnects, unless reconnecting is pointless
//     (another client took the session over, or a reconnect is refused as
//     banned or for a bad authentication method), in which case the client
//     closes itself; a Server Reference with Use Another Server or Server
//     Moved sends the next attempt there;
//   - an empty ClientID is left to the broker to assign, and kept;
//   - Request and Respond do request/response over a response topic with
//     correlation data; Config.Auth and Reauthenticate do enhanced
//     authentication.
//
// One rule differs from 3.1.1: MQTT 5.0 forbids resending a PUBLISH on a
// live connection, so MaxRepubs only sets how many rounds of ResponseTime
// to wait for an acknowledgement before the link is declared dead; the
// message is resent after the reconnect.
//
// # Goroutines
//
// Each connection has exactly two goroutines, a reader (the only reader of
// the socket) and a pinger, owned by one supervisor goroutine per Client
// that waits for both before it dials again. With OnMessage set, one more
// goroutine runs the callback, off the reader and outside every lock, so a
// callback may call Publish or Subscribe. Writes have no goroutine of their
// own: packets are encoded whole into one buffer, and the caller that finds
// no write in progress writes it, so concurrent publishers share one
// syscall. Every write has a deadline of ResponseTime, so a broker that
// stops reading is detected too.
//
// The wire codec is the separate package
// [github.com/mqttas/mqttas/packet], usable on its own.
package mqttas
