package conformance

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/transports"
)

// inputCases check the input rules at their edges: the peer's FIN while
// the application has paused reading or closed.
var inputCases = []testCase{
	{name: "fin-while-paused", run: inFINWhilePaused},
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
