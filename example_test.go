package mqttas_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/mqtttest"
)

// startExampleBroker starts the embedded broker the examples talk to; in an
// application, Server names a real broker.
func startExampleBroker() *mqtttest.Broker {
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// Connect, subscribe, publish and read the message back.
func Example() {
	b := startExampleBroker()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := mqttas.New(mqttas.Config{Server: b.Addr()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err) // refused, unreachable or timed out: the error says which
	}
	if err := c.Subscribe(ctx, "shed/#", 1); err != nil {
		log.Fatal(err)
	}
	// Returns once the broker's PUBACK has arrived.
	if err := c.Publish(ctx, "shed/temp", []byte("21.5"), 1, false); err != nil {
		log.Fatal(err)
	}
	m := <-c.Messages()
	fmt.Printf("%s %s QoS %d\n", m.Topic, m.Payload, m.QoS)
	// Output: shed/temp 21.5 QoS 1
}

// Up and Down report the link. The client reconnects by itself; the
// application only watches.
func ExampleClient_Up() {
	b := startExampleBroker()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := mqttas.New(mqttas.Config{Server: b.Addr(), ReconnectMin: 10 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	<-c.Up()
	fmt.Println("We are connected to broker.")

	b.Stop() // the broker goes away...
	<-c.Down()
	fmt.Println("WiFi or broker is down.")

	b.Start() // ...and comes back
	<-c.Up()
	fmt.Println("We are connected to broker.")
	fmt.Println("outages:", c.Stats().Outages)
	// Output:
	// We are connected to broker.
	// WiFi or broker is down.
	// We are connected to broker.
	// outages: 1
}

// OnMessage receives messages on a goroutine of its own, so it may publish
// in turn.
func ExampleConfig_onMessage() {
	b := startExampleBroker()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	replies := make(chan string, 1)
	var c *mqttas.Client
	c, err := mqttas.New(mqttas.Config{
		Server: b.Addr(),
		OnMessage: func(m mqttas.Message) {
			switch m.Topic {
			case "ping":
				// Publishing from the callback does not block the client.
				if err := c.Publish(ctx, "pong", m.Payload, 1, false); err != nil {
					log.Print(err)
				}
			case "pong":
				replies <- string(m.Payload)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	for _, f := range []string{"ping", "pong"} {
		if err := c.Subscribe(ctx, f, 1); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.Publish(ctx, "ping", []byte("hello"), 1, false); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reply:", <-replies)
	// Output: reply: hello
}

// With PersistentSession the broker keeps the subscription and queues QoS 1
// messages while the client is away; they arrive after the outage.
func ExampleConfig_persistentSession() {
	b := startExampleBroker()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := mqttas.New(mqttas.Config{
		Server:            b.Addr(),
		ClientID:          "shed-sensor",
		PersistentSession: true,
		ReconnectMin:      10 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	<-c.Up()
	if err := c.Subscribe(ctx, "shed/cmd", 1); err != nil {
		log.Fatal(err)
	}

	b.Stop() // an outage; the broker keeps the session
	<-c.Down()
	if err := b.Publish("shed/cmd", []byte("lights on"), 1, false); err != nil {
		log.Fatal(err) // queued for the absent client
	}
	b.Start()

	m := <-c.Messages()
	fmt.Printf("after the outage: %s %q\n", m.Topic, m.Payload)
	// Output: after the outage: shed/cmd "lights on"
}
