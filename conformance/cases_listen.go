package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// listenCases are about listeners and the edges of a connection's life
// around them: Listener.Close from callbacks, a Dial still connecting
// when the transport closes, the addresses of a connection reset before
// it was accepted, and abstract unix addresses.
var listenCases = []testCase{
	{name: "listener-close-from-callback", run: listenCloseFromCallback},
	{name: "dial-during-close", tcpOnly: true, run: listenDialDuringClose},
	{name: "addresses-after-reset", tcpOnly: true, run: listenAddressesAfterReset},
	{name: "abstract-unix", run: listenAbstractUnix},
}

// listenCloseFromCallback: Listener.Close from a callback never waits for
// a loop (the caller's loop may be the one it would wait for), whether it
// is the first Close, a second one, or one made while another goroutine's
// Close waits for that very loop. Each returns nil, and the listener ends.
func listenCloseFromCallback(t *testing.T, s *Suite) {
	t.Run("twice", func(t *testing.T) {
		var lnv atomic.Value // the Listener, for the callback
		closes := make(chan error, 2)
		h := handler(hooks{Open: func(transports.Conn) {
			ln := lnv.Load().(transports.Listener)
			closes <- ln.Close()
			closes <- ln.Close()
		}})
		var stuck atomic.Bool
		tr := lsOpen(t, s, &stuck)
		ln := lsListen(t, tr, s.Network, s.Address(t), h, &stuck)
		lnv.Store(ln)
		s.DialClient(t, ln)
		for i := range 2 {
			if err := lsRecv(t, closes, &stuck, "Listener.Close #%d from OnOpen to return", i+1); err != nil {
				t.Errorf("Listener.Close #%d from OnOpen = %v, want nil", i+1, err)
			}
		}
		lsRecv(t, ln.(transports.DoneListener).Done(), &stuck, "the listener's Done to close")
		lcAssertNotListening(t, ln.Addr())
	})

	t.Run("while-another-waits", func(t *testing.T) {
		// A Close in progress is seen from outside only where it changes
		// something before it waits: it removes a unix socket's file.
		if s.Network != "unix" {
			t.Skip("a Close in progress is observable only on unix sockets (the file goes first)")
		}
		var (
			lnv     atomic.Value
			held    = make(chan struct{})
			release = make(chan struct{})
			closes  = make(chan error, 1)
			once    atomic.Bool
		)
		h := handler(hooks{Data: func(c transports.Conn, in []byte) int {
			if once.Swap(true) {
				return len(in)
			}
			// Hold the one loop until the test's Close is under way,
			// waiting for this loop.
			close(held)
			<-release
			closes <- lnv.Load().(transports.Listener).Close()
			return len(in)
		}})
		var stuck atomic.Bool
		tr := lsOpen(t, s, &stuck)
		releaseLoop := sync.OnceFunc(func() { close(release) })
		t.Cleanup(releaseLoop) // before the transport's Close, if the case fails early
		path := s.Address(t)
		ln := lsListen(t, tr, s.Network, path, h, &stuck)
		lnv.Store(ln)
		c := s.DialClient(t, ln)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("client write: %v", err)
		}
		lsRecv(t, held, &stuck, "OnData")
		first := make(chan error, 1)
		go func() { first <- ln.Close() }()
		lsWaitFor(t, &stuck, "the first Close to remove the socket file", func() bool {
			_, err := os.Lstat(path)
			return errors.Is(err, fs.ErrNotExist)
		})
		releaseLoop()
		if err := lsRecv(t, closes, &stuck, "Listener.Close from OnData to return while another goroutine's Close waits for its loop"); err != nil {
			t.Errorf("Listener.Close from OnData = %v, want nil", err)
		}
		if err := lsRecv(t, first, &stuck, "the first Listener.Close to return"); err != nil {
			t.Errorf("first Listener.Close = %v, want nil", err)
		}
		lsRecv(t, ln.(transports.DoneListener).Done(), &stuck, "the listener's Done to close")
	})
}

