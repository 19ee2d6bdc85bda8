package schedtick

import "time"

// A loop that blocks in a system call the scheduler is told about
// (syscall.Syscall: entersyscall) leaves its P in a syscall state that
// sysmon may take away. With no idle P (GOMAXPROCS=1, or as many loops as
// Ps), sysmon takes it from any wait it sees across two of its ticks, and
// the runtime settles in one of two states, each lasting as long as the
// load does (retake, handoffp and exitsyscall in runtime/proc.go, Go 1.26):
//
//   - sysmon asleep for 10 ms at a time: it never sees one wait twice, and
//     a wait costs the loop's thread one sleep and one wake-up;
//   - sysmon ticking every 20 µs: it takes the P from every wait longer
//     than that and hands it to another thread, which finds nothing to
//     run and leaves the P idle; sysmon then falls into its deep sleep,
//     and the loop, taking the idle P back when its wait returns, wakes it
//     "from a syscall", which sets it ticking every 20 µs again.
//
// The second costs three context switches per wait instead of one. It
// begins after any wait long enough for a retake (an idle loop) and does
// not end while the loop's waits stay longer than 20 µs: at a tenth of
// its peak, a loop serving echo at 1,000 connections spent 47-51 µs of CPU
// per request in it and 21-24 µs in the first (papers/0003 and issue 13;
// gnet, which waits the same way, shows the same two states). A raw wait
// (syscall.RawSyscall) keeps the P in the running state, where sysmon
// does not take it, and costs nothing else; a kernel timer to bound it
// would (about 10 µs per wait on this host).
//
// A Raw decides, wait by wait, whether a loop waits raw: while its last
// wait ended within a bound (it is busy) and no other goroutine has posted
// work to it for Quiet waits. A raw wait holds the P while it blocks: with
// GOMAXPROCS=1 a goroutine that needs it runs at the loop's next yield, or
// when sysmon preempts the loop after 10 ms (its signal ends the wait with
// EINTR), which is no later than a told wait leaves it in the first state
// above. An idle loop's wait ends that way once; its next wait is told, so
// an idle loop gives its P back as before.

// DefaultRaw is the default bound on a busy loop's waits: the Ticker's
// period before told waits, well under sysmon's 10 ms preemption.
const DefaultRaw = Every

// MaxRaw bounds a rawwait key: a wait as long as sysmon's 10 ms
// preemption is an idle loop's, which should give its P back.
const MaxRaw = 10 * time.Millisecond

// RawKey returns a transport's RawWait option for a rawwait key's value,
// whose 0 means never (negative), where the option's zero means DefaultRaw.
func RawKey(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Quiet is how many waits a loop must make without work posted by other
// goroutines before it waits raw: goroutines that post to the loop (the
// net.Conn adapter's handlers, writers from elsewhere) may need its P to
// run at all when GOMAXPROCS is 1.
const Quiet = 16

// Raw is one loop goroutine's rule; its zero value never waits raw.
type Raw struct {
	Within time.Duration // the bound on a busy loop's last wait; 0: never raw

	last          time.Duration // how long the last wait took
	waits, posted uint32
}

// Now reports whether the coming wait is to be raw.
func (r *Raw) Now() bool {
	return r.Within > 0 && r.last < r.Within && r.waits-r.posted > Quiet
}

// Waited records a wait that took d, raw or not.
func (r *Raw) Waited(d time.Duration) {
	r.last = d
	r.waits++
}

// Posted records that other goroutines posted work to the loop.
func (r *Raw) Posted() { r.posted = r.waits }
