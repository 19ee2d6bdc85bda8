package conformance

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// errorCases give every row of DESIGN.md's error table a case, plus the
// close rule (a reply written just before Close survives unread input)
// and Write from other goroutines.
//
// Two rows live elsewhere: "MaxReadBuffer exceeded" is max-read-buffer in
// cases_buffer.go, and "feature not available here" (ErrUnsupported)
// cannot be provoked on a transport that runs; the transports' own tests
// cover it. error-open covers the part of that row about Open.
var errorCases = []testCase{
	{name: "error-orderly-close", smoke: true, run: errOrderlyClose},
	{name: "error-peer-reset", tcpOnly: true, run: errPeerReset},
	{name: "error-abort", run: errAbort},
	{name: "error-close-deadline", run: errCloseDeadline},
	{name: "error-handler", run: errHandler},
	{name: "error-transport-close", run: errTransportClose},
	{name: "error-write-after", run: errWriteAfter},
	{name: "error-open", run: errOpen},
	{name: "close-rule", run: errCloseRule},
	{name: "write-other-goroutine", run: errWriteOtherGoroutine},
}

// errOrderlyClose: Close, CloseWrite plus the peer's FIN, and a FIN the
// transport handles by default all end with OnClose(c, nil).
func errOrderlyClose(t *testing.T, s *Suite) {
	t.Run("close", func(t *testing.T) {
		p := newErrProbe()
		h := p.handler(hooks{Data: func(c transports.Conn, in []byte) int {
			if len(in) < len("hello") {
				return 0 // TCP may bring the message in pieces
			}
			c.Write(in)
			c.Close()
			return len(in)
		}})
		c := errServe(t, s, nil, h)
		errClientWrite(t, c, "hello")
		errExpectAll(t, c, "hello", "after Close")
		c.Close()
		errWantNil(t, bufAwait(t, p.closed, "OnClose"))
	})
	t.Run("closewrite-peer-fin", func(t *testing.T) {
		p := newErrProbe()
		h := p.handler(hooks{
			Open: func(c transports.Conn) {
				c.Write([]byte("bye"))
				c.CloseWrite()
			},
			ReadEOF: func(c transports.Conn) {}, // the CloseWrite rule closes c, not the default
		})
		c := errServe(t, s, nil, h)
		errExpectAll(t, c, "bye", "after CloseWrite")
		bufCloseWrite(t, c)
		errWantNil(t, bufAwait(t, p.closed, "OnClose after both FINs"))
	})
	t.Run("default-fin", func(t *testing.T) {
		p := newErrProbe()
		c := errServe(t, s, nil, p.handler(hooks{Data: echoHandler{}.OnData}))
		errClientWrite(t, c, "hello")
		bufCloseWrite(t, c)
		errExpectAll(t, c, "hello", "after the client's FIN")
		errWantNil(t, bufAwait(t, p.closed, "OnClose after the client's FIN"))
	})
}

// errPeerReset: a reset seen by a read is a "read" *net.OpError wrapping
// ECONNRESET; one seen by a write is a "write" one wrapping ECONNRESET or
// EPIPE.
func errPeerReset(t *testing.T, s *Suite) {
	t.Run("read", func(t *testing.T) {
		p := newErrProbe()
		c := errServe(t, s, nil, p.handler(hooks{}))
		bufAwait(t, p.opened, "OnOpen")
		errReset(t, c)
		errWantOp(t, "OnClose", bufAwait(t, p.closed, "OnClose after the peer's RST"), "read", syscall.ECONNRESET)
	})
	t.Run("write", func(t *testing.T) {
		// The handler pauses reading, so only its writes can see the reset,
		// and streams without end, so that one does.
		maxWrite := bufEffective(t, s, nil).MaxWriteBuffer
		chunk := make([]byte, 16<<10)
		stream := func(c transports.Conn) {
			for c.OutboundBuffered() < maxWrite {
				if _, err := c.Write(chunk); err != nil {
					return // closed already: OnClose tells why
				}
			}
		}
		p := newErrProbe()
		h := p.handler(hooks{
			Open: func(c transports.Conn) {
				c.PauseRead()
				stream(c)
			},
			Drain: stream,
		})
		c := errServe(t, s, nil, h)
		bufAwait(t, p.opened, "OnOpen")
		errReset(t, c)
		errWantOp(t, "OnClose", bufAwait(t, p.closed, "OnClose after the peer's RST"), "write", syscall.ECONNRESET, syscall.EPIPE)
	})
}

