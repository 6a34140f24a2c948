package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttas/mqttas/mqtttest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// demoRun is one run of the command through run(), as main calls it.
type demoRun struct {
	code           int
	stdout, stderr string
	summary        summaryJSON
	events         map[string]int // -json event kinds seen
}

func runCmd(t *testing.T, args ...string) demoRun {
	t.Helper()
	var out, errOut bytes.Buffer
	r := demoRun{code: run(args, &out, &errOut), stdout: out.String(), stderr: errOut.String(), events: map[string]int{}}
	if t.Failed() || r.code != 0 {
		t.Logf("range-demo %s\nexit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var e struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		r.events[e.Event]++
		if e.Event == "summary" {
			if err := json.Unmarshal(sc.Bytes(), &r.summary); err != nil {
				t.Fatalf("summary line %s: %v", sc.Text(), err)
			}
		}
	}
	return r
}

// The acceptance run: the awful link for a few seconds. The awful profile
// always starts with a reset, so an outage and a recovery are certain; the
// seed fixes what follows.
func TestAwfulLinkLosesNothing(t *testing.T) {
	report := filepath.Join(t.TempDir(), "run.html")
	r := runCmd(t, "-link", "awful", "-seed", "1", "-duration", "5s", "-interval", "100ms", "-json", "-report", report)
	if r.code != 0 {
		t.Fatalf("exit status %d", r.code)
	}
	s := r.summary
	if s.Published == 0 || s.Acknowledged == 0 {
		t.Fatalf("nothing published: %+v", s)
	}
	if s.Lost != 0 || !s.Watched {
		t.Errorf("lost %d (watched %v), want 0: %+v", s.Lost, s.Watched, s)
	}
	if s.Received < s.Acknowledged {
		t.Errorf("the PC side received %d of %d acknowledged messages", s.Received, s.Acknowledged)
	}
	if s.Outages < 1 || s.Reconnects < 1 || r.events["down"] < 1 || r.events["up"] < 2 {
		t.Errorf("want at least one outage and recovery: outages %d, reconnects %d, events %v", s.Outages, s.Reconnects, r.events)
	}
	if s.Faults < 1 || r.events["fault"] != s.Faults {
		t.Errorf("faults: summary %d, fault events %d", s.Faults, r.events["fault"])
	}
	if s.Acknowledged != r.events["published"] {
		t.Errorf("summary says %d acknowledged, %d publish events printed", s.Acknowledged, r.events["published"])
	}
	checkReport(t, report, s)
}

// checkReport parses the page strictly, as XML, and counts what it drew.
func checkReport(t *testing.T, path string, s summaryJSON) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	count := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("report is not well formed: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok {
			count[el.Name.Local]++
			for _, a := range el.Attr {
				if a.Name.Local == "class" {
					count[el.Name.Local+"."+a.Value]++
				}
				if a.Name.Local == "src" || a.Name.Local == "href" {
					t.Errorf("report fetches %s=%q: it must be self-contained", a.Name.Local, a.Value)
				}
			}
		}
	}
	if count["svg"] != 1 {
		t.Errorf("report has %d svg elements, want 1", count["svg"])
	}
	if got := count["circle.ack"]; got != s.Acknowledged {
		t.Errorf("report plots %d PUBACK latencies, want %d", got, s.Acknowledged)
	}
	if s.Outages > 0 && count["rect.down"] == 0 {
		t.Error("report shows no down period for a run with outages")
	}
	if count["rect.up"] == 0 {
		t.Error("report shows no up period")
	}
	if s.Faults > 0 && count["rect.reset"]+count["rect.out-of-range"]+count["rect.latency"] != s.Faults {
		t.Errorf("report draws %d faults, want %d", count["rect.reset"]+count["rect.out-of-range"]+count["rect.latency"], s.Faults)
	}
}

// The default text output is mqtt_as's.
func TestTextOutput(t *testing.T) {
	r := runCmd(t, "-link", "good", "-duration", "1500ms", "-interval", "100ms", "-mqttv5")
	if r.code != 0 {
		t.Fatalf("exit status %d", r.code)
	}
	for _, want := range []string{
		"We are connected to broker.",
		`Topic: "foo_topic" Message: "pubtest 1" Retained: false`,
		"publish 1 acknowledged after",
		"--- range-demo summary",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !containsRow(r.stdout, "lost", "0") {
		t.Errorf("summary has no 'lost 0' row")
	}
}

func containsRow(out, name, value string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == name && f[1] == value {
			return true
		}
	}
	return false
}

// Against a real broker the PC side is a second client on the same broker.
func TestServerMode(t *testing.T) {
	b := mqtttest.StartBroker(t)
	r := runCmd(t, "-server", b.Addr(), "-duration", "1500ms", "-interval", "100ms", "-json", "-persistent")
	if r.code != 0 {
		t.Fatalf("exit status %d", r.code)
	}
	s := r.summary
	if s.Link != "real" || !s.Watched || s.Acknowledged == 0 || s.Lost != 0 || s.Received < s.Acknowledged {
		t.Errorf("summary %+v", s)
	}
	if s.PubtestsSent == 0 || s.Incoming == 0 {
		t.Errorf("pubtest: sent %d, received %d", s.PubtestsSent, s.Incoming)
	}
}

func TestBadCredentials(t *testing.T) {
	b, err := mqtttest.NewBroker(mqtttest.BrokerOptions{Users: map[string]string{"u": "right"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := runCmd(t, "-server", b.Addr(), "-user", "u", "-password", "wrong", "-duration", "5s")
	if r.code != 1 || !strings.Contains(r.stderr, "check -user and -password") {
		t.Errorf("exit %d, stderr %q: want 1 and advice about -user and -password", r.code, r.stderr)
	}
}

func TestUnreachableBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	r := runCmd(t, "-server", addr, "-pc=false", "-response-time", "500ms", "-duration", "5s")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot connect to "+addr) || !strings.Contains(r.stderr, "is the broker running") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-link", "wobbly"}, `-link "wobbly" is not a known link: choose awful, edge-of-range, good`},
		{[]string{"-server", "b:1883", "-link", "awful"}, "cannot be combined with -server"},
		{[]string{"-user", "u"}, "add -server host:port"},
		{[]string{"-server", "b", "-cert", "c.pem"}, "-cert and -key go together"},
		{[]string{"-interval", "0s"}, "-interval 0s: must be positive"},
		{[]string{"-duration", "-1s"}, "-duration -1s: must be positive"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"-server", "mqtt://b:99999"}, "port"},
		{[]string{"-server", "b", "-ca", "/nonexistent/ca.pem"}, "-ca: open /nonexistent/ca.pem"},
	} {
		r := runCmd(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if r := runCmd(t, "-h"); r.code != 0 || !strings.Contains(r.stderr, "mqtt_as's range test") {
		t.Errorf("-h: exit %d, stderr %q", r.code, r.stderr)
	}
}
