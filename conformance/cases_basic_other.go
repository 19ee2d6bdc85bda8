//go:build !linux

package conformance

import (
	"net"

	"github.com/merlin-net/merlin/transports"
)

// unsentBytes is Linux-only (SIOCOUTQ).
func unsentBytes(net.Conn) (int, error) {
	return 0, transports.Unsupported("conformance: SIOCOUTQ (Linux only)")
}
