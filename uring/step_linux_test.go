package uring

import (
	"io"
	"net"
	"testing"
	"time"
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
