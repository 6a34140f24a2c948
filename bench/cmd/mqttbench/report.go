package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is one line of the table: one measure, one value per library in
// the order of libraries().
type row struct {
	Key   string `json:"group"` // the scenario that fills it, as -only names it
	Label string `json:"measure"`
	// Better is "higher" or "lower", saying which way the ratios point;
	// empty for a row without ratios.
	Better string    `json:"better,omitempty"`
	Values []float64 `json:"-"` // NaN: not measured or not applicable
}

// header says what the numbers were measured on.
type header struct {
	Date      string   `json:"date"`
	Go        string   `json:"go"`
	CPU       string   `json:"cpu"`
	Mosquitto string   `json:"mosquitto"`
	Broker    []string `json:"broker_config"`
	Clients   []string `json:"clients"`
	Sizes     string   `json:"sizes"`
}

func newHeader(mosquittoVersion string, n counts) header {
	return header{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Go:        fmt.Sprintf("%s %s/%s, GOMAXPROCS %d", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0)),
		CPU:       fmt.Sprintf("%s, %d logical CPUs", cpuModel(), runtime.NumCPU()),
		Mosquitto: mosquittoVersion,
		Broker:    brokerLimits,
		Clients: []string{
			"mqttas " + moduleVersion("github.com/mqttas/mqttas") + " (MQTT 3.1.1)",
			"paho.mqtt.golang " + moduleVersion("github.com/eclipse/paho.mqtt.golang") + " (MQTT 3.1.1)",
			"paho.golang " + moduleVersion("github.com/eclipse/paho.golang") + " autopaho (MQTT 5.0)",
			"raw: pre-encoded MQTT 3.1.1 over net.TCPConn, 64 KiB bufio each way",
		},
		Sizes: fmt.Sprintf("64-byte payloads; messages per run: QoS 0 end to end %s, QoS 1 sequential %s, QoS 1 with %d in flight %s, "+
			"QoS 2 sequential %s, round trips %s (+%s warm-up); throughput and round-trip rows: %s; "+
			"allocations over %s QoS 0 and %s QoS 1 publishes (+%s warm-up each); %d idle clients; %s of %v per library",
			thousands(int64(n.qos0)), thousands(int64(n.qos1Seq)), n.window, thousands(int64(n.qos1Window)),
			thousands(int64(n.qos2Seq)), thousands(int64(n.rtt)), thousands(int64(n.rttWarm)),
			plural(n.rounds, "one round", "the median of %d rounds, the libraries taking turns"),
			thousands(int64(n.alloc0)), thousands(int64(n.alloc1)), thousands(int64(n.allocWarm)), n.idle,
			plural(n.reconnects, "one broker outage", "%d broker outages (median)"), n.down),
	}
}

// plural returns one if n is 1, else many formatted with n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf(many, n)
}

// cpuModel reads the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// moduleVersion is the version of a module linked into this binary, as
// the build recorded it; the replaced parent module shows as the working
// tree.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(version unknown)"
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return "working tree (" + m.Replace.Path + ")"
			}
			return m.Version
		}
	}
	return "(version unknown)"
}

func (h header) write(w io.Writer) {
	fmt.Fprintf(w, "## mqttbench, %s\n\n", h.Date)
	fmt.Fprintf(w, "- Go: %s\n", h.Go)
	fmt.Fprintf(w, "- CPU: %s\n", h.CPU)
	fmt.Fprintf(w, "- broker: %s, a subprocess on 127.0.0.1, persistence off, anonymous; %s; "+
		"max_packet_size, max_inflight_bytes, max_queued_bytes and memory_limit unset (no limit); log: errors and warnings only. "+
		"The QoS 1 and 2 sequential, round-trip and \"broker with TCP_NODELAY\" rows run against a second such broker with %s "+
		"(with the default, Nagle's algorithm and the client's delayed ACK put up to 40 ms into round trips)\n",
		h.Mosquitto, strings.Join(h.Broker, ", "), brokerNoDelay)
	fmt.Fprintf(w, "- clients: %s\n", strings.Join(h.Clients, "; "))
	fmt.Fprintf(w, "- sizes: %s\n\n", h.Sizes)
}

// writeTable prints rows as one markdown table with the ratios of mqttas
// (column 0) to each peer, and a legend under it.
func writeTable(w io.Writer, names []string, rows []row) {
	// The ratio to raw, the physical limit, comes first.
	peers := make([]int, 0, len(names)-1)
	if j := slices.Index(names, "raw"); j > 0 {
		peers = append(peers, j)
	}
	for j := 1; j < len(names); j++ {
		if names[j] != "raw" {
			peers = append(peers, j)
		}
	}
	fmt.Fprintf(w, "| measure | %s |", strings.Join(names, " | "))
	for _, j := range peers {
		fmt.Fprintf(w, " %s÷%s |", names[0], names[j])
	}
	fmt.Fprintf(w, "\n| --- |%s\n", strings.Repeat(" ---: |", 2*len(names)-1))
	for _, r := range rows {
		mark := ""
		switch r.Better {
		case "higher":
			mark = " ↑"
		case "lower":
			mark = " ↓"
		}
		fmt.Fprintf(w, "| %s%s |", r.Label, mark)
		for _, v := range r.Values {
			fmt.Fprintf(w, " %s |", num(v))
		}
		for _, j := range peers {
			ratio := math.NaN()
			// A peer value that prints as 0 (an allocation count of 0.001,
			// say, background noise) gives no meaningful ratio.
			if v := r.Values[j]; r.Better != "" && math.Abs(v) >= 0.005 {
				ratio = r.Values[0] / v
			}
			fmt.Fprintf(w, " %s |", fixed(ratio, 2))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are mqttas ÷ peer, from this one run. ↑ rows (throughput): higher is better, so above 1 means mqttas is faster. "+
		"↓ rows (CPU, latency, allocations, memory, reconnect time): lower is better, so below 1 means mqttas costs less or is quicker. "+
		"— means not measured or not applicable (raw has no reconnect; there is no ratio to 0).")
}

// num formats a measurement with three or four significant figures,
// thousands separated.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 100:
		return thousands(int64(math.Round(v)))
	case a >= 10:
		return fixed(v, 1)
	default:
		return fixed(v, 2)
	}
}

func fixed(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// jsonReport is what -json writes.
type jsonReport struct {
	Header   header     `json:"header"`
	Clients  []string   `json:"columns"`
	Rows     []jsonRow  `json:"rows,omitempty"`
	Scaling  []jsonRows `json:"scaling,omitempty"`
	Failures []string   `json:"failures"`
}

type jsonRow struct {
	row
	Values map[string]*float64 `json:"values"` // null: not measured
}

// jsonRows is one of -scaling's tables.
type jsonRows struct {
	Title   string       `json:"title"`
	Columns []string     `json:"columns"`
	Rows    [][]*float64 `json:"rows"` // null: not measured
}

// orNull turns NaN into a JSON null.
func orNull(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func toJSONRows(names []string, rows []row) []jsonRow {
	out := make([]jsonRow, len(rows))
	for i, r := range rows {
		out[i] = jsonRow{row: r, Values: map[string]*float64{}}
		for j, v := range r.Values {
			out[i].Values[names[j]] = orNull(v)
		}
	}
	return out
}

func writeJSON(path string, rep jsonReport) error {
	if rep.Failures == nil {
		rep.Failures = []string{}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
