package loadgen

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"

	"context"
	"errors"
	"github.com/google/go-cmp/cmp"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// server is a plain Go net server for the tests; serve handles each
// accepted connection. Close stops it and waits for its goroutines.
type server struct {
	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	cs []net.Conn
}

func startServer(t *testing.T, serve func(s *server, c net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs = append(s.cs, c)
			s.mu.Unlock()
			s.wg.Go(func() { serve(s, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.cs {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// echo is a correct echo server.
func echo(_ *server, c net.Conn) {
	io.Copy(c, c)
	c.Close()
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// engines are the generator's engines every echo test runs on.
var engines = []string{EngineNet, EngineRing}

// forEngines runs test once per engine, as a subtest named by it.
func forEngines(t *testing.T, test func(t *testing.T, engine string)) {
	for _, e := range engines {
		t.Run("engine="+e, func(t *testing.T) { test(t, e) })
	}
}

func TestRunEcho(t *testing.T) { forEngines(t, testRunEcho) }

func testRunEcho(t *testing.T, engine string) {
	for _, tc := range []struct {
		name               string
		conns, size, depth int
	}{
		{name: "small", conns: 4, size: 64, depth: 1},
		{name: "pipelined", conns: 4, size: 100, depth: 16},
		{name: "tiny-messages", conns: 2, size: 3, depth: 7},
		// Many connections: dialing under the runtime's preemption
		// signals (a blocking connect once failed with EINTR here), and
		// the ring engine's buffers shared by all.
		{name: "many-conns", conns: 1000, size: 64, depth: 1},
		// 16 x 64 KiB is written from a second goroutine: a server that
		// echoes as it reads would deadlock a write-then-read client.
		{name: "large-batch", conns: 2, size: 64 << 10, depth: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, echo)
			var progress int
			res := RunSome(t, Config{
				Addr: s.addr(), Conns: tc.conns, Size: tc.size, Depth: tc.depth,
				Duration: 300 * time.Millisecond, Engine: engine,
				Progress: func(Progress) { progress++ },
			}, uint64(tc.conns*tc.depth))
			if res.Errors != 0 {
				t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
			}
			// Every connection finishes at least the batch it started.
			if min := uint64(tc.conns * tc.depth); res.Requests < min || res.Requests%uint64(tc.depth) != 0 {
				t.Errorf("Requests = %d, want a multiple of %d, at least %d", res.Requests, tc.depth, min)
			}
			if res.Bytes != res.Requests*uint64(tc.size) {
				t.Errorf("Bytes = %d, want Requests x Size = %d", res.Bytes, res.Requests*uint64(tc.size))
			}
			if res.RequestsPerSecond() <= 0 || res.MBPerSecond() <= 0 {
				t.Errorf("rates %v req/s, %v MB/s: want positive", res.RequestsPerSecond(), res.MBPerSecond())
			}
		})
	}
}

// A server that corrupts one byte is caught, with the offset.
func TestRunDetectsCorruption(t *testing.T) { forEngines(t, testRunDetectsCorruption) }

func testRunDetectsCorruption(t *testing.T, engine string) {
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1000)
		total := 0
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			// Flip the byte at stream offset 5000: batch 5 (of 1000
			// bytes), message 0, byte 0, in the header.
			if total <= 5000 && 5000 < total+n {
				buf[5000-total] ^= 0x40
			}
			total += n
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	res, err := Config{Addr: s.addr(), Conns: 1, Size: 500, Depth: 2, Duration: 5 * time.Second, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 || len(res.FirstErrors) != 1 {
		t.Fatalf("Errors = %d (%v), want 1", res.Errors, res.FirstErrors)
	}
	var me *MismatchError
	if !errors.As(res.FirstErrors[0], &me) {
		t.Fatalf("error %v is not a *MismatchError", res.FirstErrors[0])
	}
	if me.Batch != 5 || me.Offset != 0 || me.Got != me.Want^0x40 {
		t.Errorf("mismatch at batch %d offset %d, want %#02x got %#02x; want batch 5 offset 0, one bit flipped",
			me.Batch, me.Offset, me.Want, me.Got)
	}
	if res.Requests != 10 {
		t.Errorf("Requests = %d, want the 10 messages before the corrupt batch", res.Requests)
	}
}

// A server that cross-wires two connections (each gets the other's
// messages, of the same size) is caught: the payload names its connection.
func TestRunDetectsCrossedConnections(t *testing.T) { forEngines(t, testRunDetectsCrossedConnections) }

func testRunDetectsCrossedConnections(t *testing.T, engine string) {
	var (
		mu    sync.Mutex
		first net.Conn // the first connection, waiting for the second
	)
	s := startServer(t, func(s *server, c net.Conn) {
		mu.Lock()
		other := first
		first = c
		mu.Unlock()
		if other != nil {
			s.wg.Go(func() { io.Copy(c, other) })
			io.Copy(other, c)
		}
	})
	res, err := Config{Addr: s.addr(), Conns: 2, Size: 64, Depth: 1, Duration: 5 * time.Second, Timeout: 10 * time.Second, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 {
		t.Fatalf("Errors = %d (%v), want 2 (both connections)", res.Errors, res.FirstErrors)
	}
	var me *MismatchError
	if !errors.As(res.FirstErrors[0], &me) {
		t.Fatalf("error %v is not a *MismatchError", res.FirstErrors[0])
	}
	if !me.HeaderOK || int(me.GotConn) != 1-me.Conn || me.Offset != 0 {
		t.Errorf("%v: want a difference at byte 0 naming the other connection", me)
	}
}

// A server that answers twice is caught: the echo must be exactly what
// was sent, no byte more.
func TestRunDetectsExtraBytes(t *testing.T) { forEngines(t, testRunDetectsExtraBytes) }

func testRunDetectsExtraBytes(t *testing.T, engine string) {
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1000)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(append(buf[:n:n], buf[:n]...)); err != nil {
				return
			}
		}
	})
	res, err := Config{Addr: s.addr(), Conns: 2, Size: 64, Depth: 1, Duration: 5 * time.Second, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 {
		t.Fatalf("Errors = %d (%v), want 2: both connections got their echo twice", res.Errors, res.FirstErrors)
	}
	t.Logf("%v", res.FirstErrors[0])
}

// Nothing listening: every connection fails to dial, and says so.
func TestRunDialError(t *testing.T) { forEngines(t, testRunDialError) }

func testRunDialError(t *testing.T, engine string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Config{Addr: addr, Conns: 3, Duration: time.Second, MaxErrors: 2, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || len(res.FirstErrors) != 2 || res.Requests != 0 {
		t.Fatalf("Errors = %d, FirstErrors = %v, Requests = %d; want 3, 2 kept, 0", res.Errors, res.FirstErrors, res.Requests)
	}
	if !strings.Contains(res.FirstErrors[0].Error(), "refused") {
		t.Errorf("error %q does not say the connection was refused", res.FirstErrors[0])
	}
}

// Cancelling the context ends a run against a server that never answers,
// without counting that as an error.
func TestRunCancel(t *testing.T) { forEngines(t, testRunCancel) }

func testRunCancel(t *testing.T, engine string) {
	reading := make(chan struct{}, 2)
	s := startServer(t, func(_ *server, c net.Conn) {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err == nil {
			reading <- struct{}{} // a batch is in flight
		}
		io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() {
		res, _ := Config{Addr: s.addr(), Conns: 2, Duration: time.Hour, Timeout: time.Hour, Engine: engine}.Run(ctx)
		done <- res
	}()
	for range 2 {
		select {
		case <-reading:
		case <-time.After(10 * time.Second):
			t.Fatal("no batch reached the server within 10 s")
		}
	}
	cancel()
	select {
	case res := <-done:
		if res.Errors != 0 {
			t.Errorf("Errors = %d (%v) after cancel, want 0", res.Errors, res.FirstErrors)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
}

// A server that reads and never answers fails every connection once the
// timeout has passed, with an error that says so.
func TestRunTimeout(t *testing.T) { forEngines(t, testRunTimeout) }

func testRunTimeout(t *testing.T, engine string) {
	s := startServer(t, func(_ *server, c net.Conn) {
		io.Copy(io.Discard, c)
		c.Close()
	})
	res, err := Config{Addr: s.addr(), Conns: 3, Duration: 5 * time.Second, Timeout: 300 * time.Millisecond, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || res.Requests != 0 {
		t.Fatalf("Errors = %d (%v), Requests = %d; want 3 and 0", res.Errors, res.FirstErrors, res.Requests)
	}
	if !errors.Is(res.FirstErrors[0], os.ErrDeadlineExceeded) {
		t.Errorf("error %v does not wrap os.ErrDeadlineExceeded", res.FirstErrors[0])
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, c := range []Config{
		{},
		{Addr: "x", Conns: -1},
		{Addr: "x", Size: 1 << 20, Depth: 2048},
		{Addr: "x", Engine: "spin"},
		{Addr: "x", Engine: EngineRing, Mode: Churn},
		{Addr: "x", Engine: EngineRing, Mode: Idle},
		{Addr: "x", Engine: EngineRing, Workload: HTTP, TLS: &tls.Config{}},
	} {
		if _, err := c.Run(context.Background()); err == nil {
			t.Errorf("Run(%+v) = nil error, want one", c)
		}
	}
}

// An open-loop run measures latency from each request's scheduled time:
// a server that stalls once for 300 ms, in a 1 s window at 1000 requests
// a second, delays the 300 requests scheduled meanwhile by up to 300 ms,
// so the 99th percentile shows the stall. (A closed-loop client would have
// sent nothing during it, and recorded one slow request.)
func TestOpenLoopSeesStall(t *testing.T) { forEngines(t, testOpenLoopSeesStall) }

func testOpenLoopSeesStall(t *testing.T, engine string) {
	const stall = 300 * time.Millisecond
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		total, stalled := 0, false
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			total += n
			if !stalled && total >= 100*64 {
				stalled = true
				time.Sleep(stall) // the behaviour under test, not synchronisation
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	var windows []bool
	res, err := Config{
		Addr: s.addr(), Conns: 1, Size: 64, Rate: 1000, Duration: time.Second, Engine: engine,
		OnWindow: func(start bool) { windows = append(windows, start) },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 {
		t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
	}
	if d := cmp.Diff([]bool{true, false}, windows); d != "" {
		t.Errorf("OnWindow calls (-want +got):\n%s", d)
	}
	if !res.OpenLoop() {
		t.Errorf("OpenLoop() = false for a run with a rate")
	}
	// About 1000 requests were scheduled in the window; allow for a slow
	// machine, not for a client that stopped sending during the stall.
	if res.Requests < 800 || res.Requests > 1100 {
		t.Errorf("Requests = %d in a 1 s window at 1000/s, want about 1000", res.Requests)
	}
	if got := res.Latency.Count(); got != int64(res.Requests) {
		t.Errorf("latency count %d, want one per request (%d)", got, res.Requests)
	}
	p50, p99, pmax := res.Latency.Quantile(0.5), res.Latency.Quantile(0.99), res.Latency.Max()
	t.Logf("%d requests, p50 %v, p99 %v, max %v, client CPU %v+%v", res.Requests, p50, p99, pmax, res.ClientUser, res.ClientSys)
	if p99 < 200*time.Millisecond || pmax < 250*time.Millisecond {
		t.Errorf("p99 %v, max %v: want at least 200 ms and 250 ms after a 300 ms stall", p99, pmax)
	}
	if p50 > 100*time.Millisecond {
		t.Errorf("p50 %v: want well under the stall", p50)
	}
}

// An open-loop run whose server falls behind ends once the server has
// answered everything sent, not at the timeout: the batches that came due
// while a send was stuck behind a full socket are sent after the window,
// and answered. The server reads nothing for its first second, so the
// 64 KiB batches, 600 in the window, fill the socket buffers, a send stays
// in flight and the next batches queue behind it.
func TestOpenLoopDrainsQueuedBatches(t *testing.T) { forEngines(t, testOpenLoopDrainsQueuedBatches) }

func testOpenLoopDrainsQueuedBatches(t *testing.T, engine string) {
	const timeout = 30 * time.Second
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		time.Sleep(time.Second) // the behaviour under test: a server behind its load
		io.Copy(c, c)
	})
	start := time.Now()
	res, err := Config{
		Addr: s.addr(), Conns: 1, Size: 64 << 10, Rate: 2000, Duration: 300 * time.Millisecond,
		Timeout: timeout, Engine: engine,
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if res.Errors != 0 {
		t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
	}
	if took > timeout/2 {
		t.Errorf("the run took %v with a timeout of %v: want it to end once the server had answered (about a second)", took, timeout)
	}
}

// The open loop checks every byte too.
func TestOpenLoopDetectsCorruption(t *testing.T) { forEngines(t, testOpenLoopDetectsCorruption) }

func testOpenLoopDetectsCorruption(t *testing.T, engine string) {
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1000)
		for total := 0; ; {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if total <= 1000 && 1000 < total+n {
				buf[1000-total] ^= 0x40
			}
			total += n
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	res, err := Config{Addr: s.addr(), Conns: 1, Size: 100, Depth: 2, Rate: 2000, Duration: 5 * time.Second, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var me *MismatchError
	if res.Errors != 1 || !errors.As(res.FirstErrors[0], &me) {
		t.Fatalf("Errors = %d (%v), want 1 mismatch", res.Errors, res.FirstErrors)
	}
	// Byte 1000 is batch 5 (of 200 bytes), offset 0.
	if me.Batch != 5 || me.Offset != 0 {
		t.Errorf("%v: want batch 5 offset 0", me)
	}
}

const helloBody = "Hello, World!"

func helloServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/plaintext" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, helloBody)
	}))
	t.Cleanup(s.Close)
	return s
}

// chunkedHelloServer answers every request with helloBody in two
// flushed pieces: net/http frames it with chunked encoding.
func chunkedHelloServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, helloBody[:5])
		w.(http.Flusher).Flush()
		io.WriteString(w, helloBody[5:])
	}))
	t.Cleanup(s.Close)
	return s
}

// The HTTP workload against net/http: closed loop with and without
// pipelining, chunked responses, and open loop; every response is
// checked, and counted once in the latency histogram (per batch in a
// closed loop).
func TestHTTP(t *testing.T) { forEngines(t, testHTTP) }

func testHTTP(t *testing.T, engine string) {
	plain := strings.TrimPrefix(helloServer(t).URL, "http://")
	chunked := strings.TrimPrefix(chunkedHelloServer(t).URL, "http://")
	for _, tc := range []struct {
		name         string
		addr         string
		conns, depth int
		rate         float64
	}{
		{name: "depth=1", addr: plain, conns: 4, depth: 1},
		{name: "depth=16", addr: plain, conns: 2, depth: 16},
		{name: "chunked", addr: chunked, conns: 2, depth: 4},
		{name: "open-loop", addr: plain, conns: 2, depth: 1, rate: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := RunSome(t, Config{
				Addr: tc.addr, Workload: HTTP, Conns: tc.conns, Depth: tc.depth, Rate: tc.rate,
				HTTPBody: []byte(helloBody), Duration: 300 * time.Millisecond, Engine: engine,
			}, 1)
			if res.Errors != 0 {
				t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
			}
			if res.Requests == 0 || res.Bytes < res.Requests*uint64(len(helloBody)) {
				t.Errorf("Requests = %d, Bytes = %d: want some, each with its body", res.Requests, res.Bytes)
			}
			if tc.rate == 0 && res.Requests%uint64(tc.depth) != 0 {
				t.Errorf("Requests = %d, want whole batches of %d", res.Requests, tc.depth)
			}
			if got := res.Latency.Count(); got != int64(res.Requests) {
				t.Errorf("latency count %d, want one per request (%d)", got, res.Requests)
			}
		})
	}
}

// The HTTP workload over TLS: every connection shakes hands once, before
// the load, and verifies the server's certificate; pipelined batches, the
// open loop and churn (a handshake per cycle) run over it as in the
// clear, and the server sees every request over TLS.
func TestHTTPTLS(t *testing.T) {
	var cleartext atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			cleartext.Add(1)
		}
		io.WriteString(w, helloBody)
	}))
	s.StartTLS()
	t.Cleanup(s.Close)
	addr := strings.TrimPrefix(s.URL, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	for _, tc := range []struct {
		name         string
		mode         string
		conns, depth int
		rate         float64
	}{
		{name: "depth=1", conns: 4, depth: 1},
		{name: "depth=16", conns: 2, depth: 16},
		{name: "open-loop", conns: 2, depth: 4, rate: 500},
		{name: "churn", mode: Churn, conns: 2, depth: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := RunSome(t, Config{
				Addr: addr, Workload: HTTP, Mode: tc.mode, Conns: tc.conns, Depth: tc.depth, Rate: tc.rate,
				HTTPBody: []byte(helloBody), Duration: 300 * time.Millisecond,
				TLS: &tls.Config{RootCAs: roots},
			}, 1)
			if res.Errors != 0 {
				t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
			}
			if res.Requests == 0 {
				t.Error("no requests")
			}
			if tc.mode == Churn {
				if res.Handshakes < res.Requests {
					t.Errorf("Handshakes = %d over %d churn cycles, want one per cycle at least", res.Handshakes, res.Requests)
				}
			} else if res.Handshakes != uint64(tc.conns) {
				t.Errorf("Handshakes = %d, want one per connection (%d)", res.Handshakes, tc.conns)
			}
		})
	}
	if n := cleartext.Load(); n > 0 {
		t.Errorf("the server saw %d requests in the clear", n)
	}
}