// errAbort: the application's Abort, in a callback or from another
// goroutine, gives ErrAborted, and the client sees the connection end.
func errAbort(t *testing.T, s *Suite) {
	t.Run("in-callback", func(t *testing.T) {
		p := newErrProbe()
		h := p.handler(hooks{Data: func(c transports.Conn, in []byte) int {
			c.Abort()
			return len(in)
		}})
		c := errServe(t, s, nil, h)
		errClientWrite(t, c, "x")
		errWantIs(t, bufAwait(t, p.closed, "OnClose after Abort"), transports.ErrAborted)
		bufExpectEnd(t, c, "after Abort")
	})
	t.Run("other-goroutine", func(t *testing.T) {
		p := newErrProbe()
		c := errServe(t, s, nil, p.handler(hooks{}))
		sc := bufAwait(t, p.opened, "OnOpen")
		if err := sc.Abort(); err != nil {
			t.Errorf("Abort: %v", err)
		}
		errWantIs(t, bufAwait(t, p.closed, "OnClose after Abort"), transports.ErrAborted)
		bufExpectEnd(t, c, "after Abort")
	})
}

// errCloseDeadline: a Close whose flush (CloseTimeout) or wait for the
// peer's FIN (CloseLinger) runs out aborts c with an error wrapping
// os.ErrDeadlineExceeded.
func errCloseDeadline(t *testing.T, s *Suite) {
	t.Run("flush", func(t *testing.T) {
		p := newErrProbe()
		c := errServe(t, s, func(c *transports.Config) { c.CloseTimeout = 200 * time.Millisecond }, p.handler(hooks{}))
		sc := bufAwait(t, p.opened, "OnOpen")
		// More than the kernel can hold for a client that never reads: the
		// server's send buffer at its ceiling, the client's receive buffer
		// (it does not grow without reads), and 4 MiB.
		rcvbuf, err := bufRcvbuf(c)
		bufNeed(t, s, err)
		sndMax, err := bufKernelMax(s.Network, "send")
		bufNeed(t, s, err)
		if _, err := sc.Write(make([]byte, sndMax+rcvbuf+4<<20)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := sc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		errWantIs(t, bufAwait(t, p.closed, "OnClose after CloseTimeout"), os.ErrDeadlineExceeded)
	})
	t.Run("linger", func(t *testing.T) {
		p := newErrProbe()
		h := p.handler(hooks{Open: func(c transports.Conn) {
			c.Write([]byte("bye"))
			c.Close()
		}})
		c := errServe(t, s, func(c *transports.Config) { c.CloseLinger = 200 * time.Millisecond }, h)
		// The client reads everything but never sends its FIN.
		errExpectAll(t, c, "bye", "after Close")
		errWantIs(t, bufAwait(t, p.closed, "OnClose after CloseLinger"), os.ErrDeadlineExceeded)
	})
}

// errFillOutput writes to c until its output waiting for the kernel
// reaches limit, or 256 MiB have been written.
func errFillOutput(c transports.Conn, limit int) {
	chunk := make([]byte, limit)
	for total := 0; c.OutboundBuffered() < limit && total < 256<<20; total += limit {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// errHandler: a callback that panics, or an OnData that returns a count
// outside [0, len(in)], aborts its Conn with ErrHandler; OnClose still
// runs exactly once, nothing runs after it, and the transport goes on
// serving other connections.
func errHandler(t *testing.T, s *Suite) {
	boom := errors.New("conformance: deliberate panic")
	maxWrite := bufEffective(t, s, nil).MaxWriteBuffer
	send := func(t *testing.T, c net.Conn) { errClientWrite(t, c, "x") }
	rows := []struct {
		name     string
		panics   bool
		first    hooks                          // the first connection's callbacks; later ones echo
		client   func(t *testing.T, c net.Conn) // what makes the first one fail, if anything
		readsAll bool                           // client reads to the end itself
	}{
		{
			name:   "panic-open",
			panics: true,
			first:  hooks{Open: func(transports.Conn) { panic(boom) }},
		},
		{
			name:   "panic-data",
			panics: true,
			first:  hooks{Data: func(transports.Conn, []byte) int { panic(boom) }},
			client: send,
		},
		{
			name:   "panic-readeof",
			panics: true,
			first:  hooks{ReadEOF: func(transports.Conn) { panic(boom) }},
			client: func(t *testing.T, c net.Conn) { bufCloseWrite(t, c) },
		},
		{
			// OnDrain comes once the client has read what OnOpen wrote past
			// MaxWriteBuffer. OnOpen writes until its output reaches the
			// limit: a transport may hand a Write to the socket at once, and
			// the socket may take a great deal before it is full.
			name:   "panic-drain",
			panics: true,
			first: hooks{
				Open:  func(c transports.Conn) { errFillOutput(c, maxWrite) },
				Drain: func(transports.Conn) { panic(boom) },
			},
			client:   func(t *testing.T, c net.Conn) { bufExpectEnd(t, c, "while the handler drains") },
			readsAll: true,
		},
		{
			name:   "count-negative",
			first:  hooks{Data: func(transports.Conn, []byte) int { return -1 }},
			client: send,
		},
		{
			name:   "count-over",
			first:  hooks{Data: func(_ transports.Conn, in []byte) int { return len(in) + 1 }},
			client: send,
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			p := newErrProbe()
			isFirst := func(c transports.Conn) bool { return errConnID(c) == 1 }
			h := hooks{
				Open: func(c transports.Conn) {
					if isFirst(c) && row.first.Open != nil {
						row.first.Open(c)
					}
				},
				Data: func(c transports.Conn, in []byte) int {
					if isFirst(c) && row.first.Data != nil {
						return row.first.Data(c, in)
					}
					c.Write(in)
					return len(in)
				},
			}
			if row.first.ReadEOF != nil {
				h.ReadEOF = func(c transports.Conn) {
					if isFirst(c) {
						row.first.ReadEOF(c)
						return
					}
					c.Close()
				}
			}
			if row.first.Drain != nil {
				h.Drain = func(c transports.Conn) {
					if isFirst(c) {
						row.first.Drain(c)
					}
				}
			}
			tr := s.Open(t, nil)
			ln := s.Listen(t, tr, p.handler(h))

			c1 := errDialAborted(t, ln)
			if c1 != nil && row.client != nil {
				row.client(t, c1)
			}
			err := bufAwait(t, p.closed, "OnClose of the failing connection")
			errWantIs(t, err, transports.ErrHandler)
			if row.panics && !errors.Is(err, boom) {
				t.Errorf("OnClose err = %v, want it to wrap the panic value %v", err, boom)
			}
			if c1 != nil && !row.readsAll {
				bufExpectEnd(t, c1, "after the handler failed")
			}

			// The transport still serves a second connection.
			c2 := s.DialClient(t, ln)
			errClientWrite(t, c2, "ping")
			if err := c2.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(c2, got); err != nil || string(got) != "ping" {
				t.Errorf("second connection's echo: got %q, %v; want \"ping\"", got, err)
			}
			c2.Close()

			// Close waits for every callback: after it, the counts are final.
			if err := tr.Close(); err != nil {
				t.Errorf("transport Close: %v", err)
			}
			p.check(t)
		})
	}
}

// errTransportClose: Transport.Close gives its Conns net.ErrClosed, and
// Listen and Dial after it fail with net.ErrClosed.
func errTransportClose(t *testing.T, s *Suite) {
	p := newErrProbe()
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, p.handler(hooks{}))
	addr := ln.Addr()
	s.DialClient(t, ln)
	bufAwait(t, p.opened, "OnOpen")
	if err := tr.Close(); err != nil {
		t.Errorf("transport Close: %v", err)
	}
	select {
	case err := <-p.closed:
		errWantIs(t, err, net.ErrClosed)
	default:
		t.Error("OnClose had not run when the transport's Close returned")
	}

	ln2, err := tr.Listen(s.Network, s.Address(t), echoHandler{})
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close: %v, want an error matching net.ErrClosed", err)
	}
	if ln2 != nil {
		ln2.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := tr.Dial(ctx, addr.Network(), addr.String(), echoHandler{})
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v, want an error matching net.ErrClosed", err)
	}
	if dc != nil {
		dc.Abort()
	}
	p.check(t)
}

