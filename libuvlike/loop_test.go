//go:build linux

package libuvlike

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/internal/testutil"
)

// The reactor on its own: each test builds handles on a Loop, runs it on
// the test's goroutine until a callback stops it, and checks what the
// callbacks saw. A watchdog timer fails a test that would hang.

const watchdog = 10 * time.Second

// forModes runs f level-triggered and edge-triggered, each with the loop
// parking its thread and parking in the runtime, checking that the loop
// leaves no descriptor and no goroutine behind.
func forModes(t *testing.T, f func(t *testing.T, l *Loop)) {
	for _, mode := range []struct {
		name string
		et   bool
		park Park
	}{{"level", false, ParkThread}, {"edge", true, ParkThread}, {"level-runtime", false, ParkRuntime}, {"edge-runtime", true, ParkRuntime}} {
		t.Run(mode.name, func(t *testing.T) {
			base := testutil.TakeBaseline()
			l, err := NewLoop(LoopOptions{EdgeTriggered: mode.et})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetPark(mode.park); err != nil {
				t.Fatal(err)
			}
			f(t, l)
			if err := l.Close(); err != nil {
				t.Errorf("Loop.Close: %v", err)
			}
			base.Check(t, watchdog)
		})
	}
}

// run runs l until a callback stops it, or fails t after the watchdog.
func run(t *testing.T, l *Loop) {
	t.Helper()
	dog := l.NewTimer()
	dog.Start(func(*Timer) {
		t.Errorf("the loop still runs after %v", watchdog)
		l.Stop()
	}, watchdog, 0)
	if err := l.Run(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dog.Stop()
}

// pair returns two TCP handles of l on the ends of a unix stream socket
// pair.
func pair(t *testing.T, l *Loop) (a, b *TCP) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b = l.NewTCP(), l.NewTCP()
	if err := a.Open(fds[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(fds[1]); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestTimersFireInOrder(t *testing.T) {
	l, err := NewLoop(LoopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []string
	start := func(name string, d time.Duration) *Timer {
		tm := l.NewTimer()
		tm.Start(func(*Timer) { got = append(got, name) }, d, 0)
		return tm
	}
	start("30ms", 30*time.Millisecond)
	start("10ms-a", 10*time.Millisecond)
	stopped := start("15ms-stopped", 15*time.Millisecond)
	start("0ms", 0)
	start("20ms", 20*time.Millisecond)
	start("10ms-b", 10*time.Millisecond) // same deadline or later: after 10ms-a
	stopped.Stop()
	// A repeating timer that stops itself on its third call.
	rep := l.NewTimer()
	n := 0
	rep.Start(func(tm *Timer) {
		n++
		got = append(got, fmt.Sprintf("repeat-%d", n))
		if n == 3 {
			tm.Stop()
		}
	}, 40*time.Millisecond, 5*time.Millisecond)
	last := l.NewTimer()
	last.Start(func(*Timer) { l.Stop() }, 100*time.Millisecond, 0)
	begin := time.Now()
	run(t, l)
	want := []string{"0ms", "10ms-a", "10ms-b", "20ms", "30ms", "repeat-1", "repeat-2", "repeat-3"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("timer callbacks (-want +got):\n%s", d)
	}
	if el := time.Since(begin); el < 100*time.Millisecond {
		t.Errorf("the 100 ms timer fired after %v", el)
	}
}

func TestTimerRestartedWithZeroTimeoutWaitsForNextIteration(t *testing.T) {
	l, err := NewLoop(LoopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	calls, iterations := 0, 0
	tm := l.NewTimer()
	var cb func(*Timer)
	cb = func(tm *Timer) {
		calls++
		if calls < 5 {
			tm.Start(cb, 0, 0)
		}
	}
	tm.Start(cb, 0, 0)
	l.NewPrepare().Start(func(*Prepare) {
		iterations++
		if calls == 5 {
			l.Stop()
		}
	})
	run(t, l)
	if iterations < 5 {
		t.Errorf("5 timer calls in %d iterations: a timer restarted by its callback ran again in the same iteration", iterations)
	}
}

// TestAsyncWakesLoop sends from four goroutines while the loop sleeps and
// wakes, however it parks: a lost wake-up hangs the loop until the
// watchdog.
func TestAsyncWakesLoop(t *testing.T) {
	for _, park := range []Park{ParkThread, ParkRuntime} {
		t.Run(fmt.Sprint("park=", park), func(t *testing.T) { testAsyncWakesLoop(t, park) })
	}
}

func testAsyncWakesLoop(t *testing.T, park Park) {
	l, err := NewLoop(LoopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.SetPark(park); err != nil {
		t.Fatal(err)
	}
	const senders, sends = 4, 2500
	var (
		mu    sync.Mutex
		queue []int // work from the senders; guarded by mu
		got   = map[int]bool{}
		wg    sync.WaitGroup
	)
	var a *Async
	a, err = l.NewAsync(func(*Async) {
		if !l.InLoop() {
			t.Error("the async callback runs off the loop's goroutine")
		}
		mu.Lock()
		work := queue
		queue = nil
		mu.Unlock()
		for _, v := range work {
			got[v] = true
		}
		if len(got) == senders*sends {
			a.Close(func(*Async) { l.Stop() })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sends {
				mu.Lock()
				queue = append(queue, s*sends+i)
				mu.Unlock()
				a.Send()
			}
		}()
	}
	run(t, l)
	wg.Wait()
	if len(got) != senders*sends {
		t.Errorf("the callback saw %d of %d queued items", len(got), senders*sends)
	}
	if l.InLoop() {
		t.Error("InLoop is true after Run returned")
	}
	a.Send() // after Close: does nothing
}

// A Send made while the loop is awake (here, from its own callbacks)
// needs no eventfd write or poke: the loop looks at its Asyncs after each
// poll and before it sleeps.
func TestSendWhileAwakeCostsNoSystemCall(t *testing.T) {
	for _, park := range []Park{ParkThread, ParkRuntime} {
		t.Run(fmt.Sprint("park=", park), func(t *testing.T) {
			l, err := NewLoop(LoopOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.SetPark(park); err != nil {
				t.Fatal(err)
			}
			const rounds = 100
			n := 0
			var a *Async
			a, err = l.NewAsync(func(*Async) {
				if n++; n == rounds {
					a.Close(func(*Async) { l.Stop() })
					return
				}
				a.Send()
			})
			if err != nil {
				t.Fatal(err)
			}
			a.Send() // before Run: the loop is not asleep
			run(t, l)
			if n != rounds {
				t.Errorf("the callback ran %d times, want %d", n, rounds)
			}
			if got := l.ForeignSyscalls(); got != 0 {
				t.Errorf("Sends made while the loop was awake cost %d system calls, want 0", got)
			}
		})
	}
}

func (p Park) String() string {
	if p == ParkRuntime {
		return "runtime"
	}
	return "thread"
}

func TestWriteCompletionAndRead(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		a, b := pair(t, l)
		// Three requests: small, large enough to fill the socket and need
		// EPOLLOUT, small. They complete in order once b has read all.
		bufs := [][]byte{bytes.Repeat([]byte("a"), 100), make([]byte, 4<<20), []byte("tail")}
		for i := range bufs[1] {
			bufs[1][i] = byte(i * 7)
		}
		want := bytes.Join(bufs, nil)
		var (
			done     []int
			received []byte
			rbuf     = make([]byte, 64<<10)
			reqs     [3]WriteReq
			allocs   int
			sawEOF   bool
			closes   []string
		)
		for i := range bufs {
			reqs[i].Data = i
			if err := a.Write(&reqs[i], [][]byte{bufs[i]}, func(r *WriteReq, err error) {
				if err != nil {
					t.Errorf("write %d: %v", r.Data, err)
				}
				if r.Written() != len(bufs[r.Data.(int)]) {
					t.Errorf("write %d: Written %d, want %d", r.Data, r.Written(), len(bufs[r.Data.(int)]))
				}
				done = append(done, r.Data.(int))
				if len(done) == len(bufs) {
					var s ShutdownReq
					if err := a.Shutdown(&s, func(_ *ShutdownReq, err error) {
						if err != nil {
							t.Errorf("shutdown: %v", err)
						}
					}); err != nil {
						t.Errorf("Shutdown: %v", err)
					}
				}
			}); err != nil {
				t.Fatalf("Write %d: %v", i, err)
			}
		}
		if got := a.WriteQueueSize(); got != len(want) {
			t.Errorf("WriteQueueSize = %d, want %d", got, len(want))
		}
		b.ReadStart(func(_ *TCP, suggested int) []byte {
			allocs++
			if suggested <= 0 {
				t.Errorf("alloc suggested %d bytes", suggested)
			}
			return rbuf
		}, func(h *TCP, data []byte, err error) {
			switch {
			case err == io.EOF:
				sawEOF = true
				a.Close(func(*TCP) { closes = append(closes, "a") })
				b.Close(func(*TCP) {
					closes = append(closes, "b")
					l.Stop()
				})
			case err != nil:
				t.Errorf("read: %v", err)
				l.Stop()
			default:
				received = append(received, data...)
			}
		})
		run(t, l)
		if d := cmp.Diff([]int{0, 1, 2}, done); d != "" {
			t.Errorf("write callbacks (-want +got):\n%s", d)
		}
		if !bytes.Equal(received, want) {
			t.Errorf("received %d bytes, want the %d written", len(received), len(want))
		}
		if !sawEOF || allocs == 0 {
			t.Errorf("EOF seen %v after %d allocs", sawEOF, allocs)
		}
		if d := cmp.Diff([]string{"a", "b"}, closes); d != "" {
			t.Errorf("close callbacks (-want +got):\n%s", d)
		}
		if l.Stats.Writes == 0 || l.Stats.Reads == 0 || l.Stats.BytesOut != uint64(len(want)) {
			t.Errorf("Stats = %+v", l.Stats)
		}
	})
}

func TestWritesGatheredIntoOneWritev(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		a, b := pair(t, l)
		var reqs [10]WriteReq
		calls := 0
		for i := range reqs {
			a.Write(&reqs[i], [][]byte{{byte(i)}, {byte(i)}}, func(*WriteReq, error) { calls++ })
		}
		before := l.Stats.Writes
		// An active idle handle keeps the poll from blocking, so the check
		// runs right after the first one.
		idle := l.NewIdle()
		idle.Start(func(*Idle) {})
		check := l.NewCheck()
		check.Start(func(*Check) {
			// The flush before the first poll has run by now.
			check.Stop()
			idle.Stop()
			a.Close(nil)
			b.Close(func(*TCP) { l.Stop() })
		})
		run(t, l)
		if n := l.Stats.Writes - before; n != 1 {
			t.Errorf("10 write requests took %d write calls, want 1 writev", n)
		}
		if calls != 10 {
			t.Errorf("%d write callbacks, want 10", calls)
		}
	})
}

func TestCloseCancelsRequests(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		a, b := pair(t, l)
		// More than the socket holds, and nobody reads: the write waits.
		var w WriteReq
		var s ShutdownReq
		var order []string
		a.Write(&w, [][]byte{make([]byte, 16<<20)}, func(_ *WriteReq, err error) {
			if !errors.Is(err, ErrCanceled) || !errors.Is(err, syscall.ECANCELED) {
				t.Errorf("write callback err = %v, want ErrCanceled", err)
			}
			order = append(order, "write")
		})
		a.Shutdown(&s, func(_ *ShutdownReq, err error) {
			if !errors.Is(err, ErrCanceled) {
				t.Errorf("shutdown callback err = %v, want ErrCanceled", err)
			}
			order = append(order, "shutdown")
		})
		tm := l.NewTimer()
		tm.Start(func(*Timer) {
			if a.WriteQueueSize() == 0 {
				t.Error("the 16 MiB write completed with no reader")
			}
			a.Close(func(*TCP) { order = append(order, "close") })
			if err := a.Write(&WriteReq{}, [][]byte{{1}}, nil); !errors.Is(err, ErrClosing) {
				t.Errorf("Write on a closing handle = %v, want ErrClosing", err)
			}
			b.Close(func(*TCP) { l.Stop() })
		}, 20*time.Millisecond, 0)
		run(t, l)
		if d := cmp.Diff([]string{"write", "shutdown", "close"}, order); d != "" {
			t.Errorf("callbacks (-want +got):\n%s", d)
		}
	})
}

func TestReadStopHoldsInput(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		a, b := pair(t, l)
		buf := make([]byte, 5) // small reads: the rest stays in the socket
		var got []byte
		var w WriteReq
		a.Write(&w, [][]byte{[]byte("0123456789abcdef")}, nil)
		stopped := false
		b.ReadStart(func(*TCP, int) []byte { return buf }, func(h *TCP, data []byte, err error) {
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if stopped {
				t.Errorf("read callback after ReadStop: %q", data)
			}
			got = append(got, data...)
			if len(got) == 5 {
				h.ReadStop()
				stopped = true
				tm := l.NewTimer()
				tm.Start(func(*Timer) {
					stopped = false
					h.ReadStart(func(*TCP, int) []byte { return buf }, h.read)
				}, 20*time.Millisecond, 0)
			}
			if len(got) == 16 {
				a.Close(nil)
				b.Close(func(*TCP) { l.Stop() })
			}
		})
		run(t, l)
		if string(got) != "0123456789abcdef" {
			t.Errorf("read %q", got)
		}
	})
}

