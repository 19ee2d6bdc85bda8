//go:build linux

package uring_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// TestHotPathAllocs holds the loop's hot path (a recv completion, OnData,
// Write, the gathered send and its completion) at zero allocations per
// round trip. Its 16 x 4 KiB row fails on the output buffer regrown for
// every burst that papers/0001's first run caught (12x gnet's user time).
func TestHotPathAllocs(t *testing.T) {
	testutil.HotPathAllocs(t, func(t *testing.T) transports.Transport {
		tr, err := transports.Open("uring", transports.Config{Loops: 1, Logger: quiet().Logger})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
}

// TestHotPathAllocsRuntimeLoop holds a runtime loop's hot path at zero
// allocations too: the same round trips, and a park in the netpoller
// (RawConn.Read with a callback bound once) between them.
func TestHotPathAllocsRuntimeLoop(t *testing.T) {
	testutil.HotPathAllocs(t, func(t *testing.T) transports.Transport {
		tr, err := transports.Open("uring:park=runtime", transports.Config{Loops: 1, Logger: quiet().Logger})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
}

// handoffEcho echoes from a goroutine of its own per conn, as the net.Conn
// adapter's handlers do: OnData copies the input out and wakes the
// goroutine, which writes it back with Conn.Write, posting the conn to
// its loop. OnOpen hands the conn to opened.
type handoffEcho struct{ opened chan transports.Conn }

type handoffWriter struct {
	c    transports.Conn
	mu   sync.Mutex
	in   []byte // guarded by mu
	wake chan struct{}
	done chan struct{}
}

func (handoffEcho) Handoff() bool { return true }
func (h handoffEcho) OnOpen(c transports.Conn) {
	w := &handoffWriter{c: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.SetContext(w)
	go w.run()
	h.opened <- c
}
func (handoffEcho) OnData(c transports.Conn, in []byte) int {
	w := c.Context().(*handoffWriter)
	w.mu.Lock()
	w.in = append(w.in, in...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(in)
}
func (handoffEcho) OnClose(c transports.Conn, _ error) { close(c.Context().(*handoffWriter).done) }

func (w *handoffWriter) run() {
	var out []byte
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		w.mu.Lock()
		out, w.in = w.in, out[:0]
		w.mu.Unlock()
		w.c.Write(out)
	}
}

// TestHandoffPathAllocs holds a runtime loop's side of a hand-off at zero
// allocations per round trip: the data lent to OnData, the goroutine it
// wakes, that goroutine's Write posting to the loop, the send; and a
// Write from another goroutine that finds the loop parked and pokes it.
// (The net.Conn adapter allocates on its own side.)
func TestHandoffPathAllocs(t *testing.T) {
	base := testutil.TakeBaseline()
	tr, err := transports.Open("uring", transports.Config{Loops: 1, Logger: quiet().Logger})
	if err != nil {
		t.Fatal(err)
	}
	h := handoffEcho{opened: make(chan transports.Conn, 1)}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	msg, got := make([]byte, 64), make([]byte, 64)
	var failed error
	trip := func() {
		if _, err := c.Write(msg); err != nil && failed == nil {
			failed = err
		}
		if _, err := io.ReadFull(c, got); err != nil && failed == nil {
			failed = err
		}
	}
	sc := <-h.opened
	poke := func() {
		if _, err := sc.Write(msg); err != nil && failed == nil {
			failed = err
		}
		if _, err := io.ReadFull(c, got); err != nil && failed == nil {
			failed = err
		}
	}
	for range 100 {
		trip()
		poke()
	}
	allocs := testing.AllocsPerRun(1000, trip)
	wakes := tr.Stats().Extra["posted_wakeups"]
	pokeAllocs := testing.AllocsPerRun(1000, poke)
	wakes = tr.Stats().Extra["posted_wakeups"] - wakes
	if failed != nil {
		t.Fatal(failed)
	}
	if n := tr.Stats().Extra["runtime_loops"]; n != 1 {
		t.Fatalf("runtime_loops = %d: the handler's conn is not on a runtime loop", n)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per round trip through a handing-off handler, want 0", allocs)
	}
	if pokeAllocs != 0 {
		t.Errorf("%v allocations per Write from another goroutine, want 0", pokeAllocs)
	}
	if wakes < 500 {
		t.Errorf("1,001 Writes from another goroutine, each once the last was read, poked the loop %d times: the case tested no poke", wakes)
	}
	c.Close()
	if err := tr.Close(); err != nil {
		t.Error(err)
	}
	base.Check(t, 10*time.Second)
}