// errWriteAfter: Write after Close, Abort or OnClose is a "write"
// *net.OpError wrapping net.ErrClosed; after CloseWrite, wrapping EPIPE.
// Nothing written then reaches the peer.
func errWriteAfter(t *testing.T, s *Suite) {
	type write struct {
		n   int
		err error
	}
	late := []byte("late")
	rows := []struct {
		name string
		end  func(c transports.Conn) error // what comes before the Write
		want error
	}{
		{name: "close", end: transports.Conn.Close, want: net.ErrClosed},
		{name: "abort", end: transports.Conn.Abort, want: net.ErrClosed},
		{name: "closewrite", end: transports.Conn.CloseWrite, want: syscall.EPIPE},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			writes := make(chan write, 1)
			p := newErrProbe()
			h := p.handler(hooks{Open: func(c transports.Conn) {
				if err := row.end(c); err != nil {
					writes <- write{-1, err}
					return
				}
				n, err := c.Write(late)
				writes <- write{n, err}
			}})
			c := errDialAborted(t, s.Listen(t, s.Open(t, nil), h))
			w := bufAwait(t, writes, "the Write in OnOpen")
			if w.n < 0 {
				t.Fatalf("%s: %v", row.name, w.err)
			}
			if w.n != 0 {
				t.Errorf("Write returned %d, want 0", w.n)
			}
			errWantOp(t, "Write after "+row.name, w.err, "write", row.want)
			switch {
			case c == nil && row.name != "abort":
				t.Fatalf("dial reset by a server that did not abort")
			case c == nil:
			case row.name == "abort":
				bufExpectEnd(t, c, "after Abort")
			default:
				bufExpectEOF(t, c, "after "+row.name)
			}
			if c != nil {
				c.Close()
			}
			bufAwait(t, p.closed, "OnClose")
		})
	}
	t.Run("onclose", func(t *testing.T) {
		writes := make(chan write, 1)
		conns := make(chan transports.Conn, 1)
		p := newErrProbe()
		h := p.handler(hooks{Close: func(c transports.Conn, _ error) {
			n, err := c.Write(late)
			writes <- write{n, err}
			conns <- c
		}})
		c := errServe(t, s, nil, h)
		c.Close()
		w := bufAwait(t, writes, "the Write in OnClose")
		errWantOp(t, "Write in OnClose", w.err, "write", net.ErrClosed)
		bufAwait(t, p.closed, "OnClose")
		n, err := bufAwait(t, conns, "OnClose").Write(late)
		if w.n != 0 || n != 0 {
			t.Errorf("Write returned %d in OnClose and %d after it, want 0", w.n, n)
		}
		errWantOp(t, "Write after OnClose", err, "write", net.ErrClosed)
	})
}

