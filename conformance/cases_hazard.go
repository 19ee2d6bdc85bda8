package conformance

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// hazardCases are the io_uring-era hazards every transport must survive:
// a read deadline that fires while bytes arrive, an Abort while a large
// send is in the kernel, and connection churn.
var hazardCases = []testCase{
	{name: "deadline-then-read", smoke: true, run: hazardDeadlineThenRead},
	{name: "abort-mid-send", run: hazardAbortMidSend},
	{name: "connect-close-churn", run: hazardChurn},
}

// hazardDeadlineThenRead: on the net.Conn adapter, Reads with short
// deadlines time out again and again while the peer's bytes arrive in
// between; every byte must still come out of a later Read, once and in
// order. (A transport or adapter that cancels a read at its deadline and
// drops what that read had received loses bytes here.)
func hazardDeadlineThenRead(t *testing.T, s *Suite) {
	const rounds = 200
	rng := rand.New(rand.NewPCG(caseSeed(t), 0))
	tr := s.Open(t, nil)
	ln := ncListen(t, s, tr)
	client, server := ncPair(t, ln)

	sizes := make([]int, rounds)
	total := 0
	for i := range sizes {
		sizes[i] = logUniform(rng, 1, 64<<10)
		total += sizes[i]
	}
	waits := []time.Duration{-time.Second, 0, 50 * time.Microsecond, 200 * time.Microsecond, time.Millisecond}

	// The writer sends round i's bytes only when the reader says so, right
	// after one of its Reads timed out: so the bytes arrive while the next
	// Reads, with short deadlines, come and go.
	turn := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		off := 0
		for _, n := range sizes {
			if _, ok := <-turn; !ok {
				werr <- nil
				return
			}
			if _, err := (deadlineConn{client}).Write(bufPatternAt(int64(off), n)); err != nil {
				werr <- err
				return
			}
			off += n
		}
		werr <- nil
	}()

	buf := make([]byte, 32<<10)
	off, timeouts := 0, 0
	deadline := time.Now().Add(stepTimeout)
	for i, n := range sizes {
		sentTurn := false
		for end := off + n; off < end; {
			if time.Now().After(deadline) {
				close(turn)
				t.Fatalf("round %d: after %v, %d of %d bytes read", i, stepTimeout, off, total)
			}
			if err := server.SetReadDeadline(time.Now().Add(waits[rng.IntN(len(waits))])); err != nil {
				t.Fatal(err)
			}
			m, err := server.Read(buf[:min(len(buf), end-off+rng.IntN(2))])
			if j := bufMismatch(int64(off), buf[:m]); j >= 0 {
				close(turn)
				t.Fatalf("round %d: the byte at stream offset %d differs from what the peer sent (a byte was lost or repeated around a deadline)", i, off+j)
			}
			off += m
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				timeouts++
				if !sentTurn {
					sentTurn = true
					turn <- struct{}{}
				}
			case err != nil:
				close(turn)
				t.Fatalf("round %d: Read after %d bytes: %v", i, off, err)
			case !sentTurn:
				close(turn)
				t.Fatalf("round %d: Read returned %d bytes before the peer sent any", i, m)
			}
			deadline = time.Now().Add(stepTimeout)
		}
	}
	close(turn)
	if err := <-werr; err != nil {
		t.Fatalf("peer write: %v", err)
	}
	// Nothing more may come: a late duplicate would show here.
	server.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if m, err := server.Read(buf); m != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after the whole stream: Read returned %d bytes, %v; want a timeout and nothing", m, err)
	}
	t.Logf("%d bytes in %d rounds, %d Reads timed out", total, rounds, timeouts)
}

