package conformance

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// listenCases are about listeners and the edges of a connection's life
// around them: Listener.Close from callbacks.
var listenCases = []testCase{
	{name: "listener-close-from-callback", run: listenCloseFromCallback},
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

// lsOpen opens the transport under test with one loop, so that a
// callback holds the loop every listener and connection is on. Unlike
// Suite.Open, its cleanup leaves the transport open if a failed case set
// stuck (a loop hangs): that Close would never return, and would hang the
// suite instead of failing the case.
func lsOpen(t *testing.T, s *Suite, stuck *atomic.Bool) transports.Transport {
	t.Helper()
	cfg := lcQuietConfig()
	cfg.Loops = 1
	tr, err := transports.Open(s.Spec, cfg)
	if err != nil {
		t.Fatalf("Open(%q): %v", s.Spec, err)
	}
	t.Cleanup(func() {
		if stuck.Load() {
			t.Errorf("transport left open: a loop is stuck")
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
// until it holds; after lcTimeout it marks the transport stuck and fails t.
func lsWaitFor(t *testing.T, stuck *atomic.Bool, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(lcTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			stuck.Store(true)
			t.Fatalf("waited %v for %s", lcTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