func TestListenAcceptConnect(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		server := l.NewTCP()
		if err := server.Bind(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, 0); err != nil {
			t.Fatal(err)
		}
		var accepted *TCP
		var got []byte
		buf := make([]byte, 1024)
		if err := server.Listen(16, func(s *TCP, err error) {
			if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			accepted = l.NewTCP()
			if err := s.Accept(accepted); err != nil {
				t.Errorf("Accept: %v", err)
				return
			}
			accepted.ReadStart(func(*TCP, int) []byte { return buf }, func(h *TCP, data []byte, err error) {
				if err == io.EOF {
					h.Close(nil)
					server.Close(func(*TCP) { l.Stop() })
					return
				}
				got = append(got, data...)
			})
		}); err != nil {
			t.Fatal(err)
		}
		sa, err := server.Sockname()
		if err != nil {
			t.Fatal(err)
		}
		client := l.NewTCP()
		var cr ConnectReq
		var w WriteReq
		var s ShutdownReq
		if err := client.Connect(&cr, sa, func(_ *ConnectReq, err error) {
			if err != nil {
				t.Errorf("connect: %v", err)
				l.Stop()
				return
			}
			client.Write(&w, [][]byte{[]byte("hello")}, nil)
			client.Shutdown(&s, func(*ShutdownReq, error) { client.Close(nil) })
		}); err != nil {
			t.Fatal(err)
		}
		run(t, l)
		if string(got) != "hello" {
			t.Errorf("server read %q, want \"hello\"", got)
		}
	})
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	forModes(t, func(t *testing.T, l *Loop) {
		c := l.NewTCP()
		var cr ConnectReq
		c.Connect(&cr, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}, func(_ *ConnectReq, err error) {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("connect err = %v, want ECONNREFUSED", err)
			}
			c.Close(func(*TCP) { l.Stop() })
		})
		run(t, l)
	})
}

