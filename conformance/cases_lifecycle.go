package conformance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// lifecycleCases are about a transport's life: Shutdown and Close, the
// listener under descriptor exhaustion, Dial, and addresses.
var lifecycleCases = []testCase{
	{name: "shutdown-graceful", smoke: true, run: shutdownGraceful},
	{name: "shutdown-deadline", run: shutdownDeadline},
	{name: "shutdown-default", run: shutdownDefault},
	{name: "no-leaks-after-shutdown", run: noLeaksAfterShutdown},
	{name: "in-callback", run: inCallback},
	{name: "close-idempotent", run: closeIdempotent},
	{name: "listener-close", run: listenerClose},
	{name: "emfile", run: emfile, child: emfileChild}, // cases_lifecycle_emfile.go
	{name: "dial", smoke: true, run: dialCase},
	{name: "addresses", tcpOnly: true, run: addresses},
}

// lcTimeout bounds every wait of this group that has no longer bound of
// its own: long enough for a loaded 2-core machine under -race, short
// enough that a bug fails instead of hanging.
const lcTimeout = 10 * time.Second

// shutdownGraceful: Shutdown under load closes the listeners, runs
// OnShutdown on every Conn (whose Handler closes it), and returns nil once
// every OnClose has returned; every client has received the echo of all
// the server consumed, then EOF.
func shutdownGraceful(t *testing.T, s *Suite) {
	const (
		clients = 64
		msgSize = 1 << 10
		warm    = 4 * lcWindow // bytes each client receives back before Shutdown
	)
	tr := s.Open(t, nil)

	var (
		consumed  [clients]atomic.Int64 // per client id, bytes the server consumed (and echoed)
		opened    atomic.Int32
		shutdowns atomic.Int32
		closed    atomic.Int32 // OnClose calls that have returned
		errMu     sync.Mutex
		closeErrs []error
	)
	h := handler(hooks{
		Open: func(transports.Conn) { opened.Add(1) },
		Data: func(c transports.Conn, in []byte) int {
			// A client's stream begins with its id (see lcLoadClient).
			id, ok := c.Context().(int)
			if !ok {
				id = int(in[0])
				if id >= clients {
					t.Errorf("a stream begins with id %d, want < %d", id, clients)
					c.Abort()
					return 0
				}
				c.SetContext(id)
			}
			c.Write(in)
			consumed[id].Add(int64(len(in)))
			return len(in)
		},
		Shutdown: func(c transports.Conn) {
			shutdowns.Add(1)
			c.Close()
		},
		Close: func(c transports.Conn, err error) {
			errMu.Lock()
			closeErrs = append(closeErrs, err)
			errMu.Unlock()
			closed.Add(1) // last: counts OnClose calls that have returned
		},
	})
	ln := s.Listen(t, tr, h)

	var wg sync.WaitGroup
	cls := make([]*lcLoadClient, clients)
	t.Cleanup(func() {
		for _, cl := range cls {
			if cl != nil {
				cl.conn.Close()
			}
		}
		wg.Wait()
	})
	// All connect before any writes: a dial competing with the load for
	// two cores under -race can take a second.
	for id := range cls {
		cls[id] = newLCLoadClient(t, ln, id, msgSize)
	}
	for _, cl := range cls {
		cl.start(msgSize, warm, &wg)
	}
	for id, cl := range cls {
		select {
		case <-cl.warm:
		case <-cl.done:
			t.Fatalf("client %d ended before Shutdown, after %d bytes: %v", id, cl.received, cl.readErr)
		case <-time.After(lcTimeout):
			t.Fatalf("client %d received %d bytes in %v, want %d", id, cl.receivedNow.Load(), lcTimeout, warm)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if n := closed.Load(); n != clients {
		t.Errorf("%d OnClose calls had returned when Shutdown returned, want %d", n, clients)
	}
	if n := opened.Load(); n != clients {
		t.Errorf("%d OnOpen calls, want %d", n, clients)
	}
	if n := shutdowns.Load(); n != clients {
		t.Errorf("%d OnShutdown calls, want %d", n, clients)
	}
	errMu.Lock()
	for _, err := range closeErrs {
		if err != nil {
			t.Errorf("OnClose err = %v, want nil (the Handler closed it)", err)
		}
	}
	errMu.Unlock()
	if n := tr.Stats().Open(); n != 0 {
		t.Errorf("Stats().Open() = %d after Shutdown, want 0", n)
	}
	lcAssertNotListening(t, ln.Addr())

	wg.Wait()
	for id, cl := range cls {
		switch {
		case cl.readErr != nil:
			t.Errorf("client %d: read error %v after %d bytes, want EOF", id, cl.readErr, cl.received)
		case cl.bad >= 0:
			t.Errorf("client %d: the echo differs from what was sent at offset %d", id, cl.bad)
		case cl.received != consumed[id].Load():
			t.Errorf("client %d received %d bytes before EOF; the server consumed and echoed %d", id, cl.received, consumed[id].Load())
		}
		cl.conn.Close()
	}
}

// lcPeriod is the period of a load client's byte stream: a prime, so that
// a misplaced chunk does not line up with an identical one.
const lcPeriod = 65521

// lcWindow bounds the bytes a load client has sent and not yet received
// back. Without a bound, on TCP (whose loopback buffers grow to megabytes)
// the writers never block, take both cores, and a reader waits seconds
// for its turn.
const lcWindow = 16 << 10

// lcLoadClient is a Go client that writes its stream, at most lcWindow
// ahead of the echo, and checks the echo, until it reads EOF; then it
// sends its own FIN. Its stream begins with its id.
type lcLoadClient struct {
	conn  net.Conn
	block []byte        // one period of the stream, then msgSize bytes more
	warm  chan struct{} // closed once warm bytes have been received
	done  chan struct{} // closed when the reader has returned

	progress chan struct{} // a token after each read, for the writer

	receivedNow atomic.Int64 // for progress reports
	eof         atomic.Bool  // the reader saw EOF: the writer stops

	// Set by the reader before done closes.
	received int64
	bad      int64 // offset of the first byte that differs from the stream, or -1
	readErr  error // nil after EOF
}

// newLCLoadClient connects client id to ln.
func newLCLoadClient(t *testing.T, ln transports.Listener, id, msgSize int) *lcLoadClient {
	t.Helper()
	a := ln.Addr()
	c, err := net.DialTimeout(a.Network(), a.String(), lcTimeout)
	if err != nil {
		t.Fatalf("dial %v: %v", a, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	cl := &lcLoadClient{
		conn:     c,
		block:    make([]byte, lcPeriod+msgSize),
		warm:     make(chan struct{}),
		done:     make(chan struct{}),
		progress: make(chan struct{}, 1),
		bad:      -1,
	}
	for i := range cl.block {
		j := i % lcPeriod
		cl.block[i] = byte(id + 7*j + j>>10)
	}
	return cl
}

// start starts the client's writer, which writes msgSize-byte chunks of
// its stream, and its reader, which closes cl.warm after warm bytes.
func (cl *lcLoadClient) start(msgSize, warm int, wg *sync.WaitGroup) {
	c := cl.conn
	wg.Add(2)
	go func() { // writer
		defer wg.Done()
		var sent int64
		for off := 0; !cl.eof.Load(); off = (off + msgSize) % lcPeriod {
			for sent-cl.receivedNow.Load() >= lcWindow {
				select {
				case <-cl.progress:
				case <-cl.done:
					return
				}
			}
			if _, err := c.Write(cl.block[off : off+msgSize]); err != nil {
				return // after the reader's CloseWrite, or a failure the reader reports
			}
			sent += int64(msgSize)
		}
	}()
	go func() { // reader
		defer wg.Done()
		defer close(cl.done)
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if cl.bad < 0 {
					if i := lcStreamDiff(cl.block[:lcPeriod], cl.received, buf[:n]); i >= 0 {
						cl.bad = cl.received + int64(i)
					}
				}
				before := cl.received
				cl.received += int64(n)
				cl.receivedNow.Store(cl.received)
				select {
				case cl.progress <- struct{}{}:
				default:
				}
				if before < int64(warm) && cl.received >= int64(warm) {
					close(cl.warm)
				}
			}
			if err == io.EOF {
				cl.eof.Store(true)
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				return
			}
			if err != nil {
				cl.readErr = err
				return
			}
		}
	}()
}

// lcStreamDiff returns the index in got of the first byte that differs
// from the stream repeating period, got starting at offset off; or -1.
func lcStreamDiff(period []byte, off int64, got []byte) int {
	for i := 0; i < len(got); {
		p := int((off + int64(i)) % int64(len(period)))
		n := min(len(period)-p, len(got)-i)
		if !bytes.Equal(period[p:p+n], got[i:i+n]) {
			return i + lcFirstDiff(period[p:p+n], got[i:i+n])
		}
		i += n
	}
	return -1
}

// lcFirstDiff returns the index of the first byte where a and b differ,
// or the shorter length if one is a prefix of the other.
func lcFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// shutdownDeadline: when Handlers ignore OnShutdown, Shutdown's deadline
// aborts their Conns (OnClose err matches net.ErrClosed) and Shutdown
// returns the context's error once the callbacks have returned.
func shutdownDeadline(t *testing.T, s *Suite) {
	const clients = 4
	tr := s.Open(t, nil)
	var (
		shutdowns atomic.Int32
		closed    atomic.Int32
		errs      = make(chan error, clients)
	)
	h := handler(hooks{
		Data:     lcEchoData,
		Shutdown: func(transports.Conn) { shutdowns.Add(1) }, // ignores it
		Close: func(c transports.Conn, err error) {
			errs <- err
			closed.Add(1)
		},
	})
	ln := s.Listen(t, tr, h)
	var cs []net.Conn
	for range clients {
		c := s.DialClient(t, ln)
		lcEcho(t, c, []byte("open"))
		cs = append(cs, c)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := tr.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's error (context.DeadlineExceeded)", err)
	}
	if n := closed.Load(); n != clients {
		t.Errorf("%d OnClose calls had returned when Shutdown returned, want %d", n, clients)
	}
	if n := shutdowns.Load(); n != clients {
		t.Errorf("%d OnShutdown calls, want %d", n, clients)
	}
	for range min(closed.Load(), clients) {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("OnClose err = %v, want one matching net.ErrClosed", err)
		}
	}
	lcAssertNotListening(t, ln.Addr())
	for i, c := range cs {
		// Aborted: a reset on TCP; on unix sockets, EOF.
		if err := lcReadEnd(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client %d: %v, want EOF or a reset", i, err)
		}
	}
}

// shutdownDefault: where the Handler has no OnShutdown, Shutdown closes
// each Conn as Close does: output is flushed, the peer reads it all and
// then EOF, and OnClose err is nil.
func shutdownDefault(t *testing.T, s *Suite) {
	const (
		clients = 4
		reply   = 512 << 10
	)
	tr := s.Open(t, nil)
	var (
		closed  atomic.Int32
		errs    = make(chan error, clients)
		replied = make(chan struct{}, clients)
		payload = bytes.Repeat([]byte("shutdown flushes "), reply/17+1)[:reply]
	)
	h := handler(hooks{
		Data: func(c transports.Conn, in []byte) int {
			c.Write(payload)
			replied <- struct{}{}
			return len(in)
		},
		Close: func(c transports.Conn, err error) {
			errs <- err
			closed.Add(1)
		},
	})
	ln := s.Listen(t, tr, h)
	var cs []net.Conn
	for range clients {
		c := s.DialClient(t, ln)
		if _, err := c.Write([]byte("?")); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for range clients {
		select {
		case <-replied:
		case <-time.After(lcTimeout):
			t.Fatalf("no OnData within %v", lcTimeout)
		}
	}

	// The clients read only now: the replies may still be buffered in the
	// transport when Shutdown closes the Conns.
	type result struct {
		n   int
		bad int
		err error
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(lcTimeout))
			got, err := io.ReadAll(c)
			results[i] = result{len(got), -1, err}
			if !bytes.Equal(got, payload) {
				results[i].bad = lcFirstDiff(payload, got)
			}
			c.Close() // our FIN ends the server's linger
		}()
	}
	t.Cleanup(wg.Wait)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if n := closed.Load(); n != clients {
		t.Errorf("%d OnClose calls had returned when Shutdown returned, want %d", n, clients)
	}
	for range min(closed.Load(), clients) {
		if err := <-errs; err != nil {
			t.Errorf("OnClose err = %v, want nil (closed as Close does)", err)
		}
	}
	wg.Wait()
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("client %d: %v after %d bytes, want all %d then EOF", i, r.err, r.n, reply)
		case r.bad >= 0:
			t.Errorf("client %d: received %d bytes, differing from the reply at offset %d (reply is %d bytes)", i, r.n, r.bad, reply)
		}
	}
}

