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
// are) a Gosched costs a hand-off of the P to another thread and back (two
// thread wake-ups and two context switches), so doing it once per Every
// rather than before every wait matters there, and before a raw wait (see
// Raw) it is done once per EveryRaw only: sysmon cannot take the P from a
// raw wait, so the yield is there only to let other goroutines run.
package schedtick

import (
	"runtime"
	"time"
)

// Every is how often a Ticker passes through the scheduler at most before
// a wait the scheduler is told about: well under the runtime's 10 ms,
// since sysmon looks at a P only every 20 µs to 10 ms.
const Every = 2 * time.Millisecond

// EveryRaw is how often a Ticker passes through the scheduler at most
// before a raw wait, which keeps the P in the running state: there sysmon
// only preempts a goroutine whose scheduling tick has not moved for 10 ms
// (its signal ends the wait with EINTR, and the goroutine yields at its
// next safe point, the same hand-off as a Gosched), so a yield every 8 ms
// keeps the signal away, and a goroutine waiting for the P runs within
// EveryRaw and a wait, as within sysmon's 10 ms. Yielding every 2 ms cost
// a locked loop 500 hand-offs a second (echo, 1,000 connections): 8 ms
// cut uring's CPU per request by 12% at 1,320 requests a second (0.88x
// [0.81-0.93], 8 paired rounds; context switches per request 1.28, from
// 1.82) and by 1% at 13,200 (0.99x [0.98-1.00], 12 paired rounds; 1.02
// from 1.08, against 1.00 for the same loop without merlin,
// peers/gofloor-uring).
const EveryRaw = 8 * time.Millisecond

// Ticker is one loop goroutine's; its zero value is ready.
type Ticker struct {
	last    int64 // when it last yielded, on the caller's clock
	yielded bool
}

// BeforeBlock is called by the loop's goroutine before a system call that
// may block, with the time now in nanoseconds on a monotonic clock of the
// caller's (core.Now: the loop reads it for its wait anyway, and a read
// of the clock is a visible share of a wake-up's user time), and whether
// the wait is to be raw (Raw.Now): it yields to the scheduler if it has
// not for Every, or for EveryRaw before a raw wait. It reports whether it
// did.
func (t *Ticker) BeforeBlock(now int64, raw bool) bool {
	every := int64(Every)
	if raw {
		every = int64(EveryRaw)
	}
	if t.yielded && now-t.last < every {
		return false
	}
	runtime.Gosched()
	t.last, t.yielded = now, true
	return true
}
