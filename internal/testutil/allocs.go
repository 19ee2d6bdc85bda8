package testutil

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// FrameEcho is a Handler that echoes whole frames of Size bytes and keeps
// the rest for the next OnData.
type FrameEcho struct{ Size int }

func (FrameEcho) OnOpen(transports.Conn)         {}
func (FrameEcho) OnClose(transports.Conn, error) {}
func (h FrameEcho) OnData(c transports.Conn, in []byte) int {
	n := len(in) / h.Size * h.Size
	c.Write(in[:n])
	return n
}

// HotPathAllocs holds a loop transport's hot path (input, OnData, Write,
// the gathered send and its completion) at zero allocations per round
// trip once buffers have reached their sizes, over TCP from a Go client:
// an echo round trip, 16 pipelined ones, 16 x 4 KiB in one burst (where a
// buffer regrown for every burst shows), and one where every OnData keeps
// bytes for the next. open returns a fresh transport with one loop; it is
// closed, and checked for leaks, after each row.
func HotPathAllocs(t *testing.T, open func(t *testing.T) transports.Transport) {
	rows := []struct {
		name  string
		size  int // bytes per message
		depth int // messages per client write
		lead  int // bytes sent ahead once, which the server keeps from then on
	}{
		{name: "echo", size: 64, depth: 1},
		{name: "pipelined", size: 64, depth: 16},
		{name: "4KiB-x16", size: 4096, depth: 16},
		{name: "kept", size: 64, depth: 1, lead: 32},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			base := TakeBaseline()
			tr := open(t)
			ln, err := tr.Listen("tcp", "127.0.0.1:0", FrameEcho{row.size})
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			msg := make([]byte, row.depth*row.size)
			for i := range msg {
				msg[i] = byte(i)
			}
			got := make([]byte, len(msg))
			if row.lead > 0 {
				c.Write(msg[:row.lead]) // kept by the server until the end
			}
			c.SetDeadline(time.Now().Add(60 * time.Second))
			var failed error
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil && failed == nil {
					failed = err
				}
				if _, err := io.ReadFull(c, got); err != nil && failed == nil {
					failed = err
				}
			}
			for range 100 {
				roundTrip() // warm up: buffers reach their sizes
			}
			allocs := testing.AllocsPerRun(1000, roundTrip)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per round trip of %d x %d B, want 0", allocs, row.depth, row.size)
			}
			c.Close()
			if err := tr.Close(); err != nil {
				t.Error(err)
			}
			base.Check(t, 10*time.Second)
		})
	}
}
