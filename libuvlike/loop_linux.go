package libuvlike

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/internal/schedtick"
)

// Errors of the reactor's handles and requests.
var (
	// ErrClosing is returned by an operation on a handle that is closing
	// (uv_close has been called on it).
	ErrClosing = errors.New("libuvlike: handle is closing")
	// ErrCanceled is the status of a request whose handle closed before it
	// completed (libuv's UV_ECANCELED). It matches syscall.ECANCELED.
	ErrCanceled = fmt.Errorf("libuvlike: request canceled: %w", syscall.ECANCELED)
	// ErrBusy is returned by Loop.Close while handles are still open
	// (libuv's UV_EBUSY).
	ErrBusy = errors.New("libuvlike: loop has open handles")
)

// LoopOptions configure a Loop.
type LoopOptions struct {
	// EdgeTriggered registers descriptors with EPOLLET: an event is
	// reported once per change of readiness, and reads and accepts go on
	// until the kernel has nothing more. Level-triggered (the default, as
	// libuv) reports a descriptor at every wait while it is ready.
	EdgeTriggered bool
	// LockOSThread runs the loop on a thread of its own
	// (runtime.LockOSThread) for as long as Run runs.
	LockOSThread bool
	// MaxEvents is how many events one epoll_wait returns at most.
	// Default 256.
	MaxEvents int
	// RawWait: while the loop's last wait ended within RawWait and no
	// Async was sent to it for schedtick.Quiet waits, a wait that blocks
	// the thread is a raw system call, which keeps the Go scheduler's P
	// (schedtick.Raw says why). 0: never.
	RawWait time.Duration
}

// LoopStats are a loop's counters. They belong to the loop's goroutine:
// read them from a callback, or after Run has returned.
type LoopStats struct {
	Syscalls uint64 // system calls made on the loop's goroutine
	Wakeups  uint64 // epoll_wait returns
	RawWaits uint64 // blocking waits that kept the P (LoopOptions.RawWait)
	Events   uint64 // epoll events handled
	Reads    uint64 // read calls that returned bytes
	Writes   uint64 // write and writev calls that took bytes
	BytesIn  uint64
	BytesOut uint64
}

// Loop is an event loop (libuv's uv_loop_t): one epoll descriptor, the
// handles registered with it, a timer heap, and the goroutine that calls
// Run. Every method of a Loop and of its handles must be called on that
// goroutine, except Async.Send, which is how other goroutines reach it,
// and InLoop.
//
// One iteration of Run is, as in libuv: run due timers; run pending
// request callbacks; run idle and prepare handles; poll for I/O (without
// blocking if an idle handle is active or work is pending; else until the
// next timer); dispatch I/O events; run check handles; run the close
// callbacks of handles closed in this iteration. Unlike libuv, writes are
// not tried inside TCP.Write: they are queued, and each handle's queue is
// flushed with one write or writev after the prepare handles and again
// after the check handles; the callbacks of the writes done run right
// after, and the hooks run again if those callbacks wrote more. (TCP.TryWrite
// writes at once, without a request.)
type Loop struct {
	epfd int
	et   bool
	lock bool
	tick schedtick.Ticker // the scheduler sees the loop yield
	raw  schedtick.Raw    // whether a wait keeps the P
	g    atomic.Uintptr   // core.G() of the goroutine in Run; 0 outside Run

	events   []unix.EpollEvent
	watchers []*watcher // by descriptor
	gen      uint32     // registration counter, kept in each event's data
	changes  []*watcher // watchers whose interest changed, applied before the poll
	ready    []*watcher // watchers to run again without an event (edge-triggered budget)
	writing  []*TCP     // handles with writes to flush in this iteration
	iov      []unix.Iovec

	timers   timerHeap
	now      int64 // the clock (core.Now) as of the last update
	stale    bool  // now was read before the last poll or callback: the next nanos reads it again
	inCall   int   // application callbacks running: nanos reads the clock each time
	idles    []*hook
	prepares []*hook
	checks   []*hook
	pending  []completer // requests done, callbacks not yet run
	closing  []closer    // handles closed, close callbacks not yet run
	handles  int         // open handles holding a descriptor

	stop      bool
	running   bool
	checksDue bool // from the poll phase to the end of the check phase

	park   Park
	rt     *runtimePark  // made by SetPark(ParkRuntime); read by Async.Send once sleep says so
	sleep  atomic.Uint32 // awake, sleepThread or sleepRuntime: what Async.Send must do
	sent   atomic.Uint32 // 1: an Async may have been sent to since runAsyncs last looked
	asyncs []*Async      // open Asyncs, looked at when sent says so

	// waitStart is when the last blocking wait began; waitOK, that no
	// poll came after it but the next blocking one (see poll).
	waitStart int64
	waitOK    bool

	// Stats are the loop's counters, owned by its goroutine.
	Stats LoopStats
	// foreignSyscalls counts system calls made for the loop by other
	// goroutines (Async.Send).
	foreignSyscalls atomic.Uint64
}

