package uring

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/merlin-net/merlin/transports"
)

// TestOneStepPerRequest: an echo's request is one step of its conn, after
// OnData wrote the answer; the send's completion leaves the conn settled
// (nothing written since, nothing due) and needs no step of its own. A
// step costs some 200 instructions: two per request were 8% of uring's.
// 300 round trips on one connection must step it about 300 times, where
// a step per completion makes it 600. (A thread loop's inline send
// completes in the enter that then waits for the next request, whose
// completion comes in the same reap: one step for both, with or without
// this; its sends without inlinesend are as a saturated loop's. Runtime
// loops are left out: one that moves to another thread cancels and
// re-arms its recvs, steps the count does not foresee.)
func TestOneStepPerRequest(t *testing.T) {
	const trips = 300
	for _, spec := range []string{"uring:park=thread", "uring:park=thread,inlinesend=false"} {
		t.Run(spec, func(t *testing.T) {
			tr := openT(t, spec, 1)
			ln, err := tr.Listen("tcp", "127.0.0.1:0", echoConn{})
			if err != nil {
				t.Fatal(err)
			}
			l := tr.thread.loops[0]
			steps := func() (n uint64) {
				onLoop(t, l, func() { n = l.steps })
				return n
			}
			cl := dialEcho(t, ln.Addr().String())
			before := steps()
			roundTrips(t, cl, trips)
			if n := steps() - before; n > trips+trips/10 {
				t.Errorf("%d round trips stepped the conn %d times; want about one step per trip", trips, n)
			}
		})
	}
}

// dialEcho dials an echo listener at addr; the conn is closed at the end
// of the test and its exchanges fail after 30 s.
func dialEcho(t *testing.T, addr string) net.Conn {
	t.Helper()
	cl, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	cl.SetDeadline(time.Now().Add(30 * time.Second))
	return cl
}

// roundTrips sends n 64-byte requests on cl, one at a time, each after the
// echo of the one before.
func roundTrips(t *testing.T, cl net.Conn, n int) {
	t.Helper()
	msg := make([]byte, 64)
	for range n {
		if _, err := cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cl, msg); err != nil {
			t.Fatal(err)
		}
	}
}

// orderEcho echoes and records, under mu, the remote address of each
// OnData in the order the loop calls them.
type orderEcho struct {
	echoConn
	mu   sync.Mutex
	seen []string
}

func (h *orderEcho) OnData(c transports.Conn, in []byte) int {
	h.mu.Lock()
	h.seen = append(h.seen, c.RemoteAddr().String())
	h.mu.Unlock()
	return h.echoConn.OnData(c, in)
}

// TestAnswersInArrivalOrder: conns written in one batch of completions
// send in the order their requests were delivered. The loop used to step
// its dirty conns last first, so a saturated loop answered each batch in
// reverse: the same packets, but both ends then cost some 10% more per
// request than against the C floor (papers/0003, 1,000 connections). The
// loop is held in a posted task while 16 requests arrive, so that one
// turn reaps them all; the client reads each answer's kernel receive
// timestamp, which the server's sends, all made in one enter, stamp in
// the order they go.
func TestAnswersInArrivalOrder(t *testing.T) {
	const n = 16
	tr := openT(t, "uring:park=thread", 1)
	h := &orderEcho{}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	l := tr.thread.loops[0]
	cls := make(map[string]net.Conn, n)
	var order []net.Conn
	for range n {
		cl := dialEcho(t, ln.Addr().String())
		roundTrips(t, cl, 1) // open, its receive armed
		if err := setTimestamps(cl); err != nil {
			t.Fatal(err)
		}
		cls[cl.LocalAddr().String()] = cl
		order = append(order, cl)
	}
	h.mu.Lock()
	h.seen = nil
	h.mu.Unlock()

	held, release := make(chan struct{}), make(chan struct{})
	l.postTask(func() { close(held); <-release })
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the loop did not run a posted task within 20s")
	}
	msg := make([]byte, 64)
	for _, cl := range order {
		if _, err := cl.Write(msg); err != nil {
			close(release)
			t.Fatal(err)
		}
	}
	close(release)

	stamps := make(map[string]time.Time, n)
	for addr, cl := range cls {
		ts, err := readStamped(cl, len(msg))
		if err != nil {
			t.Fatal(err)
		}
		stamps[addr] = ts
	}
	h.mu.Lock()
	seen := append([]string(nil), h.seen...)
	h.mu.Unlock()
	if len(seen) != n {
		t.Fatalf("OnData ran %d times; want %d", len(seen), n)
	}
	inversions := 0
	for i := range seen {
		for j := i + 1; j < len(seen); j++ {
			if stamps[seen[i]].After(stamps[seen[j]]) {
				inversions++
			}
		}
	}
	if inversions > 0 {
		var b strings.Builder
		for _, a := range seen {
			fmt.Fprintf(&b, " %d", stamps[a].Sub(stamps[seen[0]]).Microseconds())
		}
		t.Errorf("answers went out of arrival order: %d of %d pairs inverted (receive times in us, in OnData order:%s)",
			inversions, n*(n-1)/2, b.String())
	}
}

// setTimestamps asks the kernel to stamp what cl receives (SO_TIMESTAMPNS).
func setTimestamps(cl net.Conn) error {
	rc, err := cl.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// readStamped reads size bytes from cl, in one recvmsg, and returns the
// kernel's receive timestamp of them.
func readStamped(cl net.Conn, size int) (time.Time, error) {
	rc, err := cl.(*net.TCPConn).SyscallConn()
	if err != nil {
		return time.Time{}, err
	}
	buf, oob := make([]byte, size), make([]byte, 128)
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_WAITALL)
		return rerr != syscall.EAGAIN
	}); err != nil {
		return time.Time{}, err
	}
	if rerr != nil {
		return time.Time{}, rerr
	}
	if n != size {
		return time.Time{}, fmt.Errorf("read %d bytes; want %d", n, size)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return time.Time{}, err
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Sec, ts.Nsec), nil
		}
	}
	return time.Time{}, fmt.Errorf("no receive timestamp")
}
