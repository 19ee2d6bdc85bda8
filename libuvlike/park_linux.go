package libuvlike

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Park is how a Loop waits when it has nothing to do.
type Park uint8

const (
	// ParkThread blocks the loop's goroutine, and so its OS thread, in
	// epoll_wait, as libuv does. It costs least per wake-up when the
	// loop's callbacks do their work inline.
	ParkThread Park = iota
	// ParkRuntime parks the loop's goroutine in the Go runtime's
	// netpoller, on the epoll descriptor (itself pollable), and lets the
	// goroutines its callbacks readied run first. Other goroutines wake
	// it without a system call. For callbacks that hand their work to
	// goroutines, as the net.Conn adapter's do: the loop and those
	// goroutines then share the scheduler's run queue instead of handing
	// the CPU from thread to thread, and their Writes reach the loop
	// while it runs, to be flushed in one batch. A loop locked to its
	// thread (LoopOptions.LockOSThread) cannot: a locked goroutine that
	// parks hands its P to another thread and takes it back.
	ParkRuntime
)

// What a Loop is doing, for Async.Send: the loop looks at the pending
// Asyncs after it says it sleeps and before it does, and Send looks at
// what it says after marking its Async pending, so that one of them sees
// the other (Go's atomics are sequentially consistent).
const (
	awake        = iota
	sleepThread  // in epoll_wait: Send writes the Async's eventfd
	sleepRuntime // parked in the netpoller: Send pokes it
)

// SetPark chooses how l waits from its next poll on. It must be called on
// the loop's goroutine (or before Run). It fails, and l goes on parking
// its thread, for a loop locked to its thread, or if the runtime's
// netpoller cannot take the epoll descriptor.
func (l *Loop) SetPark(p Park) error {
	if p == ParkRuntime && l.lock {
		return errors.New("libuvlike: a loop locked to its thread cannot park in the runtime")
	}
	if p == ParkRuntime && l.rt == nil {
		rt, err := newRuntimePark(l)
		if err != nil {
			return err
		}
		l.rt = rt
	}
	l.park = p
	return nil
}

// runtimePark is what a Loop needs to park in the netpoller: a pollable
// duplicate of its epoll descriptor, which the runtime registers
// edge-triggered. The epoll descriptor is readable while events are
// ready; each new event makes an edge.
type runtimePark struct {
	l     *Loop
	f     *os.File
	rc    syscall.RawConn
	check func(uintptr) bool // rt.ready, made once: RawConn.Read keeps it

	deadline time.Time // the read deadline last set on f; reset after a poke or expiry
	dirty    bool      // f's deadline may differ from deadline

	n     int // ready's result: events, or
	errno syscall.Errno
}

func newRuntimePark(l *Loop) (*runtimePark, error) {
	fd, err := unix.FcntlInt(uintptr(l.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	// O_NONBLOCK is on the file description epfd shares; epoll_wait does
	// not look at it. os.NewFile registers a non-blocking descriptor
	// with the netpoller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "epoll")
	// A file the netpoller did not take has no deadlines.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, errors.New("libuvlike: the Go runtime's netpoller does not take an epoll descriptor: " + err.Error())
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	rt := &runtimePark{l: l, f: f, rc: rc}
	rt.check = rt.ready
	return rt, nil
}

// ready is RawConn.Read's function: it runs after the netpoller has
// forgotten any earlier readiness of the descriptor, so an event that
// comes after this look makes an edge that wakes the park, and none is
// lost. It reports whether the loop has something to do.
func (rt *runtimePark) ready(uintptr) bool {
	l := rt.l
	r, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	l.Stats.Syscalls++
	rt.n, rt.errno = int(r), errno
	if errno == syscall.EINTR {
		rt.n, rt.errno = 0, 0
	}
	return rt.n > 0 || rt.errno != 0 || l.asyncPending()
}

// wait parks until an event, a poke or timeout (milliseconds; -1: none),
// and returns what the last look found.
func (rt *runtimePark) wait(timeout int) (int, syscall.Errno) {
	var dl time.Time
	if timeout > 0 {
		dl = time.Now().Add(time.Duration(timeout) * time.Millisecond)
	}
	if rt.dirty || !dl.Equal(rt.deadline) {
		rt.f.SetReadDeadline(dl)
		rt.deadline, rt.dirty = dl, false
	}
	rt.n, rt.errno = 0, 0
	if err := rt.rc.Read(rt.check); err != nil {
		// The deadline passed: the loop's timer, or a poke. Either way f
		// keeps a past deadline until it is set again.
		rt.dirty = true
	}
	return rt.n, rt.errno
}

// aLongTimeAgo is a deadline in the past: setting it wakes a parked loop.
var aLongTimeAgo = time.Unix(1, 0)

// poke wakes the parked loop; any goroutine may call it, and a poke that
// lands after the loop woke costs it one spurious turn at most.
func (rt *runtimePark) poke() { rt.f.SetReadDeadline(aLongTimeAgo) }

func (rt *runtimePark) close() { rt.f.Close() }

// parkRuntime is poll's wait for a loop that parks in the runtime.
func (l *Loop) parkRuntime(timeout int) (int, syscall.Errno) {
	// The goroutines this turn's callbacks readied run first: what they
	// write is queued while the loop is awake, without a wake-up, and
	// flushed in the next turn's batch.
	runtime.Gosched()
	l.sleep.Store(sleepRuntime)
	defer l.sleep.Store(awake)
	if l.asyncPending() {
		return l.rt.readyNow()
	}
	return l.rt.wait(timeout)
}

// readyNow looks for events without parking.
func (rt *runtimePark) readyNow() (int, syscall.Errno) {
	rt.ready(0)
	return rt.n, rt.errno
}