func TestLoopCloseWithOpenHandles(t *testing.T) {
	l, err := NewLoop(LoopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := pair(t, l)
	if err := l.Close(); !errors.Is(err, ErrBusy) {
		t.Errorf("Close with open handles = %v, want ErrBusy", err)
	}
	a.Close(nil)
	b.Close(func(*TCP) { l.Stop() })
	run(t, l)
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestTryWrite(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		a, b := pair(t, l)
		if n, err := a.TryWrite([]byte("now")); n != 3 || err != nil {
			t.Errorf("TryWrite on an empty socket = %d, %v; want 3, nil", n, err)
		}
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i * 13)
		}
		n, err := a.TryWrite(big)
		if err != nil || n <= 0 || n >= len(big) {
			t.Fatalf("TryWrite of 16 MiB = %d, %v; want a short write", n, err)
		}
		if m, err := a.TryWrite([]byte("x")); m != 0 || !errors.Is(err, syscall.EAGAIN) {
			t.Errorf("TryWrite on a full socket = %d, %v; want 0, EAGAIN", m, err)
		}
		var w WriteReq
		wrote := false
		a.Write(&w, [][]byte{big[n:]}, func(_ *WriteReq, err error) {
			if err != nil {
				t.Errorf("write of the rest: %v", err)
			}
			wrote = true
			a.Close(nil)
		})
		want := append([]byte("now"), big...)
		var got []byte
		rbuf := make([]byte, 256<<10)
		b.ReadStart(func(*TCP, int) []byte { return rbuf }, func(h *TCP, data []byte, err error) {
			if err == io.EOF {
				h.Close(func(*TCP) { l.Stop() })
				return
			}
			if err != nil {
				t.Errorf("read: %v", err)
				l.Stop()
				return
			}
			got = append(got, data...)
		})
		run(t, l)
		if !wrote || !bytes.Equal(got, want) {
			t.Errorf("write completed %v; read %d bytes, equal to the %d written: %v", wrote, len(got), len(want), bytes.Equal(got, want))
		}
	})
}

