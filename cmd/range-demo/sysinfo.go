package main

import (
	"bufio"
	"io"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
)

// memInUse is the heap the process holds in live and not-yet-swept
// objects: the nearest thing to mqtt_as's gc.mem_free() on a machine
// without a fixed RAM budget. runtime/metrics reads it without stopping
// the world, unlike runtime.ReadMemStats.
func memInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// wirelessPath is where Linux reports WiFi signal levels.
const wirelessPath = "/proc/net/wireless"

// rssi is the signal level of the first wireless interface, such as
// "-56 dBm", or "n/a" where the OS does not say (no WiFi, not Linux).
func rssi() string {
	f, err := os.Open(wirelessPath)
	if err != nil {
		return "n/a"
	}
	defer f.Close()
	return parseWireless(f)
}

// parseWireless reads /proc/net/wireless: two header lines, then one line
// per interface whose fourth field is the level, in dBm when negative,
// with a trailing dot ("wlan0: 0000   54.  -56.  -256 ...").
func parseWireless(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		level, err := strconv.ParseFloat(strings.TrimSuffix(f[3], "."), 64)
		if err != nil {
			continue
		}
		if level > 0 {
			// Some drivers report an unsigned 8-bit level.
			level -= 256
		}
		return strconv.Itoa(int(level)) + " dBm"
	}
	return "n/a"
}
