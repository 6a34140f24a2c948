package mqttas

// events carries link state changes to the application. Each channel holds
// one pending signal: sends never block, and several changes the
// application has not yet seen coalesce into one, like mqtt_as's Event
// objects that the application clears after waiting.
type events struct {
	up, down chan struct{}
}

func newEvents() events {
	return events{up: make(chan struct{}, 1), down: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Up returns a channel that receives a value after every successful
// connection and reconnection (after the CONNACK, and after lost messages
// and subscriptions have been restored). It is closed by Close.
func (c *Client) Up() <-chan struct{} { return c.ev.up }

// Down returns a channel that receives a value once per outage, when an
// established connection is lost. Failed reconnect attempts do not signal.
// It is closed by Close.
func (c *Client) Down() <-chan struct{} { return c.ev.down }