// noLeaksAfterShutdown: once Shutdown has returned, no goroutine and no
// descriptor of the transport remains and Stats counts no open Conn.
// Accepted and dialed Conns are both open when it starts.
func noLeaksAfterShutdown(t *testing.T, s *Suite) {
	base := testutil.TakeBaseline()
	tr := s.Open(t, nil)
	ln, err := tr.Listen(s.Network, s.Address(t), echoHandler{})
	if err != nil {
		t.Fatalf("Listen(%s): %v", s.Network, err)
	}

	const goClients, dialed = 3, 2
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for range goClients {
		c := s.DialClient(t, ln)
		lcEcho(t, c, []byte("before shutdown"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			lcReadEnd(c)
			c.Close()
		}()
	}
	for range dialed {
		h := newLCClient()
		c, err := tr.Dial(lcContext(t), s.Network, ln.Addr().String(), h)
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		c.Write([]byte("dialed"))
		h.wait(t, len("dialed"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	st := tr.Stats()
	want := struct{ Accepted, Dialed, Closed, Open uint64 }{goClients + dialed, dialed, goClients + 2*dialed, 0}
	got := struct{ Accepted, Dialed, Closed, Open uint64 }{st.Accepted, st.Dialed, st.Closed, st.Open()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats after Shutdown (-want +got):\n%s", diff)
	}
	wg.Wait()
	base.Check(t, lcTimeout)
}

// inCallback: Dial, Shutdown and Close of the Transport, called from a
// callback, return ErrInCallback instead of waiting for their own loop.
// (A transport that does not detect it deadlocks here.)
func inCallback(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	type call struct {
		where string
		err   error
	}
	calls := make(chan call, 6)
	try := func(where string, c transports.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), lcTimeout)
		defer cancel()
		// The server Conn's LocalAddr is the listener's: a Dial that
		// should not be made would connect.
		d, err := tr.Dial(ctx, s.Network, c.LocalAddr().String(), echoHandler{})
		if err == nil {
			d.Close()
		}
		calls <- call{where + ": Dial", err}
		calls <- call{where + ": Shutdown", tr.Shutdown(ctx)}
		calls <- call{where + ": Close", tr.Close()}
	}
	// Only the first Conn tries, once from each callback (a Dial that
	// wrongly succeeds makes a second one).
	var openTried, dataTried atomic.Bool
	h := handler(hooks{
		Open: func(c transports.Conn) {
			if !openTried.Swap(true) {
				c.SetContext(true)
				try("OnOpen", c)
			}
		},
		Data: func(c transports.Conn, in []byte) int {
			if c.Context() == true && !dataTried.Swap(true) {
				try("OnData", c)
			}
			return lcEchoData(c, in)
		},
	})
	ln := s.Listen(t, tr, h)
	c := s.DialClient(t, ln)
	lcEcho(t, c, []byte("still served"))
	for range cap(calls) {
		select {
		case cl := <-calls:
			if !errors.Is(cl.err, transports.ErrInCallback) {
				t.Errorf("%s = %v, want ErrInCallback", cl.where, cl.err)
			}
		case <-time.After(lcTimeout):
			t.Fatalf("the calls from callbacks had not returned after %v", lcTimeout)
		}
	}
}

// closeIdempotent: Shutdown twice, then Close twice, all return nil; and
// Close twice on a transport with an open Conn, which it aborts without
// OnShutdown.
func closeIdempotent(t *testing.T, s *Suite) {
	t.Run("shutdown", func(t *testing.T) {
		tr := s.Open(t, nil)
		ln := s.Listen(t, tr, echoHandler{})
		c := s.DialClient(t, ln)
		lcEcho(t, c, []byte("x"))
		var (
			wg        sync.WaitGroup
			clientErr error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			clientErr = lcReadEnd(c)
			c.Close() // our FIN ends the server's linger
		}()
		t.Cleanup(wg.Wait)
		for i := range 2 {
			if err := tr.Shutdown(lcContext(t)); err != nil {
				t.Errorf("Shutdown #%d = %v, want nil", i+1, err)
			}
		}
		for i := range 2 {
			if err := tr.Close(); err != nil {
				t.Errorf("Close #%d after Shutdown = %v, want nil", i+1, err)
			}
		}
		wg.Wait()
		if clientErr != nil {
			t.Errorf("client: %v, want EOF (an orderly close)", clientErr)
		}
	})
	t.Run("close", func(t *testing.T) {
		tr := s.Open(t, nil)
		var (
			shutdowns atomic.Int32
			closed    atomic.Int32
			closeErr  = make(chan error, 1)
		)
		h := handler(hooks{
			Data:     lcEchoData,
			Shutdown: func(transports.Conn) { shutdowns.Add(1) },
			Close: func(c transports.Conn, err error) {
				closeErr <- err
				closed.Add(1)
			},
		})
		ln := s.Listen(t, tr, h)
		c := s.DialClient(t, ln)
		lcEcho(t, c, []byte("x"))
		for i := range 2 {
			if err := tr.Close(); err != nil {
				t.Errorf("Close #%d = %v, want nil", i+1, err)
			}
		}
		// Close aborts without OnShutdown.
		if n := shutdowns.Load(); n != 0 {
			t.Errorf("Close called OnShutdown %d times, want none", n)
		}
		if n := closed.Load(); n != 1 {
			t.Errorf("%d OnClose calls had returned when Close returned, want 1", n)
		} else if err := <-closeErr; !errors.Is(err, net.ErrClosed) {
			t.Errorf("OnClose err = %v, want one matching net.ErrClosed", err)
		}
		if err := lcReadEnd(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client: %v, want EOF or a reset", err)
		}
	})
}

// listenerClose: Listener.Close stops accepting; the Conns it accepted go
// on.
func listenerClose(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, echoHandler{})
	c := s.DialClient(t, ln)
	lcEcho(t, c, []byte("before"))
	if err := ln.Close(); err != nil {
		t.Fatalf("Listener.Close = %v", err)
	}
	lcAssertNotListening(t, ln.Addr())
	lcEcho(t, c, []byte("after the listener closed"))
}

// dialCase: a Conn dialed on the transport under test talks to a server on
// the same transport, on sockets and on every other transport this host
// runs; Dial returns after OnOpen has returned; a failed Dial calls no
// callback and returns a *net.OpError with Op "dial".
func dialCase(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	if _, ok := transports.Lookup("sockets"); !ok {
		t.Fatalf("sockets is not registered in this test binary (import github.com/merlin-net/merlin/transports/all)")
	}
	type peer struct {
		name string
		tr   transports.Transport
	}
	peers := []peer{{"self", tr}}
	for _, d := range transports.Drivers() {
		if d.Name == s.Name {
			continue
		}
		if _, err := d.Probe(); err != nil {
			t.Logf("no server on %s: %v", d.Name, err)
			continue
		}
		p, err := transports.Open(d.Name, quietConfig())
		if err != nil {
			t.Fatalf("Open(%q): %v", d.Name, err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("%s Close: %v", d.Name, err)
			}
		})
		peers = append(peers, peer{d.Name, p})
	}

	for _, p := range peers {
		t.Run("server="+p.name, func(t *testing.T) {
			ln := s.Listen(t, p.tr, echoHandler{})
			h := newLCClient()
			h.greeting = []byte("written in OnOpen;")
			c, err := tr.Dial(lcContext(t), s.Network, ln.Addr().String(), h)
			if err != nil {
				t.Fatalf("Dial(%s, %v): %v", s.Network, ln.Addr(), err)
			}
			if !h.openReturned.Load() {
				t.Errorf("Dial returned before OnOpen had returned")
			}
			msg := []byte(" written after Dial returned")
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("Write: %v", err)
			}
			want := append(append([]byte{}, h.greeting...), msg...)
			if got := h.wait(t, len(want)); !bytes.Equal(got, want) {
				t.Errorf("echo differs at offset %d: got %q, want %q", lcFirstDiff(want, got), got, want)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
			if err := h.waitClose(t); err != nil {
				t.Errorf("OnClose err = %v, want nil", err)
			}
			if n := h.opens.Load(); n != 1 {
				t.Errorf("%d OnOpen calls, want 1", n)
			}
		})
	}

	t.Run("failed", func(t *testing.T) {
		var addr string
		switch s.Network {
		case "unix":
			addr = filepath.Join(filepath.Dir(s.Address(t)), "missing")
		default:
			l, err := net.Listen(s.Network, s.Address(t))
			if err != nil {
				t.Fatal(err)
			}
			addr = l.Addr().String()
			l.Close() // nothing listens there now
		}
		tr := s.Open(t, nil)
		h := newLCClient()
		c, err := tr.Dial(lcContext(t), s.Network, addr, h)
		if err == nil {
			c.Close()
			t.Fatalf("Dial(%s, %s) to nothing succeeded", s.Network, addr)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("Dial error = %#v (%v), want a *net.OpError with Op \"dial\"", err, err)
		}
		noCallbacks := func(when string) {
			if n, m := h.opens.Load(), h.closes.Load(); n != 0 || m != 0 {
				t.Errorf("%s: %d OnOpen and %d OnClose calls, want none", when, n, m)
			}
		}
		noCallbacks("after the failed Dial")
		// An OnClose for the failed Dial would come late, if at all: look
		// again once the transport is closed.
		if err := tr.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		noCallbacks("after Close")
	})
}

