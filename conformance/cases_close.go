package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/transports"
)

// closeCases are the ways a connection ends (DESIGN.md, Closing): the
// peer's FIN with and without OnReadEOF, bytes kept at the FIN, the peer's
// reset, and the application's Close (FIN) and Abort (RST).
var closeCases = []testCase{
	{name: "peer-fin", smoke: true, run: testPeerFIN},
	{name: "kept-at-fin", run: testKeptAtFIN},
	{name: "peer-reset", tcpOnly: true, run: testPeerReset},
	{name: "close-sends-fin", run: testCloseSendsFIN},
	{name: "abort-sends-rst", tcpOnly: true, run: testAbortSendsRST},
}

// halfCloser is the half-close of *net.TCPConn and *net.UnixConn.
type halfCloser interface{ CloseWrite() error }

// testPeerFIN: the client sends, then FIN. Without OnReadEOF the
// transport flushes the echo and closes; with it, the handler answers
// after the FIN, 1 MiB of it, and closes. Either way the client reads
// everything, then io.EOF, and OnClose's err is nil.
func testPeerFIN(t *testing.T, s *Suite) {
	const size = 256 << 10
	rng := rand.New(rand.NewPCG(caseSeed(t), 0))

	t.Run("without-OnReadEOF", func(t *testing.T) {
		var trace callTrace
		closed := make(chan error, 1)
		h := handler(hooks{
			Open: func(transports.Conn) { defer trace.enter(onOpen)() },
			Data: func(c transports.Conn, in []byte) int {
				defer trace.enter(onData)()
				c.Write(in)
				return len(in)
			},
			Close: func(_ transports.Conn, err error) {
				defer trace.enter(onClose)()
				closed <- err
			},
		})
		tr := s.Open(t, nil)
		c := s.DialClient(t, s.Listen(t, tr, h))
		payload := randomBytes(rng, size)
		wrng := rand.New(rand.NewPCG(rng.Uint64(), 0))
		werr := make(chan error, 1)
		go func() {
			err := writeChunked(deadlineConn{c}, wrng, payload, 32<<10)
			if err == nil {
				err = c.(halfCloser).CloseWrite()
			}
			werr <- err
		}()
		got, err := io.ReadAll(deadlineConn{c})
		if err != nil {
			t.Errorf("client read %d bytes, then %v; want io.EOF", len(got), err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("client write: %v", err)
		}
		if d := streamDiff(payload, got, 0); d != "" {
			t.Errorf("echo: %s", d)
		}
		if err := waitRecv(t, closed, "OnClose"); err != nil {
			t.Errorf("OnClose err = %v, want nil", err)
		}
		calls, overlaps := trace.snapshot()
		if d := cmp.Diff([]string{onOpen, onData + "*", onClose}, condense(calls)); d != "" || overlaps > 0 {
			t.Errorf("callbacks (-want +got), %d overlapping:\n%s", overlaps, d)
		}
	})

	t.Run("with-OnReadEOF", func(t *testing.T) {
		const replySize = 1 << 20
		reply := randomBytes(rng, replySize)
		var (
			trace  callTrace
			mu     sync.Mutex
			seen   int // guarded by mu
			closed = make(chan error, 1)
		)
		h := handler(hooks{
			Open: func(transports.Conn) { defer trace.enter(onOpen)() },
			Data: func(_ transports.Conn, in []byte) int {
				defer trace.enter(onData)()
				mu.Lock()
				seen += len(in)
				mu.Unlock()
				return len(in)
			},
			ReadEOF: func(c transports.Conn) {
				defer trace.enter(onReadEOF)()
				mu.Lock()
				n := seen
				mu.Unlock()
				// The peer has sent FIN; c is still writable.
				c.Write([]byte("bye " + strconv.Itoa(n) + "\n"))
				c.Write(reply)
				c.Close()
			},
			Close: func(_ transports.Conn, err error) {
				defer trace.enter(onClose)()
				closed <- err
			},
		})
		tr := s.Open(t, nil)
		c := s.DialClient(t, s.Listen(t, tr, h))
		wrng := rand.New(rand.NewPCG(rng.Uint64(), 0))
		if err := writeChunked(deadlineConn{c}, wrng, randomBytes(rng, size), 32<<10); err != nil {
			t.Fatalf("client write: %v", err)
		}
		if err := c.(halfCloser).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(deadlineConn{c})
		if err != nil {
			t.Errorf("client read %d bytes, then %v; want io.EOF", len(got), err)
		}
		want := append([]byte("bye "+strconv.Itoa(size)+"\n"), reply...)
		if d := streamDiff(want, got, 0); d != "" {
			t.Errorf("reply after the client's FIN: %s", d)
		}
		if err := waitRecv(t, closed, "OnClose"); err != nil {
			t.Errorf("OnClose err = %v, want nil", err)
		}
		calls, overlaps := trace.snapshot()
		if d := cmp.Diff([]string{onOpen, onData + "*", onReadEOF, onClose}, condense(calls)); d != "" || overlaps > 0 {
			t.Errorf("callbacks (-want +got), %d overlapping:\n%s", overlaps, d)
		}
	})
}

// testKeptAtFIN: the handler reads 10-byte frames; the client sends one
// frame and half of the next, then FIN. The 5 kept bytes are offered again
// after the FIN (DESIGN.md, Input), then OnReadEOF is called, or, without
// it, the connection closes with a nil error.
func testKeptAtFIN(t *testing.T, s *Suite) {
	for _, withEOF := range []bool{true, false} {
		name := "without-OnReadEOF"
		if withEOF {
			name = "with-OnReadEOF"
		}
		t.Run(name, func(t *testing.T) {
			const frame = 10
			sent := []byte("0123456789abcde") // a frame and half of the next
			var (
				trace    callTrace
				mu       sync.Mutex
				ins      [][]byte // every in; guarded by mu
				consumed int      // guarded by mu
				all      = make(chan struct{})
				closed   = make(chan error, 1)
			)
			allSeen := sync.OnceFunc(func() { close(all) })
			h := hooks{
				Open: func(transports.Conn) { defer trace.enter(onOpen)() },
				Data: func(_ transports.Conn, in []byte) int {
					defer trace.enter(onData)()
					n := len(in) / frame * frame
					mu.Lock()
					defer mu.Unlock()
					ins = append(ins, bytes.Clone(in))
					if consumed+len(in) == len(sent) {
						allSeen()
					}
					consumed += n
					return n
				},
				Close: func(_ transports.Conn, err error) {
					defer trace.enter(onClose)()
					closed <- err
				},
			}
			if withEOF {
				h.ReadEOF = func(c transports.Conn) {
					defer trace.enter(onReadEOF)()
					c.Close()
				}
			}
			tr := s.Open(t, nil)
			c := s.DialClient(t, s.Listen(t, tr, handler(h)))
			if _, err := (deadlineConn{c}).Write(sent); err != nil {
				t.Fatal(err)
			}
			// Send the FIN only once every byte has been offered, so that
			// the 5 bytes are kept when it arrives.
			waitRecv(t, all, "OnData with all the bytes sent")
			mu.Lock()
			before := len(ins)
			mu.Unlock()
			if err := c.(halfCloser).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(deadlineConn{c}); err != nil || len(got) > 0 {
				t.Errorf("client read %q, then %v; want io.EOF at once", got, err)
			}
			if err := waitRecv(t, closed, "OnClose"); err != nil {
				t.Errorf("OnClose err = %v, want nil", err)
			}

			want := []string{onOpen, onData + "*", onClose}
			if withEOF {
				want = []string{onOpen, onData + "*", onReadEOF, onClose}
			}
			calls, overlaps := trace.snapshot()
			if d := cmp.Diff(want, condense(calls)); d != "" || overlaps > 0 {
				t.Errorf("callbacks (-want +got), %d overlapping:\n%s", overlaps, d)
			}
			mu.Lock()
			defer mu.Unlock()
			after := ins[before:]
			if len(after) == 0 {
				t.Fatalf("no OnData after the FIN; want one with the %d kept bytes %q (before it: %q)", len(sent)-frame, sent[frame:], ins)
			}
			for i, in := range after {
				if !bytes.Equal(in, sent[frame:]) {
					t.Errorf("OnData %d after the FIN got %q, want the kept bytes %q", i, in, sent[frame:])
				}
			}
		})
	}
}

// testPeerReset: the client resets an idle connection (SO_LINGER 0); the
// server's read sees it, and OnClose gets a *net.OpError of Op "read"
// wrapping ECONNRESET.
func testPeerReset(t *testing.T, s *Suite) {
	closed := make(chan error, 1)
	h := handler(hooks{
		Data: func(c transports.Conn, in []byte) int {
			c.Write(in)
			return len(in)
		},
		Close: func(_ transports.Conn, err error) { closed <- err },
	})
	tr := s.Open(t, nil)
	c := s.DialClient(t, s.Listen(t, tr, h))
	// A round trip first: the server's Conn then has no output pending and
	// waits to read.
	dc := deadlineConn{c}
	if _, err := dc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(dc, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
	err := waitRecv(t, closed, "OnClose after the peer's reset")
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("OnClose err = %#v (%v), want a *net.OpError of Op \"read\" wrapping ECONNRESET", err, err)
	}
}

// testCloseSendsFIN: Close, from OnData or from another goroutine, flushes
// 1 MiB of pending output and then sends FIN: the client reads all of it,
// then io.EOF, not a reset, although it sends more bytes after the Close
// (the closing Conn reads and discards them). No OnData starts after
// Close, and OnClose's err is nil.
func testCloseSendsFIN(t *testing.T, s *Suite) {
	for _, fromCallback := range []bool{true, false} {
		name := "other-goroutine"
		if fromCallback {
			name = "in-OnData"
		}
		t.Run(name, func(t *testing.T) {
			const replySize = 1 << 20
			rng := rand.New(rand.NewPCG(caseSeed(t), 0))
			reply := randomBytes(rng, replySize)
			var (
				mu         sync.Mutex
				afterClose int  // OnData calls after Close returned; guarded by mu
				isClosed   bool // guarded by mu
				opened     = make(chan transports.Conn, 1)
				closed     = make(chan error, 1)
			)
			closeConn := func(c transports.Conn) {
				c.Write(reply)
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				mu.Lock()
				isClosed = true
				mu.Unlock()
			}
			h := handler(hooks{
				Open: func(c transports.Conn) { opened <- c },
				Data: func(c transports.Conn, in []byte) int {
					mu.Lock()
					was := isClosed
					if was {
						afterClose++
					}
					mu.Unlock()
					if fromCallback && !was {
						closeConn(c)
					}
					return len(in)
				},
				Close: func(_ transports.Conn, err error) { closed <- err },
			})
			// Generous limits, so that a slow client on a loaded machine
			// never turns the orderly close into an abort.
			tr := s.Open(t, func(c *transports.Config) {
				c.CloseTimeout = 2 * stepTimeout
				c.CloseLinger = 2 * stepTimeout
			})
			c := s.DialClient(t, s.Listen(t, tr, h))
			dc := deadlineConn{c}
			sc := waitRecv(t, opened, "OnOpen")
			if fromCallback {
				if _, err := dc.Write([]byte("close, please")); err != nil {
					t.Fatal(err)
				}
			} else {
				closeConn(sc)
			}
			first := make([]byte, 1)
			if _, err := io.ReadFull(dc, first); err != nil {
				t.Fatalf("client read: %v", err)
			}
			if _, err := dc.Write(randomBytes(rng, 64<<10)); err != nil {
				t.Fatalf("client write after the server's Close: %v", err)
			}
			rest, err := io.ReadAll(dc)
			if err != nil {
				t.Errorf("client read %d bytes, then %v; want io.EOF", 1+len(rest), err)
			}
			if d := streamDiff(reply, append(first, rest...), 0); d != "" {
				t.Errorf("output pending at Close: %s", d)
			}
			c.Close()
			if err := waitRecv(t, closed, "OnClose"); err != nil {
				t.Errorf("OnClose err = %v, want nil", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if afterClose > 0 {
				t.Errorf("%d OnData calls after Close returned, want none", afterClose)
			}
		})
	}
}

// testAbortSendsRST: Abort, from OnData or from another goroutine, drops
// pending output and resets the connection: the client's read gets
// ECONNRESET, never io.EOF, and OnClose's err matches ErrAborted.
func testAbortSendsRST(t *testing.T, s *Suite) {
	for _, fromCallback := range []bool{true, false} {
		name := "other-goroutine"
		if fromCallback {
			name = "in-OnData"
		}
		t.Run(name, func(t *testing.T) {
			pending := make([]byte, 1<<20)
			var (
				mu         sync.Mutex
				aborted    bool // guarded by mu
				afterAbort int  // guarded by mu
				opened     = make(chan transports.Conn, 1)
				closed     = make(chan error, 1)
			)
			abort := func(c transports.Conn) {
				c.Write(pending)
				if err := c.Abort(); err != nil {
					t.Errorf("Abort: %v", err)
				}
				mu.Lock()
				aborted = true
				mu.Unlock()
			}
			h := handler(hooks{
				Open: func(c transports.Conn) { opened <- c },
				Data: func(c transports.Conn, in []byte) int {
					mu.Lock()
					was := aborted
					if was {
						afterAbort++
					}
					mu.Unlock()
					if fromCallback && !was {
						abort(c)
					}
					return len(in)
				},
				Close: func(_ transports.Conn, err error) { closed <- err },
			})
			tr := s.Open(t, nil)
			c := s.DialClient(t, s.Listen(t, tr, h))
			dc := deadlineConn{c}
			sc := waitRecv(t, opened, "OnOpen")
			if fromCallback {
				if _, err := dc.Write([]byte("abort, please")); err != nil {
					t.Fatal(err)
				}
			} else {
				abort(sc)
			}
			// Bytes sent before the reset may be read first.
			got, err := io.ReadAll(dc)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client read %d bytes, then %v; want ECONNRESET", len(got), errOrEOF(err))
			}
			if err := waitRecv(t, closed, "OnClose"); !errors.Is(err, transports.ErrAborted) {
				t.Errorf("OnClose err = %v, want one matching ErrAborted", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if afterAbort > 0 {
				t.Errorf("%d OnData calls after Abort returned, want none", afterAbort)
			}
		})
	}
}

// errOrEOF names a nil error from io.ReadAll as the io.EOF it stands for.
func errOrEOF(err error) error {
	if err == nil {
		return fmt.Errorf("io.EOF")
	}
	return err
}