// watcher is a descriptor's registration with a loop's epoll.
type watcher struct {
	gen        uint32
	want       uint32    // events wanted: EPOLLIN, EPOLLOUT, EPOLLRDHUP
	h          ioHandler // first: the dispatch reads gen, h and tcp
	tcp        *TCP      // h, when it is a TCP handle: the dispatch reads for it
	fd         int       // -1 once the handle is closed
	armed      uint32    // the mask registered with epoll
	registered bool
	queued     bool // in loop.changes
	readyQ     bool // in loop.ready
}

// ioHandler is a handle that owns a watcher.
type ioHandler interface {
	onEvents(ev uint32)
}

// completer is a request whose callback runs in the pending phase.
type completer interface {
	complete()
}

// closer is a handle whose close callback runs in the closing phase.
type closer interface {
	closed()
}

// NewLoop makes a loop with its epoll descriptor.
func NewLoop(opt LoopOptions) (*Loop, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if opt.MaxEvents <= 0 {
		opt.MaxEvents = 256
	}
	l := &Loop{
		epfd:   fd,
		et:     opt.EdgeTriggered,
		lock:   opt.LockOSThread,
		raw:    schedtick.Raw{Within: opt.RawWait},
		events: make([]unix.EpollEvent, opt.MaxEvents),
		iov:    make([]unix.Iovec, 0, maxIovecs),
		stale:  true,
	}
	l.Stats.Syscalls++
	l.timers = newTimerHeap(l.nanos)
	return l, nil
}

// maxIovecs is how many buffers one writev takes (IOV_MAX on Linux).
const maxIovecs = 1024

// Run runs the loop on the calling goroutine until Stop is called
// (uv_run with UV_RUN_DEFAULT, except that a loop without active handles
// does not return: it waits for an Async to wake it).
func (l *Loop) Run() error {
	if l.running {
		return errors.New("libuvlike: Run called on a running loop")
	}
	if l.epfd < 0 {
		return errors.New("libuvlike: Run called on a closed loop")
	}
	if l.lock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	l.running = true
	l.g.Store(core.G())
	defer func() {
		l.g.Store(0)
		l.running = false
		l.stop = false
		l.checksDue = false
	}()
	l.updateTime()
	for !l.stop {
		if l.timers.len() > 0 {
			l.timers.run(l.nanos())
		}
		// The phases that usually have nothing to do are looked at
		// here, not called.
		if len(l.pending) > 0 {
			l.runPending()
		}
		if len(l.idles) > 0 {
			runHandles(&l.idles)
		}
		if len(l.prepares) > 0 || len(l.writing) > 0 || len(l.pending) > 0 {
			l.settle(&l.prepares)
		}
		if l.stop {
			break
		}
		l.checksDue = true
		if err := l.poll(l.pollTimeout()); err != nil {
			return err
		}
		l.settle(&l.checks)
		l.checksDue = false
		if len(l.closing) > 0 {
			l.runClosing()
		}
	}
	return nil
}

// settle runs the hooks (the prepare handles before the poll, the check
// handles after it), flushes the writes they made, and runs the callbacks
// of the writes that completed; again while those callbacks left work,
// up to a bound (the poll then does not block).
func (l *Loop) settle(hooks *[]*hook) {
	for round := 0; ; round++ {
		runHandles(hooks)
		if len(l.writing) > 0 {
			l.flushWrites()
		}
		if len(l.pending) == 0 || round == 7 {
			return
		}
		l.runPending()
	}
}

