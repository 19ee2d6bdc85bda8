// Package schedtick keeps an event loop's goroutine from being treated by
// the Go runtime as one that never yields (Ticker), and from having its P
// taken at every wait (Raw, in raw.go, which says how that happens).
//
// A loop goroutine runs its whole life without passing through the
// scheduler: it computes, then blocks in a system call (epoll_wait,
// io_uring_enter), then computes again. The runtime's sysmon thread sees
// a P whose scheduling tick has not moved for 10 ms (forcePreemptNS) as a
// goroutine hogging it, and from then on takes the P away at every
// blocking system call of the loop, whatever its length (retake's
// sysretake in runtime/proc.go, Go 1.26): sysmon falls into its deep sleep
// with the P idle, the loop wakes it again when its call returns and takes
// the idle P back (exitsyscall), and sysmon, woken "from a syscall",
// polls every 20 µs again. Measured here with libuvlike at half load
// (echo, 64 connections, 64 B): the loop woke sysmon some 2,000 times a
// second and was preempted by it as often; passing through the scheduler
// before blocking made it 65 a second, as in gnet, whose loop calls
// runtime.Gosched before every blocking wait.
//
// A Ticker does that at most once per Every, and only before a call that
// may block: runtime.Gosched moves the goroutine's scheduling tick. For a
// goroutine locked to its thread (runtime.LockOSThread, as uring's loops
// are) a Gosched costs a hand-off of the P to another thread and back, so
// doing it once per Every rather than before every wait matters there.
package schedtick

import (
	"runtime"
	"time"
)

// Every is how often a Ticker passes through the scheduler at most: well
// under the runtime's 10 ms, since sysmon looks at a P only every 20 µs
// to 10 ms.
const Every = 2 * time.Millisecond

// Ticker is one loop goroutine's; its zero value is ready.
type Ticker struct {
	last    int64 // when it last yielded, on the caller's clock
	yielded bool
}

// BeforeBlock is called by the loop's goroutine before a system call that
// may block, with the time now in nanoseconds on a monotonic clock of the
// caller's (core.Now: the loop reads it for its wait anyway, and a read
// of the clock is a visible share of a wake-up's user time): it yields to
// the scheduler if it has not for Every. It reports whether it did.
func (t *Ticker) BeforeBlock(now int64) bool {
	if t.yielded && now-t.last < int64(Every) {
		return false
	}
	runtime.Gosched()
	t.last, t.yielded = now, true
	return true
}