// errOpen: an unknown key is an error listing the valid ones, and an
// unknown transport one listing the registered transports.
func errOpen(t *testing.T, s *Suite) {
	open := func(spec string) error {
		tr, err := transports.Open(spec, transports.Config{})
		if err == nil {
			tr.Close()
			t.Errorf("Open(%q) succeeded, want an error", spec)
		}
		return err
	}
	d, ok := transports.Lookup(s.Name)
	if !ok {
		// t.Skip, not s.Skip: the transport runs here, but this case is
		// about the registry, which a transport given to RunFunc need not
		// be in.
		t.Skipf("%s is not registered: the case checks transports.Open's errors", s.Name)
	}
	spec := s.Name + ":merlin-no-such-key=1"
	if err := open(spec); err != nil {
		for _, o := range append(transports.CommonOptions[:len(transports.CommonOptions):len(transports.CommonOptions)], d.Options...) {
			if !strings.Contains(err.Error(), o.Key) {
				t.Errorf("Open(%q): %v; want the valid keys listed, %q among them", spec, err, o.Key)
			}
		}
	}
	spec = "merlin-no-such-transport"
	if err := open(spec); err != nil && !strings.Contains(err.Error(), s.Name) {
		t.Errorf("Open(%q): %v; want the registered transports listed, %q among them", spec, err, s.Name)
	}
}

