package uring

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// TestDialPostedAfterCloseKilled: a Dial counted before Close began, whose
// connect reaches the loop only after Close's kill tasks ran there, must
// not connect (the kill tasks cannot see it; a connect to an address that
// never answers would hold Close for the kernel's SYN timeout, minutes):
// Close returns and the Dial fails with net.ErrClosed. The test hooks
// make that interleaving: Dial, counted, waits until Close has posted
// its kill tasks.
func TestDialPostedAfterCloseKilled(t *testing.T) {
	const wait = 10 * time.Second
	base := testutil.TakeBaseline()
	t.Cleanup(func() { base.Check(t, wait) }) // last: after the blackhole's cleanups
	addr := blackhole(t)
	cfg := transports.Config{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tr, err := transports.Open("uring", cfg)
	if err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	closed := make(chan error, 1)
	testHookCloseKilled = func() { close(killed) }
	testHookDialCounted = func() {
		go func() { closed <- tr.Close() }()
		<-killed
	}
	t.Cleanup(func() { testHookCloseKilled, testHookDialCounted = nil, nil })

	dialed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
		defer cancel()
		c, err := tr.Dial(ctx, "tcp", addr, nopHandler{})
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("Close had not returned after %v: it waits for a connect posted after its kill tasks", wait)
	}
	select {
	case err := <-dialed:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Dial = %v, want an error matching net.ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatalf("Dial had not returned %v after Close", wait)
	}
}

// nopHandler is a Handler that does nothing.
type nopHandler struct{}

func (nopHandler) OnOpen(transports.Conn)                  {}
func (nopHandler) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (nopHandler) OnClose(transports.Conn, error)          {}

// blackhole returns a loopback address where a connect hangs in
// SYN_SENT: a listening socket with a backlog of 0 whose accept queue
// holds one connection, the most the kernel queues for it. Nobody accepts,
// and the kernel drops the SYNs that come while the queue is full.
func blackhole(t *testing.T) string {
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
	return l.Addr().String()
}
