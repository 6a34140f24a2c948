package mqttas_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mqttas/mqttas"
)

// MQTT 5.0: properties travel with the message, user properties in order,
// and a subscription identifier tells which subscription matched.
func ExampleWithProperties() {
	b := startExampleBroker()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := mqttas.New(mqttas.Config{Server: b.Addr(), MQTTv5: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	if err := c.Subscribe(ctx, "shed/#", 1, mqttas.SubscriptionID(7)); err != nil {
		log.Fatal(err)
	}
	props := &mqttas.Properties{
		ContentType: "application/json",
		User:        []mqttas.UserProperty{{Key: "unit", Value: "C"}, {Key: "sensor", Value: "t1"}},
	}
	if err := c.Publish(ctx, "shed/temp", []byte(`{"t":21.5}`), 1, false, mqttas.WithProperties(props)); err != nil {
		log.Fatal(err)
	}
	m := <-c.Messages()
	p := m.Properties
	fmt.Println(m.Topic, string(m.Payload), p.ContentType)
	fmt.Println("subscription", p.SubscriptionIDs)
	for _, u := range p.User {
		fmt.Printf("%s=%s\n", u.Key, u.Value)
	}
	fmt.Println("broker allows QoS up to", c.Link().MaximumQoS)
	// Output:
	// shed/temp {"t":21.5} application/json
	// subscription [7]
	// unit=C
	// sensor=t1
	// broker allows QoS up to 2
}

// Request and Respond: MQTT 5.0's request/response, with the response
// topic and correlation data handled by the client.
func ExampleClient_Request() {
	b := startExampleBroker()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connect := func(id string) *mqttas.Client {
		c, err := mqttas.New(mqttas.Config{Server: b.Addr(), MQTTv5: true, ClientID: id})
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			log.Fatal(err)
		}
		return c
	}

	// The service answers every request on svc/upper.
	svc := connect("service")
	if err := svc.Subscribe(ctx, "svc/upper", 1); err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for req := range svc.Messages() {
			svc.Respond(ctx, req, bytes.ToUpper(req.Payload), 1)
		}
	}()

	c := connect("caller")
	reply, err := c.Request(ctx, "svc/upper", []byte("hello"), 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply.Payload))
	c.Close()
	svc.Close()
	<-done
	// Output: HELLO
}
