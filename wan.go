package mqttas

import (
	"context"
	"time"

	"github.com/mqttas/mqttas/packet"
)

// BrokerUp reports whether the broker is answering: true at once if
// anything arrived in the last second, else it sends PINGREQ and waits up
// to ResponseTime (or ctx) for any packet. False during an outage.
func (c *Client) BrokerUp(ctx context.Context) bool {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil || cn.dead() {
		return false
	}
	if time.Duration(c.now()-cn.lastRx.Load()) < time.Second {
		return true
	}
	rx := cn.rxSignal()
	if cn.write(&packet.Pingreq{}) != nil {
		return false
	}
	t := time.NewTimer(c.cfg.ResponseTime)
	defer t.Stop()
	select {
	case <-rx:
		return true
	case <-cn.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