// Over TLS, a server in the clear and a certificate the client does not
// trust fail every connection at its handshake.
func TestHTTPTLSRefused(t *testing.T) {
	clear := helloServer(t)
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, helloBody) }))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	for _, tc := range []struct {
		name, addr, want string
	}{
		{name: "cleartext", addr: strings.TrimPrefix(clear.URL, "http://"), want: "TLS handshake"},
		{name: "untrusted", addr: strings.TrimPrefix(untrusted.URL, "https://"), want: "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Config{
				Addr: tc.addr, Workload: HTTP, Conns: 2, HTTPBody: []byte(helloBody), Duration: 5 * time.Second,
				TLS: &tls.Config{RootCAs: x509.NewCertPool()},
			}.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 2 || res.Handshakes != 0 || res.Requests != 0 || !strings.Contains(res.FirstErrors[0].Error(), tc.want) {
				t.Fatalf("Errors = %d (%v), Handshakes = %d, Requests = %d; want 2 failed handshakes mentioning %q, nothing else",
					res.Errors, res.FirstErrors, res.Handshakes, res.Requests, tc.want)
			}
		})
	}
}

// rawHTTP starts an HTTP/1.1 server that answers the n-th request of a
// connection (from 0) with answer(n); the answers to the requests one
// read brought are written together, by write. served counts the
// answers begun.
func rawHTTP(t *testing.T, answer func(n int) string, write func(c net.Conn, b []byte) error) (addr string, served *atomic.Int64) {
	t.Helper()
	served = new(atomic.Int64)
	s := startServer(t, func(_ *server, c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		var out []byte
		for n := 0; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			served.Add(1)
			out = append(out, answer(n)...)
			if br.Buffered() == 0 {
				if write(c, out) != nil {
					return
				}
				out = out[:0]
			}
		}
	})
	return s.addr(), served
}