// listenDialDuringClose: a Dial still connecting when the transport's
// Close or Shutdown begins ends at once with an error matching
// net.ErrClosed, and Close or Shutdown returns without waiting for the
// connect (the kernel would give up on the address only after its SYN
// retries, minutes later); no callback runs.
func listenDialDuringClose(t *testing.T, s *Suite) {
	for _, end := range []struct {
		name string
		f    func(transports.Transport) error
	}{
		{name: "close", f: transports.Transport.Close},
		{name: "shutdown", f: func(tr transports.Transport) error { return tr.Shutdown(lcContext(t)) }},
	} {
		t.Run(end.name, func(t *testing.T) {
			addr := testutil.Blackhole(t)
			var stuck atomic.Bool
			tr := lsOpen(t, s, &stuck)
			h := newLCClient()
			dialed := make(chan error, 1)
			go func() {
				// The context outlives the case's waits: only the end
				// of the transport may end this Dial.
				ctx, cancel := context.WithTimeout(context.Background(), 3*lcTimeout)
				defer cancel()
				c, err := tr.Dial(ctx, "tcp", addr.String(), h)
				if err == nil {
					c.Close()
				}
				dialed <- err
			}()
			lsWaitFor(t, &stuck, "the Dial's SYN to "+addr.String(), func() bool {
				return lsTCPSocketIn(t, tcpSynSent, 0, addr.Port)
			})
			ended := make(chan error, 1)
			go func() { ended <- end.f(tr) }()
			if err := lsRecv(t, ended, &stuck, "%s to return while a Dial connects", end.name); err != nil {
				t.Errorf("%s = %v, want nil", end.name, err)
			}
			err := lsRecv(t, dialed, &stuck, "the Dial to return after %s", end.name)
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Dial ended by %s: %v, want an error matching net.ErrClosed", end.name, err)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "dial" {
				t.Errorf("Dial error = %#v, want a *net.OpError with Op \"dial\"", err)
			}
			if n, m := h.opens.Load(), h.closes.Load(); n != 0 || m != 0 {
				t.Errorf("%d OnOpen and %d OnClose calls for the failed Dial, want none", n, m)
			}
		})
	}
}

// listenAddressesAfterReset: a connection whose peer reset it before the
// transport accepted it still has both addresses, as package net reports
// them (accept(2) gives the peer's address even then): RemoteAddr is the
// peer's, LocalAddr the listener's. A nil address panics a handler that
// logs it.
func listenAddressesAfterReset(t *testing.T, s *Suite) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			if network == "tcp6" {
				if err := testutil.IPv6Loopback(); err != nil {
					s.Skip(t, err.Error())
				}
			}
			lsAddressesAfterReset(t, s, network)
		})
	}
}

func lsAddressesAfterReset(t *testing.T, s *Suite, network string) {
	var stuck atomic.Bool
	tr := lsOpen(t, s, &stuck)
	type addrs struct{ local, remote net.Addr }
	var (
		opened  = make(chan addrs, 2)
		held    = make(chan struct{})
		release = make(chan struct{})
		first   atomic.Bool
	)
	h := handler(hooks{
		Open: func(c transports.Conn) { opened <- addrs{c.LocalAddr(), c.RemoteAddr()} },
		Data: func(c transports.Conn, in []byte) int {
			if !first.Swap(true) {
				// Hold the one loop: the transport accepts the next
				// connection only after its reset.
				close(held)
				<-release
			}
			return len(in)
		},
	})
	releaseLoop := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseLoop)
	ln := lsListen(t, tr, network, testutil.LoopbackAddress(t, network), h, &stuck)
	lnPort := ln.Addr().(*net.TCPAddr).Port
	holder := s.DialClient(t, ln)
	if _, err := holder.Write([]byte("x")); err != nil {
		t.Fatalf("client write: %v", err)
	}
	lsRecv(t, opened, &stuck, "OnOpen of the first connection")
	lsRecv(t, held, &stuck, "OnData of the first connection")

	c, err := net.DialTimeout(network, ln.Addr().String(), lcTimeout)
	if err != nil {
		t.Fatalf("dial %v: %v", ln.Addr(), err)
	}
	peer := c.LocalAddr().(*net.TCPAddr)
	lsWaitFor(t, &stuck, "the kernel to queue the connection to accept", func() bool {
		return lsTCPSocketIn(t, tcpEstablished, lnPort, peer.Port)
	})
	c.(*net.TCPConn).SetLinger(0)
	c.Close() // RST
	lsWaitFor(t, &stuck, "the reset to close the queued connection", func() bool {
		return !lsTCPSocketIn(t, tcpEstablished, lnPort, peer.Port)
	})
	releaseLoop()

	got := lsRecv(t, opened, &stuck, "OnOpen of the connection reset before it was accepted")
	if got.remote == nil {
		t.Errorf("RemoteAddr of a connection reset before it was accepted is nil, want %v", peer)
	} else if got.remote.Network() != "tcp" || got.remote.String() != peer.String() {
		t.Errorf("RemoteAddr of a connection reset before it was accepted = %s %v, want tcp %v", got.remote.Network(), got.remote, peer)
	}
	if got.local == nil {
		t.Errorf("LocalAddr of a connection reset before it was accepted is nil, want %v", ln.Addr())
	} else if got.local.Network() != "tcp" || got.local.String() != ln.Addr().String() {
		t.Errorf("LocalAddr of a connection reset before it was accepted = %s %v, want tcp %v", got.local.Network(), got.local, ln.Addr())
	}
}

