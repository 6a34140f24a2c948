package main

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The report must render in a real browser, not just parse: headless
// Chromium screenshots it and the test looks for the link lane's colours
// and the latency dots in the pixels. CI installs Debian's chromium and
// sets RANGE_DEMO_REQUIRE_CHROMIUM=1, which turns its absence into a
// failure.
func TestReportRendersInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("RANGE_DEMO_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium not found, and RANGE_DEMO_REQUIRE_CHROMIUM is set")
		}
		t.Skip("chromium not installed (apt-get install chromium); scripts/render-report.sh does the same check by hand")
	}
	dir := t.TempDir()
	html, shot := filepath.Join(dir, "r.html"), filepath.Join(dir, "r.png")
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	r := reportData{
		Title: "range-demo: test", End: sec(30), Seed: 1,
		Summary: summary{Link: "awful", Published: 3, Acknowledged: 3, Received: 3, Outages: 1, Watched: true},
		Links:   []linkChange{{0, true}, {sec(10), false}, {sec(20), true}},
		Faults:  []fault{{At: sec(9), For: sec(8), Kind: "out-of-range", Note: "x"}},
		Acks:    []ack{{1, sec(2), time.Millisecond}, {2, sec(21), sec(6)}, {3, sec(25), 2 * time.Millisecond}},
	}
	if err := writeReport(html, r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars", "--window-size=1100,800",
		"--screenshot="+shot, "file://"+html)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]uint32{"up": {0x3a, 0x9d, 0x4f}, "down": {0xd6, 0x45, 0x41},
		// The dots: #2b6cb0 at opacity 0.75 over white. (The legend's
		// swatch is opaque, so it does not count.)
		"ack": {0x60, 0x91, 0xc4}}
	seen := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for name, c := range want {
				if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
					seen[name]++
				}
			}
		}
	}
	// The up lane is two thirds of an 860-unit-wide, 26-unit-high bar; a
	// dot has a radius of 3.5.
	t.Logf("pixels by colour: %v", seen)
	if seen["up"] < 5000 || seen["down"] < 2000 || seen["ack"] < 3*20 {
		t.Errorf("screenshot pixels by colour: %v; want the up and down lanes and the latency dots drawn", seen)
	}
}

func near(a, b uint32) bool { return a+6 >= b && b+6 >= a }