// errCloseRule: a reply written just before Close reaches a client that
// sent more than the server read: Close discards input until the peer's
// FIN, so the socket is not closed with unread input (which would send
// RST and could destroy the reply).
func errCloseRule(t *testing.T, s *Suite) {
	var faults bufFaults
	first := true // owned by the callbacks
	p := newErrProbe()
	h := p.handler(hooks{
		// Reading waits until the client has sent 128 KiB, so that the
		// first OnData leaves input unread in the socket (with any read
		// size under 128 KiB) as well as in the transport.
		Open: func(c transports.Conn) { c.PauseRead() },
		Data: func(c transports.Conn, in []byte) int {
			if !first {
				faults.add("OnData after Close")
				return len(in)
			}
			first = false
			c.Write([]byte("reply"))
			c.Close()
			return 0 // Close discards in, and the rest
		},
	})
	c := errServe(t, s, nil, h)
	sc := bufAwait(t, p.opened, "OnOpen")
	if err := c.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// 128 KiB fits the kernel's buffers of a paused reader (unix's
	// default SO_SNDBUF is 208 KiB); the next 64 KiB go on while the server
	// closes.
	if _, err := c.Write(bufPatternAt(0, 128<<10)); err != nil {
		t.Fatalf("client write to a paused reader: %v", err)
	}
	sc.ResumeRead()
	if _, err := c.Write(bufPatternAt(128<<10, 64<<10)); err != nil {
		t.Errorf("client write while the server closes: %v (Close must discard input until the peer's FIN)", err)
	}
	errExpectAll(t, c, "reply", "after the server's Close with input unread")
	// The server still discards input until our FIN (or CloseLinger), so
	// this write must succeed; after a reset it fails with EPIPE.
	if _, err := c.Write(bufPatternAt(192<<10, 64<<10)); err != nil {
		t.Errorf("client write after the server's FIN: %v (Close must discard input until the peer's FIN)", err)
	}
	c.Close()
	errWantNil(t, bufAwait(t, p.closed, "OnClose after the client's FIN"))
	faults.check(t)
}

