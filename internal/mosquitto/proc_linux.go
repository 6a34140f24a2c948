package mosquitto

import (
	"os/exec"
	"syscall"
)

// setPdeathsig has the kernel kill the child if the test binary dies
// without running its cleanups (a panic, a timeout's os.Exit), so that no
// broker outlives the test run holding its port.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
