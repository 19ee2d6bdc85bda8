package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/merlin-net/merlin/transports"
)

var netconnCases = []testCase{
	{name: "nettest-listener", smoke: true, run: testNettestListener},
	{name: "nettest-dial", run: testNettestDial},
	{name: "nettest-transport", run: testNettestTransport},
	{name: "net-http", run: testNetHTTP},
	{name: "adapter-halfclose", run: testAdapterHalfClose},
	{name: "adapter-errors", run: testAdapterErrors},
	{name: "adapter-backpressure", run: testAdapterBackpressure},
	{name: "adapter-duplex", run: testAdapterDuplex},
	{name: "adapter-transport-close", run: testAdapterTransportClose},
}

// ncWait bounds every wait of these cases, so a bug fails instead of
// hanging.
const ncWait = 10 * time.Second

// testNettestListener runs nettest.TestConn with the adapter's accepted
// conn as c1 (the side nettest tests) and a Go client as c2.
func testNettestListener(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln := ncListen(t, s, tr)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a := ln.Addr()
		client, err := net.DialTimeout(a.Network(), a.String(), ncWait)
		if err != nil {
			return nil, nil, nil, err
		}
		server, err := ncAccept(ln)
		if err != nil {
			client.Close()
			return nil, nil, nil, err
		}
		return server, client, func() { server.Close(); client.Close() }, nil
	})
}

// testNettestDial runs nettest.TestConn with a DialNet conn as c1 and the
// conn a Go listener accepted as c2.
func testNettestDial(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln, err := net.Listen(s.Network, s.Address(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), ncWait)
		defer cancel()
		client, err := transports.DialNet(ctx, tr, ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(ncWait))
		server, err := ln.Accept()
		if err != nil {
			client.Close()
			return nil, nil, nil, err
		}
		return client, server, func() { client.Close(); server.Close() }, nil
	})
}

// testNettestTransport runs nettest.TestConn with the adapter on both
// sides: a DialNet conn as c1, the NetListener's conn as c2.
func testNettestTransport(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln := ncListen(t, s, tr)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), ncWait)
		defer cancel()
		client, err := transports.DialNet(ctx, tr, ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		server, err := ncAccept(ln)
		if err != nil {
			client.Close()
			return nil, nil, nil, err
		}
		return client, server, func() { client.Close(); server.Close() }, nil
	})
}

// testNetHTTP serves net/http through NetListener: several keep-alive
// requests on one connection, a 1 MiB body echoed back, then Shutdown.
func testNetHTTP(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln, err := transports.NetListener(tr, s.Network, s.Address(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.PathValue("name"))
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
	var (
		mu    sync.Mutex
		conns int // connections the server saw
	)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: ncWait,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	shutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), ncWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			shutdown()
		}
	})

	ht := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, addr.Network(), addr.String())
		},
		DisableCompression: true,
	}
	defer ht.CloseIdleConnections()
	client := &http.Client{Transport: ht, Timeout: ncWait}

	do := func(i int, req *http.Request) []byte {
		t.Helper()
		reused := false
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("request %d: reading the body: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %s: %s", i, resp.Status, body)
		}
		if i > 0 && !reused {
			t.Errorf("request %d: a new connection, want the kept-alive one", i)
		}
		return body
	}

	for i := range 5 {
		name := fmt.Sprintf("merlin%d", i)
		req, _ := http.NewRequest("GET", "http://merlin/hello/"+name, nil)
		if got, want := string(do(i, req)), "hello, "+name; got != want {
			t.Errorf("request %d: body %q, want %q", i, got, want)
		}
	}
	want := ncPattern(0, 1<<20)
	for i := 5; i < 7; i++ {
		req, _ := http.NewRequest("POST", "http://merlin/echo", bytes.NewReader(want))
		if got := do(i, req); !bytes.Equal(got, want) {
			t.Errorf("request %d: echoed body: %s", i, ncDiff(want, got))
		}
	}
	mu.Lock()
	if conns != 1 {
		t.Errorf("the server saw %d connections, want 1 (keep-alive)", conns)
	}
	mu.Unlock()

	ht.CloseIdleConnections()
	stopped = true
	shutdown()
}

