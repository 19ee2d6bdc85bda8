package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the merlin binary, built once by TestMain (with -race
// when the tests are), as a user would, and check `merlin serve` from
// outside with testdata/echoclient.py, a client written in
// Python that shares no code with merlin.

// merlinBin is the path of the binary under test.
var merlinBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "merlin-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	merlinBin = filepath.Join(dir, "merlin")
	args := []string{"build", "-ldflags=-checklinkname=0", "-o", merlinBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	start := time.Now()
	out, err := exec.Command(goTool(), append(args, "github.com/merlin-net/merlin/cmd/merlin")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building merlin: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Printf("built merlin (race: %v) in %v\n", raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool returns the go command that runs these tests: go test puts its
// own GOROOT's bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// Deadlines. They are generous: the machine has 2 cores and the server may
// run under the race detector.
const (
	startTimeout = 30 * time.Second // until "listening on"
	exitTimeout  = 30 * time.Second // from a signal until exit
	ioTimeout    = 10 * time.Second // any client read or write
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
// Once a line is complete it closes line (the first line only).
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	line    chan struct{}
	changed chan struct{} // closed and replaced at each write; guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	had := bytes.IndexByte(b.buf.Bytes(), '\n') >= 0
	b.buf.Write(p)
	if !had && b.line != nil && bytes.IndexByte(b.buf.Bytes(), '\n') >= 0 {
		close(b.line)
	}
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return len(p), nil
}

// waitFor waits until the buffer holds s, for at most timeout.
func (b *syncBuffer) waitFor(s string, timeout time.Duration) bool {
	return waitForAny(b, []string{s}, nil, timeout) == 0
}

// waitForAny waits until b holds one of strs and returns its index; -1 if
// done is closed or timeout passes first. A nil done never ends the wait.
func waitForAny(b *syncBuffer, strs []string, done <-chan struct{}, timeout time.Duration) int {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		for i, s := range strs {
			if strings.Contains(b.buf.String(), s) {
				b.mu.Unlock()
				return i
			}
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-done:
			return -1
		case <-deadline:
			return -1
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a running `merlin serve`.
type server struct {
	cmd            *exec.Cmd
	network, addr  string // from the "listening on" line
	transport      string
	stdout, stderr *syncBuffer
	done           chan struct{} // closed once the process has exited
	waitErr        error         // cmd.Wait's result, set before done closes
}

var listeningRE = regexp.MustCompile(`^listening on (\S+) \(transport (\S+)\)\n`)

// startServe runs `merlin serve` with args (under the command prefix
// wrap, if any: "prlimit ...") and returns once it has printed its
// "listening on" line. A server still running at the end of the test is
// killed.
func startServe(t *testing.T, wrap []string, args ...string) *server {
	t.Helper()
	argv := append(append(append([]string{}, wrap...), merlinBin, "serve"), args...)
	s := &server{
		cmd:    exec.Command(argv[0], argv[1:]...),
		stdout: &syncBuffer{line: make(chan struct{})},
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.cmd.Env = childEnv()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
			t.Logf("killed the server still running at the end; its stderr:\n%s", s.stderr)
		}
	})

	select {
	case <-s.stdout.line:
	case <-s.done:
		t.Fatalf("merlin serve %v exited before listening: %v\nstdout:\n%s\nstderr:\n%s", args, s.waitErr, s.stdout, s.stderr)
	case <-time.After(startTimeout):
		t.Fatalf("merlin serve %v printed no line within %v\nstderr:\n%s", args, startTimeout, s.stderr)
	}
	m := listeningRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("merlin serve's first line is not \"listening on ADDR (transport NAME)\": %q", s.stdout)
	}
	s.addr, s.transport = m[1], m[2]
	s.network = "tcp"
	if strings.HasPrefix(s.addr, "/") {
		s.network = "unix"
	}
	return s
}

// running reports whether the server process has not exited.
func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends sig and returns the exit status once the process has exited.
func (s *server) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	return s.wait(t)
}

// wait returns the exit status once the process has exited; a death by
// signal fails t.
func (s *server) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(exitTimeout):
		t.Fatalf("merlin serve did not exit within %v\nstderr:\n%s", exitTimeout, s.stderr)
	}
	ps := s.cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("merlin serve died of %v\nstderr:\n%s", ws.Signal(), s.stderr)
	}
	return ps.ExitCode()
}

// echoOnce makes one connection to addr and checks that msg comes back.
func echoOnce(t *testing.T, network, addr string, msg []byte) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	echoOn(t, c, msg)
}

// echoOn writes msg on c and checks that it comes back.
func echoOn(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if n, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read of the echo: %d of %d bytes, then %v", n, len(msg), err)
	}
	if i := firstDiff(msg, got); i >= 0 {
		t.Fatalf("echo differs at byte %d: want %#02x, got %#02x", i, msg[i], got[i])
	}
}

// firstDiff returns the offset of the first difference of a and b (of the
// same length), or -1.
func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// payload returns n bytes that are not a short repetition.
func payload(n int) []byte {
	p := make([]byte, n)
	x := uint32(2463534242)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
}

// childEnv is the environment of the commands the tests run. A binary
// built with -race sleeps 1 s at exit (GORACE atexit_sleep_ms) unless told
// otherwise; a race it found still makes it exit 66, which fails the test.
func childEnv() []string {
	if _, set := os.LookupEnv("GORACE"); set {
		return os.Environ()
	}
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0")
}

// result is the outcome of a command run to completion.
type result struct {
	status         int
	stdout, stderr string
	elapsed        time.Duration
}

// runCmd runs argv to completion within timeout.
func runCmd(t *testing.T, timeout time.Duration, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%v did not finish within %v\nstdout:\n%s\nstderr:\n%s", argv, timeout, r.stdout, r.stderr)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("%v died of %v\nstderr:\n%s", argv, ws.Signal(), r.stderr)
		}
		r.status = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", argv, err)
	}
	return r
}

// merlin runs the merlin binary with args to completion.
func merlin(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, 2*time.Minute, append([]string{merlinBin}, args...)...)
}

// echoClient runs testdata/echoclient.py with args to
// completion. A host without python3 fails the test: the external client is
// part of what the tests require.
func echoClient(t *testing.T, args ...string) result {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is not in PATH (%v): these tests check merlin serve with an external client written in Python, testdata/echoclient.py; install python3 (.ci/run does)", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "echoclient.py"))
	if err != nil {
		t.Fatal(err)
	}
	return runCmd(t, 2*time.Minute, append([]string{py, script}, args...)...)
}

// statsOf returns the counters of the "stats ..." line in out (serve
// -stats), by key.
func statsOf(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		fields, ok := strings.CutPrefix(line, "stats ")
		if !ok {
			continue
		}
		m := map[string]uint64{}
		for _, f := range strings.Fields(fields) {
			var v uint64
			k, vs, _ := strings.Cut(f, "=")
			if _, err := fmt.Sscan(vs, &v); err != nil {
				t.Fatalf("stats field %q: %v", f, err)
			}
			m[k] = v
		}
		return m
	}
	t.Fatalf("no stats line in stdout:\n%s", out)
	return nil
}