// runHandles calls the callback of every handle in *hs, in order. A
// callback may stop its own handle.
func runHandles(hs *[]*hook) {
	for i := 0; i < len(*hs); i++ {
		h := (*hs)[i]
		h.run()
		if i < len(*hs) && (*hs)[i] != h {
			i-- // h stopped itself; the next one moved into its place
		}
	}
}

// Stop makes Run return at the end of the current iteration (uv_stop).
func (l *Loop) Stop() { l.stop = true }

// ChecksDue reports whether the check handles run before the loop next
// waits: it is true from the poll phase (the I/O callbacks) to the end of
// the check phase. Work made while it is false, by timer, idle, pending
// or close callbacks, is met before the wait only by an idle or prepare
// handle.
func (l *Loop) ChecksDue() bool { return l.checksDue }

// InLoop reports whether the caller runs on the loop's goroutine, inside
// Run. It is safe from any goroutine.
func (l *Loop) InLoop() bool {
	g := l.g.Load()
	return g != 0 && g == core.G()
}

// Close releases the loop's epoll descriptor (uv_loop_close). It fails
// with ErrBusy while handles are open, and must not be called while Run
// runs.
func (l *Loop) Close() error {
	if l.running {
		return errors.New("libuvlike: Close called on a running loop")
	}
	if l.handles > 0 || len(l.closing) > 0 {
		return ErrBusy
	}
	if l.epfd < 0 {
		return nil
	}
	if l.rt != nil {
		l.rt.close()
	}
	err := unix.Close(l.epfd)
	l.Stats.Syscalls++
	l.epfd = -1
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// ForeignSyscalls returns the system calls made for the loop by other
// goroutines (Async.Send's eventfd writes). Safe from any goroutine.
func (l *Loop) ForeignSyscalls() uint64 { return l.foreignSyscalls.Load() }

// Now returns the loop's time (uv_now), brought up to date.
func (l *Loop) Now() time.Time {
	l.updateTime()
	return core.Time(l.now)
}

// UpdateTime brings the loop's time up to date (uv_update_time).
func (l *Loop) UpdateTime() { l.updateTime() }

func (l *Loop) updateTime() {
	l.now = core.Now()
	l.stale = false
}

// callbackStarts and callbackReturned bracket an application callback,
// which may run for long. Inside it nanos reads the clock at every call,
// so that what the callback starts (Close's limits, activity its writes
// stamp) counts from when it does it; after it the next nanos reads the
// clock again, so that a limit started then (the write-progress clock,
// when its output waits) counts from then, not from before the callback
// (conformance's *-slow-callback cases).
func (l *Loop) callbackStarts() { l.inCall++ }

func (l *Loop) callbackReturned() {
	l.inCall--
	l.stale = true
}

// nanos returns the loop's time in core.Now's nanoseconds, which timers
// and the connections' deadlines count in. Outside application callbacks
// it reads the clock at the first call after the poll and after each
// callback, and not at all in an iteration that needs no time (as libuv's
// cached uv_now): it may lag by the time the loop's own work since then
// took. Inside a callback it reads the clock each time.
func (l *Loop) nanos() int64 {
	if l.stale || l.inCall > 0 {
		l.updateTime()
	}
	return l.now
}

// NewTimer returns a stopped timer of l (uv_timer_init).
func (l *Loop) NewTimer() *Timer {
	return &Timer{heap: &l.timers, index: -1}
}

// InitTimer readies a Timer embedded in a larger value (uv_timer_init on
// memory the caller owns), so that it costs no allocation of its own.
func (l *Loop) InitTimer(t *Timer) {
	*t = Timer{heap: &l.timers, index: -1}
}

// pollTimeout returns epoll_wait's timeout in milliseconds: 0 when work
// is waiting, -1 when nothing but I/O can wake the loop.
func (l *Loop) pollTimeout() int {
	if l.stop || len(l.ready) > 0 || len(l.pending) > 0 || len(l.closing) > 0 || len(l.idles) > 0 {
		return 0
	}
	when, ok := l.timers.next()
	if !ok {
		return -1
	}
	d := when - l.nanos()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// poll applies the interest changes, waits for events and dispatches
// them.
func (l *Loop) poll(timeout int) error {
	l.applyChanges()
	var (
		r     uintptr
		errno syscall.Errno
	)
	ev := unsafe.Pointer(&l.events[0])
	switch {
	case timeout != 0 && l.park == ParkRuntime:
		var n int
		n, errno = l.parkRuntime(timeout) // counts its own system calls
		r = uintptr(n)
		l.waitOK = false
	case timeout != 0:
		// The clock is read once per wait, before it: two reads, before
		// and after each wait, were 129 of the 1,379 instructions
		// libuvlike ran per request at a fixed load (papers/0003,
		// residual/instructions.sh) and 0.27 us of its 3.4 us of user
		// time (perf's samples; a read after a system call finds the
		// clock's pages cold). The last wait is
		// timed from its start to this one's, the work after it
		// included: Raw judges the loop busy if that was within its
		// bound. A non-blocking poll in between leaves Raw's judgement of
		// the wait before, as when every wait was timed.
		t0 := core.Now()
		if l.waitOK {
			l.raw.Waited(time.Duration(t0 - l.waitStart))
		}
		raw := l.raw.Now()
		if l.tick.BeforeBlock(t0, raw) {
			t0 = core.Now()
		}
		l.waitStart, l.waitOK = t0, true
		l.sleep.Store(sleepThread)
		if !l.asyncPending() {
			if raw {
				r, _, errno = syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(ev), uintptr(len(l.events)), uintptr(timeout), 0, 0)
			} else {
				r, _, errno = syscall.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(ev), uintptr(len(l.events)), uintptr(timeout), 0, 0)
			}
			l.sleep.Store(awake)
			l.Stats.Syscalls++
			if raw {
				l.Stats.RawWaits++
			}
			break
		}
		l.sleep.Store(awake)
		fallthrough
	default:
		// Returns at once: no need to tell the scheduler.
		r, _, errno = syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(ev), uintptr(len(l.events)), 0, 0, 0)
		l.Stats.Syscalls++
		l.waitOK = false
	}
	l.Stats.Wakeups++
	n := int(r)
	switch {
	case errno == syscall.EINTR:
		n = 0
	case errno != 0:
		return os.NewSyscallError("epoll_pwait", errno)
	}
	// The clock is read again only where time is needed: not from the
	// wait's end, which would make a timer started in this iteration's
	// callbacks count from before them (TestTimerStartedAfterALongPoll...).
	l.stale = true
	l.Stats.Events += uint64(n)

	// Watchers carried over from the last iteration run first: they have
	// waited longest.
	if len(l.ready) > 0 {
		ready := l.ready
		l.ready = nil
		for i, w := range ready {
			ready[i] = nil
			w.readyQ = false
			if w.fd >= 0 {
				// As if the descriptor were readable and its peer had
				// closed: an edge-triggered reader then reads on until
				// EAGAIN, and cannot miss a FIN whose edge came earlier.
				w.h.onEvents(unix.EPOLLIN | unix.EPOLLRDHUP)
			}
		}
		if l.ready == nil {
			l.ready = ready[:0]
		}
	}
	for i := range n {
		e := &l.events[i]
		fd := int(e.Fd)
		if fd >= len(l.watchers) {
			continue
		}
		w := l.watchers[fd]
		if w == nil || w.gen != uint32(e.Pad) {
			continue // closed earlier in this batch, maybe reused
		}
		// The common event, a level-triggered TCP handle readable, is read
		// here rather than in a method: after a system call every return
		// mispredicts (the kernel's calls evict the CPU's return
		// predictions; on AMD with the SRSO mitigation, always), so the
		// read is made in the frame that goes on to the next event.
		if h := w.tcp; h != nil && e.Events == unix.EPOLLIN && !l.et && h.flags&tcpReadable == tcpReading {
			buf := h.alloc(h, suggestedRead)
			if len(buf) > 0 {
				l.Stats.Syscalls++
				n, errno := sysRead(h.fd, buf)
				if errno == 0 && n > 0 {
					l.Stats.Reads++
					l.Stats.BytesIn += uint64(n)
					h.read(h, buf[:n], nil)
				} else {
					h.readFailed(n, errno)
				}
				continue
			}
		}
		w.h.onEvents(e.Events)
	}
	l.runAsyncs()
	return nil
}

