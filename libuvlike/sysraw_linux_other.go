//go:build linux && !amd64 && !arm64

package libuvlike

import "syscall"

// rawSyscall makes a system call that never blocks, with no scheduler
// hand-off, and returns its result and errno (0 on success).
func rawSyscall(trap, a1, a2, a3 uintptr) (r1, errno uintptr) {
	r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, 0, 0, 0)
	return r, uintptr(e)
}
