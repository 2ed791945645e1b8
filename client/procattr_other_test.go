//go:build !linux

package client

import "syscall"

func daemonProcAttr() *syscall.SysProcAttr { return nil }
