package conformance

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/transports"
)

// inputCases check the input rules at their edges: the peer's FIN while
// the application has paused reading or closed, and what a paused Conn
// may take in; and what OutboundBuffered says of output an abort dropped.
var inputCases = []testCase{
	{name: "fin-while-paused", run: inFINWhilePaused},
	{name: "paused-input-bounded", run: inPausedInputBounded},
	{name: "outbound-after-abort", run: inOutboundAfterAbort},
}

// inHold is how long a case watches for a callback that must not come.
// A transport that breaks the rule calls it within microseconds of the
// event that triggers it; the hold only bounds the wait.
const inHold = 300 * time.Millisecond

// inFINWhilePaused: the handler keeps every byte the client sends; then,
// from another goroutine, the application pauses reading (or closes), and
// the client sends its FIN. Once PauseRead or Close has returned no OnData
// may start (DESIGN.md, Order and threads): with the pause in force the
// kept bytes wait for ResumeRead, which offers them, then OnReadEOF runs
// or the connection closes; after Close they are discarded.
//
// In the first variants the pause comes while the transport waits for
// input after the last OnData, and the FIN after it: a transport whose
// reader checks the pause only before it starts a read (sockets) is then
// in that read, and the FIN comes through it. The case waits for that
// with the system-call counter, which every transport advances for the
// wait it makes after an OnData (a read, an io_uring_enter, an
// epoll_wait): the OnData holds until the case has read the counter, then
// returns, and the case waits for the counter to move.
//
// In "fin-first", the FIN arrives while that OnData holds, and the pause
// comes after it, before the OnData returns: the transport then finds
// both a FIN it has not handled and a pause it may not have applied yet
// (libuvlike applies a PauseRead from another goroutine on its loop).
func inFINWhilePaused(t *testing.T, s *Suite) {
	for _, v := range []struct {
		name     string
		close    bool // Close instead of PauseRead
		withEOF  bool // the Handler has OnReadEOF
		finFirst bool // the FIN comes before the pause, while the OnData holds
	}{
		{name: "pause/with-OnReadEOF", withEOF: true},
		{name: "pause/without-OnReadEOF"},
		{name: "pause/fin-first", withEOF: true, finFirst: true},
		{name: "close", withEOF: true},
	} {
		t.Run(v.name, func(t *testing.T) {
			sent := []byte("fifteen bytes!!")
			var (
				trace   callTrace
				faults  bufFaults
				gate    atomic.Bool // set once PauseRead (or Close) has returned: no OnData may start
				all     bool        // owned by the callbacks: every byte has been seen
				conns   = make(chan transports.Conn, 1)
				allIn   = make(chan struct{}, 1)
				proceed = make(chan struct{})
				late    = make(chan []byte, 1)
				resumed = make(chan []byte, 1)
				closed  = make(chan error, 1)
			)
			h := hooks{
				Open: func(c transports.Conn) {
					defer trace.enter(onOpen)()
					conns <- c
				},
				Data: func(_ transports.Conn, in []byte) int {
					defer trace.enter(onData)()
					switch {
					case gate.Load():
						faults.add("OnData with %q started after PauseRead or Close had returned", in)
						select {
						case late <- bytes.Clone(in):
						default:
						}
						return len(in)
					case all:
						resumed <- bytes.Clone(in)
						return len(in)
					case len(in) < len(sent):
						return 0 // keep them until every byte is here
					}
					all = true
					allIn <- struct{}{}
					select {
					case <-proceed:
					case <-time.After(stepTimeout):
						faults.add("the case did not release the OnData within %v", stepTimeout)
					}
					return 0 // keep every byte
				},
				Close: func(_ transports.Conn, err error) {
					defer trace.enter(onClose)()
					closed <- err
				},
			}
			if v.withEOF {
				h.ReadEOF = func(c transports.Conn) {
					defer trace.enter(onReadEOF)()
					c.Close()
				}
			}
			tr := s.Open(t, nil)
			c := s.DialClient(t, s.Listen(t, tr, handler(h)))
			sc := waitRecv(t, conns, "OnOpen")
			if _, err := (deadlineConn{c}).Write(sent); err != nil {
				t.Fatal(err)
			}
			waitRecv(t, allIn, "OnData with every byte sent")
			if v.finFirst {
				if err := c.(halfCloser).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			} else {
				before := tr.Stats().Syscalls
				close(proceed)
				inAwaitSyscall(t, tr, before)
			}

			if v.close {
				if err := sc.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else {
				sc.PauseRead()
			}
			gate.Store(true)
			if v.finFirst {
				close(proceed)
			} else if err := c.(halfCloser).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case in := <-late:
				t.Fatalf("OnData with %q started at the peer's FIN after PauseRead (or Close) had returned", in)
			case <-time.After(inHold):
			}

			if !v.close {
				gate.Store(false)
				sc.ResumeRead()
				if in := waitRecv(t, resumed, "OnData with the kept bytes after ResumeRead"); !bytes.Equal(in, sent) {
					t.Errorf("after ResumeRead, OnData got %q; want the kept bytes %q", in, sent)
				}
			}
			if got, err := io.ReadAll(deadlineConn{c}); err != nil || len(got) > 0 {
				t.Errorf("client read %q, then %v; want io.EOF at once", got, err)
			}
			if err := waitRecv(t, closed, "OnClose"); err != nil {
				t.Errorf("OnClose err = %v, want nil", err)
			}
			faults.check(t)

			want := []string{onOpen, onData + "*", onClose}
			if v.withEOF && !v.close {
				want = []string{onOpen, onData + "*", onReadEOF, onClose}
			}
			calls, overlaps := trace.snapshot()
			if d := cmp.Diff(want, condense(calls)); d != "" || overlaps > 0 {
				t.Errorf("callbacks (-want +got), %d overlapping:\n%s", overlaps, d)
			}
		})
	}
}