// writeBytes writes b a byte at a time (the server's sockets have
// TCP_NODELAY: a segment each).
func writeBytes(c net.Conn, b []byte) error {
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			return err
		}
	}
	return nil
}

// writeOnce writes b in one write.
func writeOnce(c net.Conn, b []byte) error {
	_, err := c.Write(b)
	return err
}

// Responses written a byte at a time, Content-Length and chunked in
// turn, and the responses to a pipelined batch written in one piece, are
// each parsed and counted once: whole batches in a closed loop, what the
// rate scheduled in an open one, never more than the server answered. (A
// response lost stalls the run until its timeout; one counted twice sends
// the next batch early, and its last response comes back beyond it.)
func TestHTTPSplitResponses(t *testing.T) { forEngines(t, testHTTPSplitResponses) }

func testHTTPSplitResponses(t *testing.T, engine string) {
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + helloBody + "\r\n0\r\n\r\n"
	// Padded to the same length, so that Bytes is Requests times it.
	length := "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nX-Pad: \r\n\r\n" + helloBody
	length = strings.Replace(length, "X-Pad: ", "X-Pad: "+strings.Repeat("x", len(chunked)-len(length)), 1)
	if len(length) != len(chunked) {
		t.Fatalf("responses of %d and %d bytes", len(length), len(chunked))
	}
	answer := func(n int) string {
		if n%2 == 0 {
			return length
		}
		return chunked
	}
	for _, tc := range []struct {
		name         string
		write        func(net.Conn, []byte) error
		conns, depth int
		rate         float64
	}{
		{name: "bytes/depth=1", write: writeBytes, conns: 2, depth: 1},
		{name: "bytes/depth=16", write: writeBytes, conns: 2, depth: 16},
		{name: "burst/depth=16", write: writeOnce, conns: 2, depth: 16},
		{name: "bytes/open-loop", write: writeBytes, conns: 2, depth: 2, rate: 500},
		{name: "burst/open-loop", write: writeOnce, conns: 2, depth: 8, rate: 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, served := rawHTTP(t, answer, tc.write)
			cfg := Config{
				Addr: addr, Workload: HTTP, Conns: tc.conns, Depth: tc.depth, Rate: tc.rate,
				HTTPBody: []byte(helloBody), Duration: 300 * time.Millisecond, Engine: engine,
			}
			if tc.rate > 0 {
				cfg.Duration = time.Second
			}
			res, err := cfg.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
			}
			n := res.Requests
			if res.Bytes != n*uint64(len(chunked)) {
				t.Errorf("Requests = %d, Bytes = %d: want responses of %d bytes each", n, res.Bytes, len(chunked))
			}
			if got := res.Latency.Count(); got != int64(n) {
				t.Errorf("latency count %d, want one per request (%d)", got, n)
			}
			if s := uint64(served.Load()); s < n {
				t.Errorf("the server answered %d requests, the generator counted %d", s, n)
			}
			if tc.rate > 0 {
				// What the rate scheduled in the window, and a batch per
				// connection at its start: a slow machine may answer
				// fewer in time, never more.
				sched := tc.rate * res.Elapsed.Seconds()
				if float64(n) < sched/2 || float64(n) > sched+float64(tc.conns*tc.depth) {
					t.Errorf("Requests = %d in %v at %v/s, want about %.0f", n, res.Elapsed, tc.rate, sched)
				}
				return
			}
			if n == 0 || n%uint64(tc.depth) != 0 {
				t.Errorf("Requests = %d: want whole batches of %d", n, tc.depth)
			}
		})
	}
}

