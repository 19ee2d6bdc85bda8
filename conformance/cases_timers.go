package conformance

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// timerCases check the application's timer (TimerConn.SetTimer and
// TimerHandler.OnTimer) and the slow-peer limits (Config.WriteTimeout and
// Config.IdleTimeout).
var timerCases = []testCase{
	{name: "timer-fires", smoke: true, run: tmFires},
	{name: "timer-replaced", run: tmReplaced},
	{name: "timer-serialised", run: tmSerialised},
	{name: "timer-stopped-by-close", run: tmStoppedByClose},
	{name: "timer-without-handler", run: tmWithoutHandler},
	{name: "write-timeout", smoke: true, run: tmWriteTimeout},
	{name: "write-timeout-progress", run: tmWriteProgress},
	{name: "write-timeout-slow-callback", run: tmWriteSlowCallback},
	{name: "close-timeout-slow-callback", run: tmCloseSlowCallback},
	{name: "idle-timeout", run: tmIdleTimeout},
	{name: "idle-timeout-slow-callback", run: tmIdleSlowCallback},
}

// timerHandler is a Handler with OnTimer (and nothing else optional).
type timerHandler struct {
	base
	timer func(c transports.Conn)
}

func (h timerHandler) OnTimer(c transports.Conn) { h.timer(c) }

// withTimer returns h with OnTimer running timer.
func withTimer(h hooks, timer func(c transports.Conn)) transports.Handler {
	return timerHandler{base{&h}, timer}
}

// setTimer calls SetTimer on c, failing t if c is not a TimerConn.
func setTimer(t *testing.T, c transports.Conn, d time.Duration) {
	tc, ok := c.(transports.TimerConn)
	if !ok {
		t.Errorf("Conn %T is not a transports.TimerConn", c)
		return
	}
	tc.SetTimer(d)
}

// tmFires: SetTimer in OnOpen; OnTimer runs once, no earlier than asked,
// and what it writes reaches the peer.
func tmFires(t *testing.T, s *Suite) {
	const d = 50 * time.Millisecond
	var (
		set   time.Time // written in OnOpen, read in OnTimer: serialised
		fires atomic.Int32
		early = make(chan time.Duration, 1)
	)
	h := withTimer(hooks{
		Open: func(c transports.Conn) {
			set = time.Now()
			setTimer(t, c, d)
		},
	}, func(c transports.Conn) {
		if el := time.Since(set); el < d {
			early <- el
		}
		fires.Add(1)
		c.Write([]byte("tick"))
	})
	ln := s.Listen(t, s.Open(t, nil), h)
	cl := s.DialClient(t, ln)
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(cl, buf); err != nil || string(buf) != "tick" {
		t.Fatalf("reading what OnTimer wrote: %q, %v", buf, err)
	}
	select {
	case el := <-early:
		t.Errorf("OnTimer ran %v after SetTimer(%v)", el, d)
	default:
	}
	time.Sleep(inHold) // a second OnTimer would come within d
	if n := fires.Load(); n != 1 {
		t.Errorf("OnTimer ran %d times for one SetTimer, want 1", n)
	}
}

