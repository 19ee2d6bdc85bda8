package libuvlike

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// parkOf asks el's loop how it waits now.
func parkOf(t *testing.T, el *evloop) Park {
	t.Helper()
	got := make(chan Park, 1)
	if !el.post(func() { got <- el.loop.park }) {
		t.Fatal("the loop has stopped")
	}
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not run a posted task in 10s")
		return 0
	}
}

// waitPark waits until el's loop waits as want.
func waitPark(t *testing.T, el *evloop, want Park, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for parkOf(t, el) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the loop parks %v after 10s, want %v", why, parkOf(t, el), want)
		}
		runtime.Gosched()
	}
}

// With park=auto a loop parks in the runtime exactly while it serves a
// connection whose handler hands off (the net.Conn adapter's, from
// NetListener or DialNet), and blocks its thread otherwise.
func TestParkFollowsHandoff(t *testing.T) {
	tr := openTransport(t, transports.Config{Loops: 1}, Options{})
	el := tr.loops[0]
	if p := parkOf(t, el); p != ParkThread {
		t.Fatalf("a new loop parks %v, want thread", p)
	}

	// An inline connection: the thread.
	opened := make(chan transports.Conn, 1)
	ln := listenTCP(t, tr, &openSignal{opened: opened})
	defer ln.Close()
	inline := dialTCP(t, ln)
	<-opened
	if p := parkOf(t, el); p != ParkThread {
		t.Errorf("with an inline connection the loop parks %v, want thread", p)
	}

	// An adapter's accepted connection: the runtime, until it closes.
	client, server := adapterPair(t, tr)
	if p := parkOf(t, el); p != ParkRuntime {
		t.Errorf("with an adapter's connection the loop parks %v, want runtime", p)
	}
	echoOnce(t, client, server)

	// An adapter's dialed connection keeps it there after the accepted
	// one has gone.
	dialed, err := transports.DialNet(context.Background(), tr, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	client.Close()
	if p := parkOf(t, el); p != ParkRuntime {
		t.Errorf("with a dialed adapter connection left the loop parks %v, want runtime", p)
	}
	dialed.Close()
	waitPark(t, el, ParkThread, "every adapter connection closed")
	inline.Close()
}

// openSignal sends each connection it opens on opened.
type openSignal struct{ opened chan transports.Conn }

func (h *openSignal) OnOpen(c transports.Conn)                { h.opened <- c }
func (h *openSignal) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (h *openSignal) OnClose(transports.Conn, error)          {}

// adapterPair accepts a Go client's connection through NetListener on
// tr; both ends and the listener close when the test ends.
func adapterPair(t *testing.T, tr *Transport) (client, server net.Conn) {
	t.Helper()
	nl, err := transports.NetListener(tr, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nl.Close() })
	client, err = net.DialTimeout("tcp", nl.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = nl.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// echoOnce sends a message from client to server and back.
func echoOnce(t *testing.T, client, server net.Conn) {
	t.Helper()
	msg := []byte("hello")
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// park=thread and park=runtime hold whatever the handlers.
func TestParkFixed(t *testing.T) {
	for _, c := range []struct {
		opt  string
		want Park
	}{{ParkThreads, ParkThread}, {ParkInRuntime, ParkRuntime}} {
		t.Run(c.opt, func(t *testing.T) {
			tr := openTransport(t, transports.Config{Loops: 1}, Options{Park: c.opt})
			el := tr.loops[0]
			if p := parkOf(t, el); p != c.want {
				t.Errorf("a new loop parks %v, want %v", p, c.want)
			}
			client, server := adapterPair(t, tr)
			echoOnce(t, client, server)
			if p := parkOf(t, el); p != c.want {
				t.Errorf("with an adapter's connection the loop parks %v, want %v", p, c.want)
			}
		})
	}
}

// A loop locked to its thread never parks in the runtime: parking a
// locked goroutine hands its thread's P to another thread and back.
func TestLockedLoopParksItsThread(t *testing.T) {
	tr := openTransport(t, transports.Config{Loops: 1}, Options{LockOSThread: true})
	el := tr.loops[0]
	client, server := adapterPair(t, tr)
	echoOnce(t, client, server)
	if p := parkOf(t, el); p != ParkThread {
		t.Errorf("a locked loop with an adapter's connection parks %v, want thread", p)
	}
	if _, err := New(transports.Config{}, Options{LockOSThread: true, Park: ParkInRuntime}); err == nil {
		t.Error("New with LockOSThread and ParkInRuntime succeeded")
	}
}

// TestBusyLoopKeepsItsP: at low load after an idle spell (a round trip
// every 200 µs or so from another process), an inline loop's waits must
// not have its P taken by sysmon and handed to another thread, which
// costs three voluntary context switches per wait instead of the loop's
// own sleep (schedtick.Raw): 3.3-4.5 per round trip before it, 1.1-1.3
// after.
func TestBusyLoopKeepsItsP(t *testing.T) {
	per, st := testutil.SwitchesPerTrip(t, "TestBusyLoopKeepsItsP", "libuvlike:park=thread")
	t.Logf("%.2f voluntary context switches per round trip, %d wake-ups, raw_waits %d", per, st.Wakeups, st.Extra["raw_waits"])
	if per > 2 {
		t.Errorf("%.2f voluntary context switches per round trip (%d wake-ups, raw_waits %d): want at most 2: the loop's own sleep, and its yields", per, st.Wakeups, st.Extra["raw_waits"])
	}
}
