//go:build !unix

package executor

import "os/exec"

// setProcessGroup does nothing where process groups do not exist: only the
// worker itself is killed there, not what it started.
func setProcessGroup(cmd *exec.Cmd) {}

// killProcessGroup kills the worker process.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