// tmReplaced: a setting replaced before it ran out never fires; only the
// last one does, no earlier than it asked. SetTimer(0) stops the timer.
func tmReplaced(t *testing.T, s *Suite) {
	for _, v := range []struct {
		name  string
		ds    []time.Duration // successive settings, in OnOpen
		fires int
	}{
		{name: "later", ds: []time.Duration{30 * time.Millisecond, 150 * time.Millisecond}, fires: 1},
		{name: "earlier", ds: []time.Duration{time.Hour, 30 * time.Millisecond}, fires: 1},
		{name: "stopped", ds: []time.Duration{30 * time.Millisecond, 0}, fires: 0},
	} {
		t.Run(v.name, func(t *testing.T) {
			var (
				set   time.Time
				fires atomic.Int32
				early atomic.Int64
				fired = make(chan struct{}, 4)
			)
			last := v.ds[len(v.ds)-1]
			h := withTimer(hooks{
				Open: func(c transports.Conn) {
					set = time.Now()
					for _, d := range v.ds {
						setTimer(t, c, d)
					}
				},
			}, func(c transports.Conn) {
				if el := time.Since(set); el < last {
					early.Store(int64(el))
				}
				fires.Add(1)
				fired <- struct{}{}
			})
			ln := s.Listen(t, s.Open(t, nil), h)
			s.DialClient(t, ln)
			if v.fires > 0 {
				select {
				case <-fired:
				case <-time.After(10 * time.Second):
					t.Fatal("OnTimer did not run within 10s")
				}
			}
			time.Sleep(inHold) // longer than every setting but an hour
			if n := fires.Load(); n != int32(v.fires) {
				t.Errorf("settings %v: OnTimer ran %d times, want %d", v.ds, n, v.fires)
			}
			if el := early.Load(); el != 0 {
				t.Errorf("settings %v: OnTimer ran %v after them, before the last ran out", v.ds, time.Duration(el))
			}
		})
	}
}

// tmSerialised: on 50 connections that echo a stream, OnTimer re-arms
// itself at 1 ms twenty times, and another goroutine calls SetTimer too:
// OnTimer never overlaps another callback of its Conn, and never runs
// after OnClose.
func tmSerialised(t *testing.T, s *Suite) {
	const (
		conns = 50
		ticks = 20
	)
	type state struct {
		trace  callTrace
		ticks  atomic.Int32
		closed atomic.Bool
		late   atomic.Bool // OnTimer after OnClose
		done   chan struct{}
	}
	states := make(chan *state, conns)
	var wg sync.WaitGroup
	h := withTimer(hooks{
		Open: func(c transports.Conn) {
			st := &state{done: make(chan struct{})}
			defer st.trace.enter(onOpen)()
			c.SetContext(st)
			states <- st
			setTimer(t, c, time.Millisecond)
		},
		Data: func(c transports.Conn, in []byte) int {
			st := c.Context().(*state)
			defer st.trace.enter(onData)()
			c.Write(in)
			return len(in)
		},
		Close: func(c transports.Conn, err error) {
			st := c.Context().(*state)
			defer st.trace.enter(onClose)()
			st.closed.Store(true)
		},
	}, func(c transports.Conn) {
		st := c.Context().(*state)
		defer st.trace.enter("OnTimer")()
		if st.closed.Load() {
			st.late.Store(true)
		}
		if st.ticks.Add(1) == ticks {
			close(st.done)
			return
		}
		setTimer(t, c, time.Millisecond)
	})
	ln := s.Listen(t, s.Open(t, nil), h)
	for range conns {
		cl := s.DialClient(t, ln)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1024)
			cl.SetDeadline(time.Now().Add(30 * time.Second))
			for i := 0; i < 50; i++ {
				if _, err := cl.Write(buf); err != nil {
					return
				}
				if _, err := io.ReadFull(cl, buf); err != nil {
					return
				}
			}
		}()
	}
	var all []*state
	for range conns {
		select {
		case st := <-states:
			all = append(all, st)
		case <-time.After(20 * time.Second):
			t.Fatal("not every connection opened within 20s")
		}
	}
	for i, st := range all {
		select {
		case <-st.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("connection %d: %d of %d OnTimers within 20s", i, st.ticks.Load(), ticks)
		}
	}
	wg.Wait()
	for i, st := range all {
		if _, overlaps := st.trace.snapshot(); overlaps > 0 {
			t.Errorf("connection %d: %d callbacks began while another ran", i, overlaps)
		}
		if st.late.Load() {
			t.Errorf("connection %d: OnTimer ran after OnClose", i)
		}
	}
}

