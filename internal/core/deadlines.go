package core

import (
	"time"
	_ "unsafe" // go:linkname

	"github.com/merlin-net/merlin/transports"
)

// epoch is the base of Now: an offset from it keeps the monotonic clock
// in 8 bytes. base is epoch on the runtime's clock, nanotime.
var (
	epoch = time.Now()
	base  = baseOf(epoch)
)

// baseOf returns t on nanotime's scale, to within a microsecond: the
// reads of the clock are retried while something came between them.
func baseOf(t time.Time) int64 {
	for range 100 {
		t1 := nanotime()
		d := int64(time.Since(t))
		if t2 := nanotime(); t2-t1 < 1000 {
			return t1 + (t2-t1)/2 - d
		}
	}
	return nanotime() - int64(time.Since(t))
}

// nanotime is the runtime's monotonic clock, the one time.Since reads;
// the runtime exports it for linkname. A loop reads it once per wait, and
// time.Since's conversions around it were a third of the read (30
// instructions of 85, counted with callgrind).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now returns the monotonic clock in nanoseconds, as Deadlines count it:
// time.Since(epoch). A loop may read it once per iteration and pass it to
// every connection it serves in that iteration.
func Now() int64 { return nanotime() - base }

// Time returns the time.Time of a Now value.
func Time(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }

// Limits are a transport's time limits, from its Config; 0 is off.
type Limits struct {
	CloseTimeout time.Duration
	CloseLinger  time.Duration
	Write        time.Duration // WriteTimeout
	Idle         time.Duration // IdleTimeout
}

// NewLimits takes the limits of cfg, whose defaults are filled in.
func NewLimits(cfg transports.Config) Limits {
	return Limits{
		CloseTimeout: cfg.CloseTimeout,
		CloseLinger:  cfg.CloseLinger,
		Write:        max(cfg.WriteTimeout, 0),
		Idle:         max(cfg.IdleTimeout, 0),
	}
}

// Deadlines are a connection's time limits, multiplexed onto the one
// timer its transport keeps for it: Close's flush (CloseTimeout) and
// linger (CloseLinger), the write-progress timeout, the idle timeout and
// the application's timer (TimerConn.SetTimer).
//
// Progress and activity are recorded as times, never by moving the
// timer: the timer may run out early, and Expired then finds nothing due
// and Arm sets it again. A busy connection so touches its transport's
// timer heap about once per timeout, not once per write.
type Deadlines struct {
	flush   int64 // Close's flush runs out; 0: no Close with output pending
	linger  int64 // the wait for the peer's FIN runs out; 0: none
	app     int64 // the application's timer runs out; 0: not set
	pending int64 // output has waited for progress since; 0: none pending
	active  int64 // a byte last moved either way; 0: the idle timeout does not apply
}

// Expiry is what ran out (see Expired).
type Expiry uint8

// The expiries, most severe first.
const (
	ExpNone   Expiry = iota
	ExpLinger        // kill with a "close" OpError wrapping LingerTimeout
	ExpFlush         // kill with a "close" OpError wrapping FlushTimeout
	ExpWrite         // kill with a "write" OpError wrapping WriteTimeout
	ExpIdle          // close as Close does; OnClose's error is IdleTimeout
	ExpApp           // run OnTimer
)

// Fatal returns the error a connection is killed with when e ran out, in
// parts for the transport's *net.OpError (op, err), or a nil err where e
// is not fatal: Close's linger and flush limits ("close") and the
// write-progress timeout ("write") are; the idle timeout and the
// application's timer are not.
func (l Limits) Fatal(e Expiry) (op string, err error) {
	switch e {
	case ExpLinger:
		return "close", LingerTimeout(l.CloseLinger)
	case ExpFlush:
		return "close", FlushTimeout(l.CloseTimeout)
	case ExpWrite:
		// The peer has taken nothing for WriteTimeout: it stopped reading
		// (or reads nothing while its FIN waits behind our output).
		return "write", WriteTimeout(l.Write)
	}
	return "", nil
}

