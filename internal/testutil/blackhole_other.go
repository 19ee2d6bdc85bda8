//go:build !linux

package testutil

import (
	"net"
	"testing"
)

// Blackhole needs Linux (TCP_INFO on a listener); elsewhere it skips.
func Blackhole(t testing.TB) *net.TCPAddr {
	t.Skip("testutil.Blackhole needs Linux")
	return nil
}