// tmStoppedByClose: a timer set before Close or Abort (in a callback, or
// from another goroutine) never runs once Close or Abort has returned;
// and never after OnClose. The timer is set in OnOpen; Close or Abort
// comes in the OnData of the client's first byte (so that the client's
// dial has completed before any RST), or from the case's goroutine.
func tmStoppedByClose(t *testing.T, s *Suite) {
	for _, v := range []struct {
		name  string
		abort bool
		other bool // Close from another goroutine, after OnOpen
	}{
		{name: "close"},
		{name: "abort", abort: true},
		{name: "close-other", other: true},
		{name: "abort-other", abort: true, other: true},
	} {
		t.Run(v.name, func(t *testing.T) {
			var (
				gate   atomic.Bool // Close (or Abort) has returned
				late   atomic.Int32
				closed = make(chan struct{})
				conns  = make(chan transports.Conn, 1)
			)
			end := func(c transports.Conn) {
				if v.abort {
					c.Abort()
				} else {
					c.Close()
				}
				gate.Store(true)
			}
			h := withTimer(hooks{
				Open: func(c transports.Conn) {
					setTimer(t, c, 200*time.Millisecond)
					conns <- c
				},
				Data: func(c transports.Conn, in []byte) int {
					if !v.other {
						end(c)
					}
					return len(in)
				},
				Close: func(transports.Conn, error) { close(closed) },
			}, func(transports.Conn) {
				if gate.Load() {
					late.Add(1)
				}
			})
			ln := s.Listen(t, s.Open(t, nil), h)
			cl := s.DialClient(t, ln)
			c := <-conns
			if v.other {
				end(c)
			} else if _, err := cl.Write([]byte{'x'}); err != nil {
				t.Fatal(err)
			}
			// Read to the server's FIN (or RST), then close, so that Close
			// need not wait out CloseLinger.
			cl.SetReadDeadline(time.Now().Add(20 * time.Second))
			io.Copy(io.Discard, cl)
			cl.Close()
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("OnClose did not run within 10s")
			}
			time.Sleep(inHold) // the timer, set 200 ms after OnOpen, would have run out by now
			if n := late.Load(); n > 0 {
				t.Errorf("OnTimer ran %d times after %s returned", n, v.name)
			}
		})
	}
}

// tmWithoutHandler: SetTimer on a Conn whose Handler has no OnTimer does
// nothing: the connection goes on serving.
func tmWithoutHandler(t *testing.T, s *Suite) {
	h := hooks{
		Open: func(c transports.Conn) { setTimer(t, c, time.Millisecond) },
		Data: func(c transports.Conn, in []byte) int {
			c.Write(in)
			return len(in)
		},
	}
	ln := s.Listen(t, s.Open(t, nil), handler(h))
	cl := s.DialClient(t, ln)
	cl.SetDeadline(time.Now().Add(10 * time.Second))
	time.Sleep(20 * time.Millisecond) // past the timer's setting
	buf := []byte("still here")
	if _, err := cl.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cl, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("echo after the timer ran out: %q, %v", buf, err)
	}
}

// tmWriteTimeout: a peer that reads nothing while the server has 32 MiB
// to send (more than loopback's socket buffers take) is aborted once the
// output has made no progress for WriteTimeout: OnClose's error is a
// "write" *net.OpError matching transports.ErrWriteTimeout and
// os.ErrDeadlineExceeded, no earlier than the timeout.
func tmWriteTimeout(t *testing.T, s *Suite) {
	const limit = 300 * time.Millisecond
	var (
		opened time.Time
		closed = make(chan error, 1)
		took   = make(chan time.Duration, 1)
	)
	h := hooks{
		Open: func(c transports.Conn) {
			opened = time.Now()
			c.Write(make([]byte, 32<<20))
		},
		Close: func(_ transports.Conn, err error) {
			took <- time.Since(opened)
			closed <- err
		},
	}
	tr := s.Open(t, func(c *transports.Config) { c.WriteTimeout = limit })
	ln := s.Listen(t, tr, handler(h))
	s.DialClient(t, ln) // reads nothing
	var err error
	select {
	case err = <-closed:
	case <-time.After(20 * time.Second):
		t.Fatalf("a peer that reads nothing was not aborted within 20s (WriteTimeout %v)", limit)
	}
	if el := <-took; el < limit {
		t.Errorf("aborted %v after the output began to wait, before WriteTimeout %v", el, limit)
	}
	var op *net.OpError
	if !errors.Is(err, transports.ErrWriteTimeout) || !errors.As(err, &op) || op.Op != "write" {
		t.Errorf("OnClose err = %v, want a write *net.OpError matching ErrWriteTimeout", err)
	}
}