// testAdapterHalfClose checks both half-closes and CloseRead: Read returns
// a bare io.EOF after the peer's FIN and the conn still writes; CloseWrite
// sends FIN and the conn still reads; CloseRead discards input.
func testAdapterHalfClose(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln := ncListen(t, s, tr)

	t.Run("peer-fin", func(t *testing.T) {
		client, server := ncPair(t, ln)
		ncWrite(t, client, []byte("request"))
		if err := client.(closeWriter).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := ncReadToError(server)
		if string(got) != "request" || err != io.EOF {
			t.Fatalf("adapter read %q then %v, want %q then io.EOF (bare)", got, err, "request")
		}
		if n, err := server.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("Read after EOF: %d, %v, want 0, io.EOF", n, err)
		}
		ncWrite(t, server, []byte("response"))
		if err := server.(closeWriter).CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		got, err = io.ReadAll(client)
		if string(got) != "response" || err != nil {
			t.Fatalf("client read %q, %v, want %q then EOF", got, err, "response")
		}
		_, err = server.Write([]byte("late"))
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "write" || !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Write after CloseWrite: %v, want a *net.OpError{Op: write} wrapping EPIPE", err)
		}
		if err := server.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("own-fin", func(t *testing.T) {
		client, server := ncPair(t, ln)
		ncWrite(t, server, []byte("hello"))
		if err := server.(closeWriter).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(client)
		if string(got) != "hello" || err != nil {
			t.Fatalf("client read %q, %v, want %q then EOF", got, err, "hello")
		}
		ncWrite(t, client, []byte("still reading"))
		buf := make([]byte, len("still reading"))
		if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "still reading" {
			t.Fatalf("adapter read after its CloseWrite: %q, %v", buf, err)
		}
		client.Close()
		if n, err := server.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("Read after the peer's close: %d, %v, want 0, io.EOF", n, err)
		}
		server.Close()
	})

	t.Run("close-read", func(t *testing.T) {
		client, server := ncPair(t, ln)
		ncWrite(t, client, []byte("x"))
		buf := make([]byte, 1)
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatal(err)
		}
		if err := server.(interface{ CloseRead() error }).CloseRead(); err != nil {
			t.Fatalf("CloseRead: %v", err)
		}
		// More than kernel buffers and MaxReadBuffer hold: this only
		// completes if the adapter discards.
		ncWrite(t, client, make([]byte, 16<<20))
		if n, err := server.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("Read after CloseRead: %d, %v, want 0, io.EOF", n, err)
		}
		ncWrite(t, server, []byte("still writing"))
		reply := make([]byte, len("still writing"))
		if _, err := io.ReadFull(client, reply); err != nil || string(reply) != "still writing" {
			t.Fatalf("client read %q, %v", reply, err)
		}
		server.Close()
		if n, err := client.Read(reply); n != 0 || err != io.EOF {
			t.Fatalf("client Read after the adapter's Close: %d, %v, want EOF", n, err)
		}
	})
}