// inAwaitSyscall waits until tr's system-call counter has moved past
// before.
func inAwaitSyscall(t testing.TB, tr transports.Transport, before uint64) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for tr.Stats().Syscalls <= before {
		if time.Now().After(deadline) {
			t.Fatalf("Stats().Syscalls stayed at %d for %v after the OnData returned", before, stepTimeout)
		}
		time.Sleep(time.Millisecond) // polling a counter
	}
}

// inPausedInputBounded: PauseRead stops reading from the socket, so TCP
// flow control pushes back on the peer (DESIGN.md, Input). What a paused
// Conn takes in is at most what one read had under way when the pause
// came, so the first OnData after ResumeRead holds at most MaxReadBuffer
// and one read ("in may exceed the limit by at most one read"), and so
// does every OnData. The case makes the transport fall behind a flood:
// the first OnData (the flood's first byte, sent alone) holds until the
// client, sending the rest behind it, stalls; then the next OnData
// pauses, and the case resumes at once. A transport that had read far
// ahead of the pause (a multishot recv that took much of the flood before
// its cancel took effect) offers all of it. Every byte must then arrive,
// in order, once.
func inPausedInputBounded(t *testing.T, s *Suite) {
	const (
		total = 32 << 20 // more than the kernel's buffers take while the server reads nothing
		chunk = 64 << 10
		stall = 300 * time.Millisecond // a write that makes no progress for this long has stalled
	)
	edit := func(c *transports.Config) { c.MaxReadBuffer = 16 << 10 }
	maxRead := bufEffective(t, s, edit).MaxReadBuffer
	oneRead := inOneRead(t, s)
	bound := maxRead + oneRead

	var (
		faults   bufFaults
		calls    int   // owned by the callbacks
		consumed int64 // owned by the callbacks
		paused   atomic.Bool
		conns    = make(chan transports.Conn, 1)
		first    = make(chan struct{}, 1)
		flooded  = make(chan struct{})
		pausing  = make(chan struct{}, 1)
		resumed  = make(chan int, 1)
		eof      = make(chan int64, 1)
		closed   = make(chan error, 1)
	)
	h := handler(hooks{
		Open: func(c transports.Conn) { conns <- c },
		Data: func(c transports.Conn, in []byte) int {
			calls++
			if paused.Load() {
				faults.add("OnData %d (%d bytes) started while reading was paused", calls, len(in))
			}
			if i := bufMismatch(consumed, in); i >= 0 {
				faults.add("OnData %d: the byte at offset %d differs from what the client sent", calls, consumed+int64(i))
			}
			if len(in) > bound && calls != 3 {
				faults.add("OnData %d got %d bytes; want at most %d (MaxReadBuffer %d + one read %d)", calls, len(in), bound, maxRead, oneRead)
			}
			switch calls {
			case 1:
				first <- struct{}{}
				select {
				case <-flooded:
				case <-time.After(stepTimeout):
					faults.add("the client did not stall within %v", stepTimeout)
				}
			case 2:
				c.PauseRead()
				paused.Store(true)
				pausing <- struct{}{}
			case 3:
				resumed <- len(in)
			}
			consumed += int64(len(in))
			return len(in)
		},
		ReadEOF: func(c transports.Conn) {
			eof <- consumed
			c.Close()
		},
		Close: func(_ transports.Conn, err error) { closed <- err },
	})
	tr := s.Open(t, edit)
	c := s.DialClient(t, s.Listen(t, tr, h))
	sc := bufAwait(t, conns, "OnOpen")
	if _, err := (deadlineConn{c}).Write(bufPatternAt(0, 1)); err != nil {
		t.Fatal(err)
	}
	bufAwait(t, first, "the first OnData")

	written := make(chan error, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { c.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var once sync.Once
		for off := int64(1); off < total; {
			wait := stall
			select {
			case <-flooded:
				wait = stepTimeout
			default:
			}
			if err := c.SetWriteDeadline(time.Now().Add(wait)); err != nil {
				written <- err
				return
			}
			n, err := c.Write(bufPatternAt(off, int(min(chunk, total-off))))
			off += int64(n)
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded) && wait == stall:
				once.Do(func() { close(flooded) })
			case err != nil:
				written <- err
				return
			}
		}
		written <- c.(halfCloser).CloseWrite()
	}()

	bufAwait(t, pausing, "the OnData that pauses")
	paused.Store(false)
	sc.ResumeRead()
	if n := bufAwait(t, resumed, "the first OnData after ResumeRead"); n > bound {
		t.Errorf("after ResumeRead, OnData got %d bytes; want at most %d (MaxReadBuffer %d + one read %d): the transport read on while paused", n, bound, maxRead, oneRead)
	}
	if err := bufAwait(t, written, "the client's writes"); err != nil {
		t.Fatalf("client: %v", err)
	}
	if got := bufAwait(t, eof, "OnReadEOF"); got != total {
		t.Errorf("OnData received %d bytes in all; the client sent %d", got, total)
	}
	bufExpectEOF(t, c, "after the handler's Close")
	if err := bufAwait(t, closed, "OnClose"); err != nil {
		t.Errorf("OnClose err = %v, want nil", err)
	}
	faults.check(t)
}

