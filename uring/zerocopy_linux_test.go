package uring

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pawelgaczynski/giouring"

	"github.com/merlin-net/merlin/transports"
)

// zcServer hands the server's conn to the test and consumes input.
type zcServer struct{ opened chan *conn }

func (h zcServer) OnOpen(c transports.Conn)              { h.opened <- c.(*conn) }
func (zcServer) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (zcServer) OnClose(transports.Conn, error)          {}

// Output queued behind a SEND_ZC goes out once the send completes, not
// once the kernel's notification that it no longer reads the buffer
// arrives (which on TCP waits for the peer's ACK): streaming with
// zero-copy must not send one buffer per round trip. The SEND_ZC is
// simulated on the conn's loop (its completion, flagged MORE, and no
// notification ever), the queued bytes are real.
func TestZeroCopyNextSendBeforeNotification(t *testing.T) {
	tr, err := transports.Open("uring:zerocopy=1k", transports.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Skipf("uring: %v", err)
	}
	defer tr.Close()
	opened := make(chan *conn, 1)
	ln, err := tr.Listen("tcp", "127.0.0.1:0", zcServer{opened: opened})
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var c *conn
	select {
	case c = <-opened:
	case <-time.After(time.Minute):
		t.Fatal("the connection did not open within a minute")
	}

	queued := []byte("queued behind the zero-copy send")
	c.l.postTask(func() {
		const n = 4096
		c.mu.Lock()
		c.sbuf, c.soff = make([]byte, n), 0
		c.wbuf = append(c.wbuf[:0], queued...)
		c.queued = n + len(queued)
		c.sending = true
		c.l.zcSeq++
		c.zcSeqCur = c.l.zcSeq
		c.mu.Unlock()
		// All n bytes sent; the notification is to come (MORE).
		c.onCQE(opSend, c.zcSeqCur, n, giouring.CQEFMore)
	})
	client.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len(queued))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("the output queued behind a SEND_ZC did not go out before its notification: %v", err)
	}
	if !bytes.Equal(got, queued) {
		t.Errorf("read %q, want %q", got, queued)
	}
}