// addresses: port 0 is resolved in Addr, the unix path is reported, and a
// Conn's addresses are its peer's, reversed; on tcp, tcp4, tcp6 (where the
// host has IPv6 loopback) and unix.
func addresses(t *testing.T, s *Suite) {
	for _, network := range []string{"tcp", "tcp4", "tcp6", "unix"} {
		t.Run(network, func(t *testing.T) {
			if network == "tcp6" {
				if err := testutil.IPv6Loopback(); err != nil {
					s.Skip(t, err.Error())
				}
			}
			tr := s.Open(t, nil)
			type pair struct{ Local, Remote string }
			addrs := make(chan pair, 2)
			h := handler(hooks{
				Open: func(c transports.Conn) {
					addrs <- pair{lcAddrString(c.LocalAddr()), lcAddrString(c.RemoteAddr())}
				},
				Data: lcEchoData,
			})
			address := testutil.LoopbackAddress(t, network)
			ln, err := tr.Listen(network, address, h)
			if err != nil {
				t.Fatalf("Listen(%s, %s): %v", network, address, err)
			}
			t.Cleanup(func() { ln.Close() })
			la := ln.Addr()
			if network == "unix" {
				if diff := cmp.Diff("unix "+address, lcAddrString(la)); diff != "" {
					t.Errorf("Listener.Addr (-want +got):\n%s", diff)
				}
			} else {
				lcCheckTCPAddr(t, "Listener.Addr", network, la)
			}

			// A Go client (on unix, bound to a path, so that it has a
			// name to report).
			var c net.Conn
			if network == "unix" {
				local := filepath.Join(filepath.Dir(address), "client")
				c, err = net.DialUnix("unix", &net.UnixAddr{Name: local, Net: "unix"}, &net.UnixAddr{Name: address, Net: "unix"})
			} else {
				c, err = net.DialTimeout(network, la.String(), lcTimeout)
			}
			if err != nil {
				t.Fatalf("dial %v: %v", la, err)
			}
			t.Cleanup(func() { c.Close() })
			lcEcho(t, c, []byte("addresses"))
			want := pair{lcAddrString(c.RemoteAddr()), lcAddrString(c.LocalAddr())}
			if diff := cmp.Diff(want, lcRecv(t, addrs)); diff != "" {
				t.Errorf("accepted Conn's addresses, against a Go client's reversed (-want +got):\n%s", diff)
			}

			// A Conn dialed on the transport.
			ch := newLCClient()
			d, err := tr.Dial(lcContext(t), network, la.String(), ch)
			if err != nil {
				t.Fatalf("Dial(%s, %v): %v", network, la, err)
			}
			d.Write([]byte("dialed"))
			ch.wait(t, len("dialed"))
			srv := lcRecv(t, addrs)
			if network == "unix" {
				// An unbound unix client has no name; only the server's
				// is checked.
				if diff := cmp.Diff(lcAddrString(la), lcAddrString(d.RemoteAddr())); diff != "" {
					t.Errorf("dialed Conn's RemoteAddr, against the listener's (-want +got):\n%s", diff)
				}
			} else {
				lcCheckTCPAddr(t, "dialed Conn's LocalAddr", network, d.LocalAddr())
				want := pair{srv.Remote, srv.Local}
				got := pair{lcAddrString(d.LocalAddr()), lcAddrString(d.RemoteAddr())}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("dialed Conn's addresses, against the accepted Conn's reversed (-want +got):\n%s", diff)
				}
			}
			d.Close()
			if err := ch.waitClose(t); err != nil {
				t.Errorf("OnClose err of the dialed Conn = %v, want nil", err)
			}
		})
	}
}

