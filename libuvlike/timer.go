package libuvlike

import (
	"time"

	"github.com/merlin-net/merlin/internal/minheap"
)

// Timer is a timer handle (libuv's uv_timer_t): a callback that runs on its
// loop's goroutine once its timeout has passed, and again every repeat if
// repeat is not zero. Make one with Loop.NewTimer. Its methods must be
// called on the loop's goroutine.
//
// Due timers run in order of their deadlines, ties in the order they were
// started, at the start of each loop iteration after the poll.
type Timer struct {
	heap   *timerHeap
	when   int64         // deadline, in the loop's clock (Loop.nanos)
	seq    uint64        // start order, to break ties between equal deadlines
	repeat time.Duration // 0: one-shot
	index  int           // position in heap, or -1 when stopped
	cb     func(*Timer)
	closed bool
}

// Start arms t to call cb after timeout, and then every repeat if repeat
// is positive (uv_timer_start). A running timer is restarted. A negative
// timeout counts as zero: cb runs at the next iteration.
func (t *Timer) Start(cb func(*Timer), timeout, repeat time.Duration) {
	if t.closed {
		return
	}
	t.Stop()
	t.cb = cb
	t.repeat = max(repeat, 0)
	t.heap.push(t, t.heap.clock()+int64(max(timeout, 0)))
}

// startAt arms t to call cb once at when, in the loop's clock (Loop.nanos):
// a deadline computed once for many limits (core.Deadlines), rather than
// a timeout from a time read again.
func (t *Timer) startAt(cb func(*Timer), when int64) {
	if t.closed {
		return
	}
	t.Stop()
	t.cb = cb
	t.repeat = 0
	t.heap.push(t, when)
}

// Stop disarms t (uv_timer_stop). Stopping a stopped timer does nothing.
func (t *Timer) Stop() {
	if t.index >= 0 {
		t.heap.remove(t)
	}
}

// Again restarts a repeating timer with its repeat as the timeout
// (uv_timer_again). It does nothing to a timer that was never started or
// has no repeat.
func (t *Timer) Again() {
	if t.cb == nil || t.repeat == 0 || t.closed {
		return
	}
	t.Stop()
	t.heap.push(t, t.heap.clock()+int64(t.repeat))
}

// Active reports whether t is armed (uv_is_active).
func (t *Timer) Active() bool { return t.index >= 0 }

// Close stops t for good (uv_close on a timer). A timer holds no
// descriptor, so there is no close callback.
func (t *Timer) Close() {
	t.Stop()
	t.closed = true
}

// timerHeap holds the armed timers, ordered by deadline and then start
// order. It is owned by one loop's goroutine.
type timerHeap struct {
	h     minheap.Heap[*Timer]
	seq   uint64
	clock func() int64 // the loop's clock (Loop.nanos)
}

func newTimerHeap(clock func() int64) timerHeap {
	return timerHeap{
		h: minheap.New(func(a, b *Timer) bool {
			return a.when < b.when || a.when == b.when && a.seq < b.seq
		}, func(t *Timer, i int) { t.index = i }),
		clock: clock,
	}
}

func (h *timerHeap) push(t *Timer, when int64) {
	h.seq++
	t.when, t.seq = when, h.seq
	h.h.Push(t)
}

func (h *timerHeap) remove(t *Timer) { h.h.Remove(t.index) }

// len returns the number of armed timers.
func (h *timerHeap) len() int { return h.h.Len() }

// next returns the earliest deadline, and false if no timer is armed.
func (h *timerHeap) next() (int64, bool) {
	if h.h.Len() == 0 {
		return 0, false
	}
	return h.h.Min().when, true
}

// run calls the callbacks of the timers due at now, in order. A repeating
// timer is re-armed before its callback runs (as libuv does), so the
// callback may stop it. Timers (re)started while run runs wait for its
// next call, so a callback that restarts its timer with a zero timeout
// cannot keep the loop here.
func (h *timerHeap) run(now int64) {
	limit := h.seq
	for h.h.Len() > 0 {
		t := h.h.Min()
		if t.when > now || t.seq > limit {
			return
		}
		h.remove(t)
		if t.repeat > 0 {
			h.push(t, now+int64(t.repeat))
		}
		t.cb(t)
	}
}
