package uring

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

type echoConn struct{}

func (echoConn) OnOpen(transports.Conn)                  {}
func (echoConn) OnData(c transports.Conn, in []byte) int { c.Write(in); return len(in) }
func (echoConn) OnClose(transports.Conn, error)          {}

// Asking the kernel how many provided buffers it still holds is a system
// call (IORING_REGISTER_PBUF_STATUS): the loop makes it only when a
// receive has starved, never on an ordinary turn. It used to ask on every
// turn, one system call more per wake-up.
func TestNoBufferStatusCallsWhenNotStarved(t *testing.T) {
	tr, err := New(transports.Config{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{})
	if err != nil {
		t.Skipf("uring: %v", err)
	}
	defer tr.Close()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", echoConn{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	msg, got := []byte("ping"), make([]byte, 4)
	const rounds = 500
	for range rounds {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
	}
	l := tr.thread.loops[0]
	calls := make(chan uint64, 1)
	l.postTask(func() { calls <- l.bufs.StatusCalls })
	if n := <-calls; n != 0 {
		t.Errorf("%d buffer status system calls over %d round trips with no receive starved; want 0", n, rounds)
	}
}
