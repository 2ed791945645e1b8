//go:build linux || darwin || freebsd || netbsd || openbsd

package disk

import "syscall"

// freeBytes is the space an unprivileged writer can still use on dir's
// file system; the maximum if it cannot be told.
func freeBytes(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ^uint64(0)
	}
	return uint64(st.Bavail) * uint64(st.Bsize)
}
