package libuvlike

import (
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// timerHandler sends each conn it opens on opened, runs onData (if set)
// in OnData, and sends a conn whose timer ran out on fired.
type timerHandler struct {
	opened chan *conn
	onData func(c *conn)
	fired  chan *conn
}

func (h *timerHandler) OnOpen(c transports.Conn) { h.opened <- c.(*conn) }
func (h *timerHandler) OnData(c transports.Conn, in []byte) int {
	if h.onData != nil {
		h.onData(c.(*conn))
	}
	return len(in)
}
func (h *timerHandler) OnClose(transports.Conn, error) {}
func (h *timerHandler) OnTimer(c transports.Conn)      { h.fired <- c.(*conn) }

// TestSetTimerOnLoopReplacesOneFromAnotherGoroutine: a SetTimer made on
// the loop replaces one made earlier from another goroutine, although the
// loop has not yet applied that one's command: the loop's SetTimer must
// apply the waiting command first, not be overridden by it later.
//
// Conn a's OnData waits until the test's goroutine has set a's timer to
// 10 ms, then stops it, and sets the timer of conn b (same loop) to
// 200 ms as a sentinel: timers run in order of their deadlines, so a's,
// if the late command set it again, would run out first.
func TestSetTimerOnLoopReplacesOneFromAnotherGoroutine(t *testing.T) {
	tr := openTransport(t, transports.Config{Loops: 1}, Options{})
	type pair struct{ a, b *conn }
	var (
		pairs       = make(chan pair, 1) // the conns, for the one OnData (the channel orders it after the test's writes)
		inData, set = make(chan struct{}), make(chan struct{})
		h           = &timerHandler{opened: make(chan *conn, 2), fired: make(chan *conn, 2)}
	)
	h.onData = func(c *conn) {
		p := <-pairs
		if c != p.a {
			t.Errorf("OnData on the conn that was to stay quiet")
		}
		close(inData)
		<-set
		p.a.SetTimer(0)
		p.b.SetTimer(200 * time.Millisecond)
	}
	ln := listenTCP(t, tr, h)
	open := func() (net.Conn, *conn) {
		t.Helper()
		nc := dialTCP(t, ln)
		select {
		case c := <-h.opened:
			return nc, c
		case <-time.After(10 * time.Second):
			t.Fatal("no OnOpen")
			return nil, nil
		}
	}
	na, a := open()
	_, b := open()
	pairs <- pair{a, b}
	if _, err := na.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inData:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnData")
	}
	a.SetTimer(10 * time.Millisecond) // from the test's goroutine: a command for the loop
	close(set)
	select {
	case c := <-h.fired:
		if c == a {
			t.Errorf("a's timer ran out: the SetTimer(0) made on the loop after a SetTimer(10ms) from another goroutine did not replace it")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnTimer within 10 s")
	}
}
