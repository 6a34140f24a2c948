package mqttas

import "sync/atomic"

// Message is an application message received from the broker. It owns its
// Topic and Payload: nothing in the client touches them after delivery.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
	// Dup is set when the broker marked the message as a possible resend.
	// With QoS 1 the same message may then be delivered twice.
	Dup bool
	// Properties are the MQTT 5.0 properties; nil on 3.1.1 connections.
	Properties *Properties
}

// queue is the bounded delivery channel with mqtt_as's policy: when full,
// the oldest message makes way for the newest and is counted as a discard.
// The reader is its only producer, which is what makes the drop-then-send
// loop below safe without a lock.
type queue struct {
	ch       chan Message
	discards atomic.Uint64
}

func newQueue(n int) *queue { return &queue{ch: make(chan Message, n)} }

// push never blocks.
func (q *queue) push(m Message) {
	for {
		select {
		case q.ch <- m:
			return
		default:
		}
		select {
		case <-q.ch:
			q.discards.Add(1)
		default:
		}
	}
}
