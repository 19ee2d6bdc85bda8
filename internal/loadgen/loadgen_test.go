package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// server is a plain Go net server for the tests; serve handles each
// accepted connection. Close stops it and waits for its goroutines.
type server struct {
	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	cs []net.Conn
}

func startServer(t *testing.T, serve func(s *server, c net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs = append(s.cs, c)
			s.mu.Unlock()
			s.wg.Go(func() { serve(s, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.cs {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// echo is a correct echo server.
func echo(_ *server, c net.Conn) {
	io.Copy(c, c)
	c.Close()
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunEcho(t *testing.T) {
	for _, tc := range []struct {
		name               string
		conns, size, depth int
	}{
		{name: "small", conns: 4, size: 64, depth: 1},
		{name: "pipelined", conns: 4, size: 100, depth: 16},
		{name: "tiny-messages", conns: 2, size: 3, depth: 7},
		// 16 x 64 KiB is written from a second goroutine: a server that
		// echoes as it reads would deadlock a write-then-read client.
		{name: "large-batch", conns: 2, size: 64 << 10, depth: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, echo)
			var progress int
			res, err := Config{
				Addr: s.addr(), Conns: tc.conns, Size: tc.size, Depth: tc.depth,
				Duration: 300 * time.Millisecond,
				Progress: func(Progress) { progress++ },
			}.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
			}
			// Every connection finishes at least the batch it started.
			if min := uint64(tc.conns * tc.depth); res.Requests < min || res.Requests%uint64(tc.depth) != 0 {
				t.Errorf("Requests = %d, want a multiple of %d, at least %d", res.Requests, tc.depth, min)
			}
			if res.Bytes != res.Requests*uint64(tc.size) {
				t.Errorf("Bytes = %d, want Requests x Size = %d", res.Bytes, res.Requests*uint64(tc.size))
			}
			if res.RequestsPerSecond() <= 0 || res.MBPerSecond() <= 0 {
				t.Errorf("rates %v req/s, %v MB/s: want positive", res.RequestsPerSecond(), res.MBPerSecond())
			}
		})
	}
}

// A server that corrupts one byte is caught, with the offset.
func TestRunDetectsCorruption(t *testing.T) {
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1000)
		total := 0
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			// Flip the byte at stream offset 5000: batch 5 (of 1000
			// bytes), message 0, byte 0, in the header.
			if total <= 5000 && 5000 < total+n {
				buf[5000-total] ^= 0x40
			}
			total += n
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	res, err := Config{Addr: s.addr(), Conns: 1, Size: 500, Depth: 2, Duration: 5 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 || len(res.FirstErrors) != 1 {
		t.Fatalf("Errors = %d (%v), want 1", res.Errors, res.FirstErrors)
	}
	var me *MismatchError
	if !errors.As(res.FirstErrors[0], &me) {
		t.Fatalf("error %v is not a *MismatchError", res.FirstErrors[0])
	}
	if me.Batch != 5 || me.Offset != 0 || me.Got != me.Want^0x40 {
		t.Errorf("mismatch at batch %d offset %d, want %#02x got %#02x; want batch 5 offset 0, one bit flipped",
			me.Batch, me.Offset, me.Want, me.Got)
	}
	if res.Requests != 10 {
		t.Errorf("Requests = %d, want the 10 messages before the corrupt batch", res.Requests)
	}
}

// A server that cross-wires two connections (each gets the other's
// messages, of the same size) is caught: the payload names its connection.
func TestRunDetectsCrossedConnections(t *testing.T) {
	var (
		mu    sync.Mutex
		first net.Conn // the first connection, waiting for the second
	)
	s := startServer(t, func(s *server, c net.Conn) {
		mu.Lock()
		other := first
		first = c
		mu.Unlock()
		if other != nil {
			s.wg.Go(func() { io.Copy(c, other) })
			io.Copy(other, c)
		}
	})
	res, err := Config{Addr: s.addr(), Conns: 2, Size: 64, Depth: 1, Duration: 5 * time.Second, Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 {
		t.Fatalf("Errors = %d (%v), want 2 (both connections)", res.Errors, res.FirstErrors)
	}
	var me *MismatchError
	if !errors.As(res.FirstErrors[0], &me) {
		t.Fatalf("error %v is not a *MismatchError", res.FirstErrors[0])
	}
	if !me.HeaderOK || int(me.GotConn) != 1-me.Conn || me.Offset != 0 {
		t.Errorf("%v: want a difference at byte 0 naming the other connection", me)
	}
}

// Nothing listening: every connection fails to dial, and says so.
func TestRunDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Config{Addr: addr, Conns: 3, Duration: time.Second, MaxErrors: 2}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || len(res.FirstErrors) != 2 || res.Requests != 0 {
		t.Fatalf("Errors = %d, FirstErrors = %v, Requests = %d; want 3, 2 kept, 0", res.Errors, res.FirstErrors, res.Requests)
	}
	if !strings.Contains(res.FirstErrors[0].Error(), "refused") {
		t.Errorf("error %q does not say the connection was refused", res.FirstErrors[0])
	}
}

// Cancelling the context ends a run against a server that never answers,
// without counting that as an error.
func TestRunCancel(t *testing.T) {
	reading := make(chan struct{}, 2)
	s := startServer(t, func(_ *server, c net.Conn) {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err == nil {
			reading <- struct{}{} // a batch is in flight
		}
		io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() {
		res, _ := Config{Addr: s.addr(), Conns: 2, Duration: time.Hour, Timeout: time.Hour}.Run(ctx)
		done <- res
	}()
	for range 2 {
		select {
		case <-reading:
		case <-time.After(10 * time.Second):
			t.Fatal("no batch reached the server within 10 s")
		}
	}
	cancel()
	select {
	case res := <-done:
		if res.Errors != 0 {
			t.Errorf("Errors = %d (%v) after cancel, want 0", res.Errors, res.FirstErrors)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, c := range []Config{
		{},
		{Addr: "x", Conns: -1},
		{Addr: "x", Size: 1 << 20, Depth: 2048},
	} {
		if _, err := c.Run(context.Background()); err == nil {
			t.Errorf("Run(%+v) = nil error, want one", c)
		}
	}
}
