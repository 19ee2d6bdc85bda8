package libuvlike

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's calls that never block (the descriptors are non-blocking) go
// through rawSyscall: they return in microseconds, so telling the
// scheduler about them (entersyscall, exitsyscall) would cost more user
// time than it could save. These wrappers are small enough to be inlined,
// so that the kernel returns into the code that uses the result; their
// callers count them in Stats.Syscalls.

func sysRead(fd int, b []byte) (int, syscall.Errno) {
	r, e := rawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(r), syscall.Errno(e) // n is meaningful only if errno is 0
}

func sysWrite(fd int, b []byte) (int, syscall.Errno) {
	r, e := rawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(r), syscall.Errno(e) // n is meaningful only if errno is 0
}

func sysWritev(fd int, iov []unix.Iovec) (int, syscall.Errno) {
	r, e := rawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
	return int(r), syscall.Errno(e)
}

func (l *Loop) sysClose(fd int) error {
	l.Stats.Syscalls++
	return unix.Close(fd)
}

// errnoOf returns err as a bare Errno, or 0 if it is not one.
func errnoOf(err error) syscall.Errno {
	e, _ := err.(syscall.Errno)
	return e
}
