package uring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/internal/minheap"
	"github.com/merlin-net/merlin/internal/schedtick"
	"github.com/merlin-net/merlin/transports"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// user_data layout. Every SQE's user_data, and so every CQE's, is
//
//	bits 63-56  op: what the request is (opRecv, opSend, ...)
//	bits 55-32  aux: per-op detail (the sequence number of a SEND_ZC,
//	            the listener of a descriptor handed over by MSG_RING)
//	bits 31-0   index: the connection's slot in its loop's table, the
//	            acceptor's slot, or a descriptor (opMsgSent)
//
// A connection's slot is reused only after every request that names it
// has completed, so a CQE always finds the connection it belongs to.
const (
	opNone     = iota
	opRecv     // multishot recv into the buffer ring; index: conn slot
	opSend     // send or SEND_ZC of the conn's output; aux: ZC sequence
	opShutdown // shutdown(SHUT_WR)
	opClose    // close of the conn's descriptor
	opCloseFix // close of the conn's fixed-file slot
	opFiles    // FILES_UPDATE installing the conn's descriptor in the file table
	opConnect  // connect of a dialed conn
	opAccept   // multishot accept; index: acceptor slot
	opWake     // eventfd read: another goroutine wants the loop
	opMsgFD    // (target ring) a descriptor from the acceptor ring; aux: listener id, res: fd
	opMsgSent  // (acceptor ring) the MSG_RING that sent descriptor index; aux: its listener id
	opCancel   // ASYNC_CANCEL (CQE only on failure, which is ignored)
	opRdhup    // unix sockets: POLL_ADD for the peer's shutdown
	opTimeout  // TIMEOUT that wakes a waiting loop for its earliest timer
	// NOP linked after an inline send (CQE only when the send took less
	// than everything, which cancels it)
	opInlineWake
)

func mkUD(op uint8, aux uint32, index uint32) uint64 {
	return uint64(op)<<56 | uint64(aux&0xffffff)<<32 | uint64(index)
}

func udOp(ud uint64) uint8     { return uint8(ud >> 56) }
func udAux(ud uint64) uint32   { return uint32(ud>>32) & 0xffffff }
func udIndex(ud uint64) uint32 { return uint32(ud) }

// loopStats are a loop's counters: the common ones, and io_uring's own.
type loopStats struct {
	transports.Counters
	sqes, cqes       atomic.Uint64
	enobufs          atomic.Uint64
	bufLow           atomic.Int64 // fewest free buffers seen
	zcSends, zcCopy  atomic.Uint64
	cancels          atomic.Uint64
	sqFull, overflow atomic.Uint64
	rawWaits         atomic.Uint64 // waits that kept the P (the rawwait key)
	inlineFull       atomic.Uint64 // inline sends that found the socket full (the inlinesend key)
	inlineWakes      atomic.Uint64 // completions of the NOPs linked after them
	postedWakes      atomic.Uint64 // wake-ups other goroutines made: eventfd writes, pokes
	moves            atomic.Uint64 // a runtime loop's moves to another thread (loop.moved)
	_                [64]byte
}

