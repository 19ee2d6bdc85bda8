package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// availableTransports returns the registered transports this host runs.
func availableTransports(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, d := range transports.Drivers() {
		if _, err := d.Probe(); err == nil {
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		t.Fatal("no transport is available")
	}
	return names
}

// The external client's load over the matrix of connections, depths and
// sizes, on every transport: every byte must come back, on every
// connection.
func TestServeExternalLoad(t *testing.T) {
	for _, tr := range availableTransports(t) {
		t.Run("transport="+tr, func(t *testing.T) { externalLoad(t, tr) })
	}
}

func externalLoad(t *testing.T, tr string) {
	start := time.Now()
	s := startServe(t, nil, "-transport", tr, "-addr", "127.0.0.1:0", "-stats")
	if s.transport != tr {
		t.Errorf("listening line names transport %q, want %s", s.transport, tr)
	}
	summary := regexp.MustCompile(`requests=(\d+) `)
	var accepted uint64
	for _, conns := range []int{8, 64} {
		for _, depth := range []int{1, 16} {
			for _, size := range []int{64, 4 << 10, 64 << 10} {
				t.Run(fmt.Sprintf("conns=%d/depth=%d/size=%d", conns, depth, size), func(t *testing.T) {
					r := echoClient(t, "load", "--addr", s.addr, "--conns", strconv.Itoa(conns),
						"--depth", strconv.Itoa(depth), "--size", strconv.Itoa(size), "--seconds", "1")
					if r.status != 0 {
						t.Fatalf("echoclient load: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
					}
					m := summary.FindStringSubmatch(r.stdout)
					if m == nil {
						t.Fatalf("no summary line in echoclient's output:\n%s", r.stdout)
					}
					// Each connection finishes at least the batch it began.
					if n, _ := strconv.Atoi(m[1]); n < conns*depth {
						t.Errorf("%d requests echoed, want at least %d (one batch per connection)", n, conns*depth)
					}
					t.Logf("%s(%v)", r.stdout, r.elapsed.Round(time.Millisecond))
				})
				accepted += uint64(conns)
			}
		}
	}
	if !s.running() {
		t.Fatalf("merlin serve exited during the load\nstderr:\n%s", s.stderr)
	}
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
	}
	st := statsOf(t, s.stdout.String())
	if st["accepted"] != accepted || st["closed"] != accepted || st["open"] != 0 {
		t.Errorf("stats: accepted=%d closed=%d open=%d, want %d, %d, 0", st["accepted"], st["closed"], st["open"], accepted, accepted)
	}
	t.Logf("whole matrix with server start and stop: %v", time.Since(start).Round(time.Millisecond))
}

// Clients that reset, half-close and read slowly do not hurt the server:
// the external client checks every echo and that the server still answers,
// and so does a Go client afterwards.
func TestServeExternalAbuse(t *testing.T) {
	for _, tr := range availableTransports(t) {
		t.Run("transport="+tr, func(t *testing.T) { externalAbuse(t, tr) })
	}
}

func externalAbuse(t *testing.T, tr string) {
	s := startServe(t, nil, "-transport", tr, "-addr", "127.0.0.1:0")
	r := echoClient(t, "abuse", "--addr", s.addr)
	if r.status != 0 {
		t.Fatalf("echoclient abuse: exit status %d\nstdout:\n%s\nstderr:\n%s\nserver stderr:\n%s", r.status, r.stdout, r.stderr, s.stderr)
	}
	t.Logf("%s(%v)", r.stdout, r.elapsed.Round(time.Millisecond))
	echoOnce(t, s.network, s.addr, payload(100<<10))
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
	}
}

// A burst of connections past the server's descriptor limit: accept fails
// with EMFILE for a while, the accepted connections are still served, and
// once the burst is released the server accepts and serves again.
func TestServeDescriptorLimit(t *testing.T) {
	const limit, burst = 128, 300
	// Go raises the soft limit to the hard one at start, so the hard
	// limit is what counts.
	wrap := []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, limit)}
	if p, err := exec.LookPath("prlimit"); err == nil {
		wrap = []string{p, fmt.Sprintf("--nofile=%d:%d", limit, limit), "--"}
	}
	s := startServe(t, wrap, "-transport", "sockets", "-addr", "127.0.0.1:0", "-stats")
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(fmt.Sprintf(`Max open files\s+%d\s+%d`, limit, limit)).Match(limits) {
		t.Fatalf("the server does not run with %d descriptors:\n%s", limit, limits)
	}

	conns := make([]net.Conn, 0, burst)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range burst {
		// The kernel completes the handshake from the listen backlog
		// even while the server cannot accept.
		c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// The first connection was accepted before the limit: it is served.
	echoOn(t, conns[0], payload(1000))
	if !s.running() {
		t.Fatalf("merlin serve exited during the burst\nstderr:\n%s", s.stderr)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]

	// A new connection waits behind the released ones in the backlog, and
	// for the accept back-off (at most 1 s): the deadline covers both.
	echoOnce(t, "tcp", s.addr, payload(4000))
	if !s.running() {
		t.Fatalf("merlin serve exited after the burst\nstderr:\n%s", s.stderr)
	}
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
	}
	st := statsOf(t, s.stdout.String())
	if st["accept_errors"] == 0 {
		t.Errorf("stats: accept_errors=0: the burst never hit the descriptor limit (or EMFILE is not counted)")
	}
	if want := uint64(burst + 1); st["accepted"] != want || st["open"] != 0 {
		t.Errorf("stats: accepted=%d open=%d, want %d (every connection of the burst, and one more) and 0", st["accepted"], st["open"], want)
	}
}

