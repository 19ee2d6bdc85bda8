package testutil

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Blackhole returns a loopback address where a connect hangs in
// SYN_SENT: a listening socket with a backlog of 0 whose accept queue
// holds one connection, the most the kernel queues for it. Nobody
// accepts, and the kernel drops the SYNs that come while the queue is
// full. Everything is closed by t.Cleanup.
func Blackhole(t testing.TB) *net.TCPAddr {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if cerr := rc.Control(func(fd uintptr) { err = syscall.Listen(int(fd), 0) }); cerr != nil || err != nil {
		t.Fatalf("listen(2) again with a backlog of 0: %v, %v", cerr, err)
	}
	filler, err := net.DialTimeout("tcp4", l.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	// The queue is full once the filler is in it: a listener's TCP_INFO
	// gives the queue's length as tcpi_unacked.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var queued uint32
		rc.Control(func(fd uintptr) {
			if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				queued = ti.Unacked
			}
		})
		if queued >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the filler connection is not in %v's accept queue", l.Addr())
		}
		time.Sleep(time.Millisecond) // polling the kernel's queue
	}
	return l.Addr().(*net.TCPAddr)
}
