package uring

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// openT opens spec with Loops loops and a discarding log; the transport
// is closed at the end of the test, before the leak check that the
// caller registers first.
func openT(t *testing.T, spec string, loops int) *Transport {
	t.Helper()
	tr, err := transports.Open(spec, transports.Config{Loops: loops, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr.(*Transport)
}

// leakCheck fails t if it leaves goroutines or descriptors behind; call it
// first, so that it runs after the other cleanups.
func leakCheck(t *testing.T) {
	base := testutil.TakeBaseline()
	t.Cleanup(func() { base.Check(t, 10*time.Second) })
}

// onLoop runs f on l and waits for it.
func onLoop(t *testing.T, l *loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	l.postTask(func() { f(); close(done) })
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the loop did not run a posted task within 20s")
	}
}

// stackHeader returns the first line of the calling goroutine's stack
// trace: "goroutine 7 [running, locked to thread]:" when it is locked.
func stackHeader() string {
	b := make([]byte, 512)
	b = b[:runtime.Stack(b, false)]
	h, _, _ := bytes.Cut(b, []byte("\n"))
	return string(h)
}

// enterElsewhere calls io_uring_enter(GETEVENTS, min_complete 0) on fd
// from a thread of its own, on which no loop runs.
func enterElsewhere(fd int) syscall.Errno {
	ch := make(chan syscall.Errno, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		_, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), 0, 0, uintptr(giouring.EnterGetEvents), 0, 0)
		ch <- e
	}()
	return <-ch
}

// TestRuntimeLoopSetup checks what each kind of loop is: a thread loop's
// goroutine is locked to its thread (its stack trace says so), and its
// ring, set up with DEFER_TASKRUN where the kernel has it, refuses another
// thread's GETEVENTS (EEXIST); a runtime loop's goroutine is not locked,
// and its ring was set up with none of SINGLE_ISSUER, DEFER_TASKRUN,
// COOP_TASKRUN, TASKRUN_FLAG and SQPOLL (the kernel's own account of the
// setup, io_uring_params.flags) and takes any thread's enter. With
// park=thread or park=runtime only the loops of that kind exist.
func TestRuntimeLoopSetup(t *testing.T) {
	const loops = 2
	for _, tc := range []struct {
		name    string
		spec    string
		runtime bool
	}{
		{name: "thread", spec: "uring:park=thread"},
		{name: "thread-sqpoll", spec: "uring:park=thread,sqpoll=true"},
		{name: "runtime", spec: "uring:park=runtime", runtime: true},
		{name: "runtime-sqpoll", spec: "uring:park=runtime,sqpoll=true", runtime: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.spec, "sqpoll") && !probed().sqpoll {
				t.Skip("no SQPOLL with SINGLE_ISSUER on this kernel")
			}
			leakCheck(t)
			tr := openT(t, tc.spec, loops)
			set, other := tr.thread, tr.runtime.Load()
			if tc.runtime {
				set, other = other, set
			}
			if set == nil || len(set.loops) != loops || other != nil {
				t.Fatalf("park=%s: %v loops of the kind asked for and %v of the other; want %d and none", tc.name, set, other, loops)
			}
			banned := uint32(setupSingleIss | setupDeferTask | giouring.SetupSQPoll)
			coop := uint32(setupCoopTaskrun | setupTaskrunFlag)
			for _, l := range set.loops {
				if got := l.ring.Flags & banned; tc.runtime && got != 0 {
					t.Errorf("runtime loop %d: ring set up with %s", l.id, flagNames(got))
				}
				if tc.runtime && probed().setup&(setupDeferTask|setupCoopTaskrun) != 0 && l.ring.Flags&coop != coop {
					t.Errorf("runtime loop %d: ring set up with %s, want COOP_TASKRUN and TASKRUN_FLAG", l.id, flagNames(l.ring.Flags))
				}
				e := enterElsewhere(l.ring.Fd)
				switch {
				case tc.runtime && e != 0:
					t.Errorf("runtime loop %d: io_uring_enter from another thread: %v, want success", l.id, e)
				case !tc.runtime && l.ring.Flags&setupDeferTask != 0 && e != syscall.EEXIST:
					t.Errorf("thread loop %d (DEFER_TASKRUN): io_uring_enter from another thread: %v, want EEXIST", l.id, e)
				}
				var h string
				onLoop(t, l, func() { h = stackHeader() })
				if locked := strings.Contains(h, "locked to thread"); locked == tc.runtime {
					t.Errorf("loop %d's goroutine: %q; want locked to its thread: %v", l.id, h, !tc.runtime)
				}
			}
			st := tr.Stats()
			if got := st.Extra["runtime_loops"]; tc.runtime != (got == loops) {
				t.Errorf("Stats runtime_loops = %d", got)
			}
			if tc.runtime && st.Extra["setup_flags_runtime"]&uint64(banned) != 0 {
				t.Errorf("Stats setup_flags_runtime = %s", flagNames(uint32(st.Extra["setup_flags_runtime"])))
			}
		})
	}
}