// SIGTERM and SIGINT shut the server down gracefully: an open connection
// gets the server's FIN (not a reset), and once the client closes too the
// server exits 0, having printed nothing but its one line.
func TestServeSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0")
			c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoOn(t, c, payload(2000))

			if err := s.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(ioTimeout))
			var b [1]byte
			if n, err := c.Read(b[:]); err != io.EOF {
				t.Fatalf("client read after %v: %d bytes, %v; want io.EOF (the server's FIN)", sig, n, err)
			}
			c.Close()
			if status := s.wait(t); status != 0 {
				t.Fatalf("exit status %d after %v, want 0\nstderr:\n%s", status, sig, s.stderr)
			}
			if !listeningRE.MatchString(s.stdout.String()) || strings.Count(s.stdout.String(), "\n") != 1 {
				t.Errorf("stdout is not exactly the one listening line:\n%s", s.stdout)
			}
			if !strings.Contains(s.stderr.String(), "shut down") {
				t.Errorf("stderr does not log the shutdown:\n%s", s.stderr)
			}
		})
	}

	// A client that neither closes nor reads holds its connection past
	// -shutdown-timeout (Close waits CloseLinger, 2 s, for its FIN): the
	// server aborts it, says so, and exits 1.
	t.Run("shutdown-timeout", func(t *testing.T) {
		s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0", "-shutdown-timeout", "200ms")
		c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOn(t, c, payload(10))
		if status := s.stop(t, syscall.SIGTERM); status != 1 {
			t.Fatalf("exit status %d, want 1\nstderr:\n%s", status, s.stderr)
		}
		if !strings.Contains(s.stderr.String(), "aborted") {
			t.Errorf("stderr does not say connections were aborted:\n%s", s.stderr)
		}
	})
}

// serve on a unix socket, driven by merlin load and the external client.
func TestServeUnix(t *testing.T) {
	dir, err := os.MkdirTemp("", "merlin") // short: socket paths have 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	s := startServe(t, nil, "-transport", "sockets", "-network", "unix", "-addr", path)
	if s.addr != path {
		t.Fatalf("listening on %q, want %q", s.addr, path)
	}
	r := merlin(t, "load", "-network", "unix", "-addr", path, "-conns", "4", "-depth", "4", "-size", "1k", "-duration", "500ms")
	if r.status != 0 || !strings.Contains(r.stdout, "BenchmarkLoad/app=echo/conns=4/size=1024/depth=4 ") {
		t.Errorf("merlin load over unix: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	r = echoClient(t, "load", "--addr", path, "--conns", "4", "--depth", "16", "--size", "4096", "--seconds", "0.5")
	if r.status != 0 {
		t.Errorf("echoclient load over unix: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if status := s.stop(t, syscall.SIGINT); status != 0 {
		t.Fatalf("exit status %d after SIGINT, want 0\nstderr:\n%s", status, s.stderr)
	}
	// The socket file is gone, so the same command can start again.
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after exit: %v, want it removed", err)
	}
}

// -netconn serves echo behind the net.Conn adapter; SIGUSR1 prints the
// counters while serving; -cpuprofile and -trace are complete at exit and
// -pprof serves net/http/pprof on its own listener.
func TestServeNetConnProfiling(t *testing.T) {
	dir := t.TempDir()
	cpu, trc := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "trace.out")
	s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0", "-netconn",
		"-cpuprofile", cpu, "-trace", trc, "-pprof", "127.0.0.1:0")
	echoOnce(t, s.network, s.addr, payload(300<<10))
	r := echoClient(t, "abuse", "--addr", s.addr)
	if r.status != 0 {
		t.Fatalf("echoclient abuse on -netconn: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}

	m := regexp.MustCompile(`msg=pprof addr=(\S+)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no pprof address logged:\n%s", s.stderr)
	}
	c := http.Client{Timeout: ioTimeout}
	resp, err := c.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("pprof: status %d, body %.200q", resp.StatusCode, body)
	}

	s.cmd.Process.Signal(syscall.SIGUSR1)
	if !s.stdout.waitFor("\nstats ", ioTimeout) {
		t.Fatalf("no stats line within %v of SIGUSR1:\n%s", ioTimeout, s.stdout)
	}
	if st := statsOf(t, s.stdout.String()); st["accepted"] == 0 || st["bytes_in"] < 300<<10 {
		t.Errorf("stats after an exchange of 300 KiB: %v", st)
	}
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM\nstderr:\n%s", status, s.stderr)
	}
	for _, f := range []string{cpu, trc} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v, want a non-empty file", f, err)
		}
	}
}