// hazardAbortMidSend: connections whose handler has written far more than
// the kernel takes (the send is in the kernel, waiting for room) are
// aborted, from another goroutine or in a callback. Each OnClose matches
// ErrAborted, the peer sees the connection end, and nothing is left: no
// open Conn in Stats, no descriptor, no goroutine (the suite's leak check).
func hazardAbortMidSend(t *testing.T, s *Suite) {
	const (
		conns = 16
		size  = 8 << 20
	)
	big := make([]byte, size)
	var (
		opened = make(chan transports.Conn, conns)
		closed = make(chan error, conns)
		faults bufFaults
	)
	h := handler(hooks{
		Open: func(c transports.Conn) {
			if _, err := c.Write(big); err != nil {
				faults.add("Write of %d bytes: %v", size, err)
			}
			opened <- c
		},
		Data: func(c transports.Conn, in []byte) int {
			// The client asks for the in-callback abort with one byte.
			if err := c.Abort(); err != nil {
				faults.add("Abort in OnData: %v", err)
			}
			if _, err := c.Write(in); !errors.Is(err, net.ErrClosed) {
				faults.add("Write after Abort: %v, want net.ErrClosed", err)
			}
			return len(in)
		},
		Close: func(c transports.Conn, err error) { closed <- err },
	})
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, h)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i := range conns {
		c := s.DialClient(t, ln)
		sc := bufAwait(t, opened, "OnOpen")
		// Read a little, so that the send is surely under way in the
		// kernel when the abort comes.
		if _, err := io.ReadFull(deadlineConn{c}, make([]byte, 1024)); err != nil {
			t.Fatalf("conn %d: reading the start of the reply: %v", i, err)
		}
		if i%2 == 0 {
			if err := sc.Abort(); err != nil {
				t.Errorf("conn %d: Abort: %v", i, err)
			}
		} else if _, err := (deadlineConn{c}).Write([]byte{1}); err != nil {
			t.Fatalf("conn %d: client write: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.SetReadDeadline(time.Now().Add(stepTimeout)); err != nil {
				faults.add("conn %d: %v", i, err)
				return
			}
			n, err := io.Copy(io.Discard, c)
			switch {
			case err != nil && !bufIsReset(err):
				faults.add("conn %d: after Abort the client read %d bytes, then %v; want EOF or a reset", i, n, err)
			case n >= size:
				faults.add("conn %d: the client read all %d bytes of an aborted send", i, n)
			}
		}()
	}
	for i := range conns {
		if err := bufAwait(t, closed, fmt.Sprintf("OnClose %d of %d", i+1, conns)); !errors.Is(err, transports.ErrAborted) {
			t.Errorf("OnClose err = %v, want one matching ErrAborted", err)
		}
	}
	wg.Wait()
	// A transport counts a connection closed once its OnClose has
	// returned, which may be just after the last OnClose sent to closed.
	for deadline := time.Now().Add(stepTimeout); tr.Stats().Open() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("Stats().Open() = %d %v after every OnClose, want 0", tr.Stats().Open(), stepTimeout)
			break
		}
	}
	faults.check(t)
}

// hazardChurn: 10,000 connections connect and close at once (on TCP with
// RST, so that no TIME_WAIT is left to run out of ports). Every OnOpen
// gets its OnClose, Stats counts no open Conn at the end, and the suite's
// leak check finds no descriptor left.
func hazardChurn(t *testing.T, s *Suite) {
	const (
		cycles  = 10000
		dialers = 4
	)
	var opens, closes atomic.Int64
	h := handler(hooks{
		Open:  func(transports.Conn) { opens.Add(1) },
		Close: func(transports.Conn, error) { closes.Add(1) },
	})
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, h)
	a := ln.Addr()
	start := time.Now()
	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr atomic.Value
	)
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < cycles; i += dialers {
				c, err := dialRetrying(a)
				if err != nil {
					if failed.Add(1) == 1 {
						firstErr.Store(err)
					}
					return
				}
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d dialers failed, first: %v", n, firstErr.Load())
	}
	dialed := time.Since(start)
	// Connections still in the listen queue are accepted (and closed)
	// soon: poll the counters until everything opened has closed.
	var st transports.Stats
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(10 * time.Millisecond) {
		st = tr.Stats()
		o, c := opens.Load(), closes.Load()
		if o > 0 && o == c && st.Open() == 0 && st.Accepted == uint64(o) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d OnOpen, %d OnClose; Stats: %d accepted, %d open", stepTimeout, o, c, st.Accepted, st.Open())
		}
	}
	t.Logf("%d connect/close cycles in %v; %d accepted (the others were reset before accept)", cycles, dialed.Round(time.Millisecond), opens.Load())
}

// dialRetrying dials a, retrying for up to stepTimeout while a unix
// listener's queue is full: the server is behind, and connect(2) says so
// instead of waiting.
func dialRetrying(a net.Addr) (net.Conn, error) {
	c, err := net.DialTimeout(a.Network(), a.String(), stepTimeout)
	for retry := time.Now().Add(stepTimeout); errors.Is(err, syscall.EAGAIN) && time.Now().Before(retry); {
		time.Sleep(time.Millisecond)
		c, err = net.DialTimeout(a.Network(), a.String(), stepTimeout)
	}
	return c, err
}
