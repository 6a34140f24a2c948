//go:build !linux

package mosquitto

import "os/exec"

// setPdeathsig has no equivalent outside Linux: a test binary that dies
// without running its cleanups leaves the broker running.
func setPdeathsig(*exec.Cmd) {}