// lcCheckTCPAddr checks that a is a TCP address on the loopback of
// network's family, with a port.
func lcCheckTCPAddr(t *testing.T, what, network string, a net.Addr) {
	t.Helper()
	if a == nil {
		t.Errorf("%s is nil", what)
		return
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Errorf("%s = %v: %v", what, a, err)
		return
	}
	ip := net.ParseIP(host)
	p, _ := strconv.Atoi(port)
	switch {
	case a.Network() != "tcp":
		t.Errorf("%s.Network() = %q, want \"tcp\"", what, a.Network())
	case p <= 0:
		t.Errorf("%s = %v: no port", what, a)
	case ip == nil || !ip.IsLoopback():
		t.Errorf("%s = %v: not a loopback address", what, a)
	case network == "tcp6" && ip.To4() != nil:
		t.Errorf("%s = %v on tcp6: an IPv4 address", what, a)
	case network != "tcp6" && ip.To4() == nil:
		t.Errorf("%s = %v on %s: not an IPv4 address", what, a, network)
	}
}

// lcAddrString shows a's network and address, or "<nil>".
func lcAddrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.Network() + " " + a.String()
}

// lcRecv receives from ch within lcTimeout.
func lcRecv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(lcTimeout):
		t.Fatalf("nothing received in %v", lcTimeout)
		panic("unreachable")
	}
}

