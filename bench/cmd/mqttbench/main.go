// Command mqttbench runs mqttas, paho.mqtt.golang, paho.golang's autopaho
// and a raw client with no library at all through the same scenarios,
// against the same mosquitto, and prints one markdown table of the
// results with the ratios of mqttas to each of the others:
//
//	cd bench && go run ./cmd/mqttbench            # about 2½ minutes
//	go run ./cmd/mqttbench -quick                 # a smoke test, about 25 s
//	go run ./cmd/mqttbench -only=qos0,rtt -json out.json
//	go run ./cmd/mqttbench -scaling               # mqttas alone: payload size, window, clients
//
// It starts mosquitto itself, as a subprocess on a free loopback port, and
// talks to nothing else. The machine it runs on is shared and noisy, so
// only numbers from one run should be compared, as ratios; bench/README.md
// explains each row and how each client is driven.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// group is one scenario: the rows it fills and how to fill them for one
// library.
type group struct {
	key    string
	labels []string
	better []string
	// once: the scenario runs once per library. Otherwise it runs
	// counts.rounds times, the libraries taking turns, and each value is
	// the median over the rounds, so that a burst of load from elsewhere
	// on the machine hits one round of one library rather than a whole
	// column.
	once bool
	// limit bounds one run of the scenario for one library [2 min].
	limit func(n counts) time.Duration
	// noDelay runs it against the broker with TCP_NODELAY; see
	// brokerNoDelay.
	noDelay bool
	run     func(ctx context.Context, e *env, lib library) ([]float64, error)
}

var groups = []group{
	{
		key:    "qos0",
		labels: []string{"QoS 0 end to end, msg/s", "QoS 0 messages received (fewest in a round)", "client CPU per message, QoS 0 run, µs"},
		better: []string{"higher", "", "lower"},
		limit:  func(n counts) time.Duration { return n.deadline + time.Minute },
		run:    e2eRow,
	},
	{
		key:     "qos0nodelay",
		noDelay: true,
		labels: []string{"QoS 0 end to end, broker with TCP_NODELAY, msg/s",
			"QoS 0 messages received, broker with TCP_NODELAY (fewest in a round)",
			"client CPU per message, QoS 0 run, broker with TCP_NODELAY, µs"},
		better: []string{"higher", "", "lower"},
		limit:  func(n counts) time.Duration { return n.deadline + time.Minute },
		run:    e2eRow,
	},
	{
		key:     "qos1seq",
		noDelay: true,
		labels:  []string{"QoS 1 sequential, msg/s"},
		better:  []string{"higher"},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			v, err := publishRate(ctx, e, lib, payload64, 1, e.n.qos1Seq, 1)
			return nanIf(err, v), err
		},
	},
	{
		key:    "qos1window",
		labels: []string{"QoS 1, 100 in flight, msg/s"},
		better: []string{"higher"},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			v, err := publishRate(ctx, e, lib, payload64, 1, e.n.qos1Window, e.n.window)
			return nanIf(err, v), err
		},
	},
	{
		key:     "qos2seq",
		noDelay: true,
		labels:  []string{"QoS 2 sequential, msg/s"},
		better:  []string{"higher"},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			v, err := publishRate(ctx, e, lib, payload64, 2, e.n.qos2Seq, 1)
			return nanIf(err, v), err
		},
	},
	{
		key:     "rtt",
		noDelay: true,
		labels:  []string{"round trip to itself, QoS 1, p50 µs", "round trip to itself, QoS 1, p99 µs"},
		better:  []string{"lower", "lower"},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			p50, p99, err := roundTrips(ctx, e, lib)
			return []float64{p50, p99}, err
		},
	},
	{
		key:    "alloc",
		once:   true,
		labels: []string{"allocations per QoS 0 publish", "allocations per QoS 1 publish"},
		better: []string{"lower", "lower"},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			a0, err0 := allocsPerPublish(ctx, e, lib, 0, e.n.allocWarm, e.n.alloc0)
			a1, err1 := allocsPerPublish(ctx, e, lib, 1, e.n.allocWarm, e.n.alloc1)
			return []float64{a0, a1}, errors.Join(err0, err1)
		},
	},
	{
		key:    "idle",
		once:   true,
		labels: []string{"idle connected client: goroutines", "idle connected client: heap, KB"},
		better: []string{"lower", "lower"},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			g, kb, err := idle(ctx, e, lib, e.n.idle)
			return []float64{g, kb}, err
		},
	},
	{
		key:    "reconnect",
		once:   true,
		labels: []string{"reconnect after the broker returns, ms"},
		better: []string{"lower"},
		limit: func(n counts) time.Duration {
			return time.Duration(n.reconnects) * (n.down + 30*time.Second)
		},
		run: func(ctx context.Context, e *env, lib library) ([]float64, error) {
			v, err := reconnect(ctx, e, lib)
			return []float64{v}, err
		},
	},
}

// e2eRow is the QoS 0 end-to-end scenario's rows: rate, count, CPU.
func e2eRow(ctx context.Context, e *env, lib library) ([]float64, error) {
	r, err := endToEnd(ctx, e, lib, payload64, e.n.qos0)
	if err != nil {
		return []float64{math.NaN(), float64(r.received), math.NaN()}, err
	}
	return []float64{r.rate, float64(r.received), r.cpuPerMsg}, nil
}

