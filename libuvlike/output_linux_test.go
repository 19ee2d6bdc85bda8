package libuvlike

import (
	"io"
	"testing"
	"time"
	"unsafe"

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

// TestIdleHoldsNoLargeOutput: a connection whose large output went out in
// a short write(2) and a write request for the rest holds no part of that
// output's buffer once everything is written. The rest is a slice of the
// large buffer whose own capacity can be under maxSpare; kept for reuse,
// it would hold the whole buffer while the connection is idle (a 4 MiB
// Write to a slow reader did: write(2) took 3,962,119 bytes, and the idle
// connection held the 4 MiB through a 232 KiB tail).
//
// How much a write(2) takes depends on the kernel's buffers, so the case
// plays the flush itself, on the loop: the output is a 1 MiB buffer, the
// write took all of it but the last 100 KiB (wrote), and the rest goes to
// a write request (queueRest), as the loop's flush does. The request is
// real: the client reads the 100 KiB.
func TestIdleHoldsNoLargeOutput(t *testing.T) {
	const size, rest = 1 << 20, 100 << 10
	tr := openTransport(t, transports.Config{Loops: 1}, Options{})
	rec := make(connRecorder, 1)
	c := dialTCP(t, listenTCP(t, tr, rec))
	var sc *conn
	select {
	case sc = <-rec:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnOpen")
	}

	big := make([]byte, size) // the output, as a Write of 1 MiB leaves it
	sc.el.post(func() {
		sc.out = big
		sc.obLoop += size
		sc.wrote(size-rest, nil)
		sc.queueRest()
	})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, rest)); err != nil {
		t.Fatalf("client read: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); sc.OutboundBuffered() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("OutboundBuffered = %d 10 s after the peer read every byte", sc.OutboundBuffered())
		}
		time.Sleep(time.Millisecond) // polling a counter
	}

	// Ask the loop what the idle conn holds: a buffer of capacity over
	// maxSpare, or a slice of the 1 MiB one.
	type held struct {
		name   string
		cap    int
		inside bool // a slice of big
	}
	found := make(chan []held, 1)
	sc.el.post(func() {
		var hs []held
		for _, b := range []struct {
			name string
			b    []byte
		}{{"out", sc.out}, {"spare", sc.spare}, {"reqBuf[0]", sc.reqBuf[0]}, {"reqBuf[1]", sc.reqBuf[1]}} {
			if cap(b.b) == 0 {
				continue
			}
			hs = append(hs, held{name: b.name, cap: cap(b.b), inside: sliceIn(b.b, big)})
		}
		found <- hs
	})
	var hs []held
	select {
	case hs = <-found:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not run a posted task")
	}
	for _, h := range hs {
		if h.cap > maxSpare || h.inside {
			t.Errorf("the idle connection holds %s, of capacity %d (a slice of the %d-byte output: %v); want nothing of an output buffer larger than %d", h.name, h.cap, size, h.inside, maxSpare)
		}
	}
}

// sliceIn reports whether b's memory lies inside base's.
func sliceIn(b, base []byte) bool {
	if cap(b) == 0 || cap(base) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(base)))
	return p >= lo && p < lo+uintptr(cap(base))
}

// TestLargeWriteGoesOutAtOnce: a Write on the loop of core.DirectWrite bytes or
// more, with no output waiting, is written to the socket inside Write (so
// OutboundBuffered falls below its size right after it, the socket having
// room); a large Write behind waiting output is queued behind it, and the
// peer gets every byte in the order written.
func TestLargeWriteGoesOutAtOnce(t *testing.T) {
	for _, opt := range []Options{{}, {EdgeTriggered: true}} {
		w := testutil.LargeWriter{A: testutil.Pattern(core.DirectWrite+1000, 'a'), B: testutil.Pattern(core.DirectWrite+1000, 'k'), Obs: make(chan [2]int, 3)}
		tr := openTransport(t, transports.Config{Loops: 1}, opt)
		c := dialTCP(t, listenTCP(t, tr, w))
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
			if ob[0] >= len(w.A) {
				t.Errorf("round %d: OutboundBuffered = %d right after a Write of %d bytes with none waiting; want less (written at once, the socket having room)", round, ob[0], len(w.A))
			}
			if ob[1] != ob[0]+1+len(w.B) {
				t.Errorf("round %d: OutboundBuffered = %d after a byte and %d bytes more; want %d (queued behind what waited)", round, ob[1], len(w.B), ob[0]+1+len(w.B))
			}
		}
	}
}
