package uring

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/core"
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

// TestLargeWriteGoesOutAtOnce: a Write of core.DirectWrite bytes or more with
// no output queued is sent inside Write (OutboundBuffered falls below its
// size right after it, the socket having room), unless zero-copy sends
// were asked for at its size; a large Write behind queued output is
// queued behind it, and the peer gets every byte in the order written.
func TestLargeWriteGoesOutAtOnce(t *testing.T) {
	for _, tc := range []struct {
		spec string
		now  bool // the first large Write goes out at once
	}{{"uring", true}, {"uring:park=runtime", true}, {"uring:zerocopy=16k", false}} {
		t.Run(tc.spec, func(t *testing.T) {
			w := testutil.LargeWriter{A: testutil.Pattern(core.DirectWrite+1000, 'a'), B: testutil.Pattern(core.DirectWrite+1000, 'k'), Obs: make(chan [2]int, 3)}
			tr, err := transports.Open(tc.spec, transports.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			ln, err := tr.Listen("tcp", "127.0.0.1:0", w)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := w.Want()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			for round := 0; round < 3; round++ {
				if _, err := c.Write([]byte{'x'}); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("round %d: client read: %v", round, err)
				}
				if string(got) != string(want) {
					t.Fatalf("round %d: the peer got the output out of order", round)
				}
				ob := <-w.Obs
				switch {
				case tc.now && ob[0] >= len(w.A):
					t.Errorf("round %d: OutboundBuffered = %d right after a Write of %d bytes with none queued; want less (sent at once, the socket having room)", round, ob[0], len(w.A))
				case !tc.now && ob[0] != len(w.A):
					t.Errorf("round %d: OutboundBuffered = %d right after a Write of %d bytes to go by SEND_ZC; want all of it (not sent at once)", round, ob[0], len(w.A))
				}
				if ob[1] != ob[0]+1+len(w.B) {
					t.Errorf("round %d: OutboundBuffered = %d after a byte and %d bytes more; want %d (queued behind what waited)", round, ob[1], len(w.B), ob[0]+1+len(w.B))
				}
			}
		})
	}
}
