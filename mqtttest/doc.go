// Package mqtttest holds test helpers that users of mqttas can put their own
// applications through: an embedded MQTT broker and a fault-injecting,
// MQTT-aware TCP proxy to put between a client and that broker (or any
// other). Both run in-process on loopback and need nothing installed.
//
// # Broker
//
// StartBroker (or NewBroker) starts a mochi-mqtt broker that speaks MQTT
// 3.1.1 and 5.0 on a free loopback port. It keeps sessions in memory, so
// the broker's own life can be part of a test:
//
//   - Stop closes every connection abruptly and stops listening; Start
//     listens again on the same port. Sessions survive, as on a broker
//     restarted with persistence: a client reconnecting with a persistent
//     session gets session present and its queued QoS 1 and 2 messages.
//   - Restart(false) also forgets every session, subscription and retained
//     message, as on a broker restarted without persistence.
//   - DropPubacks loses the next QoS 1 PUBLISH packets, to exercise a
//     client's republishing.
//   - Publish injects messages and Subscribe observes them from the test,
//     without a second client.
//
// # Proxy
//
// StartProxy (or NewProxy) listens on a free loopback port and forwards each
// connection to a target address, normally Broker.Addr. Faults are set on
// the proxy and apply at once to open connections and to new ones, per
// Direction (ToBroker, ToClient or Both):
//
//   - Blackhole: read and discard, sockets open (a half-open link, or with
//     ToClient on a fresh connection, a broker that never sends CONNACK);
//   - StopReading: stop reading, so the sender's writes eventually block;
//   - Reset (RST), CloseConns (FIN) and Refuse (accept, then close);
//   - Latency with jitter, order preserved, and Chunk, which writes at most
//     n bytes at a time;
//   - Rule: a function that sees every MQTT packet and answers with an
//     Action: Forward, Drop, Duplicate, Delay, TruncateAndClose, ResetConn
//     or BlackholeFrom.
//
// Heal removes every fault. Conns, Accepted and WaitConns tell a test what
// the proxy has seen without polling.
//
// # MQTT awareness
//
// The proxy splits each direction of a connection into control packets
// with a packet.Reader, so that rules, latency and truncation act on whole
// packets, and forwards every packet byte for byte as it arrived. When a
// direction does not start like MQTT (a client's CONNECT naming the MQTT
// protocol, a broker's CONNACK or AUTH), or later stops parsing, the proxy
// falls back to plain byte forwarding for the rest of that connection:
// everything read so far is passed on unchanged, the faults that do not
// depend on packets (blackholes, stalls, latency, chunking, resets) still
// apply, and rules are no longer consulted. A TLS connection is such a
// case: it is proxied, but its packets cannot be seen.
//
// # Goroutines and shutdown
//
// Broker.Close and Proxy.Close are idempotent and return only when every
// goroutine the helper started has exited, so tests can check for leaks
// (go.uber.org/goleak) after them. The Start functions register Close with
// testing.TB.Cleanup.
package mqtttest
