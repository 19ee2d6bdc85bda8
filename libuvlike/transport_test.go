//go:build linux

package libuvlike

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

func openTransport(t *testing.T, cfg transports.Config, opt Options) *Transport {
	t.Helper()
	base := testutil.TakeBaseline()
	tr, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		base.Check(t, 10*time.Second)
	})
	return tr
}

// listenTCP listens on a loopback port of tr with h.
func listenTCP(t *testing.T, tr *Transport, h transports.Handler) transports.Listener {
	t.Helper()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dialTCP connects a Go client to ln, closed when the test ends.
func dialTCP(t *testing.T, ln transports.Listener) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// TestStats checks the counters after a known exchange: one connection
// echoing 3 messages, then closed by the client.
func TestStats(t *testing.T) {
	tr := openTransport(t, transports.Config{Loops: 1}, Options{})
	closed := make(chan struct{})
	c := dialTCP(t, listenTCP(t, tr, closeSignal{testutil.FrameEcho{Size: 1}, closed}))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	for _, msg := range []string{"one", "two", "three"} {
		c.Write([]byte(msg))
		if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose after the client closed")
	}
	st := tr.Stats()
	type counts struct {
		Accepted, Dialed, Closed, BytesIn, BytesOut, Open uint64
	}
	want := counts{Accepted: 1, Closed: 1, BytesIn: 11, BytesOut: 11}
	got := counts{st.Accepted, st.Dialed, st.Closed, st.BytesIn, st.BytesOut, st.Open()}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Stats (-want +got):\n%s", d)
	}
	// Each message needs a read and a write at least; the FIN a read.
	if st.Reads < 3 || st.Writes < 3 || st.Wakeups < 4 || st.Events < 4 || st.Syscalls < st.Reads+st.Writes+st.Wakeups {
		t.Errorf("Stats = %+v: too few reads, writes, wake-ups, events or system calls", st)
	}
}

// closeSignal is testutil.FrameEcho whose OnClose closes a channel.
type closeSignal struct {
	testutil.FrameEcho
	closed chan struct{}
}

func (h closeSignal) OnClose(transports.Conn, error) { close(h.closed) }

func TestUnixListenerRemovesItsFile(t *testing.T) {
	tr := openTransport(t, transports.Config{}, Options{})
	dir, err := os.MkdirTemp("", "luv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := tr.Listen("unix", path, testutil.FrameEcho{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket file is missing while listening: %v", err)
	}
	// A second listener on the same path fails as package net's does.
	if _, err := tr.Listen("unix", path, testutil.FrameEcho{Size: 1}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on %s = %v, want EADDRINUSE", path, err)
	}
	ln.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, stat of the socket file: %v; want it removed", err)
	}
}

func TestListenErrors(t *testing.T) {
	tr := openTransport(t, transports.Config{}, Options{})
	_, err := tr.Listen("udp", "127.0.0.1:0", testutil.FrameEcho{Size: 1})
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "listen" {
		t.Errorf("Listen(udp) = %v, want a *net.OpError of Op listen", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = tr.Listen("tcp4", l.Addr().String(), testutil.FrameEcho{Size: 1})
	if !errors.As(err, &op) || op.Op != "listen" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen on a taken port = %v, want a listen *net.OpError wrapping EADDRINUSE", err)
	}
}

func TestDialCanceledContext(t *testing.T) {
	tr := openTransport(t, transports.Config{}, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := &countingHandler{}
	c, err := tr.Dial(ctx, "tcp", ln.Addr().String(), h)
	switch {
	case err == nil:
		// The connect won the race with the cancel: a Conn, opened.
		if h.opens != 1 {
			t.Errorf("Dial succeeded with %d OnOpen calls", h.opens)
		}
		c.Abort()
	case !errors.Is(err, context.Canceled):
		t.Errorf("Dial with a canceled context = %v, want context.Canceled or success", err)
	default:
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
		if h.opens != 0 || h.closes != 0 {
			t.Errorf("a canceled Dial called OnOpen %d and OnClose %d times", h.opens, h.closes)
		}
	}
}

// countingHandler counts OnOpen and OnClose; read them once the transport
// is closed.
type countingHandler struct{ opens, closes int }

func (h *countingHandler) OnOpen(transports.Conn)                  { h.opens++ }
func (h *countingHandler) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (h *countingHandler) OnClose(transports.Conn, error)          { h.closes++ }

func TestOptions(t *testing.T) {
	for _, spec := range []string{"libuvlike:accept=sideways", "libuvlike:trigger=both", "libuvlike:readbuf=12", "libuvlike:park=sometimes", "libuvlike:park=runtime,lockthread=true", "libuvlike:rawwait=20ms"} {
		if tr, err := transports.Open(spec, transports.Config{}); err == nil {
			tr.Close()
			t.Errorf("Open(%q) succeeded", spec)
		}
	}
	tr, err := transports.Open("libuvlike:loops=3,accept=dispatch,trigger=edge,lockthread=true,readbuf=16k,park=thread,maxwritebuffer=32k", transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	got := struct {
		Loops, MaxWrite int
		Opt             Options
	}{tr.Config().Loops, tr.Config().MaxWriteBuffer, tr.(*Transport).Options()}
	want := struct {
		Loops, MaxWrite int
		Opt             Options
	}{3, 32 << 10, Options{Accept: AcceptDispatch, EdgeTriggered: true, LockOSThread: true, ReadBuffer: 16 << 10, Park: ParkThreads, RawWait: DefaultRawWait}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("settings (-want +got):\n%s", d)
	}
}
