package mqttas

// The reader's handling of each packet the broker sends: messages,
// acknowledgements of the client's own exchanges, and the rest.

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mqttas/mqttas/packet"
)

// handle processes one incoming packet on the reader. A non-nil error
// ends the connection.
func (c *Client) handle(cn *conn, h packet.FixedHeader, body []byte) error {
	switch h.Type {
	case packet.PUBLISH:
		return c.handlePublish(cn, h, body)
	case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
		var ack packet.Puback
		if err := decodeAck(h, body, c.version, &ack); err != nil {
			var pe *packet.Error
			if !errors.As(err, &pe) || pe.Field != "reason code" || ack.ReasonCode.IsError() {
				return fmt.Errorf("bad %v: %w", h.Type, err)
			}
			// A success code the specification does not list for this
			// packet (mochi-mqtt sends PUBACK 0x01): the meaning is clear,
			// and dropping the link over it would loop forever.
			c.log.Debug("mqttas: accepting an acknowledgement with an unlisted success code", "type", h.Type, "code", ack.ReasonCode)
		}
		return c.handleAck(cn, h.Type, &ack)
	case packet.SUBACK:
		var ack packet.Suback
		if err := ack.Decode(h.Flags, body, c.version); err != nil {
			return fmt.Errorf("bad SUBACK: %w", err)
		}
		c.completeAck(ack.PacketID, awaitSuback, ack.ReasonCodes, ack.Properties.ReasonString)
	case packet.UNSUBACK:
		var ack packet.Unsuback
		if err := ack.Decode(h.Flags, body, c.version); err != nil {
			return fmt.Errorf("bad UNSUBACK: %w", err)
		}
		c.completeAck(ack.PacketID, awaitUnsuback, ack.ReasonCodes, ack.Properties.ReasonString)
	case packet.PINGRESP:
		// Its arrival has already been noted by the read; only check it.
		var p packet.Pingresp
		if err := p.Decode(h.Flags, body, c.version); err != nil {
			return fmt.Errorf("bad PINGRESP: %w", err)
		}
	case packet.AUTH:
		if c.version != packet.V5 {
			return errors.New("AUTH from the broker on an MQTT 3.1.1 connection")
		}
		return c.handleAuth(h, body)
	case packet.DISCONNECT:
		if c.version != packet.V5 {
			return errors.New("broker sent DISCONNECT")
		}
		var d packet.Disconnect
		if err := d.Decode(h.Flags, body, c.version); err != nil {
			return fmt.Errorf("bad DISCONNECT: %w", err)
		}
		return &DisconnectError{Code: d.ReasonCode, Reason: d.Properties.ReasonString, ServerReference: d.Properties.ServerReference}
	default:
		return fmt.Errorf("unexpected %v from broker", h.Type)
	}
	return nil
}

func (c *Client) handlePublish(cn *conn, h packet.FixedHeader, body []byte) error {
	// The Reader reuses its buffer: give the message a copy it owns, and
	// let Topic and Payload alias that copy rather than copy twice.
	owned := bytes.Clone(body)
	var p packet.Publish
	if err := p.Decode(h.Flags, owned, c.version); err != nil {
		return fmt.Errorf("bad PUBLISH: %w", err)
	}
	m := Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retained: p.Retain, Dup: p.Dup}
	if c.version == packet.V5 {
		if err := cn.resolveAlias(&p, &m); err != nil {
			return err
		}
		p.Properties.TopicAlias = 0
		p.Properties.Clear(packet.PropTopicAlias)
		if !p.Properties.Empty() {
			props := p.Properties
			m.Properties = &props
		}
	}
	switch p.QoS {
	case 0:
		c.deliver(m)
	case 1:
		// Acknowledge before delivering: an application that reads the
		// message and at once calls Disconnect must find the PUBACK queued
		// ahead of its DISCONNECT, or a persistent session gets the
		// message again. If the write fails the message is delivered all
		// the same.
		err := cn.writeAck(packet.PUBACK, p.PacketID)
		c.deliver(m)
		return ignoreLinkDown(err)
	case 2:
		// Deliver on the first PUBLISH of an identifier and not again until
		// its PUBREL: the broker resends with DUP after an outage.
		c.sess.mu.Lock()
		_, seen := c.sess.rxQoS2[p.PacketID]
		c.sess.rxQoS2[p.PacketID] = struct{}{}
		c.sess.mu.Unlock()
		err := cn.writeAck(packet.PUBREC, p.PacketID) // first, as for QoS 1
		if !seen {
			c.deliver(m)
		}
		return ignoreLinkDown(err)
	}
	return nil
}