// asyncPending reports whether an Async was sent to and has not run.
func (l *Loop) asyncPending() bool {
	if l.sent.Load() == 0 {
		return false
	}
	for _, a := range l.asyncs {
		if a.pending.Load() != 0 {
			return true
		}
	}
	return false
}

// runAsyncs runs the callbacks of the Asyncs sent to, in the I/O phase
// as libuv does, whether or not their eventfd woke the loop: a Send made
// while the loop was awake writes none.
func (l *Loop) runAsyncs() {
	// A Send sets its Async's pending, then sent: cleared before the
	// Asyncs are looked at, sent is set again by any Send whose pending
	// this look may miss. The Asyncs themselves are not touched when no
	// Send came: on a wake-up for I/O they are cold.
	if l.sent.Load() == 0 {
		return
	}
	l.sent.Store(0)
	for i := 0; i < len(l.asyncs); i++ {
		a := l.asyncs[i]
		if a.pending.Load() == 0 {
			continue
		}
		// Cleared before the callback runs: a Send from now on wakes the
		// loop again, and one before found its work queued for this
		// callback.
		a.pending.Store(0)
		l.raw.Posted()
		if a.cb != nil {
			a.cb(a)
		}
	}
}

// runPending runs the callbacks of completed requests, including those
// their callbacks complete.
func (l *Loop) runPending() {
	for len(l.pending) > 0 {
		p := l.pending
		l.pending = nil
		for i, r := range p {
			p[i] = nil
			r.complete()
		}
		if l.pending == nil {
			l.pending = p[:0]
		}
	}
}

