//go:build unix

package executor

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the worker as the leader of its own process group,
// so that killing it also kills whatever it started (a shell wrapper's
// child, a Python multiprocessing pool) and nothing holds its pipes open.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup sends SIGKILL to the worker's process group. The group
// exists until the worker is reaped (a zombie leader keeps its group id), so
// this cannot hit an unrelated group.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
