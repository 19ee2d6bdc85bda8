package core

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

func TestWriteErr(t *testing.T) {
	var s State
	if err := s.WriteErr(); err != nil {
		t.Fatalf("open: %v", err)
	}
	s.CloseWrite()
	if err := s.WriteErr(); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("after CloseWrite: %v, want EPIPE", err)
	}
	if err := s.CloseWriteErr(); err != nil {
		t.Fatalf("CloseWrite twice: %v", err)
	}
	if !s.BeginClose() || s.BeginClose() {
		t.Fatal("BeginClose should begin once")
	}
	if err := s.WriteErr(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v, want net.ErrClosed", err)
	}
	if s.Gone() || !s.Kill() || s.Kill() || !s.Gone() {
		t.Fatal("Kill should begin once, after which the conn is gone")
	}
}

// TestEOFStep walks the FIN's rules: wait while paused, offer the kept
// bytes (again, if the offer ended paused), then drop them and call
// OnReadEOF or close; after Close, discard.
func TestEOFStep(t *testing.T) {
	three := func() *Input { in := &Input{}; in.Keep([]byte("abc")); return in }
	kept := three()
	s := EOFSeen | AppPaused
	if got := s.EOFStep(kept, false, false); got != EOFWait {
		t.Fatalf("paused: %v, want EOFWait", got)
	}
	s &^= AppPaused
	if got := s.EOFStep(kept, false, false); got != EOFOffer {
		t.Fatalf("kept bytes: %v, want EOFOffer", got)
	}
	s |= BPPaused // the last OnData filled the output and left bytes
	if got := s.EOFStep(kept, false, false); got != EOFWait || kept.Len() != 3 {
		t.Fatalf("offer ended paused: %v with %d kept, want EOFWait keeping 3", got, kept.Len())
	}
	s &^= BPPaused
	if got := s.EOFStep(kept, false, false); got != EOFOffer {
		t.Fatalf("resumed: %v, want EOFOffer again", got)
	}
	if got := s.EOFStep(kept, false, false); got != EOFClose || !s.Has(Closing|WantShut) || kept.Len() != 0 {
		t.Fatalf("after the offer: %v (state %b, %d kept), want EOFClose with nothing kept", got, s, kept.Len())
	}
	if got := s.EOFStep(kept, false, false); got != EOFNone {
		t.Fatalf("done: %v, want EOFNone", got)
	}
	s = EOFSeen | BPPaused
	if got := s.EOFStep(&Input{}, true, true); got != EOFCallback {
		t.Fatalf("duplex at the limit, OnReadEOF: %v, want EOFCallback", got)
	}
	s, kept = EOFSeen|Closing, three()
	if got := s.EOFStep(kept, true, false); got != EOFDiscard || kept.Len() != 0 {
		t.Fatalf("closing: %v, %d kept, want EOFDiscard", got, kept.Len())
	}
	s = EOFSeen | Killed
	if got := s.EOFStep(three(), true, false); got != EOFNone {
		t.Fatalf("killed: %v, want EOFNone", got)
	}
}

func TestOrderlyAndLinger(t *testing.T) {
	s := Closing | WrClosed | WantShut
	if !s.ShutDue(true) || s.ShutDue(false) {
		t.Fatal("ShutDue: FIN is due once flushed")
	}
	s |= ShutSent | ShutDone
	if !s.LingerDue() || s.OrderlyEnd() {
		t.Fatal("FIN out, none from the peer: linger, not the end")
	}
	s |= EOFSeen | EOFDone
	if s.LingerDue() || !s.OrderlyEnd() {
		t.Fatal("both FINs: the end")
	}
}

type testHandler struct {
	consume func(in []byte) int
	timers  int
}

func (h *testHandler) OnOpen(transports.Conn)                  {}
func (h *testHandler) OnData(_ transports.Conn, in []byte) int { return h.consume(in) }
func (h *testHandler) OnClose(transports.Conn, error)          {}
func (h *testHandler) OnTimer(transports.Conn)                 { h.timers++ }