// runClosing runs the close callbacks of the handles closed in this
// iteration.
func (l *Loop) runClosing() {
	for len(l.closing) > 0 {
		c := l.closing
		l.closing = nil
		for i, h := range c {
			c[i] = nil
			h.closed()
		}
		if l.closing == nil {
			l.closing = c[:0]
		}
	}
}

// register gives w a slot for its descriptor; the epoll registration
// waits until w wants events.
func (l *Loop) register(w *watcher, fd int, h ioHandler) {
	for fd >= len(l.watchers) {
		l.watchers = append(l.watchers, nil)
	}
	l.gen++
	*w = watcher{fd: fd, gen: l.gen, h: h}
	l.watchers[fd] = w
	l.handles++
}

// unregister forgets w; its descriptor's registration ends with the
// close(2) that follows.
func (l *Loop) unregister(w *watcher) {
	if w.fd >= 0 && w.fd < len(l.watchers) && l.watchers[w.fd] == w {
		l.watchers[w.fd] = nil
	}
	w.fd = -1
	l.handles--
}

// setWant changes the events w wants; the change reaches epoll before the
// next poll.
func (l *Loop) setWant(w *watcher, want uint32) {
	if w.want == want {
		return
	}
	w.want = want
	if !w.queued {
		w.queued = true
		l.changes = append(l.changes, w)
	}
}

// runAgain makes w's handler run at the next iteration without waiting
// for an event, as if its descriptor were readable.
func (l *Loop) runAgain(w *watcher) {
	if !w.readyQ {
		w.readyQ = true
		l.ready = append(l.ready, w)
	}
}

