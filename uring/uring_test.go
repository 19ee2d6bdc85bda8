package uring_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/conformance"
	"github.com/merlin-net/merlin/internal/testutil"
	_ "github.com/merlin-net/merlin/sockets"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/uring"
)

// TestConformance runs the whole suite on the default options: thread
// loops, and runtime loops for the net.Conn adapter's cases (park=auto).
func TestConformance(t *testing.T) { conformance.Run(t, "uring") }

// TestConformanceRuntimeLoops runs the whole suite with every handler's
// conns on runtime loops, which park in the Go runtime's netpoller.
func TestConformanceRuntimeLoops(t *testing.T) { conformance.Run(t, "uring:park=runtime") }

// TestSmoke runs the smoke subset with the other option sets: SQPOLL,
// fixed files off, sends that wait for room from the first (inline sends
// off), the MSG_RING accept mode, zero-copy sends for everything of 1 KiB
// and more, batched raw waits (minwait, rawwait), and runtime loops for
// every handler (park=runtime), alone and handing descriptors over with
// MSG_RING.
func TestSmoke(t *testing.T) {
	for _, spec := range []string{
		"uring:sqpoll=true",
		"uring:fixedfiles=false",
		"uring:inlinesend=false",
		"uring:accept=msgring",
		"uring:zerocopy=1k,bufsize=16k,bufcount=64",
		"uring:minwait=50us,rawwait=1ms",
		"uring:park=runtime",
		"uring:park=runtime,accept=msgring",
	} {
		t.Run(spec, func(t *testing.T) { conformance.Smoke(t, spec) })
	}
}

// quiet is a Config whose log is discarded.
func quiet() transports.Config {
	return transports.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// echo writes back what it receives and records OnClose errors.
type echo struct {
	mu     sync.Mutex
	errs   []error
	closed atomic.Int64
}

func (*echo) OnOpen(transports.Conn) {}
func (*echo) OnData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}
func (e *echo) OnClose(_ transports.Conn, err error) {
	if err != nil {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
	}
	e.closed.Add(1)
}