// tmWriteProgress: output that keeps moving is never cut. The server
// streams for 1.5 s (its output pending nearly all the time, the idiom of
// DESIGN.md: write while OutboundBuffered < MaxWriteBuffer, go on from
// OnDrain) to a client that reads everything; with a WriteTimeout of
// 300 ms, a transport that does not count progress aborts it.
func tmWriteProgress(t *testing.T, s *Suite) {
	const (
		limit  = 300 * time.Millisecond
		stream = 1500 * time.Millisecond
	)
	var (
		stop   atomic.Bool
		closed = make(chan error, 1)
	)
	chunk := make([]byte, 16<<10)
	var maxWrite int
	fill := func(c transports.Conn) {
		for !stop.Load() && c.OutboundBuffered() < maxWrite {
			c.Write(chunk)
		}
		if stop.Load() {
			c.Close()
		}
	}
	h := hooks{
		Open:  fill,
		Drain: fill,
		Close: func(_ transports.Conn, err error) { closed <- err },
	}
	tr := s.Open(t, func(c *transports.Config) { c.WriteTimeout = limit })
	maxWrite = tr.Config().MaxWriteBuffer
	ln := s.Listen(t, tr, handler(h))
	cl := s.DialClient(t, ln)
	cl.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	buf := make([]byte, 64<<10)
	for time.Since(start) < stream {
		if _, err := cl.Read(buf); err != nil {
			t.Fatalf("reading the stream after %v: %v", time.Since(start), err)
		}
		select {
		case err := <-closed:
			t.Fatalf("the server closed a stream its peer was reading after %v: %v", time.Since(start), err)
		default:
		}
	}
	stop.Store(true)
	if _, err := io.Copy(io.Discard, cl); err != nil {
		t.Fatalf("reading the rest: %v", err)
	}
	cl.Close() // our FIN: the server's Close need not wait out CloseLinger
	if err := bufAwait(t, closed, "OnClose"); err != nil {
		t.Errorf("OnClose err = %v, want nil after an orderly close", err)
	}
}

// tmWriteSlowCallback: the write-progress clock starts when output
// begins to wait, not when the loop last read its clock. An OnData that
// works for longer than WriteTimeout (500 ms) and then writes 8 MiB,
// more than the socket and its peer's take, to a client that starts
// reading at the OnTimer it then asks for, must not be killed for want
// of progress: a loop that started the clock from the time it had read
// before running the callback found it run out at once. IdleTimeout is
// set too (10 s, never reached), so that a loop reads its clock for the
// idle clock before OnData as well.
func tmWriteSlowCallback(t *testing.T, s *Suite) {
	const (
		limit = 500 * time.Millisecond
		size  = 8 << 20
	)
	var (
		closed  = make(chan error, 1)
		written = make(chan struct{})
		out     = pattern(size)
	)
	h := hooks{
		Data: func(c transports.Conn, in []byte) int {
			busy(limit + limit/2)
			c.Write(out)
			// The client reads from OnTimer on: once the loop has
			// returned from this callback and tried to send.
			c.(transports.TimerConn).SetTimer(time.Millisecond)
			return len(in)
		},
		Close: func(_ transports.Conn, err error) { closed <- err },
	}
	tr := s.Open(t, func(c *transports.Config) {
		c.WriteTimeout = limit
		c.IdleTimeout = 10 * time.Second
	})
	ln := s.Listen(t, tr, withTimer(h, func(transports.Conn) { close(written) }))
	cl := s.DialClient(t, ln)
	cl.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := cl.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-written:
	case err := <-closed:
		t.Fatalf("the server closed before OnTimer, its peer yet to read: %v", err)
	}
	readStream(t, cl, out, closed)
	select {
	case err := <-closed:
		t.Fatalf("the server closed a connection whose output its peer read: %v", err)
	default:
	}
	cl.Close()
	if err := bufAwait(t, closed, "OnClose"); err != nil {
		t.Errorf("OnClose err = %v after the peer's close, want nil", err)
	}
}

