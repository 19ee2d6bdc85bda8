package libuvlike

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's calls that never block (the descriptors are non-blocking) go
// through syscall.RawSyscall6: they return in microseconds, so telling the
// scheduler about them (entersyscall, exitsyscall) would cost more user
// time than it could save, and calling it directly skips x/sys/unix's
// trampolines. Each one is counted in Stats.Syscalls.

func (l *Loop) sysRead(fd int, b []byte) (int, syscall.Errno) {
	l.Stats.Syscalls++
	r, _, e := syscall.RawSyscall6(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

func (l *Loop) sysWrite(fd int, b []byte) (int, syscall.Errno) {
	l.Stats.Syscalls++
	r, _, e := syscall.RawSyscall6(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

func (l *Loop) sysWritev(fd int, iov []unix.Iovec) (int, syscall.Errno) {
	l.Stats.Syscalls++
	r, _, e := syscall.RawSyscall6(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
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