// listenAbstractUnix: a unix address "@name" is a name in Linux's abstract
// namespace, as package net has it, for Listen and Dial alike: no file is
// made, dialled or removed. A file "@name" in the working directory, where
// the path "@name" would lead, is left alone, with or without a file
// there beforehand; a Dial of "@name" reaches the listener, as a Go
// client's does.
func listenAbstractUnix(t *testing.T, s *Suite) {
	if s.Network != "unix" {
		t.Skip("abstract addresses are unix sockets'")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the abstract namespace of unix sockets is Linux's")
	}
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "no-file", true: "file"}[file], func(t *testing.T) {
			t.Chdir(t.TempDir()) // where a path "@name" would lead
			name := fmt.Sprintf("@merlin-conformance-%s-%d-%d", s.Name, os.Getpid(), time.Now().UnixNano())
			const content = "not a socket"
			if file {
				if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			checkFile := func(when string) {
				t.Helper()
				b, err := os.ReadFile(name)
				switch {
				case !file && err == nil:
					t.Errorf("%s: a file %q was made in the working directory", when, name)
				case !file && !errors.Is(err, fs.ErrNotExist):
					t.Errorf("%s: %v", when, err)
				case file && err != nil:
					t.Errorf("%s: the file %q in the working directory: %v, want it left alone", when, name, err)
				case file && string(b) != content:
					t.Errorf("%s: the file %q in the working directory holds %q, want %q", when, name, b, content)
				}
			}

			tr := s.Open(t, nil)
			locals := make(chan string, 2)
			h := handler(hooks{
				Open: func(c transports.Conn) { locals <- lcAddrString(c.LocalAddr()) },
				Data: lcEchoData,
			})
			ln, err := tr.Listen("unix", name, h)
			if err != nil {
				t.Fatalf("Listen(unix, %s): %v", name, err)
			}
			t.Cleanup(func() { ln.Close() })
			checkFile("after Listen")
			want := "unix " + name
			if got := lcAddrString(ln.Addr()); got != want {
				t.Errorf("Listener.Addr = %s, want %s", got, want)
			}

			// A Go client finds the listener in the abstract namespace.
			c, err := net.DialTimeout("unix", name, lcTimeout)
			if err != nil {
				t.Fatalf("a Go client's dial of %s: %v", name, err)
			}
			t.Cleanup(func() { c.Close() })
			lcEcho(t, c, []byte("from a Go client"))
			if got := lcRecv(t, locals); got != want {
				t.Errorf("LocalAddr of the accepted Conn = %s, want %s", got, want)
			}

			// So does the transport's Dial. (If it fails, the checks of
			// Close below still run.)
			ch := newLCClient()
			ch.greeting = []byte("from the transport's Dial")
			d, err := tr.Dial(lcContext(t), "unix", name, ch)
			if err != nil {
				t.Errorf("Dial(unix, %s): %v", name, err)
			} else {
				if got := ch.wait(t, len(ch.greeting)); !bytes.Equal(got, ch.greeting) {
					t.Errorf("echo of the dialed Conn = %q, want %q", got, ch.greeting)
				}
				if got := lcAddrString(d.RemoteAddr()); got != want {
					t.Errorf("RemoteAddr of the dialed Conn = %s, want %s", got, want)
				}
				lcRecv(t, locals)
				d.Close()
				if err := ch.waitClose(t); err != nil {
					t.Errorf("OnClose err of the dialed Conn = %v, want nil", err)
				}
			}
			checkFile("after Dial")

			if err := ln.Close(); err != nil {
				t.Errorf("Listener.Close = %v", err)
			}
			checkFile("after Listener.Close")
			if err := tr.Close(); err != nil {
				t.Errorf("transport Close = %v", err)
			}
			checkFile("after the transport's Close")
		})
	}
}

