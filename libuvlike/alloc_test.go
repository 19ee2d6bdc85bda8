//go:build linux

package libuvlike

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

// TestHotPathAllocs holds the loop's hot path (read into the loop's
// buffer, OnData, Write, the gathered flush, the write's completion) at
// zero allocations per message: an echo round trip, pipelined ones, and
// one where every OnData keeps bytes for the next.
func TestHotPathAllocs(t *testing.T) {
	const size = 64
	rows := []struct {
		name  string
		depth int // messages per client write
		lead  int // bytes sent ahead once, which the server keeps from then on
	}{
		{name: "echo", depth: 1},
		{name: "pipelined", depth: 16},
		{name: "kept", depth: 1, lead: size / 2},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			base := testutil.TakeBaseline()
			tr, err := New(transports.Config{Loops: 1}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tr.Listen("tcp", "127.0.0.1:0", frameEcho{size})
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			msg := make([]byte, row.depth*size)
			for i := range msg {
				msg[i] = byte(i)
			}
			got := make([]byte, len(msg))
			if row.lead > 0 {
				c.Write(msg[:row.lead]) // kept by the server until the end
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
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
			allocs := testing.AllocsPerRun(2000, roundTrip)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per round trip of %d messages, want 0", allocs, row.depth)
			}
			c.Close()
			if err := tr.Close(); err != nil {
				t.Error(err)
			}
			base.Check(t, 10*time.Second)
		})
	}
}