// A broken response after good ones, written a byte at a time, fails the
// run at that response, with the ones before it counted: the 4 of the
// whole batches in a closed loop, all 5 open-loop.
func TestHTTPBadResponseMidStream(t *testing.T) { forEngines(t, testHTTPBadResponseMidStream) }

func testHTTPBadResponseMidStream(t *testing.T, engine string) {
	for _, tc := range []struct {
		name string
		rate float64
		want uint64
	}{
		{name: "closed", want: 4},
		{name: "open-loop", rate: 100, want: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := rawHTTP(t, func(n int) string {
				body := helloBody
				if n == 5 {
					body = "Hello, World?"
				}
				return "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + body
			}, writeBytes)
			res, err := Config{
				Addr: addr, Workload: HTTP, Conns: 1, Depth: 2, Rate: tc.rate, HTTPBody: []byte(helloBody),
				Duration: 5 * time.Second, Engine: engine,
			}.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 1 || !errors.Is(res.FirstErrors[0], ErrBadResponse) || !strings.Contains(res.FirstErrors[0].Error(), "batch 2 response 1: body") {
				t.Fatalf("Errors = %d (%v), want one ErrBadResponse at batch 2 response 1", res.Errors, res.FirstErrors)
			}
			if res.Requests != tc.want {
				t.Errorf("Requests = %d, want the %d before the bad response", res.Requests, tc.want)
			}
		})
	}
}

