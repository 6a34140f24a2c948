package main

import (
	"fmt"
	"html/template"
	"math"
	"os"
	"time"
)

// reportData is what the HTML report draws: the run's timeline and its
// summary.
type reportData struct {
	Title   string
	Summary summary
	Links   []linkChange
	Faults  []fault
	Acks    []ack
	End     time.Duration
	Seed    int64
}

func (d *demo) reportData(s summary) reportData {
	links, faults, acks, end := d.rec.snapshot()
	return reportData{
		Title: "range-demo: " + s.Link + " link", Summary: s,
		Links: links, Faults: faults, Acks: acks, End: end, Seed: d.o.seed,
	}
}

// Chart geometry, in SVG user units.
const (
	chartLeft  = 110.0
	chartWidth = 860.0
	laneHeight = 26.0
	latTop     = 110.0
	latHeight  = 220.0
)

type box struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type dot struct {
	X, Y  float64
	Title string
}

type tick struct {
	X, Y  float64
	Label string
}

// view is reportData laid out: every number the template needs is computed
// here, so the template only places elements.
type view struct {
	reportData
	Rows           [][2]string
	LinkBoxes      []box
	FaultBoxes     []box
	Dots           []dot
	TimeTicks      []tick
	LatTicks       []tick
	Width, Height  float64
	ChartLeft      float64
	ChartRight     float64
	LatTop, LatBot float64
}

