package conformance

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// bufSockopt reads the SOL_SOCKET option opt (unix.SO_RCVBUF, SO_SNDBUF)
// of c's socket. Linux reports twice the value set by setsockopt(2), the
// kernel's allowance for bookkeeping (socket(7)); as a bound on payload
// that only errs on the generous side.
func bufSockopt(c net.Conn, opt int) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("%T has no SyscallConn", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt)
	}); err != nil {
		return 0, err
	}
	if gerr != nil {
		return 0, os.NewSyscallError("getsockopt", gerr)
	}
	return v, nil
}

// bufRcvbuf returns c's SO_RCVBUF.
func bufRcvbuf(c net.Conn) (int, error) { return bufSockopt(c, unix.SO_RCVBUF) }

// bufSndbuf returns c's SO_SNDBUF.
func bufSndbuf(c net.Conn) (int, error) { return bufSockopt(c, unix.SO_SNDBUF) }

// bufKernelMax returns the most bytes the kernel lets one socket of network
// queue in the direction dir ("send" or "receive"), as far as an
// unprivileged peer can know it:
//
//   - tcp: the third field of /proc/sys/net/ipv4/tcp_wmem or tcp_rmem, the
//     ceiling of the kernel's buffer autotuning (tcp(7)).
//   - unix: /proc/sys/net/core/wmem_max or rmem_max, the ceiling of
//     SO_SNDBUF and SO_RCVBUF set by an unprivileged process (socket(7)).
//     A unix stream socket's data in flight is charged to the sender's
//     send buffer (the receiver's SO_RCVBUF does not limit it), so the
//     send-side value is the one that bounds what a stalled peer absorbs;
//     the callers add the other side's as slack.
func bufKernelMax(network, dir string) (int, error) {
	var path string
	field := 2
	switch {
	case network == "unix" && dir == "send":
		path, field = "/proc/sys/net/core/wmem_max", 0
	case network == "unix" && dir == "receive":
		path, field = "/proc/sys/net/core/rmem_max", 0
	case dir == "send":
		path = "/proc/sys/net/ipv4/tcp_wmem"
	case dir == "receive":
		path = "/proc/sys/net/ipv4/tcp_rmem"
	default:
		return 0, fmt.Errorf("bufKernelMax: bad direction %q", dir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fs := strings.Fields(string(b))
	if len(fs) <= field {
		return 0, fmt.Errorf("%s: %q has no field %d", path, b, field)
	}
	n, err := strconv.Atoi(fs[field])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
