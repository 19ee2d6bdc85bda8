package uring

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A runtime loop waits for its ring in the Go runtime's netpoller, as a
// goroutine waits for a socket in package net, instead of blocking its
// thread in io_uring_enter. Its goroutine is not locked to a thread: a
// locked goroutine that parks hands its P to another thread and takes it
// back when it wakes, the very cost (futex wake-ups, context switches)
// that the loop and the goroutines it serves (the net.Conn adapter's)
// would otherwise pay twice per request. Parked, the loop is one more
// goroutine on the scheduler's run queues: its callbacks ready the
// adapter's goroutines on its P, they run there and post their Writes
// while the loop does not sleep, and a wake-up from another goroutine is
// a goroutine made runnable, not a system call.
//
// What the kernel does for it:
//
//   - Its ring has neither SINGLE_ISSUER nor DEFER_TASKRUN: the loop
//     submits from whichever thread runs it, and such a ring refuses any
//     but its first submitter (EEXIST). It has COOP_TASKRUN and
//     TASKRUN_FLAG where the kernel has them. Without a single issuer a
//     completion's task work goes to the thread that submitted the
//     request, which by then may sleep in the runtime (an idle M in
//     futex, the netpoller's M in epoll_wait) or run goroutines. The
//     default notification, TWA_SIGNAL, wakes a sleeping thread and
//     interrupts a running one with an IPI; COOP_TASKRUN's
//     TWA_SIGNAL_NO_IPI wakes a sleeping thread too but leaves a running
//     one alone until it next enters the kernel, at a system call or an
//     interrupt such as the timer tick (commits e788be95a57a, "task_work:
//     allow TWA_SIGNAL without a rescheduling IPI", and e1169f06d5bb,
//     "io_uring: use TWA_SIGNAL_NO_IPI if IORING_SETUP_COOP_TASKRUN is
//     used", Linux 5.19). A completion can then wait for a tick at worst,
//     while a thread runs goroutines without a system call; measured here
//     (echo, 64 connections, the adapter, 5 rounds), the IPIs cost more:
//     CPU per request fell by 11% saturated at depth 1, 27% at half load,
//     28-31% at depth 16, and p99 latency at half load fell with it.
//     TASKRUN_FLAG marks the SQ while task work waits: before it parks,
//     the loop enters the kernel to run its own (Ring.TaskPending). An
//     interrupted system call restarts by itself.
//   - The ring's descriptor is pollable: io_uring_poll reports EPOLLIN
//     while the CQ holds entries, and every commit of CQEs wakes its poll
//     wait queue (io_poll_wq_wake, on a ring without DEFER_TASKRUN from its
//     creation), which is what makes the netpoller's edge-triggered
//     registration see each new completion, and the TIMEOUT request that
//     keeps the loop's timers makes one too.
//
// A request's task work goes to the thread that submitted it. Should that
// thread exit (a Go thread does only when a goroutine ends while locked
// to it), the kernel runs the task work from a fallback worker
// (io_fallback_tw) and cancels only the work queued for the thread's
// io-wq, which a loop's requests (multishot recv and accept, send,
// shutdown, close of a socket) do not use: they run inline or from poll
// wake-ups.

// parker parks a runtime loop's goroutine until its ring has completions
// or another goroutine pokes it. The loop goroutine parks and clears;
// any goroutine pokes.
type parker struct {
	f  *os.File        // a duplicate of the ring's descriptor, non-blocking: the netpoller's
	rc syscall.RawConn // f's
	// ready is what RawRead calls before each wait: the loop's
	// parkReady, bound once so that a park allocates nothing.
	ready func(uintptr) bool
}

// pokeDeadline is a read deadline in the past: setting it readies the
// goroutine parked on the descriptor.
var pokeDeadline = time.Unix(1, 0)

// newParker registers a duplicate of the ring's descriptor fd with the
// netpoller. os.NewFile does that for a non-blocking descriptor; one it
// could not register has no deadlines, which is checked.
func newParker(fd int, ready func(uintptr) bool) (*parker, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("uring: duplicating the ring's descriptor: %w", os.NewSyscallError("fcntl", err))
	}
	// O_NONBLOCK is a flag of the open file, which the duplicate shares
	// with the ring's own descriptor: io_uring_enter does not read it.
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("uring: the ring's descriptor: %w", os.NewSyscallError("fcntl", err))
	}
	f := os.NewFile(uintptr(dup), "io_uring")
	rc, err := f.SyscallConn()
	if err == nil {
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("uring: the ring's descriptor in the Go runtime's netpoller: %w", err)
	}
	return &parker{f: f, rc: rc, ready: ready}, nil
}

// park waits until ready reports true or the descriptor is readable, or a
// poke. RawRead resets the descriptor's readiness, then calls ready, then
// parks until the netpoller sees it readable (poll.FD.RawRead: prepareRead,
// f, waitRead), so ready itself must look at the CQ: a completion that
// came before the reset made no edge the park would see. A poke ends it
// with an error that matches os.ErrDeadlineExceeded, until cleared.
func (p *parker) park() error { return p.rc.Read(p.ready) }

// poke wakes the parked goroutine, or the next park at once: the runtime
// readies it (poll_runtime_pollSetDeadline), with no system call.
func (p *parker) poke() { p.f.SetReadDeadline(pokeDeadline) }

// clear undoes a poke, so that the next park waits.
func (p *parker) clear() { p.f.SetReadDeadline(time.Time{}) }

// close takes the descriptor out of the netpoller and closes it.
func (p *parker) close() { p.f.Close() }
