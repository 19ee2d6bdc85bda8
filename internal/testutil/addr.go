package testutil

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// LoopbackAddress returns an address to listen on for network: port 0 on
// the loopback for tcp, tcp4 and tcp6, and a fresh path in a short
// temporary directory for unix (a socket path is limited to 107 bytes, too
// few for t.TempDir's names). The directory is removed by t.Cleanup.
func LoopbackAddress(t testing.TB, network string) string {
	t.Helper()
	switch network {
	case "tcp", "tcp4":
		return "127.0.0.1:0"
	case "tcp6":
		return "[::1]:0"
	case "unix":
		dir, err := os.MkdirTemp("", "merlin")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return filepath.Join(dir, "s")
	}
	t.Fatalf("testutil: no loopback address for network %q", network)
	return ""
}

// IPv6Loopback reports whether this host can bind [::1]:0, and why not.
func IPv6Loopback() error {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return fmt.Errorf("binding [::1]:0: %w", err)
	}
	return ln.Close()
}
