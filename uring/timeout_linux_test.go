package uring

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// finPausedServer answers a request with more than loopback's socket
// buffers take, has no OnReadEOF (the peer's FIN asks for the default
// close), and reports whether the FIN had been read when OnClose ran.
type finPausedServer struct {
	sent   chan struct{} // the peer has sent its request and its FIN
	closed chan finPausedEnd
}

type finPausedEnd struct {
	err     error
	eofSeen bool
}

func (h finPausedServer) OnOpen(transports.Conn) {
	// Wait until the request and the FIN are both in the socket, so that
	// the recv armed after OnOpen reads them together.
	select {
	case <-h.sent:
	case <-time.After(10 * time.Second):
	}
}

func (h finPausedServer) OnData(c transports.Conn, in []byte) int {
	c.Write(make([]byte, 32<<20)) // reading now pauses for backpressure
	return len(in)
}

func (h finPausedServer) OnClose(tc transports.Conn, err error) {
	c := tc.(*conn)
	c.mu.Lock()
	eof := c.st.Has(core.EOFSeen)
	c.mu.Unlock()
	h.closed <- finPausedEnd{err, eof}
}

// TestFINWhilePausedWriteTimeout: a peer sends a request and its FIN and
// never reads. The answer pauses reading for backpressure, and the FIN,
// read with the request, waits behind the pause (core.EOFWait): the
// default close never begins, so CloseTimeout never applies, and before
// the write-progress timeout the connection stayed open for good (a
// defect DESIGN.md recorded). With WriteTimeout 300 ms it is aborted,
// with a "write" *net.OpError matching ErrWriteTimeout; on thread loops
// and on runtime loops, which wait for the timeout's TIMEOUT request in
// the netpoller.
func TestFINWhilePausedWriteTimeout(t *testing.T) {
	for _, spec := range []string{"uring:park=thread", "uring:park=runtime"} {
		t.Run(spec, func(t *testing.T) { finWhilePausedWriteTimeout(t, spec) })
	}
}

func finWhilePausedWriteTimeout(t *testing.T, spec string) {
	const limit = 300 * time.Millisecond
	base := testutil.TakeBaseline()
	cfg := transports.Config{Loops: 1, WriteTimeout: limit, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tr, err := transports.Open(spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := finPausedServer{sent: make(chan struct{}), closed: make(chan finPausedEnd, 1)}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Write([]byte("GET /large\n")); err != nil {
		t.Fatal(err)
	}
	if err := cl.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	close(h.sent) // and read nothing

	var end finPausedEnd
	select {
	case end = <-h.closed:
	case <-time.After(20 * time.Second):
		t.Fatalf("a peer that sent its FIN and reads nothing was not aborted within 20s (WriteTimeout %v)", limit)
	}
	if !end.eofSeen {
		t.Errorf("the peer's FIN had not been read when OnClose ran: the case did not test a FIN waiting behind the pause")
	}
	var op *net.OpError
	if !errors.Is(end.err, transports.ErrWriteTimeout) || !errors.As(end.err, &op) || op.Op != "write" {
		t.Errorf("OnClose err = %v, want a write *net.OpError matching ErrWriteTimeout", end.err)
	}
	cl.Close()
	if err := tr.Close(); err != nil {
		t.Error(err)
	}
	base.Check(t, 10*time.Second)
}

// TestTimersNotPerRequest: with the write-progress timeout on (the
// default), every response makes output wait for the kernel, and so
// starts the connection's write clock; yet a connection's timer is set
// about once per WriteTimeout, not once per write (core.Deadlines.Arm
// moves it only when a limit runs out sooner), and the loop's TIMEOUT
// request moves only when its earliest timer does. 300 round trips on
// one connection must set the timer and submit a TIMEOUT a few times at
// most, where a timer moved per response would do it 300 times.
func TestTimersNotPerRequest(t *testing.T) {
	const trips = 300
	cfg := transports.Config{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tr, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", echoConn{})
	if err != nil {
		t.Fatal(err)
	}
	l := tr.thread.loops[0]
	counts := func() [2]uint64 {
		ch := make(chan [2]uint64, 1)
		l.postTask(func() { ch <- [2]uint64{l.timerSets, l.tmoSets} })
		select {
		case n := <-ch:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("the loop did not run a posted task")
		}
		return [2]uint64{}
	}
	cl := dialEcho(t, ln.Addr().String())
	before := counts()
	roundTrips(t, cl, trips)
	after := counts()
	if sets, tmos := after[0]-before[0], after[1]-before[1]; sets > 3 || tmos > 3 {
		t.Errorf("%d round trips set the conn's timer %d times and submitted %d TIMEOUT requests; want a few at most", trips, sets, tmos)
	}
}