// tmCloseSlowCallback: Close's flush limit counts from the Close. With
// output waiting for its peer (12 MiB: more than the sockets take while
// the callback runs and again after it), an OnTimer that works for longer
// than CloseTimeout (1 s) and then closes, to a client that reads from
// the start of that work on, must have all of it flushed, then its FIN: a
// loop that counted the limit from the time it had read before running
// the callback found it run out at once and reset the connection.
// IdleTimeout (10 s, never reached) makes a loop read its clock before
// the callback, as in tmWriteSlowCallback.
func tmCloseSlowCallback(t *testing.T, s *Suite) {
	const (
		limit = time.Second
		size  = 12 << 20
	)
	var (
		closed   = make(chan error, 1)
		spinning = make(chan struct{})
		out      = pattern(size)
	)
	h := hooks{
		Data: func(c transports.Conn, in []byte) int {
			c.Write(out)
			c.(transports.TimerConn).SetTimer(time.Millisecond)
			return len(in)
		},
		Close: func(_ transports.Conn, err error) { closed <- err },
	}
	tr := s.Open(t, func(c *transports.Config) {
		c.CloseTimeout = limit
		c.IdleTimeout = 10 * time.Second
	})
	ln := s.Listen(t, tr, withTimer(h, func(c transports.Conn) {
		if c.OutboundBuffered() == 0 {
			t.Errorf("the sockets took all %d bytes: the case needs output that waits", size)
		}
		close(spinning)
		busy(limit + limit/4)
		c.Close()
	}))
	cl := s.DialClient(t, ln)
	cl.SetDeadline(time.Now().Add(30 * time.Second))
	// A fixed receive buffer: the kernel's may grow to tens of MiB.
	if rb, ok := cl.(interface{ SetReadBuffer(int) error }); ok {
		rb.SetReadBuffer(128 << 10)
	}
	if _, err := cl.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-spinning:
	case err := <-closed:
		t.Fatalf("the server closed before OnTimer: %v", err)
	}
	readStream(t, cl, out, closed)
	if n, err := cl.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the stream: %d bytes, %v; want the server's FIN", n, err)
	}
	cl.Close()
	if err := bufAwait(t, closed, "OnClose"); err != nil {
		t.Errorf("OnClose err = %v after a flushed Close and the peer's FIN, want nil", err)
	}
}

// tmIdleTimeout: with IdleTimeout 500 ms, a connection that moves a byte
// every 50 ms stays open for a second; once it goes quiet it is closed
// as Close closes it: the peer reads EOF, and OnClose's error matches
// transports.ErrIdleTimeout, no earlier than the timeout after the last
// byte (within half of it: the server's last byte went out a little
// before the client saw it).
func tmIdleTimeout(t *testing.T, s *Suite) {
	const limit = 500 * time.Millisecond
	cl, closed, at := idleServe(t, s, limit, func(c transports.Conn, in []byte) int {
		c.Write(in)
		return len(in)
	})
	b := []byte{'x'}
	var last time.Time
	for start := time.Now(); time.Since(start) < time.Second; {
		if _, err := cl.Write(b); err != nil {
			t.Fatalf("write while active: %v", err)
		}
		if _, err := io.ReadFull(cl, b); err != nil {
			t.Fatalf("echo while active (after %v): %v", time.Since(start), err)
		}
		last = time.Now()
		time.Sleep(50 * time.Millisecond) // the client's pace, well inside the limit
	}
	if n, err := cl.Read(b); err != io.EOF {
		t.Fatalf("read from an idle connection: %d, %v; want io.EOF (an orderly close)", n, err)
	}
	cl.Close() // our FIN: the server's Close need not wait out CloseLinger
	if err := bufAwait(t, closed, "OnClose"); !errors.Is(err, transports.ErrIdleTimeout) {
		t.Errorf("OnClose err = %v, want one matching ErrIdleTimeout", err)
	}
	if el := (<-at).Sub(last); el < limit/2 {
		t.Errorf("closed %v after the last byte, before IdleTimeout %v", el, limit)
	}
}