// Opened starts the idle clock.
func (d *Deadlines) Opened(now int64) { d.active = now }

// Moved records bytes received.
func (d *Deadlines) Moved(now int64) {
	if d.active != 0 {
		d.active = now
	}
}

// Pending records that output waits for the kernel: the write-progress
// clock starts, unless it runs already.
func (d *Deadlines) Pending(now int64) {
	if d.pending == 0 {
		d.pending = now
	}
}

// Progress records that the kernel took output: the write-progress clock
// starts again if output is still pending, and stops if not.
func (d *Deadlines) Progress(now int64, pending bool) {
	d.pending = 0
	if pending {
		d.pending = now
	}
	d.Moved(now)
}

// Waiting reports whether output waits for the kernel (the write-progress
// clock runs).
func (d *Deadlines) Waiting() bool { return d.pending != 0 }

// Dropped records that pending output was dropped (Abort, a failure).
func (d *Deadlines) Dropped() { d.pending = 0 }

// StartFlush starts Close's flush limit (if output is pending).
func (d *Deadlines) StartFlush(now int64, l Limits) {
	if d.flush == 0 {
		d.flush = now + int64(l.CloseTimeout)
	}
}

// StartLinger starts Close's wait for the peer's FIN, our own being out.
func (d *Deadlines) StartLinger(now int64, l Limits) {
	if d.linger == 0 {
		d.linger = now + int64(l.CloseLinger)
	}
}

// SetApp sets the application's timer to run out dur from now; dur <= 0
// stops it.
func (d *Deadlines) SetApp(now int64, dur time.Duration) {
	d.app = 0
	if dur > 0 {
		d.app = now + max(int64(dur), 1)
	}
}

// Closing records that Close (or the default close) has begun: the
// application's timer and the idle clock stop; Close's own limits bound
// what is left.
func (d *Deadlines) Closing() {
	d.app = 0
	d.active = 0
}

// Stop stops everything: the connection is being torn down.
func (d *Deadlines) Stop() { *d = Deadlines{} }

// Next returns when the earliest limit runs out (0: none is set).
func (d *Deadlines) Next(l Limits) int64 {
	next := int64(0)
	at := func(t int64) {
		if t != 0 && (next == 0 || t < next) {
			next = t
		}
	}
	if d.pending != 0 {
		at(d.flush)
		if l.Write > 0 {
			at(d.pending + int64(l.Write))
		}
	}
	at(d.linger)
	at(d.app)
	if l.Idle > 0 && d.active != 0 {
		at(d.active + int64(l.Idle))
	}
	return next
}

// Expired returns the most severe limit that has run out by now, and
// clears the ones that fire once (the idle timeout, the application's
// timer). The transport acts on it and calls Expired again until ExpNone.
func (d *Deadlines) Expired(now int64, l Limits) Expiry {
	out := func(t int64) bool { return t != 0 && now >= t }
	switch {
	case out(d.linger):
		d.linger = 0
		return ExpLinger
	case d.pending != 0 && out(d.flush):
		d.flush = 0
		return ExpFlush
	case d.pending != 0 && l.Write > 0 && out(d.pending+int64(l.Write)):
		d.pending = 0
		return ExpWrite
	case l.Idle > 0 && d.active != 0 && out(d.active+int64(l.Idle)):
		d.active = 0
		return ExpIdle
	case out(d.app):
		d.app = 0
		return ExpApp
	}
	return ExpNone
}

// Arm says whether the transport must set its timer, which now runs out
// at armed (0: not set), and to when: only if some limit runs out before
// it. A timer set later than needed is never left; one set earlier runs
// out, finds nothing due, and is set again.
func (d *Deadlines) Arm(armed int64, l Limits) (at int64, ok bool) {
	next := d.Next(l)
	if next == 0 || (armed != 0 && armed <= next) {
		return 0, false
	}
	return next, true
}