// testAdapterErrors checks the shapes of the adapter's errors against
// package net's: deadlines, Close, reset, Accept and Dial.
func testAdapterErrors(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln := ncListen(t, s, tr)

	t.Run("deadlines", func(t *testing.T) {
		_, server := ncPair(t, ln)
		server.SetDeadline(time.Now().Add(-time.Second))
		n, err := server.Read(make([]byte, 8))
		ncWantOpError(t, "Read with a past deadline", n, err, "read", os.ErrDeadlineExceeded)
		n, err = server.Write([]byte("x"))
		ncWantOpError(t, "Write with a past deadline", n, err, "write", os.ErrDeadlineExceeded)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("Write's deadline error %v: Timeout() is not true", err)
		}

		server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err = server.Read(make([]byte, 8))
		ncWantOpError(t, "Read reaching its deadline", n, err, "read", os.ErrDeadlineExceeded)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("Read's deadline error %v: Timeout() is not true", err)
		}
	})

	t.Run("close", func(t *testing.T) {
		client, server := ncPair(t, ln)
		type result struct {
			n   int
			err error
		}
		reads, writes := make(chan result, 1), make(chan result, 1)
		go func() {
			n, err := server.Read(make([]byte, 8))
			reads <- result{n, err}
		}()
		big := make([]byte, 64<<20) // more than the buffers on the way hold
		go func() {
			n, err := server.Write(big)
			writes <- result{n, err}
		}()
		// The Write has started once the client sees its first byte.
		if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := server.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v with a Write blocked", d)
		}
		for _, w := range []struct {
			op string
			ch chan result
		}{{"read", reads}, {"write", writes}} {
			select {
			case r := <-w.ch:
				if w.op == "write" && r.n == len(big) {
					t.Errorf("the blocked Write enqueued all %d bytes", r.n)
				}
				ncWantOpError(t, "blocked "+w.op+" woken by Close", 0, r.err, w.op, net.ErrClosed)
			case <-time.After(ncWait):
				t.Fatalf("a blocked %s was not woken by Close", w.op)
			}
		}
		client.Close() // unread output: resets the adapter's conn
		n, err := server.Read(make([]byte, 8))
		ncWantOpError(t, "Read after Close", n, err, "read", net.ErrClosed)
		n, err = server.Write([]byte("x"))
		ncWantOpError(t, "Write after Close", n, err, "write", net.ErrClosed)
		ncWantOpError(t, "second Close", 0, server.Close(), "close", net.ErrClosed)
	})

	if s.Network == "tcp" {
		t.Run("reset", func(t *testing.T) {
			client, server := ncPair(t, ln)
			ncWrite(t, client, []byte("ping"))
			if _, err := io.ReadFull(server, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			client.(*net.TCPConn).SetLinger(0)
			client.Close() // RST
			_, err := ncReadToError(server)
			var op *net.OpError
			if !errors.As(err, &op) || !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("Read after the peer's RST: %v, want a *net.OpError wrapping ECONNRESET", err)
			}
			server.Close()
		})
	}

	t.Run("accept-dial", func(t *testing.T) {
		ln2, err := transports.NetListener(tr, s.Network, s.Address(t))
		if err != nil {
			t.Fatal(err)
		}
		accepted := acceptAsync(ln2)
		if err := ln2.Close(); err != nil {
			t.Errorf("listener Close: %v", err)
		}
		select {
		case err := <-accepted:
			ncWantOpError(t, "Accept after Close", 0, err, "accept", net.ErrClosed)
		case <-time.After(ncWait):
			t.Fatal("Close did not wake a blocked Accept")
		}
		_, err = ln2.Accept()
		ncWantOpError(t, "Accept after Close", 0, err, "accept", net.ErrClosed)

		ctx, cancel := context.WithTimeout(context.Background(), ncWait)
		defer cancel()
		a := ln2.Addr()
		c, err := transports.DialNet(ctx, tr, a.Network(), a.String())
		if err == nil {
			c.Close()
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			t.Errorf("DialNet to a closed listener: %v, want a *net.OpError{Op: dial}", err)
		}
	})
}