// tmIdleSlowCallback: bytes written at the end of a long callback are
// activity from then on. An OnData that works for longer than IdleTimeout
// (500 ms) and then writes 16 KiB, which a socket takes at once, must not
// find its connection idle as soon as it returns: a loop that stamped the
// write with the time it had read before the callback did.
func tmIdleSlowCallback(t *testing.T, s *Suite) {
	const (
		limit = 500 * time.Millisecond
		size  = 16 << 10
	)
	var wrote time.Time // in OnData, read after OnClose: serialised
	cl, closed, at := idleServe(t, s, limit, func(c transports.Conn, in []byte) int {
		busy(limit + limit/2)
		c.Write(make([]byte, size))
		wrote = time.Now()
		return len(in)
	})
	if _, err := cl.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cl, make([]byte, size)); err != nil {
		t.Fatalf("read of the answer: %v", err)
	}
	if n, err := cl.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read from an idle connection: %d, %v; want io.EOF (an orderly close)", n, err)
	}
	cl.Close()
	if err := bufAwait(t, closed, "OnClose"); !errors.Is(err, transports.ErrIdleTimeout) {
		t.Errorf("OnClose err = %v, want one matching ErrIdleTimeout", err)
	}
	if el := (<-at).Sub(wrote); el < limit/2 {
		t.Errorf("closed %v after the callback's write, before IdleTimeout %v", el, limit)
	}
}

// readStream reads len(out) bytes from cl and fails unless they are out;
// a short read is reported with the server's OnClose error, if closed
// gets one soon.
func readStream(t *testing.T, cl net.Conn, out []byte, closed <-chan error) {
	t.Helper()
	got := make([]byte, len(out))
	if n, err := io.ReadFull(cl, got); err != nil {
		select {
		case cerr := <-closed:
			t.Fatalf("read %d of %d bytes: %v; the server closed with %v", n, len(out), err, cerr)
		case <-time.After(10 * time.Second):
			t.Fatalf("read %d of %d bytes: %v", n, len(out), err)
		}
	}
	if !bytes.Equal(got, out) {
		t.Fatal("the stream differs from what was written")
	}
}

// pattern returns n bytes in which a stream that lost, repeated or
// reordered some differs from the original.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// busy is an application's slow work on the loop: it runs for d, and the
// loop runs nothing else meanwhile.
func busy(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// idleServe serves OnData data with IdleTimeout limit and dials a client
// (20 s deadline); OnClose sends its time on at and its error on closed.
func idleServe(t *testing.T, s *Suite, limit time.Duration, data func(c transports.Conn, in []byte) int) (cl net.Conn, closed chan error, at chan time.Time) {
	closed, at = make(chan error, 1), make(chan time.Time, 1)
	h := hooks{
		Data: data,
		Close: func(_ transports.Conn, err error) {
			at <- time.Now()
			closed <- err
		},
	}
	tr := s.Open(t, func(c *transports.Config) { c.IdleTimeout = limit })
	cl = s.DialClient(t, s.Listen(t, tr, handler(h)))
	cl.SetDeadline(time.Now().Add(20 * time.Second))
	return cl, closed, at
}