// Wrong bodies, statuses and closing responses are errors.
func TestHTTPBadResponses(t *testing.T) { forEngines(t, testHTTPBadResponses) }

func testHTTPBadResponses(t *testing.T, engine string) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{name: "body", handler: func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "Goodbye") }, want: "body"},
		{name: "status", handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusTeapot) }, want: "418"},
		{name: "close", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, helloBody)
		}, want: "Connection: close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := httptest.NewServer(tc.handler)
			t.Cleanup(s.Close)
			res, err := Config{
				Addr: strings.TrimPrefix(s.URL, "http://"), Workload: HTTP, HTTPBody: []byte(helloBody),
				Duration: 5 * time.Second, Engine: engine,
			}.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 1 || !errors.Is(res.FirstErrors[0], ErrBadResponse) || !strings.Contains(res.FirstErrors[0].Error(), tc.want) {
				t.Fatalf("Errors = %d (%v), want one ErrBadResponse mentioning %q", res.Errors, res.FirstErrors, tc.want)
			}
		})
	}
}

// Churn connects, exchanges once and closes, again and again; idle holds
// its connections open through the window.
func TestChurnAndIdle(t *testing.T) {
	s := startServer(t, echo)
	res := RunSome(t, Config{Addr: s.addr(), Mode: Churn, Conns: 2, Depth: 2, Duration: 300 * time.Millisecond}, 1)
	if res.Errors != 0 || res.Requests == 0 || res.Open > 2 {
		t.Errorf("churn: Errors = %d (%v), Requests = %d, Open = %d; want 0, some, at most 2", res.Errors, res.FirstErrors, res.Requests, res.Open)
	}
	if res.Bytes != res.Requests*2*64 {
		t.Errorf("churn: Bytes = %d, want 2 messages of 64 bytes per connection (%d)", res.Bytes, res.Requests*2*64)
	}

	var edges []int
	res, err := Config{Addr: s.addr(), Mode: Idle, Conns: 20, Duration: 100 * time.Millisecond,
		OnWindow: func(bool) { edges = append(edges, 0) },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Open != 20 || len(edges) != 2 {
		t.Errorf("idle: Errors = %d (%v), Open = %d, %d window edges; want 0, 20, 2", res.Errors, res.FirstErrors, res.Open, len(edges))
	}
}

// The generator's connections can come from any dialer (a transport,
// through transports.DialNet).
func TestDial(t *testing.T) {
	s := startServer(t, echo)
	var dials atomic.Int32
	res, err := Config{
		Addr: s.addr(), Conns: 3, Duration: 100 * time.Millisecond,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || dials.Load() != 3 {
		t.Errorf("Errors = %d (%v), dials = %d; want 0, 3", res.Errors, res.FirstErrors, dials.Load())
	}
}

// A correct echo server passes every check; nothing listening fails one
// check that says so.
func TestCheck(t *testing.T) {
	s := startServer(t, echo)
	for _, r := range Check(context.Background(), "tcp", s.addr(), 10*time.Second) {
		if r.Err != nil || r.Skipped != "" {
			t.Errorf("%s: %v %s", r.Name, r.Err, r.Skipped)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rs := Check(context.Background(), "tcp", addr, 10*time.Second)
	if len(rs) != 1 || rs[0].Name != "connect" || rs[0].Err == nil {
		t.Errorf("nothing listening: %+v, want one failed connect", rs)
	}
}

// Without HTTPBody, TechEmpower's paths are checked: /plaintext's body
// exactly, /json's as JSON (another encoding of the same object passes, a
// different object fails); other paths take any body.
func TestHTTPTechEmpowerBodies(t *testing.T) { forEngines(t, testHTTPTechEmpowerBodies) }

func testHTTPTechEmpowerBodies(t *testing.T, engine string) {
	server := func(plaintext, json string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/plaintext":
				io.WriteString(w, plaintext)
			case "/json":
				io.WriteString(w, json)
			default:
				io.WriteString(w, "anything")
			}
		}))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	good := server(PlaintextBody, "{ \"message\" : \"Hello, World!\" }\n")
	bad := server("Hello, World?", `{"message":"Hello, World?"}`)
	for _, tc := range []struct {
		addr, path string
		ok         bool
	}{
		{good, "/plaintext", true}, {good, "/json", true}, {good, "/other", true},
		{bad, "/plaintext", false}, {bad, "/json", false}, {bad, "/other", true},
	} {
		res := RunSome(t, Config{Addr: tc.addr, Workload: HTTP, HTTPPath: tc.path, Depth: 4, Duration: 100 * time.Millisecond, Engine: engine}, 1)
		switch {
		case tc.ok && (res.Errors != 0 || res.Requests == 0):
			t.Errorf("%s: %d requests, %d errors %v; want some and none", tc.path, res.Requests, res.Errors, res.FirstErrors)
		case !tc.ok && (res.Errors == 0 || !errors.Is(res.FirstErrors[0], ErrBadResponse)):
			t.Errorf("%s with a wrong body: %d errors %v; want a bad response", tc.path, res.Errors, res.FirstErrors)
		}
	}
}

// HTTPPath /echo posts Size bytes per request, pipelined, and checks that
// each comes back; batches past inlineWrite are written while read; a
// server that changes one byte fails the run at that byte.
func TestHTTPEcho(t *testing.T) { forEngines(t, testHTTPEcho) }

func testHTTPEcho(t *testing.T, engine string) {
	server := func(corrupt int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != EchoPath {
				http.NotFound(w, r)
				return
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if corrupt < len(b) {
				b[corrupt] ^= 1
			}
			w.Write(b)
		}))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	good := server(1 << 30)
	for _, tc := range []struct{ size, depth int }{{1, 16}, {100, 16}, {100 << 10, 4}} {
		res := RunSome(t, Config{Addr: good, Workload: HTTP, HTTPPath: EchoPath, Conns: 2, Size: tc.size, Depth: tc.depth, Duration: 200 * time.Millisecond, Engine: engine}, 1)
		if res.Errors != 0 || res.Requests == 0 || res.Bytes < res.Requests*uint64(tc.size) {
			t.Errorf("size %d depth %d: %d requests, %d bytes, %d errors %v; want some, each with its body, and no error",
				tc.size, tc.depth, res.Requests, res.Bytes, res.Errors, res.FirstErrors)
		}
	}
	res, err := Config{Addr: server(5000), Workload: HTTP, HTTPPath: EchoPath, Size: 8000, Depth: 2, Duration: 100 * time.Millisecond, Engine: engine}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || !errors.Is(res.FirstErrors[0], ErrBadResponse) || !strings.Contains(res.FirstErrors[0].Error(), "differs at byte 5000") {
		t.Errorf("a server that flips byte 5000: %d errors %v; want the bad byte reported", res.Errors, res.FirstErrors)
	}
}

// TestWindowEdgesAreOneMoment has completions race the window's edges: a
// window's requests, bytes and recorded latencies must agree however the
// completions fall on its edges.
func TestWindowEdgesAreOneMoment(t *testing.T) {
	const size = 64
	r := newRun(Config{Conns: 4, Size: size, Duration: time.Second})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					r.done(i, 1, size, time.Microsecond)
				}
			}
		})
	}
	var requests uint64
	for range 2000 {
		w := r.openWindow()
		runtime.Gosched()
		res := r.closeWindow(w)
		if res.Bytes != res.Requests*size {
			t.Fatalf("a window counted %d requests and %d bytes, want %d bytes", res.Requests, res.Bytes, res.Requests*size)
		}
		requests += res.Requests
	}
	close(stop)
	wg.Wait()
	if got := r.hist.merge().Count(); uint64(got) != requests {
		t.Fatalf("windows counted %d requests and recorded %d latencies", requests, got)
	}
}
