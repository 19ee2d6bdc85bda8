//go:build !linux

package sockets

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peek probes fd for input with a 1-byte recv(MSG_PEEK|MSG_DONTWAIT); see
// peek_linux.go.
func peek(fd uintptr, b *byte) (int, syscall.Errno) {
	n, _, err := unix.Recvfrom(int(fd), unsafe.Slice(b, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