// lcEchoData is OnData of an echo server.
func lcEchoData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}

// lcEcho writes msg on c and reads the echo back, within lcTimeout.
func lcEcho(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(lcTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("echo: write: %v", err)
	}
	got := make([]byte, len(msg))
	if n, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo: read %d of %d bytes: %v", n, len(msg), err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo differs at offset %d: got %q, want %q", lcFirstDiff(msg, got), got, msg)
	}
}

// lcReadEnd reads c, discarding, until it ends: nil at EOF, else the
// error (a timeout after lcTimeout).
func lcReadEnd(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(lcTimeout))
	_, err := io.Copy(io.Discard, c)
	return err
}

// lcAssertNotListening checks that a dial to a is refused: the listener
// is closed.
func lcAssertNotListening(t testing.TB, a net.Addr) {
	t.Helper()
	c, err := net.DialTimeout(a.Network(), a.String(), lcTimeout)
	if err == nil {
		c.Close()
		t.Errorf("dial %v succeeded: the listener is still open", a)
	}
}

// lcContext returns a context that ends after lcTimeout or with the test.
func lcContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), lcTimeout)
	t.Cleanup(cancel)
	return ctx
}

// lcClient is the Handler of a dialed Conn: it optionally writes a
// greeting in OnOpen, and collects what it receives.
type lcClient struct {
	greeting []byte

	openReturned atomic.Bool
	opens        atomic.Int32
	closes       atomic.Int32
	closeErr     chan error

	mu   sync.Mutex
	buf  []byte
	more chan struct{} // a token after each OnData
}

