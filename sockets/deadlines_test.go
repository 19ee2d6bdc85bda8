package sockets

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// chanHandler hands each Conn to the test at OnOpen, echoes its input,
// and reports OnClose's error.
type chanHandler struct {
	opened chan transports.Conn
	closed chan error
}

func newChanHandler() chanHandler {
	return chanHandler{opened: make(chan transports.Conn, 1), closed: make(chan error, 1)}
}

func (h chanHandler) OnOpen(c transports.Conn) { h.opened <- c }
func (h chanHandler) OnData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}
func (h chanHandler) OnClose(_ transports.Conn, err error) { h.closed <- err }

// open returns a sockets transport with cfg, closed when t ends and then
// checked for leaked goroutines and descriptors.
func open(t *testing.T, cfg transports.Config) *Transport {
	t.Helper()
	base := testutil.TakeBaseline()
	t.Cleanup(func() { base.Check(t, 10*time.Second) }) // runs last
	tr, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// dial opens a sockets transport with cfg, listens with h and returns a
// Go client connected to it.
func dial(t *testing.T, cfg transports.Config, h transports.Handler) net.Conn {
	t.Helper()
	ln, err := open(t, cfg).Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// serve is dial with a chanHandler; it returns the server's Conn too.
func serve(t *testing.T, cfg transports.Config, h chanHandler) (transports.Conn, net.Conn) {
	t.Helper()
	cl := dial(t, cfg, h)
	select {
	case c := <-h.opened:
		return c, cl
	case <-time.After(10 * time.Second):
		t.Fatal("OnOpen did not run within 10s")
	}
	return nil, nil
}

// TestLimitsOfAWriterGoroutine: output written from outside the
// callbacks is sent by a writer goroutine, which waits in the runtime's
// poller once the socket is full, not in a flush after a callback (the
// conformance cases write inside callbacks). Its wait must still start
// the write-progress clock, on which both the write timeout and Close's
// flush limit count: the peer reads nothing, and the connection is
// aborted with the right error, no earlier than the limit.
func TestLimitsOfAWriterGoroutine(t *testing.T) {
	const limit = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		cfg   transports.Config
		close bool   // Close after the Write
		op    string // OnClose's *net.OpError.Op
		want  error  // ... which err matches
	}{
		{
			name: "write-timeout",
			cfg:  transports.Config{WriteTimeout: limit},
			op:   "write",
			want: transports.ErrWriteTimeout,
		},
		{
			name:  "close-flush",
			cfg:   transports.Config{WriteTimeout: -1, CloseTimeout: limit},
			close: true,
			op:    "close",
			want:  os.ErrDeadlineExceeded,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newChanHandler()
			c, _ := serve(t, tc.cfg, h) // the client reads nothing
			// Read before the calls that start the limit's clock (the
			// writer goroutine's wait may start it before Write returns,
			// Close before it returns): the cut-off is no earlier than
			// the limit after this.
			wrote := time.Now()
			// More than loopback's socket buffers take.
			if _, err := c.Write(make([]byte, 32<<20)); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			select {
			case err = <-h.closed:
			case <-time.After(20 * time.Second):
				t.Fatalf("a peer that reads nothing was not cut off within 20s (limit %v)", limit)
			}
			if el := time.Since(wrote); el < limit {
				t.Errorf("cut off %v after the Write, before the limit %v", el, limit)
			}
			var op *net.OpError
			if !errors.Is(err, tc.want) || !errors.As(err, &op) || op.Op != tc.op {
				t.Errorf("OnClose err = %v, want a %q *net.OpError matching %v", err, tc.op, tc.want)
			}
		})
	}
}

// TestTimerOffTheHotPath: requests the socket takes at once touch no
// timer. With the default limits no connection makes one; with the idle
// timeout on, the timer is set when the connection opens and not again
// while requests keep coming (Deadlines records activity as a time; the
// timer moves only when it runs out).
func TestTimerOffTheHotPath(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       transports.Config
		wantTimer bool
	}{
		{name: "defaults", cfg: transports.Config{}},
		{name: "idle", cfg: transports.Config{IdleTimeout: time.Hour}, wantTimer: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newChanHandler()
			sc, cl := serve(t, tc.cfg, h)
			c := sc.(*conn)
			cl.SetDeadline(time.Now().Add(30 * time.Second))
			msg := []byte("ping")
			roundTrip := func() {
				t.Helper()
				if _, err := cl.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(cl, msg); err != nil {
					t.Fatal(err)
				}
			}
			roundTrip()
			c.mu.Lock()
			armed, made := c.armed, c.timer != nil
			c.mu.Unlock()
			if made != tc.wantTimer {
				t.Fatalf("after one request: timer made = %v, want %v", made, tc.wantTimer)
			}
			for range 200 {
				roundTrip()
			}
			c.mu.Lock()
			armed2, made2 := c.armed, c.timer != nil
			c.mu.Unlock()
			if made2 != made || armed2 != armed {
				t.Errorf("200 requests moved the timer: made %v -> %v, set for %d -> %d", made, made2, armed, armed2)
			}
		})
	}
}

// TestHotPathAllocs holds a request's allocations where they were before
// the deadlines and the application's timer came: six per echo round
// trip, the closures that syscall.RawConn's Read and Write take and the
// variables they share. The limits' bookkeeping adds none, with the idle
// timeout on or off, for one message or sixteen per round trip.
func TestHotPathAllocs(t *testing.T) {
	const was = 6
	for _, tc := range []struct {
		name  string
		cfg   transports.Config
		depth int // 64-byte messages per round trip
	}{
		{name: "defaults", depth: 1},
		{name: "defaults-pipelined", depth: 16},
		{name: "idle", cfg: transports.Config{IdleTimeout: time.Hour}, depth: 1},
		{name: "idle-pipelined", cfg: transports.Config{IdleTimeout: time.Hour}, depth: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := dial(t, tc.cfg, testutil.FrameEcho{Size: 64})
			cl.SetDeadline(time.Now().Add(60 * time.Second))
			msg := make([]byte, 64*tc.depth)
			got := make([]byte, len(msg))
			var failed error
			roundTrip := func() {
				if _, err := cl.Write(msg); err != nil && failed == nil {
					failed = err
				}
				if _, err := io.ReadFull(cl, got); err != nil && failed == nil {
					failed = err
				}
			}
			for range 100 {
				roundTrip() // warm up: pools and buffers reach their sizes
			}
			allocs := testing.AllocsPerRun(1000, roundTrip)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs > was {
				t.Errorf("%v allocations per round trip, want at most %d", allocs, was)
			}
		})
	}
}
