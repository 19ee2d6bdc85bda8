//go:build !linux

package conformance

import (
	"errors"
	"fmt"
	"net"
)

// bufRcvbuf would return c's SO_RCVBUF; the bounds that use it are only
// worked out for Linux.
func bufRcvbuf(c net.Conn) (int, error) {
	return 0, fmt.Errorf("conformance: reading SO_RCVBUF: %w", errors.ErrUnsupported)
}

// bufSndbuf would return c's SO_SNDBUF.
func bufSndbuf(c net.Conn) (int, error) {
	return 0, fmt.Errorf("conformance: reading SO_SNDBUF: %w", errors.ErrUnsupported)
}

// bufKernelMax would return the kernel's socket buffer ceiling, which
// only Linux publishes in /proc/sys.
func bufKernelMax(network, dir string) (int, error) {
	return 0, fmt.Errorf("conformance: kernel socket buffer limits: %w", errors.ErrUnsupported)
}