// inOneRead is the most one read may bring on the transport under test:
// 64 KiB at every transport's defaults (sockets' read buffer, libuvlike's
// readbuf, uring's bufsize), or the spec's readbuf or bufsize if larger.
// A transport run by RunFunc has no spec: its reads are taken to be of
// 64 KiB at most too.
func inOneRead(t testing.TB, s *Suite) int {
	t.Helper()
	n := 64 << 10
	if s.spec == "" {
		return n
	}
	sp, err := transports.ParseSpec(s.spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range sp.Settings {
		if kv.Key == "readbuf" || kv.Key == "bufsize" {
			v, err := transports.ParseSize(kv.Value)
			if err != nil {
				t.Fatalf("spec %q: %s: %v", s.spec, kv.Key, err)
			}
			n = max(n, v)
		}
	}
	return n
}

// inOutboundAfterAbort: Abort drops pending output (DESIGN.md, Closing),
// and so does any other end with an error; OutboundBuffered, which counts
// bytes written and not yet taken by the kernel, must then say 0: at once
// after Abort returns, from another goroutine or inside a callback, and
// in OnClose after the peer reset the connection. The case first writes,
// from another goroutine, until 1 MiB waits to go out to a client that
// reads nothing (in abort-in-callback, while an OnData holds, so that the
// loop or goroutine that would flush it waits too).
func inOutboundAfterAbort(t *testing.T, s *Suite) {
	const pending = 1 << 20
	for _, v := range []struct {
		name string
		how  string // "abort" from the case's goroutine, "abort-in-callback" in OnData, "peer-close": the client closes with unread input
	}{
		{name: "abort-other-goroutine", how: "abort"},
		{name: "abort-in-callback", how: "abort-in-callback"},
		{name: "peer-close", how: "peer-close"},
	} {
		t.Run(v.name, func(t *testing.T) {
			var (
				conns   = make(chan transports.Conn, 1)
				holding = make(chan struct{}, 1)
				filled  = make(chan struct{})
				inData  = make(chan int, 1)
				atClose = make(chan int, 1)
				closed  = make(chan error, 1)
			)
			h := handler(hooks{
				Open: func(c transports.Conn) { conns <- c },
				Data: func(c transports.Conn, in []byte) int {
					holding <- struct{}{}
					select {
					case <-filled:
					case <-time.After(stepTimeout):
					}
					c.Abort()
					inData <- c.OutboundBuffered()
					return len(in)
				},
				Close: func(c transports.Conn, err error) {
					atClose <- c.OutboundBuffered()
					closed <- err
				},
			})
			tr := s.Open(t, nil)
			c := s.DialClient(t, s.Listen(t, tr, h))
			sc := bufAwait(t, conns, "OnOpen")
			if v.how == "abort-in-callback" {
				if _, err := (deadlineConn{c}).Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				bufAwait(t, holding, "the OnData that will abort")
			}

			const chunk = 256 << 10
			var written int
			for sc.OutboundBuffered() < pending {
				if written > 256<<20 {
					t.Fatalf("wrote %d bytes to a client that reads nothing, and OutboundBuffered is %d; want it to reach %d", written, sc.OutboundBuffered(), pending)
				}
				if _, err := sc.Write(bufPatternAt(int64(written), chunk)); err != nil {
					t.Fatalf("Write: %v", err)
				}
				written += chunk
			}
			before := sc.OutboundBuffered()

			switch v.how {
			case "abort":
				if err := sc.Abort(); err != nil {
					t.Fatalf("Abort: %v", err)
				}
				if n := sc.OutboundBuffered(); n != 0 {
					t.Errorf("OutboundBuffered = %d right after Abort returned (%d before); want 0: Abort dropped the output", n, before)
				}
			case "abort-in-callback":
				close(filled)
				if n := bufAwait(t, inData, "the OnData that aborts"); n != 0 {
					t.Errorf("OutboundBuffered = %d in OnData right after Abort returned (%d before); want 0: Abort dropped the output", n, before)
				}
			case "peer-close":
				// Read a byte first: closing with unread input resets the
				// connection (RST on TCP, ECONNRESET on unix sockets).
				if _, err := io.ReadFull(deadlineConn{c}, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			if n := bufAwait(t, atClose, "OnClose"); n != 0 {
				t.Errorf("OutboundBuffered = %d in OnClose (%d before the end); want 0", n, before)
			}
			err := bufAwait(t, closed, "OnClose")
			switch {
			case v.how != "peer-close" && !errors.Is(err, transports.ErrAborted):
				t.Errorf("OnClose err = %v, want one matching ErrAborted", err)
			case v.how == "peer-close" && err == nil:
				t.Errorf("OnClose err = nil; want the error of the peer's reset")
			}
		})
	}
}