// errWriteOtherGoroutine: several goroutines Write framed messages to one
// Conn while its OnData echoes the client's frames. Every frame arrives
// whole (a Write's bytes are contiguous) and in each writer's order.
func errWriteOtherGoroutine(t *testing.T, s *Suite) {
	const (
		writers = 4
		frames  = 100 // per writer, and echoed from the client
	)
	var (
		faults bufFaults
		wg     sync.WaitGroup // the server's writers
		cwg    sync.WaitGroup // the client's writer
	)
	p := newErrProbe()
	h := p.handler(hooks{
		Open: func(c transports.Conn) {
			for w := 1; w <= writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for seq := range frames {
						if _, err := c.Write(errFrame(byte(w), uint32(seq))); err != nil {
							faults.add("writer %d, frame %d: %v", w, seq, err)
							return
						}
					}
				}()
			}
		},
		Data: func(c transports.Conn, in []byte) int {
			// Echo whole frames only, one Write each, so that a writer's
			// frame never lands inside an echoed one.
			done := 0
			for len(in)-done >= errFrameHeader {
				size := errFrameHeader + int(binary.BigEndian.Uint32(in[done+5:]))
				if len(in)-done < size {
					break
				}
				c.Write(in[done : done+size])
				done += size
			}
			return done
		},
	})
	tr := s.Open(t, nil)
	c := s.DialClient(t, s.Listen(t, tr, h))
	t.Cleanup(func() {
		c.Close()
		tr.Close() // the writers end once their Writes fail, at the latest
		wg.Wait()
		cwg.Wait()
	})

	sent := make(chan error, 1)
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		if err := c.SetWriteDeadline(time.Now().Add(30 * time.Second)); err != nil {
			sent <- err
			return
		}
		for seq := range frames {
			if _, err := c.Write(errFrame(0, uint32(seq))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	var want, got int64
	for w := range writers + 1 {
		for seq := range frames {
			want += int64(len(errFrame(byte(w), uint32(seq))))
		}
	}
	next := make([]uint32, writers+1)
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := newErrReader(c)
	for n := 0; n < (writers+1)*frames; n++ {
		f, err := r.next()
		if err != nil {
			t.Fatalf("after %d frames (%d bytes): %v", n, got, err)
		}
		w, seq := f[0], binary.BigEndian.Uint32(f[1:])
		if int(w) > writers {
			t.Fatalf("frame %d (at byte %d) has writer %d: the stream is corrupt", n, got, w)
		}
		if seq != next[w] {
			t.Fatalf("writer %d: frame %d arrived, want %d next", w, seq, next[w])
		}
		if i := bufFirstDiff(errFrame(w, seq), f); i >= 0 {
			t.Fatalf("writer %d, frame %d (at byte %d): differs at byte %d of the frame", w, seq, got, i)
		}
		next[w]++
		got += int64(len(f))
	}
	if got != want {
		t.Errorf("received %d bytes of frames, want %d", got, want)
	}
	if err := bufAwait(t, sent, "the client's frames to be sent"); err != nil {
		t.Fatalf("client write: %v", err)
	}
	bufCloseWrite(t, c)
	if rest, err := io.ReadAll(r.r); err != nil || len(rest) != 0 {
		t.Errorf("after every frame: %d more bytes, then %v; want EOF", len(rest), err)
	}
	errWantNil(t, bufAwait(t, p.closed, "OnClose after the client's FIN"))
	wg.Wait()
	faults.check(t)
}

// errFrameHeader is a frame's header: writer (1 byte), sequence number
// and payload length (4 bytes each, big-endian).
const errFrameHeader = 9

// errFrame returns writer w's frame seq: a header and a payload of a
// length and content both derived from w and seq.
func errFrame(w byte, seq uint32) []byte {
	size := 1 + int(seq*1237+uint32(w)*311)%6000
	f := make([]byte, errFrameHeader+size)
	f[0] = w
	binary.BigEndian.PutUint32(f[1:], seq)
	binary.BigEndian.PutUint32(f[5:], uint32(size))
	for i := range size {
		f[errFrameHeader+i] = byte(int(w)*131 + int(seq)*17 + i*7)
	}
	return f
}

// errReader reads frames from a stream.
type errReader struct {
	r   io.Reader
	buf []byte
}

func newErrReader(r io.Reader) *errReader {
	return &errReader{r: r, buf: make([]byte, errFrameHeader+6000)}
}

// next returns the next frame, valid until the following call.
func (r *errReader) next() ([]byte, error) {
	if _, err := io.ReadFull(r.r, r.buf[:errFrameHeader]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(r.buf[5:])
	if size > 6000 {
		return nil, errors.New("frame length out of range: the stream is corrupt")
	}
	f := r.buf[:errFrameHeader+int(size)]
	if _, err := io.ReadFull(r.r, f[errFrameHeader:]); err != nil {
		return nil, err
	}
	return f, nil
}

// errProbe wraps a case's hooks to record, for each server connection in
// the order they open, its OnClose calls and any callback after OnClose.
type errProbe struct {
	opened chan transports.Conn // each Conn at the end of its OnOpen (unless it panicked)
	closed chan error           // each OnClose's err, after the case's own OnClose hook
	ids    atomic.Int32
	faults bufFaults
	mu     sync.Mutex
	closes map[int32]int
}

// errConnState is what the probe keeps in a Conn's Context.
type errConnState struct {
	id     int32
	closed atomic.Bool
}

func newErrProbe() *errProbe {
	return &errProbe{
		opened: make(chan transports.Conn, 8),
		closed: make(chan error, 8),
		closes: map[int32]int{},
	}
}

// errConnID returns c's number, 1 for the first Conn a probe saw open.
func errConnID(c transports.Conn) int32 {
	if st, ok := c.Context().(*errConnState); ok {
		return st.id
	}
	return 0
}

// handler returns h as a Handler, with the probe's records around each
// callback. The probe owns the Conns' Context.
func (p *errProbe) handler(h hooks) transports.Handler {
	user := h
	live := func(c transports.Conn, callback string) {
		st, ok := c.Context().(*errConnState)
		switch {
		case !ok:
			p.faults.add("%s without OnOpen first", callback)
		case st.closed.Load():
			p.faults.add("connection %d: %s after OnClose", st.id, callback)
		}
	}
	h.Open = func(c transports.Conn) {
		c.SetContext(&errConnState{id: p.ids.Add(1)})
		if user.Open != nil {
			user.Open(c)
		}
		select {
		case p.opened <- c:
		default:
		}
	}
	h.Data = func(c transports.Conn, in []byte) int {
		live(c, "OnData")
		if len(in) == 0 {
			p.faults.add("OnData with an empty in")
		}
		if user.Data != nil {
			return user.Data(c, in)
		}
		return len(in)
	}
	if user.ReadEOF != nil {
		h.ReadEOF = func(c transports.Conn) {
			live(c, "OnReadEOF")
			user.ReadEOF(c)
		}
	}
	if user.Drain != nil {
		h.Drain = func(c transports.Conn) {
			live(c, "OnDrain")
			user.Drain(c)
		}
	}
	h.Close = func(c transports.Conn, err error) {
		live(c, "OnClose")
		if st, ok := c.Context().(*errConnState); ok {
			st.closed.Store(true)
			p.mu.Lock()
			p.closes[st.id]++
			p.mu.Unlock()
		}
		if user.Close != nil {
			user.Close(c, err)
		}
		select {
		case p.closed <- err:
		default:
		}
	}
	return handler(h)
}

// check reports what the probe found wrong: callbacks out of order, and
// a Conn whose OnClose ran more than once. Call it once no callback can
// run (after the transport's Close).
func (p *errProbe) check(t testing.TB) {
	t.Helper()
	p.faults.check(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, n := range p.closes {
		if n != 1 {
			t.Errorf("connection %d: OnClose ran %d times", id, n)
		}
	}
}

// errServe opens the transport with edit, listens with h and dials it.
func errServe(t testing.TB, s *Suite, edit func(*transports.Config), h transports.Handler) net.Conn {
	t.Helper()
	tr := s.Open(t, edit)
	return s.DialClient(t, s.Listen(t, tr, h))
}

// errDialAborted dials ln, whose server may abort the connection at once.
// On TCP the reset can then arrive before connect(2) has reported its
// result, and the dial itself fails with ECONNRESET: the client has seen
// the abort, and errDialAborted returns nil. The Conn is closed by
// t.Cleanup.
func errDialAborted(t testing.TB, ln transports.Listener) net.Conn {
	t.Helper()
	a := ln.Addr()
	c, err := net.DialTimeout(a.Network(), a.String(), 10*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial %v: %v", a, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// errClientWrite writes msg from the client, with a deadline.
func errClientWrite(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

// errExpectAll reads c to EOF and fails t unless it got exactly want.
func errExpectAll(t testing.TB, c net.Conn, want, when string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Errorf("%s: client read %q, then %v; want %q, then EOF", when, got, err, want)
	}
}

// errReset resets the client's TCP connection: SO_LINGER 0, then close.
func errReset(t testing.TB, c net.Conn) {
	t.Helper()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("%T is not a TCP connection", c)
	}
	if err := tc.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
}

// errWantNil fails t unless OnClose's err is nil.
func errWantNil(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("OnClose err = %v, want nil (an orderly close)", err)
	}
}

// errWantIs fails t unless OnClose's err matches target.
func errWantIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("OnClose err = %v, want one matching %v", err, target)
	}
}

// errWantOp fails t unless err is a *net.OpError with Op op wrapping one
// of targets.
func errWantOp(t testing.TB, what string, err error, op string, targets ...error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op {
		t.Errorf("%s: err = %v (%T), want a *net.OpError with Op %q", what, err, err, op)
		return
	}
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	t.Errorf("%s: err = %v, want it to wrap one of %v", what, err, targets)
}