// kindEcho echoes and reports, from OnOpen, whether the conn is on a
// runtime loop; handoff sets what its Handoff says.
type kindEcho struct {
	handoff bool
	kinds   chan bool
}

func (h kindEcho) OnOpen(c transports.Conn) { h.kinds <- c.(*conn).l.set.runtime }
func (h kindEcho) OnData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}
func (h kindEcho) OnClose(transports.Conn, error) {}
func (h kindEcho) Handoff() bool                  { return h.handoff }

// TestLoopChoice checks which loops serve a Listen's and a Dial's conns,
// by the park key and the handler: with park=auto, a handler that does
// its work inline is served by thread loops, and the runtime loops are not
// even started; one that hands off by runtime loops, started then.
func TestLoopChoice(t *testing.T) {
	for _, tc := range []struct {
		name        string
		park        string
		handoff     bool
		wantRuntime bool // the conns are on runtime loops
		wantStarted bool // runtime loops exist
	}{
		{name: "auto/inline", park: "auto"},
		{name: "auto/handoff", park: "auto", handoff: true, wantRuntime: true, wantStarted: true},
		{name: "thread/handoff", park: "thread", handoff: true},
		{name: "runtime/inline", park: "runtime", wantRuntime: true, wantStarted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			tr := openT(t, "uring:park="+tc.park, 2)
			h := kindEcho{handoff: tc.handoff, kinds: make(chan bool, 2)}
			ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			peer, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			dc, err := tr.Dial(ctx, "tcp", peer.Addr().String(), h)
			if err != nil {
				t.Fatal(err)
			}
			defer dc.Close()
			for _, what := range []string{"accepted", "dialed"} {
				select {
				case rt := <-h.kinds:
					if rt != tc.wantRuntime {
						t.Errorf("park=%s, Handoff %v: a %s conn on a runtime loop: %v, want %v", tc.park, tc.handoff, what, rt, tc.wantRuntime)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("no OnOpen for the %s conn", what)
				}
			}
			if started := tr.runtime.Load() != nil; started != tc.wantStarted {
				t.Errorf("runtime loops started: %v, want %v", started, tc.wantStarted)
			}
		})
	}
}

// TestLoopChoiceAdapter: with park=auto, the net.Conn adapter's conns,
// accepted (NetListener) and dialed (DialNet), are served by runtime
// loops, which the first of them starts.
func TestLoopChoiceAdapter(t *testing.T) {
	leakCheck(t)
	tr := openT(t, "uring", 2)
	if tr.runtime.Load() != nil {
		t.Fatal("runtime loops started by New with park=auto")
	}
	ln := testutil.NetEcho(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transports.DialNet(ctx, tr, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("through the adapter twice")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, msg); err != nil {
		t.Fatal(err)
	}
	count := func(s *loopSet) (acc, dial uint64) {
		for _, l := range s.loops {
			acc += l.stats.Accepted.Load()
			dial += l.stats.Dialed.Load()
		}
		return acc, dial
	}
	rt := tr.runtime.Load()
	if rt == nil {
		t.Fatal("no runtime loops after NetListener and DialNet")
	}
	if acc, dial := count(rt); acc != 1 || dial != 1 {
		t.Errorf("runtime loops accepted %d and dialed %d conns, want 1 and 1", acc, dial)
	}
	if acc, dial := count(tr.thread); acc != 0 || dial != 0 {
		t.Errorf("thread loops accepted %d and dialed %d conns, want none", acc, dial)
	}
}

// TestRuntimeLoopPosts: other goroutines' posts wake a parked runtime loop
// and none is lost. Each of 10,000 tasks is posted once the last has run,
// so that most find the loop parked and poke it; then 10,000 more come
// from four goroutines at once, and a last task must find them all run.
func TestRuntimeLoopPosts(t *testing.T) {
	const posts = 10000
	leakCheck(t)
	tr := openT(t, "uring:park=runtime", 1)
	l := tr.runtime.Load().loops[0]
	done := make(chan struct{}, 1)
	for i := range posts {
		l.postTask(func() { done <- struct{}{} })
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("posted task %d of %d did not run within 20s: a lost wake-up", i+1, posts)
		}
	}
	if n := tr.Stats().Extra["posted_wakeups"]; n == 0 {
		t.Fatalf("%d posts one at a time poked the loop 0 times: the case tested nothing", posts)
	}
	var ran int // loop-owned
	var wg [4]chan struct{}
	for g := range wg {
		wg[g] = make(chan struct{})
		go func() {
			defer close(wg[g])
			for range posts / len(wg) {
				l.postTask(func() { ran++ })
			}
		}()
	}
	for _, c := range wg {
		<-c
	}
	var got int
	onLoop(t, l, func() { got = ran })
	if got != posts {
		t.Errorf("%d of %d tasks posted by 4 goroutines ran", got, posts)
	}
}

