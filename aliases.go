package mqttas

import (
	"fmt"

	"github.com/mqttas/mqttas/packet"
)

// resolveAlias applies an incoming MQTT 5.0 Topic Alias to p and m. A
// PUBLISH with a topic and an alias (re)defines the alias; one with an
// empty topic uses it. Aliases belong to the connection: a new one starts
// with none, as the specification requires. An alias over the maximum the
// client announced, or an unknown one, is a protocol error that ends the
// connection.
func (cn *conn) resolveAlias(p *packet.Publish, m *Message) error {
	a := p.Properties.TopicAlias
	if a == 0 {
		return nil
	}
	var limit uint16
	if cp := cn.c.cfg.ConnectProperties; cp != nil {
		limit = cp.TopicAliasMaximum
	}
	if a > limit {
		return fmt.Errorf("broker used topic alias %d, over the maximum %d the client announced (a protocol error)", a, limit)
	}
	if p.Topic != "" {
		if cn.aliases == nil {
			cn.aliases = make(map[uint16]string)
		}
		cn.aliases[a] = p.Topic
		return nil
	}
	t, ok := cn.aliases[a]
	if !ok {
		return fmt.Errorf("broker used topic alias %d without defining it (a protocol error)", a)
	}
	p.Topic, m.Topic = t, t
	return nil
}

// aliasLocked works out how pub goes on the wire with outgoing topic
// aliases: with its alias instead of its topic when it has one, or with a
// new alias next to its topic while the broker's maximum allows. When
// either applies it fills out with the packet to send, reports true, and
// returns any new alias, which the caller records once the PUBLISH that
// defines it is queued. pub itself is not changed: a resend on a later
// connection starts afresh. Called with the write lock held.
func (cn *conn) aliasLocked(pub, out *packet.Publish) (bool, uint16) {
	if a, ok := cn.outAliases[pub.Topic]; ok {
		*out = *pub
		out.Topic = ""
		out.Properties.TopicAlias = a
		return true, 0
	}
	if len(cn.outAliases) >= int(cn.link.TopicAliasMaximum) {
		return false, 0
	}
	a := uint16(len(cn.outAliases) + 1)
	*out = *pub
	out.Properties.TopicAlias = a
	return true, a
}
