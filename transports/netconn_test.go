package transports

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeConn is a Conn without a socket: the test plays the transport,
// setting OutboundBuffered and calling the adapter's callbacks.
type fakeConn struct {
	writes chan []byte // every Write's bytes

	mu      sync.Mutex
	ob      int
	paused  bool
	calls   []string // PauseRead, ResumeRead, Close, CloseWrite
	context any
}

func newFakeConn() *fakeConn { return &fakeConn{writes: make(chan []byte, 64)} }

var (
	fakeLocal  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	fakeRemote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
)

func (f *fakeConn) LocalAddr() net.Addr  { return fakeLocal }
func (f *fakeConn) RemoteAddr() net.Addr { return fakeRemote }
func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.ob += len(p)
	f.mu.Unlock()
	f.writes <- append([]byte(nil), p...)
	return len(p), nil
}
func (f *fakeConn) OutboundBuffered() int { f.mu.Lock(); defer f.mu.Unlock(); return f.ob }
func (f *fakeConn) setOB(n int)           { f.mu.Lock(); f.ob = n; f.mu.Unlock() }
func (f *fakeConn) call(name string)      { f.mu.Lock(); f.calls = append(f.calls, name); f.mu.Unlock() }
func (f *fakeConn) CloseWrite() error     { f.call("CloseWrite"); return nil }
func (f *fakeConn) Close() error          { f.call("Close"); return nil }
func (f *fakeConn) Abort() error          { f.call("Abort"); return nil }
func (f *fakeConn) PauseRead()            { f.mu.Lock(); f.paused = true; f.mu.Unlock(); f.call("PauseRead") }
func (f *fakeConn) ResumeRead()           { f.mu.Lock(); f.paused = false; f.mu.Unlock(); f.call("ResumeRead") }
func (f *fakeConn) Context() any          { return f.context }
func (f *fakeConn) SetContext(v any)      { f.context = v }
func (f *fakeConn) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func readString(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	got, err := c.Read(buf)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return string(buf[:got])
}

func wantOpError(t *testing.T, err error, op string, target error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || !errors.Is(err, target) {
		t.Fatalf("error %v, want a *net.OpError{Op: %q} wrapping %v", err, op, target)
	}
}

func TestNetConnInputBeforeReset(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 64 << 10})
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	c.onData([]byte("last"))
	c.onData([]byte(" words"))
	c.onClose(reset)
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v, want 0, nil", n, err)
	}
	if got := readString(t, c, 64); got != "last words" {
		t.Errorf("Read = %q, want the buffered %q", got, "last words")
	}
	for range 2 {
		if _, err := c.Read(make([]byte, 8)); err != reset {
			t.Errorf("Read after the input: %v, want the transport's %v as is", err, reset)
		}
	}
}

func TestNetConnReadEOFKeepsWriting(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 64 << 10})
	c.onData([]byte("x"))
	c.onReadEOF()
	if got := readString(t, c, 8); got != "x" {
		t.Fatalf("Read = %q, want %q", got, "x")
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read at EOF = %d, %v, want 0, io.EOF (bare)", n, err)
	}
	if n, err := c.Write([]byte("reply")); n != 5 || err != nil {
		t.Fatalf("Write after EOF = %d, %v", n, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Write([]byte("late"))
	wantOpError(t, err, "write", syscall.EPIPE)
}

func TestNetConnPauseHysteresis(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 8, maxWrite: 64 << 10})
	c.onData([]byte("12345"))
	c.onData([]byte("678")) // 8: not past the limit
	if calls := f.callList(); len(calls) != 0 {
		t.Fatalf("calls at the limit: %v, want none", calls)
	}
	steps := []struct {
		name string
		do   func()
		want []string // all calls so far
	}{
		{"9 bytes kept", func() { c.onData([]byte("9")) }, []string{"PauseRead"}},
		{"5 left", func() { readString(t, c, 4) }, []string{"PauseRead"}},
		{"4 left: half", func() { readString(t, c, 1) }, []string{"PauseRead", "ResumeRead"}},
		{"0 left", func() { readString(t, c, 4) }, []string{"PauseRead", "ResumeRead"}},
		{"9 again", func() { c.onData([]byte("abcdefghi")) }, []string{"PauseRead", "ResumeRead", "PauseRead"}},
		{"CloseRead", func() { c.CloseRead() }, []string{"PauseRead", "ResumeRead", "PauseRead", "ResumeRead"}},
	}
	for _, st := range steps {
		st.do()
		if diff := cmp.Diff(st.want, f.callList()); diff != "" {
			t.Fatalf("after %s: transport calls (-want +got):\n%s", st.name, diff)
		}
	}
	c.onData([]byte("discarded"))
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("Read after CloseRead = %d, %v, want 0, io.EOF", n, err)
	}
}

func TestNetConnWriteChunks(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 10})
	c.SetWriteDeadline(time.Now().Add(time.Minute))
	done := make(chan error, 1)
	go func() {
		n, err := c.Write(make([]byte, 25))
		if err == nil && n != 25 {
			err = errors.New("short write")
		}
		done <- err
	}()
	var chunks []int
	chunks = append(chunks, len(<-f.writes)) // 10: OutboundBuffered at the limit
	f.setOB(4)
	c.onDrain()
	chunks = append(chunks, len(<-f.writes)) // 6
	f.setOB(0)
	c.onDrain()
	chunks = append(chunks, len(<-f.writes)) // 9: done
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{10, 6, 9}, chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}

	// Above the limit, one byte goes, then Write waits; its deadline
	// returns the count enqueued.
	f.setOB(12)
	go func() {
		n, err := c.Write([]byte("abc"))
		if n != 1 {
			err = errors.New("wrong count")
		}
		done <- err
	}()
	if got := <-f.writes; string(got) != "a" {
		t.Fatalf("first chunk above the limit: %q, want %q", got, "a")
	}
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	wantOpError(t, <-done, "write", os.ErrDeadlineExceeded)
	if n, err := c.Write([]byte("x")); n != 0 {
		t.Errorf("Write with a past deadline = %d, %v, want 0", n, err)
	}
}