// writeLater is a Handler that hands its Conn to the test, which writes
// from its own goroutine.
type writeLater struct{ conns chan transports.Conn }

func (h writeLater) OnOpen(c transports.Conn)                { h.conns <- c }
func (h writeLater) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (h writeLater) OnClose(transports.Conn, error)          {}

// TestRuntimeLoopWriteFromGoroutine: a Conn.Write from another goroutine
// posts the conn to its parked runtime loop, which must wake and send it.
// 10,000 writes of one byte each wait for the peer to read the last, so
// that each finds the loop parked.
func TestRuntimeLoopWriteFromGoroutine(t *testing.T) {
	const writes = 10000
	leakCheck(t)
	tr := openT(t, "uring:park=runtime", 1)
	h := writeLater{conns: make(chan transports.Conn, 1)}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var sc transports.Conn
	select {
	case sc = <-h.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnOpen")
	}
	b := make([]byte, 1)
	for i := range writes {
		if _, err := sc.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		cl.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(cl, b); err != nil {
			t.Fatalf("write %d of %d: the peer read: %v (a lost wake-up leaves the byte unsent)", i+1, writes, err)
		}
		if b[0] != byte(i) {
			t.Fatalf("write %d: the peer read %d", i+1, b[0])
		}
	}
	if n := tr.Stats().Extra["posted_wakeups"]; n == 0 {
		t.Errorf("%d writes, each after the last was read, woke the loop 0 times: the case tested nothing", writes)
	}
}

