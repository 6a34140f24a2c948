package mqttas_test

// MQTT 5.0 against a real mosquitto: properties cross intact in both
// directions, checked by mosquitto's own clients, and the Receive Maximum
// mosquitto grants holds under a burst.

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttas/mqttas"
	"github.com/mqttas/mqttas/internal/mosquitto"
)

func mosqV5Config(t *testing.T, server, clientID string) mqttas.Config {
	cfg := mosqConfig(t, server, clientID)
	cfg.MQTTv5 = true
	return cfg
}

// orderedUser reads mosquitto_sub's "user-properties" object, whose keys
// repeat, in order: encoding/json's maps would keep only the last.
func orderedUser(t *testing.T, raw json.RawMessage) []mqttas.UserProperty {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(raw)))
	var out []mqttas.UserProperty
	if _, err := d.Token(); err != nil { // {
		t.Fatal(err)
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, mqttas.UserProperty{Key: k.(string), Value: v})
	}
	return out
}

var wantUser = []mqttas.UserProperty{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"}}

func TestMosquittoV5PropertiesToMosquittoSub(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := fxCtx(t, 10*time.Second)
	s, err := b.Sub(ctx, "-V", "5", "-q", "1", "-t", "v5out/#", "-F", "%j")
	if err != nil {
		t.Fatal(err)
	}
	c := mosqConnect(t, mosqV5Config(t, b.Addr(), "v5-out"))
	props := &mqttas.Properties{
		PayloadFormat: 1, MessageExpiry: 60, ContentType: "text/plain",
		ResponseTopic: "v5out/reply", CorrelationData: []byte("corr-1"), User: wantUser,
	}
	if err := c.Publish(ctx, "v5out/t", []byte("hello"), 1, false, mqttas.WithProperties(props)); err != nil {
		t.Fatal(err)
	}
	line, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Topic      string
		QoS        int `json:"qos"`
		Payload    string
		Properties struct {
			ContentType   string          `json:"content-type"`
			User          json.RawMessage `json:"user-properties"`
			Correlation   string          `json:"correlation-data"`
			ResponseTopic string          `json:"response-topic"`
			PayloadFormat int             `json:"payload-format-indicator"`
			Expiry        int             `json:"message-expiry-interval"`
		}
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("mosquitto_sub printed %q: %v", line, err)
	}
	p := got.Properties
	if got.Topic != "v5out/t" || got.Payload != "hello" || got.QoS != 1 || p.ContentType != "text/plain" ||
		p.Correlation != "corr-1" || p.ResponseTopic != "v5out/reply" || p.PayloadFormat != 1 || p.Expiry < 1 || p.Expiry > 60 {
		t.Errorf("mosquitto_sub saw %s", line)
	}
	if u := orderedUser(t, p.User); fmt.Sprint(u) != fmt.Sprint(wantUser) {
		t.Errorf("user properties at mosquitto_sub: %v, want %v in that order", u, wantUser)
	}
}

func TestMosquittoV5PropertiesFromMosquittoPub(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{})
	ctx := fxCtx(t, 10*time.Second)
	c := mosqConnect(t, mosqV5Config(t, b.Addr(), "v5-in"))
	if err := c.Subscribe(ctx, "v5in/#", 1, mqttas.SubscriptionID(42)); err != nil {
		t.Fatal(err)
	}
	if err := b.Pub(ctx, "-V", "5", "-q", "1", "-t", "v5in/t", "-m", "hello",
		"-D", "publish", "content-type", "text/plain",
		"-D", "publish", "user-property", "a", "1",
		"-D", "publish", "user-property", "b", "2",
		"-D", "publish", "user-property", "a", "3",
		"-D", "publish", "correlation-data", "corr-2",
		"-D", "publish", "response-topic", "v5in/reply",
		"-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "message-expiry-interval", "60"); err != nil {
		t.Fatal(err)
	}
	m := fxRecv(t, c, 5*time.Second)
	p := m.Properties
	if p == nil {
		t.Fatalf("message without properties: %+v", m)
	}
	if m.Topic != "v5in/t" || string(m.Payload) != "hello" || p.ContentType != "text/plain" ||
		string(p.CorrelationData) != "corr-2" || p.ResponseTopic != "v5in/reply" || p.PayloadFormat != 1 ||
		p.MessageExpiry < 1 || p.MessageExpiry > 60 || fmt.Sprint(p.SubscriptionIDs) != "[42]" {
		t.Errorf("received %+v with properties %+v", m, *p)
	}
	if fmt.Sprint(p.User) != fmt.Sprint(wantUser) {
		t.Errorf("user properties %v, want %v in that order", p.User, wantUser)
	}
}

// mosquitto grants a Receive Maximum (here 5) and refuses what exceeds it
// with "quota exceeded" (0x97). A burst of concurrent QoS 1 and 2
// publishes, far more than that, must all succeed on one connection.
func TestMosquittoV5ReceiveMaximumBurst(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{Extra: []string{"max_inflight_messages 5"}})
	cfg := mosqV5Config(t, b.Addr(), "v5-burst")
	cfg.MaxInflight = 200
	c := mosqConnect(t, cfg)
	l := c.Link()
	if l.Version != 5 || l.ReceiveMaximum != 5 {
		t.Fatalf("Link() = version %d, Receive Maximum %d; want 5 and mosquitto's 5", l.Version, l.ReceiveMaximum)
	}
	ctx := fxCtx(t, 20*time.Second)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if err := c.Publish(ctx, "burst/t", []byte(fmt.Sprint(i)), byte(1+i%2), false); err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Outages != 0 || st.InFlight != 0 {
		t.Errorf("stats %+v: want no outage and nothing left in flight", st)
	}
}
