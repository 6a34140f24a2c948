package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// The -scaling mode measures mqttas alone, for the documentation: how its
// throughput and heap follow the payload size, how QoS 1 throughput
// follows the number of publishes in flight, and what each idle client
// costs as their number grows. Counts are chosen so that each cell takes
// a few seconds at most, and each throughput cell is the median of
// counts.rounds runs (3 at most).

var (
	scalingPayloads = []struct{ size, n int }{
		{64, 50_000}, {1 << 10, 30_000}, {16 << 10, 10_000}, {64 << 10, 3_000}, {256 << 10, 1_000},
	}
	scalingWindows = []struct{ window, n int }{
		{1, 5_000}, {10, 20_000}, {100, 50_000}, {1000, 50_000},
	}
	scalingClients = []int{1, 10, 100, 1000}
)

// scalingTable is one table of -scaling's output.
type scalingTable struct {
	title   string
	columns []string
	rows    [][]float64
}

func runScaling(o options, out, progress io.Writer) error {
	div := 1
	if o.quick {
		div = 10
	}
	// 1,000 clients need 1,000 descriptors here and 1,000 in mosquitto,
	// which inherits the limit.
	if err := raiseFileLimit(4096); err != nil {
		return fmt.Errorf("raising the open files limit for 1,000 clients: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	b, err := startBroker(false)
	if err != nil {
		return err
	}
	defer b.Close()
	n := full
	if o.quick {
		n = quick
	}
	e := &env{broker: b, n: n}
	lib := mqttasLib{}
	rounds := min(n.rounds, 3)
	var failures []string
	fail := func(what string, err error) {
		failures = append(failures, fmt.Sprintf("%s: %v", what, err))
		fmt.Fprintf(progress, "mqttbench: %s: FAILED: %v\n", what, err)
	}

	payloads := scalingTable{
		title: "mqttas: throughput and heap by payload size",
		columns: []string{"payload, bytes", "QoS 0 end to end, msg/s", "QoS 0, MB/s", "QoS 0, peak heap, MB",
			"QoS 1 100 in flight, msg/s", "QoS 1, MB/s", "QoS 1, peak heap, MB"},
	}
	for _, p := range scalingPayloads {
		payload := []byte(strings.Repeat("x", p.size))
		count := max(p.n/div, 10)
		mb := func(rate float64) float64 { return rate * float64(p.size) / 1e6 }
		t0 := time.Now()
		q0, err := medianOf(rounds, func() ([]float64, error) {
			var r e2eResult
			peak, err := peakHeap(func() error {
				var err error
				r, err = endToEnd(ctx, e, lib, payload, count)
				return err
			})
			return []float64{r.rate, peak}, err
		})
		if err != nil {
			fail(fmt.Sprintf("QoS 0, %d-byte payload", p.size), err)
		}
		q1, err := medianOf(rounds, func() ([]float64, error) {
			var rate float64
			peak, err := peakHeap(func() error {
				var err error
				rate, err = publishRate(ctx, e, lib, payload, 1, count, 100)
				return err
			})
			return []float64{rate, peak}, err
		})
		if err != nil {
			fail(fmt.Sprintf("QoS 1, %d-byte payload", p.size), err)
		}
		payloads.rows = append(payloads.rows, []float64{float64(p.size), q0[0], mb(q0[0]), q0[1], q1[0], mb(q1[0]), q1[1]})
		fmt.Fprintf(progress, "mqttbench: scaling payload %7d B, %6d messages per run, %d runs each of QoS 0 and 1: %.1fs\n",
			p.size, count, rounds, time.Since(t0).Seconds())
	}

	windows := scalingTable{
		title:   "mqttas: QoS 1 throughput by publishes in flight (Config.MaxInflight raised to match)",
		columns: []string{"in flight", "QoS 1, msg/s"},
	}
	for _, w := range scalingWindows {
		t0 := time.Now()
		count := max(w.n/div, 10*w.window)
		rate, err := medianOf(rounds, func() ([]float64, error) {
			v, err := publishRate(ctx, e, lib, payload64, 1, count, w.window)
			return []float64{v}, err
		})
		if err != nil {
			fail(fmt.Sprintf("QoS 1, %d in flight", w.window), err)
		}
		windows.rows = append(windows.rows, []float64{float64(w.window), rate[0]})
		fmt.Fprintf(progress, "mqttbench: scaling window %4d, %6d messages per run, %d runs: %.1fs\n",
			w.window, count, rounds, time.Since(t0).Seconds())
	}

	clients := scalingTable{
		title:   "mqttas: idle connected clients in one process (default Config)",
		columns: []string{"clients", "goroutines per client", "heap per client, KB", "heap in all, MB"},
	}
	for _, k := range scalingClients {
		t0 := time.Now()
		g, kb, err := idle(ctx, e, lib, k)
		if err != nil {
			fail(fmt.Sprintf("%d idle clients", k), err)
		}
		clients.rows = append(clients.rows, []float64{float64(k), g, kb, kb * float64(k) / 1024})
		fmt.Fprintf(progress, "mqttbench: scaling %4d idle clients: %.1fs\n", k, time.Since(t0).Seconds())
	}

	tables := []scalingTable{payloads, windows, clients}
	h := newHeader(b.Version(), n)
	h.Clients = h.Clients[:1]
	var sizes []string
	for _, p := range scalingPayloads {
		sizes = append(sizes, fmt.Sprintf("%s B: %s", thousands(int64(p.size)), thousands(int64(max(p.n/div, 10)))))
	}
	var wins []string
	for _, w := range scalingWindows {
		wins = append(wins, fmt.Sprintf("%d in flight: %s", w.window, thousands(int64(max(w.n/div, 10*w.window)))))
	}
	h.Sizes = fmt.Sprintf("messages per run by payload (%s) and by window (%s), 64-byte payloads but in the first table; "+
		"each throughput cell is %s; QoS 0 is publisher to subscriber through the broker, QoS 1 is publish-only; "+
		"peak heap is the highest heap in use during the run (live objects and garbage not yet collected) above the level before it",
		strings.Join(sizes, ", "), strings.Join(wins, ", "), plural(rounds, "one run", "the median of %d runs"))
	h.write(out)
	for _, t := range tables {
		t.write(out)
	}
	if len(failures) > 0 {
		fmt.Fprintf(out, "**%d FAILURES:**\n\n", len(failures))
		for _, f := range failures {
			fmt.Fprintf(out, "- %s\n", f)
		}
	}
	if o.jsonPath != "" {
		rep := jsonReport{Header: h, Clients: []string{lib.name()}, Failures: failures}
		for _, t := range tables {
			jt := jsonRows{Title: t.title, Columns: t.columns}
			for _, r := range t.rows {
				jr := make([]*float64, len(r))
				for i, v := range r {
					jr[i] = orNull(v)
				}
				jt.Rows = append(jt.Rows, jr)
			}
			rep.Scaling = append(rep.Scaling, jt)
		}
		if err := writeJSON(o.jsonPath, rep); err != nil {
			return err
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d failures: %s", len(failures), strings.Join(failures, "; "))
	}
	return nil
}

// medianOf runs fn rounds times and returns the median of each of its
// values; NaN for all of them if any run failed, with the first error.
func medianOf(rounds int, fn func() ([]float64, error)) ([]float64, error) {
	var runs [][]float64
	for range rounds {
		vs, err := fn()
		if err != nil {
			return []float64{math.NaN(), math.NaN()}, err
		}
		runs = append(runs, vs)
	}
	out := make([]float64, len(runs[0]))
	for i := range out {
		col := make([]float64, len(runs))
		for r := range runs {
			col[r] = runs[r][i]
		}
		out[i] = median(col)
	}
	return out, nil
}

// peakHeap runs fn and returns the peak of the heap above its level
// before fn, in MB.
func peakHeap(fn func() error) (float64, error) {
	_, base := settled()
	s := sampleHeap()
	err := fn()
	peak := s.done()
	return (float64(peak) - float64(base)) / 1e6, err
}

func (t scalingTable) write(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", t.title)
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(t.columns, " | "), strings.Repeat(" ---: |", len(t.columns)))
	for _, r := range t.rows {
		// The first column is the parameter: a whole number.
		fmt.Fprintf(w, "| %s |", thousands(int64(r[0])))
		for _, v := range r[1:] {
			fmt.Fprintf(w, " %s |", num(v))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}
