package libuvlike

import (
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Async is an async handle (uv_async_t): any goroutine may Send to it, and
// its callback then runs on the loop's goroutine. Sends made before the
// callback runs are coalesced into one call, so the callback must look
// for all the work that may be waiting. It has an eventfd of its own.
type Async struct {
	loop    *Loop
	w       watcher
	cb      func(*Async)
	closeCb func(*Async)
	pending atomic.Uint32 // 1 from a Send until the callback is about to run
	buf     [8]byte       // the eventfd's counter, read by the loop

	mu   sync.Mutex // serialises a Send's write with Close
	fd   int        // guarded by mu; -1 once closed
	done bool       // Close was called; owned by the loop
}

// NewAsync makes an async handle whose callback cb runs on l after Send
// (uv_async_init). The handle is active until closed.
func (l *Loop) NewAsync(cb func(*Async)) (*Async, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	l.Stats.Syscalls++
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	a := &Async{loop: l, cb: cb, fd: fd}
	l.register(&a.w, fd, a)
	l.setWant(&a.w, unix.EPOLLIN)
	l.asyncs = append(l.asyncs, a)
	return a, nil
}

// Send wakes the loop to run the callback (uv_async_send). It is safe from
// any goroutine, never blocks, and does nothing once the handle is closed.
func (a *Async) Send() {
	if a.pending.Load() != 0 || a.pending.Swap(1) != 0 {
		return // a wake-up is on its way
	}
	l := a.loop
	l.sent.Store(1) // after pending: see runAsyncs
	switch l.sleep.Load() {
	case awake:
		// The loop looks at its Asyncs before it sleeps and after every
		// poll.
	case sleepRuntime:
		l.rt.poke()
	case sleepThread:
		one := [8]byte{1} // the eventfd adds this little-endian 1 to its counter
		a.mu.Lock()
		if a.fd >= 0 {
			unix.Write(a.fd, one[:])
			l.foreignSyscalls.Add(1)
		}
		a.mu.Unlock()
	}
}

// onEvents empties the eventfd a Send wrote; the poll's end runs the
// callback.
func (a *Async) onEvents(uint32) {
	unix.RawSyscall(unix.SYS_READ, uintptr(a.w.fd), uintptr(unsafe.Pointer(&a.buf[0])), 8)
	a.loop.Stats.Syscalls++
}

// Close closes the handle (uv_close); cb, if not nil, runs in the loop's
// closing phase.
func (a *Async) Close(cb func(*Async)) {
	if a.done {
		return
	}
	a.done = true
	a.closeCb = cb
	a.loop.unregister(&a.w)
	for i, b := range a.loop.asyncs {
		if b == a {
			a.loop.asyncs = append(a.loop.asyncs[:i], a.loop.asyncs[i+1:]...)
			break
		}
	}
	a.mu.Lock()
	a.loop.sysClose(a.fd)
	a.fd = -1
	a.mu.Unlock()
	a.loop.closing = append(a.loop.closing, a)
}

func (a *Async) closed() {
	if a.closeCb != nil {
		a.closeCb(a)
	}
}