// ignoreLinkDown drops errLinkDown: the connection is already ending and
// the reader will see why.
func ignoreLinkDown(err error) error {
	if errors.Is(err, errLinkDown) {
		return nil
	}
	return err
}

// handleAck advances the QoS 1 and 2 exchanges. An MQTT 5.0 failure code
// in PUBACK or PUBREC ends the exchange with an *AckError; "no matching
// subscribers" (0x10) is a success like any other code under 0x80.
func (c *Client) handleAck(cn *conn, t packet.Type, ack *packet.Puback) error {
	id := ack.PacketID
	s := c.sess
	s.mu.Lock()
	switch t {
	case packet.PUBACK:
		if p := s.lookupLocked(id, awaitPuback); p != nil {
			s.finishLocked(p, c.ackError(p, ack))
			s.mu.Unlock()
			cn.w.acked.Add(1)
			return nil
		}
	case packet.PUBREC:
		if p := s.lookupLocked(id, awaitPubrec); p != nil && ack.ReasonCode.IsError() {
			s.finishLocked(p, c.ackError(p, ack)) // refused: no PUBREL follows
			s.mu.Unlock()
			return nil
		}
		if p := s.lookupLocked(id, awaitPubrec, awaitPubcomp); p != nil {
			// From here on only PUBREL is ever resent, never the PUBLISH.
			s.moveLocked(p, cn)
			p.kind, p.sends = awaitPubcomp, 1
			s.mu.Unlock()
			return ignoreLinkDown(cn.writeAck(packet.PUBREL, id))
		}
	case packet.PUBCOMP:
		if p := s.lookupLocked(id, awaitPubcomp); p != nil {
			s.finishLocked(p, nil)
			s.mu.Unlock()
			cn.w.acked.Add(1)
			return nil
		}
	case packet.PUBREL:
		delete(s.rxQoS2, id)
		s.mu.Unlock()
		return ignoreLinkDown(cn.writeAck(packet.PUBCOMP, id))
	}
	s.mu.Unlock()
	// A late ack for an exchange already settled (a resend crossed the
	// answer) is harmless: log it, keep the link.
	c.log.Debug("mqttas: ignoring acknowledgement for unknown packet id", "type", t, "id", id)
	return nil
}

// ackError is the error a PUBACK or PUBREC reports, nil for success.
func (c *Client) ackError(p *pending, ack *packet.Puback) error {
	if !ack.ReasonCode.IsError() {
		return nil
	}
	return &AckError{Op: "publish", Target: p.pub.Topic, Code: ack.ReasonCode, Reason: ack.Properties.ReasonString}
}

func (c *Client) completeAck(id uint16, kind pendingKind, codes []packet.ReasonCode, reason string) {
	s := c.sess
	s.mu.Lock()
	p := s.lookupLocked(id, kind)
	if p == nil {
		s.mu.Unlock()
		c.log.Debug("mqttas: ignoring acknowledgement for unknown packet id", "kind", kind, "id", id)
		return
	}
	p.codes = append(p.codes[:0], codes...)
	p.reason = reason
	s.finishLocked(p, nil)
	s.mu.Unlock()
}

// decodeAck decodes any of the four publish acknowledgements into a, which
// share one layout.
func decodeAck(h packet.FixedHeader, body []byte, v packet.Version, a *packet.Puback) error {
	switch h.Type {
	case packet.PUBREC:
		return (*packet.Pubrec)(a).Decode(h.Flags, body, v)
	case packet.PUBREL:
		return (*packet.Pubrel)(a).Decode(h.Flags, body, v)
	case packet.PUBCOMP:
		return (*packet.Pubcomp)(a).Decode(h.Flags, body, v)
	}
	return a.Decode(h.Flags, body, v)
}
