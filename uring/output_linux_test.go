package uring

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// connRecorder is a Handler that sends each Conn it opens on the channel
// and consumes all input.
type connRecorder chan *conn

func (r connRecorder) OnOpen(c transports.Conn)              { r <- c.(*conn) }
func (connRecorder) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (connRecorder) OnClose(transports.Conn, error)          {}

// TestIdleHoldsNoLargeOutput: a connection that wrote 1 MiB once, all of
// it sent and read by the peer, holds no output buffer of that size while
// idle. A keep-alive connection that served a large response must not
// hold its size until it writes again (N of them would hold N times it);
// sockets drops its output buffer above 64 KiB once written, and so must
// uring, zero-copy sends or not.
func TestIdleHoldsNoLargeOutput(t *testing.T) {
	const size = 1 << 20
	for _, spec := range []string{"uring", "uring:zerocopy=64k"} {
		t.Run(spec, func(t *testing.T) {
			base := testutil.TakeBaseline()
			tr, err := transports.Open(spec, transports.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			rec := make(connRecorder, 1)
			ln, err := tr.Listen("tcp", "127.0.0.1:0", rec)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var sc *conn
			select {
			case sc = <-rec:
			case <-time.After(10 * time.Second):
				t.Fatal("no OnOpen")
			}

			if _, err := sc.Write(make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
				t.Fatalf("client read: %v", err)
			}
			for deadline := time.Now().Add(10 * time.Second); sc.OutboundBuffered() != 0; {
				if time.Now().After(deadline) {
					t.Fatalf("OutboundBuffered = %d 10 s after the peer read every byte", sc.OutboundBuffered())
				}
				time.Sleep(time.Millisecond) // polling a counter
			}
			// The loop has stepped the conn since its last send completed
			// (a step follows every batch of completions); ask it what the
			// conn holds.
			held := make(chan [2]int, 1)
			sc.l.postTask(func() { held <- [2]int{cap(sc.sbuf), cap(sc.wbuf)} })
			var h [2]int
			select {
			case h = <-held:
			case <-time.After(10 * time.Second):
				t.Fatal("the loop did not run a posted task")
			}
			if h[0] > bigBuffer || h[1] > bigBuffer {
				t.Errorf("an idle connection that wrote %d bytes holds output buffers of %d and %d bytes; want none larger than %d", size, h[0], h[1], bigBuffer)
			}

			c.Close()
			if err := tr.Close(); err != nil {
				t.Error(err)
			}
			base.Check(t, 10*time.Second)
		})
	}
}
