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
//
// A socket's reads and writes are recvfrom and sendto rather than read and
// write: the socket calls go straight to the socket, where read and write
// pass through the VFS first (fdget_pos, rw_verify_area, the iterator),
// which cost 2% of libuvlike's CPU at 1,000 connections and a fixed load,
// measured beside peers/gofloor-epoll, which differs from it in little
// else on that path. MSG_NOSIGNAL spares the signal that write raises on
// a connection the peer has reset (Go ignores it, but it is delivered).

func sysRead(fd int, b []byte) (int, syscall.Errno) {
	r, e := rawSyscall(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0)
	return int(r), syscall.Errno(e) // n is meaningful only if errno is 0
}

func sysWrite(fd int, b []byte) (int, syscall.Errno) {
	r, e := rawSyscall(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), unix.MSG_NOSIGNAL)
	return int(r), syscall.Errno(e) // n is meaningful only if errno is 0
}

func sysWritev(fd int, iov []unix.Iovec) (int, syscall.Errno) {
	r, e := rawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)), 0)
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
