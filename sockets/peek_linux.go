package sockets

import (
	"syscall"
	"unsafe"
)

// peek probes fd for input with a 1-byte recv(MSG_PEEK|MSG_DONTWAIT) into
// b, which must not be on a goroutine stack: it returns 1 when bytes are
// queued, 0 at the peer's FIN, or the errno (EAGAIN when there is nothing
// yet). It is a raw recvfrom: x/sys/unix.Recvfrom would build a Sockaddr
// from the peer address a unix socket reports, allocating on every call.
func peek(fd uintptr, b *byte) (int, syscall.Errno) {
	n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(b)), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(n), e
}