// loop is one ring and the goroutine that owns it and every connection
// on it. A thread loop's goroutine is locked to its thread and blocks it
// in io_uring_enter; a runtime loop's parks in the Go runtime's netpoller
// (park_linux.go).
type loop struct {
	t     *Transport
	set   *loopSet // the loops of its kind
	id    int
	ring  *ring
	bufs  *bufRing
	stats *loopStats
	ls    localStats // owned by the loop goroutine, flushed into stats
	// spares are the kept-input buffers of the loop's conns that hold
	// none now; owned by the loop goroutine.
	spares *core.Spares
	// outFree are output buffers of the loop's conns that hold none now
	// (outBuf, putOut); owned by the loop goroutine.
	outFree []*[outChunk]byte
	iter    uint64 // loop iterations, owned by the loop goroutine
	clock   int64  // core.Now, read once per iteration (see now); 0: not yet; loop-owned
	// sendsQueued counts the sends prepared since the last enter, and
	// lastBatch the completions the last wait returned, and lastIdle
	// whether it blocked for longer than minwait (waitCount).
	sendsQueued uint32
	// inlineSend: this loop's sends go inline (submitSend; the
	// inlinesend key, on a thread loop without SQPOLL), and inline holds
	// the conns whose inline sends were prepared since the last enter
	// (waitCount).
	inlineSend bool
	inline     []*conn
	reaped     int // completions the reap now being stepped brought (0 outside one)
	lastBatch  int
	lastIdle   bool
	raw        schedtick.Raw  // which wait keeps the P
	g          atomic.Uintptr // the loop goroutine's core.G, for inCallback and outBuf; 0 outside run
	fdOut      atomic.Int32   // the ring's descriptor, for MSG_RING senders

	// Owned by the loop goroutine.
	conns     []*conn
	freeSlots []uint32
	nconns    int              // slots in use
	acceptors []*acceptor      // by slot; nil when free
	dirty     []*conn          // conns to step after the CQE batch
	dirtyAt   int              // dirty[:dirtyAt] are stepped (stepDirty)
	starved   []*conn          // conns whose recv ended with ENOBUFS
	tick      schedtick.Ticker // the scheduler sees the loop yield
	timers    minheap.Heap[timed]
	fixed     []int32 // free fixed-file slots
	wakeArmed bool
	wakeStop  bool     // the eventfd read is being cancelled
	efd       int      // guarded by mu after setup
	efdBuf    *[8]byte // the eventfd read's target, off the stack
	stopping  bool
	msgsOut   int // MSG_RINGs sent and not completed
	cqBuf     []cqe
	zcSeq     uint32
	// tmoArmed: a TIMEOUT (opTimeout) is in the ring, running out at tmoAt
	// (on core.Now's clock) or earlier; the kernel reads tmoTS when the
	// request, or an update of it, is submitted. tmoStop: it is being
	// cancelled, the loop stopping.
	tmoArmed, tmoStop bool
	tmoAt             int64
	tmoTS             unix.Timespec
	// timerSets and tmoSets count setTimer calls and TIMEOUT requests (and
	// updates) submitted, for tests: both are rare, not per request. steps
	// counts conn steps, for a test: one per request for an echo.
	timerSets, tmoSets, steps uint64
	// pk parks a runtime loop (nil: a thread loop). callbacks counts the
	// callbacks run, and yieldAt its value when a runtime loop last
	// yielded to the goroutines they readied.
	pk                 *parker
	callbacks, yieldAt uint64
	// tid is the thread a runtime loop last ran on (moved, below).
	tid uintptr
	// recvLimit: a multishot recv takes a limit on the bytes it receives
	// in all (sqe->optlen, Linux 6.17), after which it ends; before 6.17
	// the field is file_index, which a recv refuses.
	recvLimit bool

	// Shared with other goroutines, guarded by mu.
	mu       sync.Mutex
	posted   []*conn  // conns whose state other goroutines changed
	tasks    []func() // work for the loop
	sleeping bool     // the loop is (about to be) blocked in io_uring_enter, or parked
	dead     bool     // the loop has stopped: posts are dropped
	woken    bool     // an eventfd write is on its way, or a runtime loop was poked
	spare    []*conn
	spareT   []func()
}

// start sets up the ring on a new goroutine, locked to its thread unless
// the loop is a runtime loop, and reports the setup's result on ready.
// The loop then runs until stopped.
func (l *loop) start(wg *sync.WaitGroup, ready chan<- error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !l.set.runtime {
			runtime.LockOSThread()
			// At the end the thread goes back to the runtime, for any
			// goroutine.
			defer runtime.UnlockOSThread()
		}
		if err := l.setup(); err != nil {
			l.teardown()
			ready <- err
			return
		}
		l.g.Store(core.G())
		l.tid, _, _ = syscall.RawSyscall(unix.SYS_GETTID, 0, 0, 0) // where its first requests are submitted
		ready <- nil
		l.run()
		l.g.Store(0)
		l.teardown()
	}()
}

// ringFlags returns the setup flags of a loop's ring: for a thread loop
// the probe's best (or SQPOLL), for a runtime loop SUBMIT_ALL and
// COOP_TASKRUN with TASKRUN_FLAG where the kernel has them (see
// park_linux.go for why not SINGLE_ISSUER or DEFER_TASKRUN).
func ringFlags(f *features, o *options, runtime bool) uint32 {
	switch {
	case runtime:
		fl := f.setup & setupSubmitAll
		if f.setup&(setupDeferTask|setupCoopTaskrun) != 0 {
			// The probe records DEFER_TASKRUN (6.1) over COOP_TASKRUN
			// (5.19): a kernel with the first has the second.
			fl |= setupCoopTaskrun | setupTaskrunFlag
		}
		return fl
	case o.sqpoll:
		return (f.setup & setupSubmitAll) | giouring.SetupSQPoll | setupSingleIss
	}
	return f.setup
}