func newLCClient() *lcClient {
	return &lcClient{closeErr: make(chan error, 1), more: make(chan struct{}, 1)}
}

func (h *lcClient) OnOpen(c transports.Conn) {
	h.opens.Add(1)
	if h.greeting != nil {
		c.Write(h.greeting)
	}
	h.openReturned.Store(true)
}

func (h *lcClient) OnData(c transports.Conn, in []byte) int {
	h.mu.Lock()
	h.buf = append(h.buf, in...)
	h.mu.Unlock()
	select {
	case h.more <- struct{}{}:
	default:
	}
	return len(in)
}

func (h *lcClient) OnClose(c transports.Conn, err error) {
	if h.closes.Add(1) == 1 {
		h.closeErr <- err
	}
}

// wait returns the bytes received once there are at least n, within
// lcTimeout.
func (h *lcClient) wait(t testing.TB, n int) []byte {
	t.Helper()
	deadline := time.After(lcTimeout)
	for {
		h.mu.Lock()
		got := bytes.Clone(h.buf)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-h.more:
		case <-deadline:
			t.Fatalf("dialed Conn received %d bytes in %v, want %d", len(got), lcTimeout, n)
		}
	}
}

// waitClose returns OnClose's error, within lcTimeout.
func (h *lcClient) waitClose(t testing.TB) error {
	t.Helper()
	select {
	case err := <-h.closeErr:
		return err
	case <-time.After(lcTimeout):
		t.Fatalf("no OnClose within %v", lcTimeout)
		return nil
	}
}