// testAdapterBackpressure checks that the adapter pauses reading instead of
// buffering without limit (and never trips MaxReadBuffer), and that a Write
// far larger than MaxWriteBuffer completes, waiting for OnDrain at the
// transport's own limit (not the default's).
func testAdapterBackpressure(t *testing.T, s *Suite) {
	tr := s.Open(t, func(c *transports.Config) {
		c.MaxReadBuffer = 64 << 10
		c.MaxWriteBuffer = 256 << 10
	})
	ln := ncListen(t, s, tr)
	client, server := ncPair(t, ln)

	// Input: write until the client blocks with the transport paused.
	const limit = 64 << 20
	sent := 0
	for {
		if sent >= limit {
			t.Fatalf("the client wrote %d bytes without blocking: the adapter never paused", sent)
		}
		client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := client.Write(ncPattern(sent, 64<<10))
		sent += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if tr.Stats().ReadPauses > 0 {
				break
			}
			continue
		}
		if err != nil {
			t.Fatalf("client Write after %d bytes: %v", sent, err)
		}
	}
	client.SetDeadline(time.Now().Add(ncWait))
	server.SetDeadline(time.Now().Add(ncWait))
	got := make([]byte, sent)
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatalf("reading the %d bytes sent: %v", sent, err)
	}
	if want := ncPattern(0, sent); !bytes.Equal(got, want) {
		t.Fatalf("input: %s", ncDiff(want, got))
	}

	// Output: one Write of 8 MiB while the client reads.
	out := ncPattern(0, 8<<20)
	written := make(chan error, 1)
	go func() {
		n, err := server.Write(out)
		if err == nil && n != len(out) {
			err = fmt.Errorf("wrote %d of %d bytes", n, len(out))
		}
		written <- err
	}()
	got = make([]byte, len(out))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Errorf("client reading %d bytes: %v", len(out), err)
	} else if !bytes.Equal(got, out) {
		t.Errorf("output: %s", ncDiff(out, got))
	}
	server.Close() // wakes the Write if it is stuck
	if err := <-written; err != nil {
		t.Errorf("Write of %d bytes: %v", len(out), err)
	}
}

// testAdapterDuplex streams through the adapter to a peer that echoes each
// chunk before it reads the next, while the adapter reads the echo: with
// small buffers on the peer's side, both directions fill. A TCPConn goes on
// reading while its Write waits; so must the adapter's conn, or both ends
// wait for each other (FullDuplexHandler).
func testAdapterDuplex(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	ln := ncListen(t, s, tr)
	client, server := ncPair(t, ln)
	if b, ok := client.(interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); ok {
		b.SetReadBuffer(32 << 10)
		b.SetWriteBuffer(32 << 10)
	}

	echoed := make(chan error, 1)
	go func() {
		buf := make([]byte, 4<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					echoed <- werr
					return
				}
			}
			if err == io.EOF {
				echoed <- client.(closeWriter).CloseWrite()
				return
			}
			if err != nil {
				echoed <- err
				return
			}
		}
	}()
	out := ncPattern(0, 8<<20)
	written := make(chan error, 1)
	go func() {
		_, err := server.Write(out)
		if err == nil {
			err = server.(closeWriter).CloseWrite()
		}
		written <- err
	}()
	got, err := ncReadToError(server)
	if err != io.EOF {
		t.Errorf("reading the echo: %v after %d of %d bytes (input waiting for output?)", err, len(got), len(out))
	} else if !bytes.Equal(got, out) {
		t.Errorf("echo: %s", ncDiff(out, got))
	}
	server.Close() // wakes a stuck Write
	client.Close() // and a stuck echo
	if err := <-written; err != nil {
		t.Errorf("adapter Write of %d bytes: %v", len(out), err)
	}
	if err := <-echoed; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("peer echo: %v", err)
	}
}

type closeWriter interface{ CloseWrite() error }

