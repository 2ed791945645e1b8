package client

import "syscall"

// daemonProcAttr has the kernel kill a daemon whose test process died
// without stopping it (a panic, a -timeout), so that none is left behind.
func daemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
