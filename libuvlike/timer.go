package libuvlike

import "time"

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

// timerHeap is a binary min-heap of armed timers, ordered by deadline and
// then start order. It is owned by one loop's goroutine.
type timerHeap struct {
	ts    []*Timer
	seq   uint64
	clock func() int64 // the loop's clock (Loop.nanos)
}

func (h *timerHeap) less(i, j int) bool {
	a, b := h.ts[i], h.ts[j]
	return a.when < b.when || a.when == b.when && a.seq < b.seq
}

func (h *timerHeap) swap(i, j int) {
	h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
	h.ts[i].index = i
	h.ts[j].index = j
}

func (h *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *timerHeap) down(i int) {
	n := len(h.ts)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *timerHeap) push(t *Timer, when int64) {
	h.seq++
	t.when, t.seq = when, h.seq
	t.index = len(h.ts)
	h.ts = append(h.ts, t)
	h.up(t.index)
}

func (h *timerHeap) remove(t *Timer) {
	i, last := t.index, len(h.ts)-1
	if i != last {
		h.swap(i, last)
	}
	h.ts[last] = nil
	h.ts = h.ts[:last]
	t.index = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

// next returns the earliest deadline, and false if no timer is armed.
func (h *timerHeap) next() (int64, bool) {
	if len(h.ts) == 0 {
		return 0, false
	}
	return h.ts[0].when, true
}

// run calls the callbacks of the timers due at now, in order. A repeating
// timer is re-armed before its callback runs (as libuv does), so the
// callback may stop it. Timers (re)started while run runs wait for its
// next call, so a callback that restarts its timer with a zero timeout
// cannot keep the loop here.
func (h *timerHeap) run(now int64) {
	limit := h.seq
	for len(h.ts) > 0 {
		t := h.ts[0]
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