// aggregate returns the median of a value over rounds, NaN if any round
// failed to measure it; or, for a count (a row without ratios), the
// smallest, so that a loss in any round shows.
func aggregate(vs []float64, count bool) float64 {
	if len(vs) == 0 || slices.ContainsFunc(vs, math.IsNaN) {
		return math.NaN()
	}
	if count {
		return slices.Min(vs)
	}
	return median(slices.Clone(vs))
}

func nanIf(err error, v float64) []float64 {
	if err != nil {
		return []float64{math.NaN()}
	}
	return []float64{v}
}

// options are the command line.
type options struct {
	quick    bool
	only     []string // group keys; empty: all
	jsonPath string
	scaling  bool
}

func main() {
	var o options
	var only string
	keys := make([]string, len(groups))
	for i, g := range groups {
		keys[i] = g.key
	}
	flag.BoolVar(&o.quick, "quick", false, "smaller counts, for a smoke test")
	flag.StringVar(&only, "only", "", "comma-separated scenarios to run, of: "+strings.Join(keys, ", "))
	flag.StringVar(&o.jsonPath, "json", "", "also write the results to this file as JSON")
	flag.BoolVar(&o.scaling, "scaling", false, "instead of the comparison, measure how mqttas scales with payload size, window and client count")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if only != "" {
		o.only = strings.Split(only, ",")
		for _, k := range o.only {
			if !slices.Contains(keys, k) {
				fmt.Fprintf(os.Stderr, "mqttbench: -only: unknown scenario %q (have %s)\n", k, strings.Join(keys, ", "))
				os.Exit(2)
			}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "mqttbench: -cpuprofile: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var err error
	if o.scaling {
		err = runScaling(o, os.Stdout, os.Stderr)
	} else {
		_, err = run(o, os.Stdout, os.Stderr)
	}
	fmt.Fprintf(os.Stderr, "mqttbench: finished in %v\n", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		fmt.Fprintf(os.Stderr, "mqttbench: FAILED: %v\n", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// runLimit bounds a whole run, so that the harness stops by itself even
// if a library hangs.
const runLimit = 4*time.Minute + 30*time.Second

// run measures every selected group for every library, prints the header
// and the table to out and progress to progress, and returns the rows.
// Lost messages and failed scenarios are listed under the table and make
// the error.
func run(o options, out, progress io.Writer) ([]row, error) {
	n := full
	if o.quick {
		n = quick
	}
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	b, err := startBroker(false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	bnd, err := startBroker(true)
	if err != nil {
		return nil, err
	}
	defer bnd.Close()
	eDefault, eNoDelay := &env{broker: b, n: n}, &env{broker: bnd, n: n}
	libs := libraries()
	names := make([]string, len(libs))
	for i, l := range libs {
		names[i] = l.name()
	}
	var (
		rows     []row
		failures []string
	)
	for _, g := range groups {
		if len(o.only) > 0 && !slices.Contains(o.only, g.key) {
			continue
		}
		rounds := n.rounds
		if g.once {
			rounds = 1
		}
		// got[lib][i] holds value i from every round of that library.
		got := make([][][]float64, len(libs))
		for j := range got {
			got[j] = make([][]float64, len(g.labels))
		}
		for round := range rounds {
			for j, lib := range libs {
				limit := 2 * time.Minute
				if g.limit != nil {
					limit = g.limit(n)
				}
				gctx, gcancel := context.WithTimeout(ctx, limit)
				t0 := time.Now()
				e := eDefault
				if g.noDelay {
					e = eNoDelay
				}
				vals, err := g.run(gctx, e, lib)
				gcancel()
				for i, v := range vals {
					got[j][i] = append(got[j][i], v)
				}
				status := "ok"
				if err != nil {
					status = "FAILED: " + err.Error()
					failures = append(failures, fmt.Sprintf("%s, %s, round %d: %v", g.key, lib.name(), round+1, err))
				}
				fmt.Fprintf(progress, "mqttbench: %-10s round %d  %-16s %6.1fs  %s\n",
					g.key, round+1, lib.name(), time.Since(t0).Seconds(), status)
			}
		}
		for i, label := range g.labels {
			r := row{Key: g.key, Label: label, Better: g.better[i], Values: make([]float64, len(libs))}
			for j := range libs {
				r.Values[j] = aggregate(got[j][i], g.better[i] == "")
			}
			rows = append(rows, r)
		}
	}
	h := newHeader(b.Version(), n)
	h.write(out)
	writeTable(out, names, rows)
	if len(failures) > 0 {
		fmt.Fprintf(out, "\n**%d FAILURES:**\n\n", len(failures))
		for _, f := range failures {
			fmt.Fprintf(out, "- %s\n", f)
		}
	}
	if o.jsonPath != "" {
		rep := jsonReport{Header: h, Clients: names, Rows: toJSONRows(names, rows), Failures: failures}
		if err := writeJSON(o.jsonPath, rep); err != nil {
			return rows, err
		}
	}
	if len(failures) > 0 {
		return rows, fmt.Errorf("%d failures: %s", len(failures), strings.Join(failures, "; "))
	}
	return rows, nil
}