// TCP states as /proc/net/tcp shows them (include/net/tcp_states.h).
const (
	tcpEstablished = 0x01
	tcpSynSent     = 0x02
)

// lsTCPSocketIn reports whether this network namespace has a TCP socket in
// state whose local port is local and remote port is remote (0: any). It
// reads /proc/net/tcp and /proc/net/tcp6: the kernel's view, which no
// transport can tell a case.
func lsTCPSocketIn(t *testing.T, state, local, remote int) bool {
	t.Helper()
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("reading the kernel's TCP sockets: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// "sl local_address rem_address st ...", addresses as
			// hex "ADDR:PORT".
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			port := func(a string) int {
				_, hex, _ := strings.Cut(a, ":")
				p, err := strconv.ParseUint(hex, 16, 16)
				if err != nil {
					return -1
				}
				return int(p)
			}
			st, err := strconv.ParseUint(fields[3], 16, 8)
			if err != nil || int(st) != state {
				continue
			}
			if (local == 0 || port(fields[1]) == local) && (remote == 0 || port(fields[2]) == remote) {
				return true
			}
		}
	}
	return false
}

// lsOpen opens the transport under test with one loop, so that a
// callback holds the loop every listener and connection is on. Unlike
// Suite.Open, its cleanup leaves the transport open if a failed case set
// stuck (a loop hangs): that Close would never return, and would hang the
// suite instead of failing the case.
func lsOpen(t *testing.T, s *Suite, stuck *atomic.Bool) transports.Transport {
	t.Helper()
	cfg := quietConfig()
	cfg.Loops = 1
	tr, err := s.open(cfg)
	if err != nil {
		t.Fatalf("opening %s: %v", s.Name, err)
	}
	t.Cleanup(func() {
		if stuck.Load() {
			t.Errorf("transport left open: a call into it never returned")
			return
		}
		if err := tr.Close(); err != nil {
			t.Errorf("transport Close: %v", err)
		}
	})
	return tr
}

// lsListen listens on tr; the listener is closed by t.Cleanup, as by
// Suite.Listen, unless stuck is set (see lsOpen).
func lsListen(t *testing.T, tr transports.Transport, network, address string, h transports.Handler, stuck *atomic.Bool) transports.Listener {
	t.Helper()
	ln, err := tr.Listen(network, address, h)
	if err != nil {
		t.Fatalf("Listen(%s, %s): %v", network, address, err)
	}
	t.Cleanup(func() {
		if !stuck.Load() {
			ln.Close()
		}
	})
	return ln
}

// lsRecv receives from ch within lcTimeout; if nothing comes, it marks the
// transport stuck and fails t, naming what it waited for (format, args).
func lsRecv[T any](t *testing.T, ch <-chan T, stuck *atomic.Bool, format string, args ...any) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(lcTimeout):
		stuck.Store(true)
		t.Fatalf("waited %v for "+format, append([]any{lcTimeout}, args...)...)
		panic("unreachable")
	}
}

// lsWaitFor polls cond, a state of the system the case cannot be told of,
// until it holds; after lcTimeout it marks the transport stuck (if stuck
// is not nil) and fails t.
func lsWaitFor(t *testing.T, stuck *atomic.Bool, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(lcTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			if stuck != nil {
				stuck.Store(true)
			}
			t.Fatalf("waited %v for %s", lcTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