func layout(r reportData) view {
	v := view{reportData: r, Width: chartLeft + chartWidth + 30, Height: latTop + latHeight + 40,
		ChartLeft: chartLeft, ChartRight: chartLeft + chartWidth, LatTop: latTop, LatBot: latTop + latHeight}
	end := max(r.End, time.Second)
	x := func(t time.Duration) float64 { return chartLeft + chartWidth*float64(t)/float64(end) }

	// Link lane: grey until the first Up, then alternating up and down.
	state, from := "connecting", time.Duration(0)
	flush := func(to time.Duration) {
		if to > from {
			v.LinkBoxes = append(v.LinkBoxes, box{X: x(from), Y: 20, W: x(to) - x(from), H: laneHeight, Class: state,
				Title: fmt.Sprintf("%s %s–%s (%s)", state, fmtDur(from), fmtDur(to), fmtDur(to-from))})
		}
	}
	for _, c := range r.Links {
		flush(c.At)
		state, from = "down", c.At
		if c.Up {
			state = "up"
		}
	}
	flush(end)

	// Fault lane: the simulated link's doings; resets are instants, drawn
	// as a narrow mark.
	for _, f := range r.Faults {
		w := x(f.At+f.For) - x(f.At)
		w = max(w, 2)
		v.FaultBoxes = append(v.FaultBoxes, box{X: x(f.At), Y: 20 + laneHeight + 14, W: w, H: laneHeight, Class: f.Kind,
			Title: fmt.Sprintf("%s at %s: %s", f.Kind, fmtDur(f.At), f.Note)})
	}

	// PUBACK latency on a log scale from 0.1 ms to the worst seen, so a
	// sub-millisecond ack and one that waited out a ten-second outage both
	// show.
	lo, hi := 0.1, 1.0
	for _, a := range r.Acks {
		hi = max(hi, ms(a.Latency))
	}
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	y := func(m float64) float64 {
		m = min(max(m, lo), hi)
		return latTop + latHeight - latHeight*(math.Log10(m)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	for _, a := range r.Acks {
		v.Dots = append(v.Dots, dot{X: x(a.At), Y: y(ms(a.Latency)),
			Title: fmt.Sprintf("publish %d acknowledged at %s after %s", a.N, fmtDur(a.At), fmtDur(a.Latency))})
	}
	for m := lo; m <= hi*1.001; m *= 10 {
		label := fmt.Sprintf("%gms", m)
		if m >= 1000 {
			label = fmt.Sprintf("%gs", m/1000)
		}
		v.LatTicks = append(v.LatTicks, tick{X: chartLeft - 6, Y: y(m), Label: label})
	}
	step := niceStep(end)
	for t := time.Duration(0); t <= end; t += step {
		v.TimeTicks = append(v.TimeTicks, tick{X: x(t), Y: latTop + latHeight + 18, Label: t.String()})
	}

	s := r.Summary
	lost := fmt.Sprint(s.Lost)
	if !s.Watched {
		lost = "n/a (no PC side)"
	}
	v.Rows = [][2]string{
		{"duration", fmtDur(s.Duration)}, {"link", s.Link},
		{"published", fmt.Sprint(s.Published)}, {"acknowledged", fmt.Sprint(s.Acknowledged)},
		{"received by the PC side", fmt.Sprint(s.Received)}, {"lost", lost},
		{"duplicates", fmt.Sprint(s.Duplicates)},
		{"outages", fmt.Sprintf("%d (longest %s)", s.Outages, fmtDur(s.LongestOutage))},
		{"faults injected", fmt.Sprint(s.Faults)}, {"repubs", fmt.Sprint(s.Repubs)},
		{"reconnects", fmt.Sprint(s.Reconnects)},
		{"PUBACK latency p50 / p99", fmtDur(s.PubackP50) + " / " + fmtDur(s.PubackP99)},
	}
	if r.Summary.Link != "real" {
		v.Rows = append(v.Rows, [2]string{"seed", fmt.Sprint(r.Seed)})
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// niceStep picks a time-axis step giving five to ten ticks.
func niceStep(end time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
		15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
		15 * time.Minute, 30 * time.Minute, time.Hour} {
		if end/s <= 10 {
			return s
		}
	}
	return end / 10
}

// writeReport writes the page. It is self-contained (inline CSS and SVG,
// no scripts, nothing fetched) so it can be mailed or archived with a run.
func writeReport(path string, r reportData) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := reportPage.Execute(f, layout(r)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"f": func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; }
table { border-collapse: collapse; margin-bottom: 20px; }
td { padding: 2px 12px 2px 0; }
td.v { font-variant-numeric: tabular-nums; font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
.up { fill: #3a9d4f; } .down { fill: #d64541; } .connecting { fill: #bbb; }
.out-of-range { fill: #d64541; opacity: 0.6; } .reset { fill: #7d3c98; } .latency { fill: #f0b429; }
.ack { fill: #2b6cb0; opacity: 0.75; } .grid { stroke: #ddd; } .axis { stroke: #888; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 14px; vertical-align: middle; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<table>
{{range .Rows}}<tr><td>{{index . 0}}</td><td class="v">{{index . 1}}</td></tr>
{{end}}</table>
<p class="legend">link:<span class="up" style="background:#3a9d4f"></span>up<span style="background:#d64541"></span>down<span style="background:#bbb"></span>connecting
 · faults:<span style="background:#d64541;opacity:0.6"></span>out of range<span style="background:#7d3c98"></span>reset<span style="background:#f0b429"></span>latency spike
 · <span style="background:#2b6cb0;border-radius:6px"></span>PUBACK latency (hover for details)</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{f .Width}}" height="{{f .Height}}" viewBox="0 0 {{f .Width}} {{f .Height}}" role="img" aria-label="timeline">
<text x="10" y="37">link</text>
<text x="10" y="77">faults</text>
<text x="10" y="{{f .LatTop}}">PUBACK</text>
<text x="10" y="{{f .LatTop}}" dy="15">latency</text>
{{range .LinkBoxes}}<rect class="{{.Class}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}"><title>{{.Title}}</title></rect>
{{end}}{{range .FaultBoxes}}<rect class="{{.Class}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}"><title>{{.Title}}</title></rect>
{{end}}{{range .LatTicks}}<line class="grid" x1="{{f $.ChartLeft}}" x2="{{f $.ChartRight}}" y1="{{f .Y}}" y2="{{f .Y}}" /><text x="{{f .X}}" y="{{f .Y}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .TimeTicks}}<line class="grid" x1="{{f .X}}" x2="{{f .X}}" y1="20" y2="{{f $.LatBot}}" /><text x="{{f .X}}" y="{{f .Y}}" text-anchor="middle">{{.Label}}</text>
{{end}}<line class="axis" x1="{{f .ChartLeft}}" x2="{{f .ChartRight}}" y1="{{f .LatBot}}" y2="{{f .LatBot}}" />
{{range .Dots}}<circle class="ack" cx="{{f .X}}" cy="{{f .Y}}" r="3.5"><title>{{.Title}}</title></circle>
{{end}}</svg>
</body>
</html>
`))