type nopConn struct{ transports.Conn }

func (nopConn) RemoteAddr() net.Addr { return nil }

var quiet = Log{Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

func TestDeliver(t *testing.T) {
	th := &testHandler{consume: func(in []byte) int { return len(in) - 2 }}
	h := NewHandler(th)
	if !h.HasTimer() || h.HasReadEOF() || h.Duplex() {
		t.Fatalf("abilities %b", h.caps)
	}
	var kept Input
	if err := h.Deliver(nopConn{}, &quiet, &kept, []byte("hello"), 10); err != nil {
		t.Fatal(err)
	}
	if string(kept.Bytes()) != "lo" {
		t.Fatalf("kept %q, want \"lo\"", kept.Bytes())
	}
	if err := h.Deliver(nopConn{}, &quiet, &kept, []byte("abc"), 10); err != nil { // offered "loabc"
		t.Fatal(err)
	}
	if string(kept.Bytes()) != "bc" {
		t.Fatalf("kept %q, want \"bc\"", kept.Bytes())
	}
	th.consume = func(in []byte) int {
		if string(in) != "bc" {
			t.Errorf("the kept bytes alone: offered %q, want \"bc\"", in)
		}
		return 1
	}
	if err := h.Deliver(nopConn{}, &quiet, &kept, nil, 10); err != nil || string(kept.Bytes()) != "c" {
		t.Fatalf("offering the kept bytes: %v, kept %q", err, kept.Bytes())
	}
	kept.Release()
	th.consume = func([]byte) int { return 0 }
	err := h.Deliver(nopConn{}, &quiet, &kept, make([]byte, 20), 10)
	if !errors.Is(err, transports.ErrInputLimit) || kept.Len() != 0 {
		t.Fatalf("over the limit: %v, %d kept", err, kept.Len())
	}
	th.consume = func(in []byte) int { return len(in) + 1 }
	if err := h.Deliver(nopConn{}, &quiet, &kept, []byte("x"), 10); !errors.Is(err, transports.ErrHandler) {
		t.Fatalf("bad count: %v", err)
	}
	th.consume = func([]byte) int { panic(fmt.Errorf("boom: %w", io.ErrUnexpectedEOF)) }
	err = h.Deliver(nopConn{}, &quiet, &kept, []byte("x"), 10)
	if !errors.Is(err, transports.ErrHandler) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("panic: %v", err)
	}
	if err := h.Call(nopConn{}, OnTimer, &quiet); err != nil || th.timers != 1 {
		t.Fatalf("OnTimer: %v, %d calls", err, th.timers)
	}
	if err := h.Call(nopConn{}, OnDrain, &quiet); err != nil {
		t.Fatalf("OnDrain the handler lacks: %v", err)
	}
}

func TestSpares(t *testing.T) {
	s := NewSpares(64)
	in := NewInput(s)
	in.Keep([]byte("abc"))
	in.Release()
	if len(s.free) != 1 {
		t.Fatalf("%d spares, want 1", len(s.free))
	}
	in.Keep(make([]byte, 100))
	in.Release()
	if len(s.free) != 0 && cap(s.free[0]) > 64 {
		t.Fatal("a large buffer went to the spares")
	}
}