// setup makes the ring, the buffer ring, the file table, and the eventfd
// (a thread loop) or the parker (a runtime loop).
func (l *loop) setup() error {
	o := &l.t.opt
	r, err := newRing(uint32(o.entries), ringFlags(l.t.feat, o, l.set.runtime), 50)
	if err != nil {
		return setupError(err)
	}
	if o.minWait > 0 && l.t.feat.feat&featMinTimeout != 0 && !l.set.runtime {
		r.MinWaitUs = uint32(max(o.minWait.Microseconds(), 1))
	}
	l.ring = r
	l.fdOut.Store(int32(r.Fd))
	if l.bufs, err = newBufRing(r.Fd, 0, o.bufCount, o.bufSize); err != nil {
		return err
	}
	l.stats.bufLow.Store(int64(o.bufCount))
	if l.bufs.Inc {
		l.t.bufInc.Store(1)
	}
	if o.fixedFiles {
		n := fixedTableSize()
		reg := struct {
			nr, flags uint32
			resv2     uint64
			data      uint64
			tags      uint64
		}{nr: uint32(n), flags: rsrcRegSparse}
		if _, e := register(r.Fd, registerFiles2, unsafe.Pointer(&reg), uint32(unsafe.Sizeof(reg))); e == 0 {
			l.fixed = make([]int32, n)
			for i := range l.fixed {
				l.fixed[i] = int32(n - 1 - i)
			}
		}
		// Without a table (no room under RLIMIT_NOFILE), sockets are
		// used by descriptor, which is only slower.
	}
	l.cqBuf = make([]cqe, 256)
	if l.set.runtime {
		l.pk, err = newParker(r.Fd, l.parkReady)
		if err != nil {
			return err
		}
		l.recvLimit = l.t.feat.atLeast(6, 17)
		return nil
	}
	// A send with MSG_DONTWAIT that would block fails at once (-EAGAIN,
	// or a short count) instead of waiting in the kernel for room
	// (io_queue_async with REQ_F_NOWAIT, in io_uring/io_uring.c), and
	// its completion is posted before io_uring_enter returns or waits.
	// Read in 6.18's code and checked by TestInlineSend*; taken from 6.1
	// (DEFER_TASKRUN's).
	l.inlineSend = o.inlineSend && l.t.feat.atLeast(6, 1) && r.Features&featCQESkip != 0
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("uring: eventfd: %w", err)
	}
	l.efd = efd
	l.efdBuf = new([8]byte)
	l.recvLimit = l.t.feat.atLeast(6, 17)
	return nil
}

// fixedTableSize is the size of a ring's file table: the kernel refuses
// more slots than RLIMIT_NOFILE allows.
func fixedTableSize() int {
	var rl unix.Rlimit
	n := 1 << 16
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n) {
		n = int(rl.Cur)
	}
	return n
}

// teardown releases the ring and what hangs on it. Every request has
// completed by now (run returns only then), so no memory the kernel may
// still write is unmapped under it.
func (l *loop) teardown() {
	if l.ring != nil {
		l.ring.Close()
		l.fdOut.Store(-1)
	}
	if l.bufs != nil {
		l.bufs.Close()
	}
	l.mu.Lock()
	l.dead = true
	if l.efd > 0 {
		unix.Close(l.efd)
		l.efd = 0
	}
	if l.pk != nil {
		l.pk.close()
	}
	l.mu.Unlock()
}