// applyChanges registers the interest changes made since the last poll,
// one epoll_ctl per watcher at most. A watcher that wants nothing is
// parked with an edge-triggered empty mask: EPOLLHUP and EPOLLERR, which
// epoll always reports, then come once instead of at every wait.
func (l *Loop) applyChanges() {
	for i, w := range l.changes {
		l.changes[i] = nil
		w.queued = false
		if w.fd < 0 {
			continue
		}
		mask := w.want
		if mask == 0 {
			if !w.registered {
				continue
			}
			mask = unix.EPOLLET
		} else if l.et {
			mask |= unix.EPOLLET
		}
		if w.registered && mask == w.armed {
			continue
		}
		op := unix.EPOLL_CTL_MOD
		if !w.registered {
			op = unix.EPOLL_CTL_ADD
		}
		ev := unix.EpollEvent{Events: mask, Fd: int32(w.fd), Pad: int32(w.gen)}
		_, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), uintptr(op), uintptr(w.fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
		l.Stats.Syscalls++
		if errno != 0 {
			// A descriptor epoll refuses cannot be watched; let its handler
			// find the error with a read or write.
			l.runAgain(w)
			continue
		}
		w.registered = true
		w.armed = mask
	}
	l.changes = l.changes[:0]
}

// hook is what idle, prepare and check handles share: a callback the loop
// runs once per iteration at one point, while the handle is started. run
// calls the handle's callback; New* makes it once, so that starting a
// handle allocates nothing.
type hook struct {
	list *[]*hook // the loop's list for this kind of handle
	run  func()
}

func (h *hook) start() {
	if indexOf(*h.list, h) < 0 {
		*h.list = append(*h.list, h)
	}
}

func (h *hook) stop() { *h.list = removeHandle(*h.list, h) }

func (h *hook) active() bool { return indexOf(*h.list, h) >= 0 }

// Idle is an idle handle (uv_idle_t): while started, its callback runs
// once per iteration, before the poll, and the poll does not block.
type Idle struct {
	hook
	cb func(*Idle)
}

// NewIdle returns a stopped idle handle of l.
func (l *Loop) NewIdle() *Idle {
	h := &Idle{hook: hook{list: &l.idles}}
	h.run = func() { h.cb(h) }
	return h
}

// Start makes cb run once per iteration (uv_idle_start).
func (h *Idle) Start(cb func(*Idle)) { h.cb = cb; h.start() }

// Stop stops h (uv_idle_stop).
func (h *Idle) Stop() { h.stop() }

// Active reports whether h is started.
func (h *Idle) Active() bool { return h.active() }

// Prepare is a prepare handle (uv_prepare_t): its callback runs once per
// iteration, right before the poll; the writes it makes are flushed
// before the poll too.
type Prepare struct {
	hook
	loop *Loop
	cb   func(*Prepare)
}

// NewPrepare returns a stopped prepare handle of l.
func (l *Loop) NewPrepare() *Prepare {
	h := &Prepare{hook: hook{list: &l.prepares}, loop: l}
	h.run = func() { h.cb(h) }
	return h
}

// Start makes cb run before each poll (uv_prepare_start).
func (h *Prepare) Start(cb func(*Prepare)) { h.cb = cb; h.start() }

// Stop stops h (uv_prepare_stop).
func (h *Prepare) Stop() { h.stop() }

// WillBlock reports whether the coming poll may wait, as things stand:
// nothing but I/O or a timer can wake the loop. A prepare callback uses
// it to do work that can wait until the loop idles.
func (h *Prepare) WillBlock() bool {
	return len(h.loop.writing) == 0 && h.loop.pollTimeout() != 0
}

// Check is a check handle (uv_check_t): its callback runs once per
// iteration, right after the I/O callbacks; the writes it makes are
// flushed right after it, and it runs again (up to a bound) while the
// callbacks of completed writes leave more work.
type Check struct {
	hook
	cb func(*Check)
}

// NewCheck returns a stopped check handle of l.
func (l *Loop) NewCheck() *Check {
	h := &Check{hook: hook{list: &l.checks}}
	h.run = func() { h.cb(h) }
	return h
}

// Start makes cb run after each poll (uv_check_start).
func (h *Check) Start(cb func(*Check)) { h.cb = cb; h.start() }

// Stop stops h (uv_check_stop).
func (h *Check) Stop() { h.stop() }

func indexOf[T comparable](s []T, v T) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func removeHandle[T comparable](s []T, v T) []T {
	if i := indexOf(s, v); i >= 0 {
		copy(s[i:], s[i+1:])
		var zero T
		s[len(s)-1] = zero
		s = s[:len(s)-1]
	}
	return s
}