// TestTimerStartedAfterALongPollCountsFromNow: the loop reads the clock
// at most once per iteration (Loop.nanos), so a timer started by a
// callback after a poll that blocked for long must count from after the
// poll, not from a time read before it. The loop then spins (an idle
// handle), so that the next iterations read the clock anew: a timer
// started on a stale time would run out at once.
func TestTimerStartedAfterALongPollCountsFromNow(t *testing.T) {
	const (
		blocked = 300 * time.Millisecond
		timeout = 100 * time.Millisecond
	)
	l, err := NewLoop(LoopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var (
		wake, dog *Async
		fired     time.Duration
		spin      = l.NewIdle()
	)
	stop := func() {
		spin.Stop()
		wake.Close(nil)
		dog.Close(func(*Async) { l.Stop() })
	}
	wake, err = l.NewAsync(func(*Async) {
		started := time.Now()
		l.NewTimer().Start(func(*Timer) {
			fired = time.Since(started)
			stop()
		}, timeout, 0)
		spin.Start(func(*Idle) {})
	})
	if err != nil {
		t.Fatal(err)
	}
	// No timer is armed while the loop blocks: a watchdog timer would
	// have the loop read the clock after every poll.
	dog, err = l.NewAsync(func(*Async) {
		t.Errorf("the timer did not run out within %v", watchdog)
		stop()
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(blocked) // the loop waits in epoll_pwait meanwhile
		wake.Send()
		select {
		case <-done:
		case <-time.After(watchdog):
			dog.Send()
		}
	}()
	if err := l.Run(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	close(done)
	wg.Wait()
	if fired < timeout {
		t.Errorf("a %v timer started after a poll of %v ran out after %v", timeout, blocked, fired)
	}
}

// TestChecksDue: false where the loop reaches no check before it waits
// (timer, idle and prepare callbacks), true in the I/O callbacks and the
// checks; and restarting a handle allocates nothing.
func TestChecksDue(t *testing.T) {
	forModes(t, func(t *testing.T, l *Loop) {
		a, b := pair(t, l)
		seen := map[string]bool{}
		tm := l.NewTimer()
		tm.Start(func(*Timer) { seen["timer"] = l.ChecksDue() }, 0, 0)
		idle := l.NewIdle()
		idle.Start(func(h *Idle) { seen["idle"] = l.ChecksDue(); h.Stop() })
		prep := l.NewPrepare()
		prep.Start(func(h *Prepare) { seen["prepare"] = l.ChecksDue(); h.Stop() })
		check := l.NewCheck()
		check.Start(func(*Check) {
			if _, ok := seen["read"]; ok {
				seen["check"] = l.ChecksDue()
				check.Stop()
				a.Close(nil)
				b.Close(func(*TCP) { l.Stop() })
			}
		})
		b.ReadStart(func(*TCP, int) []byte { return make([]byte, 16) }, func(_ *TCP, _ []byte, err error) {
			if err == nil {
				seen["read"] = l.ChecksDue()
			}
		})
		var w WriteReq
		a.Write(&w, [][]byte{{1}}, nil)
		run(t, l)
		want := map[string]bool{"timer": false, "idle": false, "prepare": false, "read": true, "check": true}
		for k, v := range want {
			if got, ok := seen[k]; !ok || got != v {
				t.Errorf("ChecksDue() in the %s callback = %v (ran: %v), want %v", k, got, ok, v)
			}
		}
		if n := testing.AllocsPerRun(100, func() { idle.Start(idle.cb); idle.Stop() }); n != 0 {
			t.Errorf("Idle Start and Stop: %v allocations, want 0", n)
		}
	})
}
