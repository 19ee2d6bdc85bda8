//go:build linux

package uring_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// frameEcho echoes whole frames of size bytes and keeps the rest.
type frameEcho struct{ size int }

func (frameEcho) OnOpen(transports.Conn)         {}
func (frameEcho) OnClose(transports.Conn, error) {}
func (h frameEcho) OnData(c transports.Conn, in []byte) int {
	n := len(in) / h.size * h.size
	c.Write(in[:n])
	return n
}

// TestHotPathAllocs holds the loop's hot path (a recv completion, OnData,
// Write, the gathered send and its completion) at zero allocations per
// round trip once buffers have reached their sizes: an echo round trip,
// pipelined ones, 16 x 4 KiB in one burst (an output buffer regrown for
// every burst once cost 12x gnet's user time there), and one where every
// OnData keeps bytes for the next.
func TestHotPathAllocs(t *testing.T) {
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
			base := testutil.TakeBaseline()
			tr, err := transports.Open("uring", transports.Config{Loops: 1, Logger: quiet().Logger})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tr.Listen("tcp", "127.0.0.1:0", frameEcho{row.size})
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