// post asks the loop to look at c's state again. It wakes the loop if it
// sleeps; a burst of posts costs one wake-up.
func (l *loop) post(c *conn) {
	l.mu.Lock()
	if !l.dead {
		l.posted = append(l.posted, c)
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// postTask runs f on the loop (not at all if the loop has stopped).
func (l *loop) postTask(f func()) {
	l.mu.Lock()
	if !l.dead {
		l.tasks = append(l.tasks, f)
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// wakeLocked wakes the loop if it sleeps and no wake-up is on its way: a
// thread loop by an eventfd write, a runtime loop by a poke, which makes
// no system call. It runs under mu, so that neither the eventfd nor the
// parker's descriptor can be closed under it, and so that the loop, which
// clears a poke once it has taken mu after waking, finds every poke made
// while it slept.
func (l *loop) wakeLocked() {
	if !l.sleeping || l.woken {
		return
	}
	l.woken = true
	l.stats.postedWakes.Add(1)
	if l.pk != nil {
		l.pk.poke()
		return
	}
	one := [8]byte{1}
	for {
		if _, err := unix.Write(l.efd, one[:]); err != syscall.EINTR {
			return
		}
	}
}

// run is the loop: run posted work, submit and wait, handle completions.
func (l *loop) run() {
	l.armWake()
	for {
		l.runPosted()
		l.runTimers()
		l.stepDirty()
		l.rearmStarved()
		if l.stopping && l.idle() {
			l.ls.flush(l.stats)
			if l.wakeArmed || l.tmoArmed {
				// The eventfd read targets Go memory: it must complete
				// before the ring goes; and so must the timeout, which
				// would otherwise keep the loop waiting for nothing.
				if l.wakeArmed && !l.wakeStop {
					l.wakeStop = true
					l.cancel(mkUD(opWake, 0, 0))
				}
				if l.tmoArmed && !l.tmoStop {
					l.tmoStop = true
					l.cancel(mkUD(opTimeout, 0, 0))
				}
			} else {
				l.finalDrain()
				return
			}
		}
		l.bufs.Publish()
		if l.pk != nil {
			l.turnRuntime()
			continue
		}
		wait := l.prepareSleep()
		if l.iter++; wait || l.iter%64 == 0 {
			l.ls.flush(l.stats) // before blocking, and now and then when busy
		}
		var waitNr uint32
		if wait {
			l.armTimeout()
			waitNr = l.waitCount()
		}
		l.submit(waitNr)
		if wait {
			l.mu.Lock()
			l.sleeping = false
			l.mu.Unlock()
			l.ls.wakeups++
		}
		n := l.reapAll()
		if wait {
			l.lastBatch = n
		}
	}
}

// waitCount is how many completions a wait asks for. Without minwait, one
// more than the quiet inline sends this enter submits (quietInline): each
// completes while the enter submits it, before it waits, so the wait
// ends at the first completion besides them, the next event, where it
// would otherwise end at once with the sends' (the kernel counts from
// the CQ's head, and the loop waits only with the CQ empty: prepareSleep).
// A send the kernel might complete later is never counted: the wait
// could then hold that completion, and whatever waits behind it, until
// some other event came. An enter that does not submit every entry
// returns without waiting.
//
// With minwait (min_wait_usec, Linux 6.12), a loop that is busy (its last wait
// was shorter than minwait) asks for a batch: as many as the last wait
// brought (at most 64), and at least one more than the sends this enter
// submits, since those complete at once when the socket has room and would
// otherwise end the wait before anything came in. The kernel returns with
// fewer once minwait has passed, so a send that cannot complete delays the
// loop by minwait at most. A loop that waited longer than that is not
// saturated: batching would only add the timer's cost and latency, so it
// asks for one.
func (l *loop) waitCount() uint32 {
	if l.ring.MinWaitUs == 0 || l.lastIdle {
		return 1 + l.quietInline()
	}
	return max(1+l.sendsQueued, min(uint32(l.lastBatch), 64))
}

// quietInline counts the inline sends about to be submitted whose
// completion, should they take everything, asks nothing of the loop but
// bookkeeping: no output queued behind them, no FIN, close or drain
// waiting for them, reading not paused on them. A busy loop's wait (one
// that will be raw) may then sleep past their completions, to the next
// event; OutboundBuffered counts their bytes until it comes, or until the
// runtime's preemption ends the raw wait (10 ms after it began, or a
// little more: schedtick). A send that does not take everything ends the
// wait through its linked NOP.
func (l *loop) quietInline() uint32 {
	if len(l.inline) == 0 || !l.raw.Now() {
		return 0
	}
	n := uint32(0)
	for _, c := range l.inline {
		if c.dying {
			continue
		}
		c.mu.Lock()
		quiet := len(c.wbuf) == 0 && c.st&(core.BPPaused|core.WrClosed|core.Closing|core.Killed|core.WantShut|core.DrainDue|core.ShutdownDue|core.OfferKept) == 0
		c.mu.Unlock()
		if quiet {
			n++
		}
	}
	return n
}

// inlineSent forgets the inline sends an enter has just submitted.
func (l *loop) inlineSent() {
	clear(l.inline)
	l.inline = l.inline[:0]
}

// localStats are counters the loop adds to on its hot path without atomic
// operations; flush publishes them before the loop blocks and every 64
// iterations.
type localStats struct {
	reads, bytesIn, writes, bytesOut uint64
	sqes, cqes, enters, wakeups      uint64
	inlineFull, inlineWakes          uint64 // inline sends that found the socket full; their NOPs' completions
}

func (ls *localStats) flush(st *loopStats) {
	if ls.reads != 0 {
		st.Reads.Add(ls.reads)
		st.BytesIn.Add(ls.bytesIn)
	}
	if ls.writes != 0 {
		st.Writes.Add(ls.writes)
		st.BytesOut.Add(ls.bytesOut)
	}
	st.sqes.Add(ls.sqes)
	st.cqes.Add(ls.cqes)
	st.Events.Add(ls.cqes)
	st.Syscalls.Add(ls.enters)
	st.Wakeups.Add(ls.wakeups)
	if ls.inlineFull != 0 || ls.inlineWakes != 0 {
		st.inlineFull.Add(ls.inlineFull)
		st.inlineWakes.Add(ls.inlineWakes)
	}
	*ls = localStats{}
}

// idle reports whether nothing of the loop remains in the kernel.
func (l *loop) idle() bool {
	if l.nconns > 0 || l.msgsOut > 0 {
		return false
	}
	for _, a := range l.acceptors {
		if a != nil {
			return false
		}
	}
	return true
}

// finalDrain reaps what the kernel still queued for this ring (a
// descriptor handed over by MSG_RING at the last moment is closed).
func (l *loop) finalDrain() {
	l.submit(0)
	l.reapAll()
	l.ls.flush(l.stats)
}

// prepareSleep reports whether the loop may block: nothing is posted and
// no completion waits. It then marks the loop sleeping, so that posters
// wake it.
func (l *loop) prepareSleep() bool {
	if l.ring.CQReady() || len(l.dirty) > 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.posted) > 0 || len(l.tasks) > 0 {
		return false
	}
	l.sleeping = true
	return true
}

// quiet reports, without marking the loop sleeping, whether it has
// nothing to do: what prepareSleep looks at.
func (l *loop) quiet() bool {
	if l.ring.CQReady() || len(l.dirty) > 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.posted) == 0 && len(l.tasks) == 0
}

// turnRuntime ends a turn of a runtime loop (run does the rest): with work
// waiting, it submits and reaps; with none, it first lets the goroutines
// its callbacks readied run (runtime.Gosched, once for each batch of
// callbacks): on this P they are the net.Conn adapter's readers, woken by
// the data just delivered, whose Writes then post to a loop that does not
// sleep, costing no wake-up, and go out in one batch at its next turn.
// Only when it still has nothing to do does it park in the netpoller,
// until a completion, a post or a timer's TIMEOUT.
func (l *loop) turnRuntime() {
	l.clock = 0 // time passes in a yield and a park: the next now reads the clock again
	if l.iter++; l.iter%64 == 0 {
		l.ls.flush(l.stats)
	}
	if !l.quiet() {
		l.submitNow()
		if l.reapAll() == 0 && l.ring.CQReady() {
			// The CQ overflowed: the kernel holds completions until an
			// enter flushes them (Ring.Enter asks with GETEVENTS).
			l.submit(0)
		}
		return
	}
	if l.callbacks != l.yieldAt {
		l.yieldAt = l.callbacks
		l.submitNow() // the sends go out before the goroutines run
		runtime.Gosched()
		l.moved()
		return
	}
	if !l.prepareSleep() {
		return
	}
	l.armTimeout()
	l.ls.flush(l.stats)
	err := l.pk.park()
	l.ls.enters++ // the wait, as Stats counts it
	l.mu.Lock()
	l.sleeping = false
	poked := l.woken
	l.woken = false
	l.mu.Unlock()
	if poked {
		// Every poke was made under mu while the loop slept: none can
		// follow this clear until the next prepareSleep.
		l.pk.clear()
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		l.t.cfg.Logger.Error("uring: waiting in the netpoller", "loop", l.id, "err", err)
		time.Sleep(time.Millisecond) // do not spin on a broken descriptor
	}
	l.ls.wakeups++
	l.moved()
	l.reapAll()
}

// moved re-arms a runtime loop's multishot receives when the runtime has
// moved its goroutine to another thread. A request's task work belongs to
// the thread that submitted it: left armed, every completion of a receive
// armed before the move would wake the old thread, which then runs the
// task work and sleeps again, a switch of threads per completion
// (measured on net/http over TLS: 7.3 us per request in the scheduler).
// Cancelled, each ends with ECANCELED and step arms it again from here.
func (l *loop) moved() {
	tid, _, _ := syscall.RawSyscall(unix.SYS_GETTID, 0, 0, 0)
	if tid == l.tid {
		return
	}
	l.tid = tid
	l.stats.moves.Add(1)
	for _, c := range l.conns {
		if c != nil && c.recvArmed && !c.recvStop && !c.starved {
			c.recvStop = true
			l.cancel(mkUD(opRecv, 0, c.slot))
		}
	}
}

// parkReady is the parker's ready: called on the loop goroutine before
// each wait in the netpoller, after the descriptor's readiness was reset,
// it submits what is queued, without waiting, and reports whether the
// loop has work: completions (some may complete inline, in the enter) or
// posts. A completion that comes after this look commits to the CQ and
// wakes the ring's poll wait queue, which readies the loop.
func (l *loop) parkReady(uintptr) bool {
	l.submitNow()
	if l.ring.CQReady() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.posted) > 0 || len(l.tasks) > 0
}

// submitNow submits the prepared SQEs without waiting, running the
// loop's task work if the kernel says some waits (TASKRUN_FLAG), and
// makes no system call when there is neither: how a runtime loop enters
// the kernel.
func (l *loop) submitNow() {
	if n := l.ring.Publish(); n > 0 || l.ring.TaskPending() {
		l.ls.sqes += uint64(n)
		l.sendsQueued = 0
		l.inlineSent()
		l.ls.enters++
		l.checkEnter(l.ring.Enter(n, 0, 0, false))
	}
}

// submit publishes the prepared SQEs and enters the kernel, waiting for
// waitNr completions if it is not 0. A wait has no timeout of its own:
// the loop's timers wake it through armTimeout's request. Before a wait
// the loop passes through the scheduler now and then (the Ticker), and
// the clock is read once before the wait and once after: a read is a
// visible share of a wake-up's user time.
func (l *loop) submit(waitNr uint32) {
	l.clock = 0 // time passes in the enter: the next now reads the clock again
	n := l.ring.Publish()
	l.ls.sqes += uint64(n)
	l.sendsQueued = 0
	l.inlineSent()
	l.ls.enters++
	if waitNr == 0 {
		l.checkEnter(l.ring.Enter(n, 0, 0, false))
		return
	}
	raw, t0 := l.raw.Now(), core.Now()
	if l.tick.BeforeBlock(t0, raw) {
		t0 = core.Now()
	}
	if raw {
		l.stats.rawWaits.Add(1)
	}
	l.checkEnter(l.ring.Enter(n, waitNr, 0, raw))
	l.clock = max(core.Now(), 1) // read for the rules below, and as the loop's clock
	d := time.Duration(l.clock - t0)
	l.raw.Waited(d)
	l.lastIdle = d > time.Duration(l.ring.MinWaitUs)*time.Microsecond // read by waitCount with minwait only
}

// checkEnter handles io_uring_enter's errno: EINTR and ETIME are normal.
func (l *loop) checkEnter(e syscall.Errno) {
	switch e {
	case 0, syscall.ETIME, syscall.EINTR:
	case syscall.EBUSY, syscall.EAGAIN:
		// The CQ overflowed and cannot be flushed until we reap.
		l.stats.overflow.Add(1)
	default:
		l.t.cfg.Logger.Error("uring: io_uring_enter", "loop", l.id, "err", e)
		time.Sleep(time.Millisecond) // do not spin on a broken ring
	}
}

// sqe returns a zeroed SQE, submitting what is queued if the SQ is full.
func (l *loop) sqe() *giouring.SubmissionQueueEntry {
	for {
		if s := l.ring.GetSQE(); s != nil {
			return s
		}
		l.stats.sqFull.Add(1)
		if l.ring.Flags&giouring.SetupSQPoll != 0 {
			l.ring.Publish()
			l.ring.SQWait()
			continue
		}
		l.submit(0)
	}
}

// reapAll handles every completion in the CQ, in batches, and returns
// how many there were.
func (l *loop) reapAll() int {
	total := 0
	for {
		n := l.ring.Reap(l.cqBuf)
		if n == 0 {
			return total
		}
		total += n
		l.ls.cqes += uint64(n)
		held := 0
		for i := range n {
			c := &l.cqBuf[i]
			if c.Flags&giouring.CQEFBuffer != 0 && c.Flags&cqeBufMore == 0 {
				held++
			}
			l.dispatch(c)
		}
		if free := int64(l.bufs.Count - held); free < l.stats.bufLow.Load() {
			l.stats.bufLow.Store(free)
		}
		l.bufs.Publish()
		l.reaped = n
		l.stepDirty()
		l.reaped = 0
		if n < len(l.cqBuf) {
			return total
		}
	}
}

// dispatch hands one completion to its owner.
func (l *loop) dispatch(c *cqe) {
	idx := udIndex(c.UserData)
	switch udOp(c.UserData) {
	case opWake:
		l.wakeArmed = false
		if c.Res == -int32(syscall.ECANCELED) {
			return
		}
		l.mu.Lock()
		l.woken = false
		l.mu.Unlock()
		l.armWake()
	case opAccept:
		if int(idx) < len(l.acceptors) && l.acceptors[idx] != nil {
			l.acceptors[idx].onAccept(c.Res, c.Flags)
		}
	case opMsgFD:
		l.onHandedFD(int(c.Res), udAux(c.UserData))
	case opMsgSent:
		l.msgsOut--
		if c.Res < 0 {
			l.handOffFailed(int(idx), udAux(c.UserData), syscall.Errno(-c.Res))
		}
	case opTimeout:
		l.tmoArmed = false
	case opInlineWake:
		l.ls.inlineWakes++ // an inline send took less than everything
	case opCancel, opNone:
	default:
		if int(idx) >= len(l.conns) || l.conns[idx] == nil {
			l.t.cfg.Logger.Error("uring: completion for no connection", "op", udOp(c.UserData), "slot", idx)
			return
		}
		l.conns[idx].onCQE(udOp(c.UserData), udAux(c.UserData), c.Res, c.Flags)
	}
}

// armWake keeps a read of the eventfd in a thread loop's ring.
func (l *loop) armWake() {
	if l.pk != nil || l.wakeArmed || l.wakeStop {
		return
	}
	s := l.sqe()
	s.PrepareRead(l.efd, uintptr(unsafe.Pointer(l.efdBuf)), 8, 0)
	s.UserData = mkUD(opWake, 0, 0)
	l.wakeArmed = true
}

// runPosted runs the tasks and steps the conns other goroutines posted.
func (l *loop) runPosted() {
	for {
		l.mu.Lock()
		posted, tasks := l.posted, l.tasks
		l.posted, l.tasks = l.spare[:0], l.spareT[:0]
		l.mu.Unlock()
		if len(posted) == 0 && len(tasks) == 0 {
			l.spare, l.spareT = posted, tasks
			return
		}
		l.raw.Posted()
		for _, f := range tasks {
			f()
		}
		for _, c := range posted {
			l.markDirty(c)
		}
		clear(posted)
		clear(tasks)
		l.spare, l.spareT = posted, tasks
		l.stepDirty()
	}
}

// markDirty queues c to be stepped after the current batch.
func (l *loop) markDirty(c *conn) {
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
}

// stepDirty steps every dirty conn, in the order they were marked; steps
// may dirty more, stepped in the same call.
func (l *loop) stepDirty() {
	for l.dirtyAt < len(l.dirty) {
		c := l.dirty[l.dirtyAt]
		l.dirty[l.dirtyAt] = nil
		l.dirtyAt++
		c.dirty = false
		l.steps++
		c.step()
	}
	l.dirty, l.dirtyAt = l.dirty[:0], 0
}

// rearmStarved re-arms the receives that ended with ENOBUFS, as many as
// the kernel has buffers to fill (BufRing.Free asks it), oldest first:
// re-arming all of them at once when one buffer comes back would end most
// of them with ENOBUFS again.
func (l *loop) rearmStarved() {
	if len(l.starved) == 0 {
		return // the common case: no system call to ask the kernel
	}
	calls := l.bufs.StatusCalls
	n := min(len(l.starved), l.bufs.Free())
	l.stats.Syscalls.Add(l.bufs.StatusCalls - calls)
	if n == 0 {
		return
	}
	for _, c := range l.starved[:n] {
		c.starved = false
		l.markDirty(c)
	}
	rest := copy(l.starved, l.starved[n:])
	clear(l.starved[rest:])
	l.starved = l.starved[:rest]
	l.stepDirty()
}

// addConn gives c a slot.
func (l *loop) addConn(c *conn) {
	var slot uint32
	if n := len(l.freeSlots); n > 0 {
		slot = l.freeSlots[n-1]
		l.freeSlots = l.freeSlots[:n-1]
		l.conns[slot] = c
	} else {
		slot = uint32(len(l.conns))
		l.conns = append(l.conns, c)
	}
	c.slot = slot
	l.nconns++
}

// removeConn frees c's slot (every request naming it has completed).
func (l *loop) removeConn(c *conn) {
	l.conns[c.slot] = nil
	l.freeSlots = append(l.freeSlots, c.slot)
	l.nconns--
	if c.fixed >= 0 {
		l.fixed = append(l.fixed, c.fixed)
		c.fixed = -1
	}
}

// cancel asks the kernel to cancel the request with user_data ud. Its own
// completion is skipped on success; a failure (the request had completed
// already) is ignored by dispatch.
func (l *loop) cancel(ud uint64) {
	s := l.sqe()
	s.PrepareCancel64(ud, 0)
	s.UserData = mkUD(opCancel, 0, 0)
	if l.ring.Features&featCQESkip != 0 {
		s.Flags |= giouring.SqeCQESkipSuccess
	}
	l.stats.cancels.Add(1)
}

// timed is what a loop's timer heap holds: a conn (for its
// core.Deadlines) or an acceptor (for its back-off). Its deadline is two
// fields of its own, loop-owned, so that they pack among its others.
type timed interface {
	// timer returns the deadline (on core.Now's clock) and 1 + the index
	// in the heap (0 when not queued).
	timer() (when *int64, pos *int32)
	expired() // the deadline has passed; runs on the loop
}

func whenOf(x timed) int64 { w, _ := x.timer(); return *w }

// newTimerHeap returns the heap of a loop's timers, by deadline.
func newTimerHeap() minheap.Heap[timed] {
	return minheap.New(func(a, b timed) bool { return whenOf(a) < whenOf(b) },
		func(x timed, i int) { _, p := x.timer(); *p = int32(i + 1) })
}

// now returns the loop's clock, core.Now read at most once per iteration
// of the loop: the first call after an io_uring_enter reads it, and the
// completions, steps and timers until the next enter share it.
func (l *loop) now() int64 {
	if l.clock == 0 {
		l.clock = max(core.Now(), 1) // 0 means unread
	}
	return l.clock
}

// setTimer (re)arms x's timer to run out at when (on core.Now's clock).
func (l *loop) setTimer(x timed, when int64) {
	l.timerSets++
	w, p := x.timer()
	*w = when
	if *p > 0 {
		l.timers.Fix(int(*p) - 1)
		return
	}
	l.timers.Push(x)
}

// stopTimer disarms x's timer.
func (l *loop) stopTimer(x timed) {
	if w, p := x.timer(); *p > 0 {
		l.timers.Remove(int(*p) - 1)
		*w = 0
	}
}

// armTimeout keeps a TIMEOUT request in the ring for the earliest timer,
// before the loop waits: it moves only when a timer runs out sooner than
// the request does, so a wait with timers queued costs no more than one
// without. (A timeout on each wait, through io_uring_enter's extended
// argument, would cost the kernel a timer set and cancelled on every wait
// that sleeps; with the write-progress timeout on, nearly every busy
// connection keeps a timer.) A request that runs out before the earliest
// timer (it was removed, or moved later) only wakes the loop, which arms
// it again. Updating a request in place is Linux 5.11.
func (l *loop) armTimeout() {
	if l.timers.Len() == 0 || l.tmoStop {
		return
	}
	at := whenOf(l.timers.Min())
	if l.tmoArmed && at >= l.tmoAt {
		return
	}
	l.tmoTS = unix.NsecToTimespec(max(at-l.now(), 1))
	l.tmoSets++
	s := l.sqe()
	s.Fd = -1
	if !l.tmoArmed {
		s.OpCode = giouring.OpTimeout
		s.Addr = uint64(uintptr(unsafe.Pointer(&l.tmoTS)))
		s.Len = 1
		s.Off = 0 // no completion count: a pure timer
		s.UserData = mkUD(opTimeout, 0, 0)
		l.tmoArmed = true
	} else {
		// If the request ran out meanwhile, the update fails (ENOENT),
		// which dispatch ignores, and the loop arms a new one.
		s.OpCode = giouring.OpTimeoutRemove
		s.Addr = mkUD(opTimeout, 0, 0)
		s.Off = uint64(uintptr(unsafe.Pointer(&l.tmoTS)))
		s.OpcodeFlags = giouring.TimeoutUpdate
		s.UserData = mkUD(opCancel, 0, 0)
		if l.ring.Features&featCQESkip != 0 {
			s.Flags |= giouring.SqeCQESkipSuccess
		}
	}
	l.tmoAt = at
}

// runTimers runs the timers that are due.
func (l *loop) runTimers() {
	if l.timers.Len() == 0 {
		return
	}
	now := l.now()
	for l.timers.Len() > 0 && whenOf(l.timers.Min()) <= now {
		x := l.timers.Remove(0)
		w, _ := x.timer()
		*w = 0
		x.expired()
	}
}

// keepSpare is the largest kept-input buffer a loop keeps for its conns
// once empty (core.Spares): an idle conn holds none, and a busy one takes
// one from its loop instead of allocating.
const keepSpare = 4 << 10