// testAdapterTransportClose: the transport's Listeners are DoneListeners
// whose Done is closed by the Transport's Close, and so an Accept blocked
// on a NetListener returns net.ErrClosed when the transport closes under
// it, without the net.Listener being closed.
func testAdapterTransportClose(t *testing.T, s *Suite) {
	tr := s.Open(t, nil)
	raw, err := tr.Listen(s.Network, s.Address(t), handler(hooks{}))
	if err != nil {
		t.Fatal(err)
	}
	dl, ok := raw.(transports.DoneListener)
	if !ok {
		t.Fatalf("%T is not a transports.DoneListener", raw)
	}
	select {
	case <-dl.Done():
		t.Fatal("Done is closed before the listener is")
	default:
	}
	ln, err := transports.NetListener(tr, s.Network, s.Address(t))
	if err != nil {
		t.Fatal(err)
	}
	accepted := acceptAsync(ln)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dl.Done():
	case <-time.After(ncWait):
		t.Fatalf("Done not closed %v after the Transport's Close", ncWait)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after the Transport's Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(ncWait):
		t.Fatalf("Accept still blocked %v after the Transport's Close", ncWait)
	}
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("NetListener.Close after the Transport's Close = %v, want net.ErrClosed", err)
	}
}

// ncListen returns a NetListener on a fresh address of s.Network, closed
// by t.Cleanup.
func ncListen(t *testing.T, s *Suite, tr transports.Transport) net.Listener {
	t.Helper()
	ln, err := transports.NetListener(tr, s.Network, s.Address(t))
	if err != nil {
		t.Fatalf("NetListener(%s): %v", s.Network, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptAsync runs one Accept on ln in a goroutine and sends its error (a
// conn it returns is closed).
func acceptAsync(ln net.Listener) <-chan error {
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		accepted <- err
	}()
	return accepted
}

// ncAccept accepts from ln, or fails after ncWait. (A late conn is closed
// with the transport.)
func ncAccept(ln net.Listener) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(ncWait):
		return nil, fmt.Errorf("no connection accepted within %v", ncWait)
	}
}

// ncPair dials ln with a Go client and accepts the adapter's conn. Both have
// ncWait deadlines and are closed by t.Cleanup.
func ncPair(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	a := ln.Addr()
	client, err := net.DialTimeout(a.Network(), a.String(), ncWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ncAccept(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	client.SetDeadline(time.Now().Add(ncWait))
	server.SetDeadline(time.Now().Add(ncWait))
	return client, server
}

func ncWrite(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	if n, err := c.Write(p); err != nil {
		t.Fatalf("Write of %d bytes: wrote %d: %v", len(p), n, err)
	}
}

// ncReadToError reads c until an error, which it returns (io.EOF
// included), with the bytes read.
func ncReadToError(c net.Conn) ([]byte, error) {
	var got []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// ncWantOpError fails t unless err is a *net.OpError for op wrapping want,
// returned with n == 0.
func ncWantOpError(t *testing.T, what string, n int, err error, op string, want error) {
	t.Helper()
	var oe *net.OpError
	switch {
	case n != 0:
		t.Errorf("%s: n = %d, want 0", what, n)
	case !errors.As(err, &oe):
		t.Errorf("%s: %T %v, want a *net.OpError", what, err, err)
	case oe.Op != op:
		t.Errorf("%s: Op %q, want %q (%v)", what, oe.Op, op, err)
	case !errors.Is(err, want):
		t.Errorf("%s: %v, want it to wrap %v", what, err, want)
	}
}

// ncPattern returns n bytes of a fixed pseudo-random stream from offset
// off, so that a lost, repeated or reordered block shows.
func ncPattern(off, n int) []byte {
	p := make([]byte, n)
	const block = 4096
	for b := off / block; b*block < off+n; b++ {
		var seed [32]byte
		seed[0], seed[1], seed[2], seed[3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
		var blk [block]byte
		rand.NewChaCha8(seed).Read(blk[:])
		lo := max(b*block, off)
		hi := min((b+1)*block, off+n)
		copy(p[lo-off:hi-off], blk[lo-b*block:hi-b*block])
	}
	return p
}

// ncDiff describes how got differs from want: the offset of the first
// difference, or the lengths.
func ncDiff(want, got []byte) string {
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			return fmt.Sprintf("first difference at offset %d of %d (got %#02x, want %#02x)", i, len(want), got[i], want[i])
		}
	}
	return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
}