// TestParkerCompletionRace: a completion that lands between the parker's
// look at the CQ and its park must still wake it: the ring's descriptor
// turns readable at every commit of CQEs, and the netpoller keeps that
// readiness for the park that follows. Another thread posts 10,000 CQEs to
// a bare ring with MSG_RING, each one asked for by the parker's look that
// found the CQ empty, so that it lands while the parker goes on into the
// netpoller.
func TestParkerCompletionRace(t *testing.T) {
	const msgs = 10000
	if err := probed().needOp(opMsgRing); err != nil {
		t.Skip(err)
	}
	leakCheck(t)
	r, err := newRing(64, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	send := make(chan struct{}, 1)
	waits := 0 // looks that found the CQ empty: the park waited
	p, err := newParker(r.Fd, func(uintptr) bool {
		if r.CQReady() {
			return true
		}
		waits++
		select {
		case send <- struct{}{}:
		default:
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	stop := make(chan struct{})
	defer close(stop)
	sendErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		s, err := newRing(8, 0, 0)
		if err != nil {
			sendErr <- err
			return
		}
		defer s.Close()
		buf := make([]cqe, 8)
		for i := range uint64(msgs) {
			select {
			case <-send:
			case <-stop:
				return
			}
			sqe := s.GetSQE()
			sqe.PrepareMsgRing(r.Fd, 0, i+1, 0)
			if e := s.Enter(s.Publish(), 1, 0, false); e != 0 {
				sendErr <- e
				return
			}
			if n := s.Reap(buf); n != 1 || buf[0].Res < 0 {
				sendErr <- syscall.Errno(-buf[0].Res)
				return
			}
		}
		sendErr <- nil
	}()

	var timedOut atomic.Bool
	watchdog := time.AfterFunc(60*time.Second, func() { timedOut.Store(true); p.poke() })
	defer watchdog.Stop()
	buf := make([]cqe, 64)
	for got := uint64(0); got < msgs; {
		if err := p.park(); err != nil && !timedOut.Load() {
			t.Fatalf("park: %v", err)
		}
		if timedOut.Load() {
			t.Fatalf("parked for 60s with %d of %d completions reaped: a lost wake-up", got, msgs)
		}
		for _, c := range buf[:r.Reap(buf)] {
			if got++; c.UserData != got {
				t.Fatalf("completion %d has user_data %d", got, c.UserData)
			}
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("MSG_RING: %v", err)
	}
	if waits < msgs {
		t.Errorf("the parker looked at an empty CQ %d times for %d completions, each asked for by such a look", waits, msgs)
	}
}

// timerEcho sets its timer at OnOpen and reports each OnTimer.
type timerEcho struct {
	d     time.Duration
	fired chan struct{}
}

func (h timerEcho) OnOpen(c transports.Conn) { c.(transports.TimerConn).SetTimer(h.d) }
func (h timerEcho) OnData(_ transports.Conn, in []byte) int {
	return len(in)
}
func (h timerEcho) OnClose(transports.Conn, error) {}
func (h timerEcho) OnTimer(c transports.Conn) {
	h.fired <- struct{}{}
	c.(transports.TimerConn).SetTimer(h.d) // again, until the conn closes
}

// TestRuntimeLoopTimer: the application's timer fires on a runtime loop,
// which waits in the netpoller for the TIMEOUT request that keeps its
// timers: a loop with nothing else to do must wake for it, three times in
// a row.
func TestRuntimeLoopTimer(t *testing.T) {
	leakCheck(t)
	tr := openT(t, "uring:park=runtime", 1)
	h := timerEcho{d: 20 * time.Millisecond, fired: make(chan struct{}, 1)}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 3 {
		select {
		case <-h.fired:
		case <-time.After(10 * time.Second):
			t.Fatalf("OnTimer %d of 3 did not come within 10s of a 20ms timer", i+1)
		}
	}
}

// TestRuntimeLoopYieldsBeforePark: a runtime loop lets the goroutines its
// callbacks readied run before it parks, so the net.Conn adapter's
// Writes, made by the reader just woken, reach a loop that does not sleep
// and need no wake-up. With GOMAXPROCS=1 and an echo through the adapter,
// a loop that parked first would be poked once per round trip.
func TestRuntimeLoopYieldsBeforePark(t *testing.T) {
	const trips = 300
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	leakCheck(t)
	tr := openT(t, "uring", 1)
	ln := testutil.NetEcho(t, tr)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	msg, got := bytes.Repeat([]byte("y"), 64), make([]byte, 64)
	trip := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
	}
	trip() // the conn is open and its reader waits
	before := tr.Stats().Extra["posted_wakeups"]
	for range trips {
		trip()
	}
	if n := tr.Stats().Extra["posted_wakeups"] - before; n > trips/4 {
		t.Errorf("%d round trips through the adapter poked the runtime loop %d times: the handler's Writes found it parked", trips, n)
	}
}

// TestRuntimeLoopMovedRearms: when a runtime loop finds itself on another
// thread, it cancels its conns' multishot receives, armed from the old
// one, and arms them again; no byte is lost or reordered on the way. The
// test makes the loop believe it moved (a thread id no thread has) 20
// times between exchanges on three connections.
func TestRuntimeLoopMovedRearms(t *testing.T) {
	leakCheck(t)
	tr := openT(t, "uring:park=runtime", 1)
	h := kindEcho{kinds: make(chan bool, 3)}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	l := tr.runtime.Load().loops[0]
	cancels := tr.Stats().Extra["cancels"]
	const moves = 20
	msg := make([]byte, 1000)
	got := make([]byte, len(msg))
	for m := range moves {
		if m > 0 {
			onLoop(t, l, func() { l.tid = ^uintptr(0); l.moved() })
		}
		for i, c := range clients {
			for k := range msg {
				msg[k] = byte(m*7 + i*3 + k)
			}
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("move %d, conn %d: %v (a receive not armed again leaves the echo unread)", m, i, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("move %d, conn %d: the echo differs from what was sent", m, i)
			}
		}
	}
	st := tr.Stats().Extra
	// The runtime may move the loop too, between these.
	if st["thread_moves"] < moves-1 {
		t.Errorf("Stats thread_moves = %d, want at least %d", st["thread_moves"], moves-1)
	}
	if n := st["cancels"] - cancels; n < 3*(moves-1) {
		t.Errorf("%d cancels for %d moves of a loop with 3 conns, want at least %d", n, moves-1, 3*(moves-1))
	}
}

// TestBusyLoopKeepsItsP: at low load after an idle spell (a round trip
// every 200 µs or so from another process), a thread loop's waits must
// not have its P taken by sysmon and handed to another thread, which
// costs three voluntary context switches per wait instead of the loop's
// own sleep (schedtick.Raw): 3.3-4.5 per round trip before it, 1.1-1.3
// after.
func TestBusyLoopKeepsItsP(t *testing.T) {
	per, st := testutil.SwitchesPerTrip(t, "TestBusyLoopKeepsItsP", "uring:park=thread")
	t.Logf("%.2f voluntary context switches per round trip, %d wake-ups, raw_waits %d", per, st.Wakeups, st.Extra["raw_waits"])
	if per > 2 {
		t.Errorf("%.2f voluntary context switches per round trip (%d wake-ups, raw_waits %d): want at most 2: the loop's own sleep, and its yields", per, st.Wakeups, st.Extra["raw_waits"])
	}
}
