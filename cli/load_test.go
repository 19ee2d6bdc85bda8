package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var benchRE = regexp.MustCompile(`(?m)^BenchmarkLoad/app=echo/conns=8/size=4096/depth=4 (\d+) [0-9.]+ ns/op [0-9.]+ req/s [0-9.]+ MB/s 0 errors [0-9]+ client-cpu-ns/req$`)

// merlin load against merlin serve prints its result and a Go benchmark
// line, and exits 0.
func TestLoad(t *testing.T) {
	s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0")
	r := merlin(t, "load", "-addr", s.addr, "-conns", "8", "-size", "4k", "-depth", "4", "-duration", "1s")
	if r.status != 0 {
		t.Fatalf("merlin load: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	m := benchRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no benchmark line in merlin load's output:\n%s", r.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n < 8*4 {
		t.Errorf("N = %d requests, want at least one batch per connection (32)", n)
	}
	for _, want := range []string{"requests: ", "req/s", "MB/s", "errors: 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	t.Logf("(%v)\n%s", r.elapsed, r.stdout)
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
	}
}

// corruptingServer listens on loopback and echoes every connection's
// stream with the byte at offset at flipped. It is stopped by t.Cleanup.
func corruptingServer(t *testing.T, at int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		cs []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			cs = append(cs, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for total := 0; ; {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if total <= at && at < total+n {
						buf[at-total] ^= 1
					}
					total += n
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range cs {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Both load generators catch a server that corrupts one byte: they exit
// non-zero and say where.
func TestLoadDetectsCorruption(t *testing.T) {
	addr := corruptingServer(t, 1000)
	r := merlin(t, "load", "-addr", addr, "-conns", "2", "-size", "100", "-depth", "4", "-duration", "2s")
	if r.status != 1 || !strings.Contains(r.stdout, "echo differs at byte 200") || !strings.Contains(r.stdout, " 2 errors") {
		t.Errorf("merlin load against a corrupting server: exit status %d, want 1 and the difference at byte 200 of batch 2 on both connections\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	r = echoClient(t, "load", "--addr", addr, "--conns", "2", "--size", "100", "--depth", "4", "--seconds", "2")
	if r.status != 1 || !strings.Contains(r.stderr, "mismatch") || !strings.Contains(r.stderr, "differs at byte 200 ") {
		t.Errorf("echoclient load against a corrupting server: exit status %d, want 1 and the mismatch at byte 200\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

// The open loop at a fixed rate reports latency percentiles, and with -pid
// the server's CPU time; churn and idle run too; -json gives the same as
// JSON.
func TestLoadModes(t *testing.T) {
	s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0")
	pid := strconv.Itoa(s.cmd.Process.Pid)
	r := merlin(t, "load", "-addr", s.addr, "-conns", "4", "-rate", "2000", "-warmup", "100ms", "-duration", "1s", "-pid", pid)
	if r.status != 0 {
		t.Fatalf("open loop: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	for _, want := range []string{"open loop at 2000 req/s", "latency (from scheduled send): p50 ", "client CPU: user ", "server CPU: user ",
		"BenchmarkLoad/app=echo/conns=4/size=64/depth=1/rate=2000 ", " p99.9-ns ", " user-ns/req "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("open-loop output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "client-bound") {
		t.Errorf("an open-loop run is labelled client-bound:\n%s", r.stdout)
	}

	r = merlin(t, "load", "-addr", s.addr, "-conns", "2", "-mode", "churn", "-duration", "500ms", "-json")
	var rep loadReport
	if r.status != 0 {
		t.Fatalf("churn: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("churn -json: %v\n%s", err, r.stdout)
	}
	if rep.Mode != "churn" || rep.Requests == 0 || rep.Errors != 0 || rep.Name != "BenchmarkLoad/app=echo/mode=churn/conns=2/size=64/depth=1" {
		t.Errorf("churn: %+v", rep)
	}

	r = merlin(t, "load", "-addr", s.addr, "-conns", "50", "-mode", "idle", "-duration", "200ms")
	if r.status != 0 || !strings.Contains(r.stdout, "open connections at the end: 50\n") {
		t.Errorf("idle: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
	}
}

// The generator's connections can go through a transport.
func TestLoadClientTransport(t *testing.T) {
	s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0")
	r := merlin(t, "load", "-addr", s.addr, "-conns", "4", "-depth", "8", "-duration", "300ms", "-transport", "sockets")
	if r.status != 0 || !strings.Contains(r.stdout, "client transport sockets") || !strings.Contains(r.stdout, "errors: 0") {
		t.Errorf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	s.stop(t, syscall.SIGTERM)
}

// The http workload against net/http: pipelined GETs with keep-alive,
// every body checked; a wrong body fails the run.
func TestLoadHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Hello, World!")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	r := merlin(t, "load", "-app", "http", "-addr", addr, "-conns", "2", "-depth", "16", "-duration", "300ms", "-body", "Hello, World!")
	if r.status != 0 || !strings.Contains(r.stdout, "BenchmarkLoad/app=http/conns=2/depth=16 ") {
		t.Errorf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	r = merlin(t, "load", "-app", "http", "-addr", addr, "-conns", "1", "-duration", "300ms", "-body", "Goodbye")
	if r.status != 1 || !strings.Contains(r.stdout, "bad HTTP response") {
		t.Errorf("wrong body: exit status %d, want 1 and the bad response\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

// -check grades an echo server: merlin serve passes every check; a server
// that corrupts a byte, or one that drops the echo at the client's FIN,
// fails the check concerned.
func TestLoadCheck(t *testing.T) {
	s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0")
	r := merlin(t, "load", "-check", s.addr)
	if r.status != 0 || !strings.Contains(r.stdout, "all 8 checks passed") {
		t.Errorf("merlin serve: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	t.Logf("(%v)\n%s", r.elapsed.Round(time.Millisecond), r.stdout)
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM\nstderr:\n%s", status, s.stderr)
	}

	r = merlin(t, "load", "-check", corruptingServer(t, 100000), "-checks", "pipelined,fin-only")
	if r.status != 1 || !regexp.MustCompile(`FAIL +pipelined +connection \d+: echo differs at byte 100000 `).MatchString(r.stdout) {
		t.Errorf("corrupting server: exit status %d, want 1 and pipelined failing\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}

	r = merlin(t, "load", "-check", rudeServer(t), "-checks", "pipelined,half-close")
	if r.status != 1 || !strings.Contains(r.stdout, "FAIL  half-close") || !strings.Contains(r.stdout, "ok    pipelined") {
		t.Errorf("server resetting at FIN: exit status %d, want 1 and half-close failing, pipelined passing\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

// rudeServer echoes, but answers the client's FIN with a reset instead
// of its own FIN.
func rudeServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cs []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			cs = append(cs, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if err == io.EOF {
						c.(*net.TCPConn).SetLinger(0) // reset at FIN
						return
					}
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range cs {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