func TestDeadlines(t *testing.T) {
	l := Limits{CloseTimeout: 5, CloseLinger: 2, Write: 60, Idle: 100}
	var d Deadlines
	if d.Next(l) != 0 {
		t.Fatal("nothing set, yet a deadline")
	}
	d.Opened(1000)
	d.Pending(1000)
	if at, ok := d.Arm(0, l); !ok || at != 1060 {
		t.Fatalf("Arm: %d %v, want 1060", at, ok)
	}
	d.Progress(1050, true) // progress: the write clock starts again
	if at, ok := d.Arm(1060, l); ok {
		t.Fatalf("armed at 1060, moved later: Arm says %d", at)
	}
	if e := d.Expired(1060, l); e != ExpNone {
		t.Fatalf("early: %v", e)
	}
	if at, ok := d.Arm(0, l); !ok || at != 1110 {
		t.Fatalf("re-arm: %d, want 1110", at)
	}
	if e := d.Expired(1110, l); e != ExpWrite {
		t.Fatalf("no progress for 60: %v, want ExpWrite", e)
	}
	d.SetApp(1110, 10)
	d.StartLinger(1110, l)
	if e := d.Expired(1200, l); e != ExpLinger {
		t.Fatalf("linger first: %v", e)
	}
	if e := d.Expired(1200, l); e != ExpIdle {
		t.Fatalf("then idle: %v", e)
	}
	if e := d.Expired(1200, l); e != ExpApp {
		t.Fatalf("then the app's: %v", e)
	}
	if e := d.Expired(1200, l); e != ExpNone || d.Next(l) != 0 {
		t.Fatalf("all fired once: %v, next %d", e, d.Next(l))
	}
	d.StartFlush(1200, l)
	if d.Next(l) != 0 {
		t.Fatal("flush limit with nothing pending")
	}
	d.Pending(1201)
	if e := d.Expired(1205, l); e != ExpFlush {
		t.Fatalf("flush: %v", e)
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	if w, log := b.Failed(syscall.ECONNABORTED); w != 0 || log {
		t.Fatalf("ECONNABORTED: %v %v", w, log)
	}
	if w, log := b.Failed(os.NewSyscallError("accept4", syscall.EMFILE)); w != MinBackoff || log {
		t.Fatalf("EMFILE: %v %v", w, log)
	}
	if w, log := b.Failed(syscall.EINVAL); w != 2*MinBackoff || !log {
		t.Fatalf("EINVAL: %v %v", w, log)
	}
	for range 20 {
		b.Failed(syscall.ENOMEM)
	}
	if w, _ := b.Failed(syscall.ENOMEM); w != MaxBackoff {
		t.Fatalf("capped at %v, got %v", MaxBackoff, w)
	}
	b.Accepted()
	if w, _ := b.Failed(syscall.ENFILE); w != MinBackoff {
		t.Fatalf("after success: %v", w)
	}
}

func TestFatal(t *testing.T) {
	l := Limits{CloseTimeout: 5, CloseLinger: 2, Write: 60}
	for _, c := range []struct {
		e    Expiry
		op   string
		want error
	}{
		{ExpLinger, "close", os.ErrDeadlineExceeded},
		{ExpFlush, "close", os.ErrDeadlineExceeded},
		{ExpWrite, "write", transports.ErrWriteTimeout},
		{ExpIdle, "", nil},
		{ExpApp, "", nil},
	} {
		op, err := l.Fatal(c.e)
		if op != c.op || !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("Fatal(%v) = %q, %v; want %q and an error matching %v", c.e, op, err, c.op, c.want)
		}
	}
}

func TestDeadlinesClosing(t *testing.T) {
	l := Limits{CloseTimeout: 5, Idle: 100}
	var d Deadlines
	d.Opened(1000)
	d.SetApp(1000, 10)
	d.Closing()
	if e := d.Expired(5000, l); e != ExpNone {
		t.Fatalf("after Close: %v ran out; the app's timer and the idle clock should have stopped", e)
	}
}

// Now reads the runtime's clock directly: it must still be
// time.Since(epoch), which Time and the deadlines convert with.
func TestNowIsTimeSinceEpoch(t *testing.T) {
	const slack = int64(time.Microsecond) // baseOf's bound
	last := Now()
	for range 10000 {
		a := int64(time.Since(epoch))
		n := Now()
		b := int64(time.Since(epoch))
		if n < a-slack || n > b+slack {
			t.Fatalf("Now() = %d outside time.Since(epoch) read around it, [%d, %d]", n, a, b)
		}
		if n < last {
			t.Fatalf("Now() went back: %d after %d", n, last)
		}
		last = n
	}
}
