package conformance

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// unsentBytes returns how many bytes written to the client connection c
// the peer's kernel has not yet acknowledged: ioctl SIOCOUTQ, tcp(7).
func unsentBytes(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("SIOCOUTQ: %T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		ierr error
	)
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, os.NewSyscallError("ioctl SIOCOUTQ", ierr)
	}
	return n, nil
}