func TestNetConnCloseWakes(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 10})
	f.setOB(10)
	reads, writes := make(chan error, 1), make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); reads <- err }()
	go func() { _, err := c.Write([]byte("xy")); writes <- err }()
	<-f.writes // the Write waits for OnDrain now
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wantOpError(t, <-reads, "read", net.ErrClosed)
	wantOpError(t, <-writes, "write", net.ErrClosed)
	wantOpError(t, c.Close(), "close", net.ErrClosed)
	wantOpError(t, c.SetDeadline(time.Now()), "set", net.ErrClosed)
	if diff := cmp.Diff([]string{"Close"}, f.callList()); diff != "" {
		t.Errorf("transport calls (-want +got):\n%s", diff)
	}
}

func TestNetConnDeadlines(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 10})
	c.onData([]byte("buffered"))
	c.SetReadDeadline(time.Now().Add(-time.Second))
	n, err := c.Read(make([]byte, 8))
	if n != 0 {
		t.Errorf("Read with a past deadline returned %d bytes", n)
	}
	wantOpError(t, err, "read", os.ErrDeadlineExceeded)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("%v: Timeout() is not true", err)
	}
	c.SetReadDeadline(time.Time{})
	if got := readString(t, c, 8); got != "buffered" {
		t.Errorf("Read after clearing the deadline = %q", got)
	}

	// A blocked Read wakes when its deadline passes, or is moved to the past.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(make([]byte, 8))
	wantOpError(t, err, "read", os.ErrDeadlineExceeded)
	c.SetReadDeadline(time.Now().Add(time.Hour))
	reads := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); reads <- err }()
	c.SetReadDeadline(time.Unix(1, 0))
	wantOpError(t, <-reads, "read", os.ErrDeadlineExceeded)
	c.Close()
}

func TestNetListenerQueue(t *testing.T) {
	l := &netListener{ln: fakeListener{}, addr: fakeLocal}
	l.cond.L = &l.mu
	h := &adapterHandler{lim: limits{maxRead: 1 << 20, maxWrite: 64 << 10}, l: l}
	f1, f2, f3 := newFakeConn(), newFakeConn(), newFakeConn()

	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept() // waits for f1
		accepted <- c
	}()
	h.OnOpen(f1)
	if c := <-accepted; c == nil || c.(*netConn).tc != f1 {
		t.Fatalf("Accept returned %v, want f1's conn", c)
	}
	h.OnOpen(f2) // queued, never accepted
	h.OnData(f2, []byte("routed"))
	if nc := f2.Context().(*netConn); string(nc.buf[nc.r:]) != "routed" {
		t.Errorf("f2's buffer = %q, want %q", nc.buf[nc.r:], "routed")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := l.Accept()
	wantOpError(t, err, "accept", net.ErrClosed)
	h.OnOpen(f3) // after Close: closed, not queued
	for _, c := range []struct {
		name string
		f    *fakeConn
		want []string
	}{
		{"f1 (accepted)", f1, nil},
		{"f2 (queued)", f2, []string{"Close"}},
		{"f3 (after Close)", f3, []string{"Close"}},
	} {
		if diff := cmp.Diff(c.want, c.f.callList()); diff != "" {
			t.Errorf("%s: transport calls (-want +got):\n%s", c.name, diff)
		}
	}
	wantOpError(t, l.Close(), "close", net.ErrClosed)
}

type fakeListener struct{}

func (fakeListener) Addr() net.Addr { return fakeLocal }
func (fakeListener) Close() error   { return nil }

// A deadline moved later is kept: the timer set for the earlier one must
// not end the Read, and one moved sooner again must.
func TestNetConnDeadlineMoved(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 10})
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(20 * time.Millisecond))
	c.SetReadDeadline(start.Add(300 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	wantOpError(t, err, "read", os.ErrDeadlineExceeded)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Read ended %v after start; its deadline, moved later, was 300ms", took)
	}

	start = time.Now()
	c.SetReadDeadline(start.Add(time.Hour))
	c.SetReadDeadline(start.Add(30 * time.Millisecond))
	reads := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); reads <- err }()
	select {
	case err := <-reads:
		wantOpError(t, err, "read", os.ErrDeadlineExceeded)
	case <-time.After(time.Minute):
		t.Fatal("Read with its deadline moved from an hour to 30ms away still blocks after a minute")
	}

	// Cleared, then set again sooner than a timer left armed.
	c.SetReadDeadline(time.Now().Add(time.Hour))
	c.SetReadDeadline(time.Time{})
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = c.Read(make([]byte, 8))
	wantOpError(t, err, "read", os.ErrDeadlineExceeded)
}

// net/http sets a connection's read deadline several times per request:
// after the first, setting one allocates nothing.
func TestNetConnDeadlineAllocs(t *testing.T) {
	f := newFakeConn()
	c := newNetConn(f, limits{maxRead: 1 << 20, maxWrite: 10})
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Hour))
	n := testing.AllocsPerRun(100, func() {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		c.SetReadDeadline(time.Time{})
		c.SetReadDeadline(time.Now().Add(time.Minute))
	})
	if n != 0 {
		t.Errorf("setting a read deadline allocates %v times", n)
	}
}