// TestFewBuffers: with 4 provided buffers of 4 KiB for one loop, 64 connections
// sending at once run the buffer ring dry again and again. Every recv
// that ends with ENOBUFS must be re-armed: no byte and no connection may
// be lost.
func TestFewBuffers(t *testing.T) {
	const (
		conns = 64
		size  = 256 << 10
	)
	base := testutil.TakeBaseline()
	cfg := quiet()
	cfg.Loops = 1
	tr, err := transports.Open("uring:bufcount=4,bufsize=4k", cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &echo{}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range conns {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			if _, err := c.Write(payload); err != nil {
				t.Errorf("conn %d: write: %v", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			defer c.Close()
			got := make([]byte, size)
			if n, err := io.ReadFull(c, got); err != nil {
				t.Errorf("conn %d: read %d of %d echoed bytes: %v", i, n, size, err)
				return
			}
			if !bytes.Equal(got, payload) {
				i0 := 0
				for got[i0] == payload[i0] {
					i0++
				}
				t.Errorf("conn %d: echo differs at offset %d", i, i0)
			}
		}()
	}
	close(start)
	wg.Wait()
	for deadline := time.Now().Add(10 * time.Second); h.closed.Load() < conns && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	st := tr.Stats()
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := h.closed.Load(); n != conns {
		t.Errorf("%d OnClose calls, want %d", n, conns)
	}
	for _, err := range h.errs {
		t.Errorf("OnClose err = %v, want nil (the client closed)", err)
	}
	if st.Extra["enobufs"] == 0 {
		t.Errorf("no ENOBUFS with 4 buffers and %d connections: the case tested nothing (Stats %+v)", conns, st)
	}
	t.Logf("%d ENOBUFS, buffer low-water %d, %d CQEs in %d submissions", st.Extra["enobufs"], st.Extra["buf_low_water"], st.Extra["cqes"], st.Extra["submissions"])
	base.Check(t, 10*time.Second)
}

// TestStats checks the io_uring counters Stats names.
func TestStats(t *testing.T) {
	tr, err := transports.Open("uring", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	st := tr.Stats()
	for _, k := range []string{"submissions", "sqes", "cqes", "cqes_per_enter_x1000", "enobufs", "buf_low_water", "zc_sends", "cancels", "setup_flags"} {
		if _, ok := st.Extra[k]; !ok {
			t.Errorf("Stats.Extra has no %q: %v", k, st.Extra)
		}
	}
	if st.Extra["setup_flags"] == 0 {
		t.Errorf("setup_flags = 0, want the flags in use")
	}
}

// TestBadOptions checks that option values out of range are refused at
// Open with an error naming the key.
func TestBadOptions(t *testing.T) {
	for _, spec := range []string{"uring:entries=0", "uring:entries=65536", "uring:rawwait=20ms"} {
		tr, err := transports.Open(spec, quiet())
		if err == nil {
			tr.Close()
			t.Errorf("Open(%q) succeeded, want an error", spec)
			continue
		}
		key := strings.TrimPrefix(strings.SplitN(spec, "=", 2)[0], "uring:")
		if !strings.Contains(err.Error(), key) {
			t.Errorf("Open(%q) = %v, want an error naming %q", spec, err, key)
		}
	}
}

// TestRawWaitYields checks that a loop does not wait raw, holding its P,
// while goroutines post work to it: with GOMAXPROCS=1, an echo served by
// goroutines through the net.Conn adapter would otherwise find its
// handler goroutine stuck behind a raw wait until sysmon preempted the
// loop, 10 ms later, on every round trip (raw_waits would count about
// one per round trip, and the test would take seconds). The adapter's conns
// are on thread loops here (park=thread): by default they go to runtime
// loops, which never wait in io_uring_enter.
func TestRawWaitYields(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	tr, err := transports.Open("uring:rawwait=5ms,park=thread", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln := testutil.NetEcho(t, tr)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	const trips = 200
	msg, got := bytes.Repeat([]byte("r"), 64), make([]byte, 64)
	for range trips {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.Stats().Extra["raw_waits"]; n > trips/4 {
		t.Errorf("raw_waits = %d after %d round trips through the net.Conn adapter: raw waits held the P from the handler goroutines", n, trips)
	}
}

// envSeccompChild marks the re-executed test binary of TestDisabled.
const envSeccompChild = "MERLIN_URING_SECCOMP_CHILD"

// TestDisabled runs, in a child process whose seccomp filter makes
// io_uring_setup fail with EPERM (as sysctl kernel.io_uring_disabled or a
// container's profile does), Open("uring"), which must fail with an error
// wrapping errors.ErrUnsupported that says io_uring is disabled, and
// Open("auto"), which must pick another transport and say why.
func TestDisabled(t *testing.T) {
	if os.Getenv(envSeccompChild) != "" {
		disabledChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisabled$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envSeccompChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v; its output:\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestDisabled")) {
		t.Fatalf("child did not pass; its output:\n%s", out)
	}
}

// disabledChild is TestDisabled's child.
func disabledChild(t *testing.T) {
	if err := denyIOUringSetup(); err != nil {
		t.Fatalf("installing the seccomp filter: %v", err)
	}
	_, err := transports.Open("uring", quiet())
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("Open(uring) with io_uring_setup denied: %v; want an error wrapping errors.ErrUnsupported saying io_uring is disabled", err)
	}
	t.Logf("Open(uring): %v", err)
	var log bytes.Buffer
	tr, err := transports.Open("auto", transports.Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("Open(auto): %v", err)
	}
	defer tr.Close()
	if tr.Name() == "uring" {
		t.Fatalf("auto picked uring with io_uring disabled")
	}
	if !strings.Contains(log.String(), "uring") || !strings.Contains(log.String(), "disabled") {
		t.Errorf("auto's log does not say why uring was passed over: %q", log.String())
	}
	t.Logf("auto: %s", strings.TrimSpace(log.String()))
}

// denyIOUringSetup installs, on every thread of the process, a seccomp
// filter that makes io_uring_setup fail with EPERM and allows everything
// else (the syscall number is the same on amd64 and arm64).
func denyIOUringSetup() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	const (
		retErrno = 0x00050000 // SECCOMP_RET_ERRNO
		retAllow = 0x7fff0000 // SECCOMP_RET_ALLOW
	)
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_IO_URING_SETUP},
		{Code: unix.BPF_RET | unix.BPF_K, K: retErrno | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: retAllow},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if e != 0 {
		return e
	}
	return nil
}
