package sockets

import (
	"context"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// nopHandler consumes everything; opened, if set, hears of every OnOpen.
type nopHandler struct{ opened chan struct{} }

func (h nopHandler) OnOpen(transports.Conn) {
	if h.opened != nil {
		h.opened <- struct{}{}
	}
}
func (nopHandler) OnData(_ transports.Conn, b []byte) int { return len(b) }
func (nopHandler) OnClose(transports.Conn, error)         {}

// Each connection counts in a shard of its own, so that connections'
// goroutines on different CPUs do not contend for one set of counters;
// Stats sums the shards.
func TestCountersPerConnection(t *testing.T) {
	tr, err := New(transports.Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	const n = 8
	opened := make(chan struct{}, n)
	ln, err := tr.Listen("tcp", "127.0.0.1:0", nopHandler{opened: opened})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := tr.Dial(context.Background(), "tcp", ln.Addr().String(), nopHandler{}); err != nil {
			t.Fatal(err)
		}
	}
	// Every accepted conn is registered before its OnOpen runs.
	for range n {
		select {
		case <-opened:
		case <-time.After(time.Minute):
			t.Fatal("the accepted connections did not open within a minute")
		}
	}
	tr.mu.Lock()
	shards := map[*transports.Counters]int{}
	for c := range tr.conns {
		shards[c.st]++
	}
	conns := len(tr.conns)
	tr.mu.Unlock()
	if conns != 2*n || len(shards) != 2*n {
		t.Errorf("%d connections count in %d shards, want %d in %d", conns, len(shards), 2*n, 2*n)
	}
	if s := tr.Stats(); s.Accepted != n || s.Dialed != n {
		t.Errorf("Stats() = %+v, want %d accepted and %d dialed", s, n, n)
	}
}
