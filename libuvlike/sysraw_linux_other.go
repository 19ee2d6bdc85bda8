//go:build linux && !amd64 && !arm64

package libuvlike

import "syscall"

// rawSyscall makes a system call that never blocks, with no scheduler
// hand-off, and returns its result and errno (0 on success); its fifth
// and sixth arguments are 0.
func rawSyscall(trap, a1, a2, a3, a4 uintptr) (r1, errno uintptr) {
	r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
	return r, uintptr(e)
}
