package testutil

import (
	"io"
	"net"
	"testing"

	"github.com/merlin-net/merlin/transports"
)

// NetEcho serves an echo on tr through transports.NetListener, a
// goroutine per connection, on a loopback port; the listener closes when
// the test ends.
func NetEcho(t testing.TB, tr transports.Transport) net.Listener {
	t.Helper()
	ln, err := transports.NetListener(tr, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln
}
