//go:build linux && (amd64 || arm64)

package libuvlike

// rawSyscall makes a system call that never blocks (recvfrom or sendto
// on a non-blocking socket), with no scheduler hand-off, and returns its
// result and errno (0 on success); its fifth and sixth arguments are 0.
// It is assembly so that the kernel returns straight into its caller.
func rawSyscall(trap, a1, a2, a3, a4 uintptr) (r1, errno uintptr)
