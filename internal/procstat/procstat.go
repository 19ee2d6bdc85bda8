// Package procstat reads a process's CPU time and memory, as merlin's
// benchmarks sample servers: CPU time to the nanosecond from the
// process's CPU clock, split into user and system time as fields 14 and
// 15 of /proc/PID/stat split it (in 10 ms ticks, summed over its
// threads), and resident memory (VmRSS of /proc/PID/status).
//
// Where /proc is not there, Read returns an error wrapping
// errors.ErrUnsupported.
//
//	before, _ := procstat.Read(pid)
//	... load ...
//	after, _ := procstat.Read(pid)
//	d := after.Sub(before) // CPU time over the window
package procstat

import "time"

// Sample is one reading of a process.
type Sample struct {
	At         time.Time     // when it was read
	User, Sys  time.Duration // CPU time since the process started (see Sub)
	RSS        int64         // resident memory, bytes
	Threads    int           // threads
	VolCtxSw   int64         // voluntary context switches, all threads
	InvolCtxSw int64         // involuntary context switches, all threads

	userTicks, sysTicks int64 // /proc's split of User + Sys, in ticks
}

// Sub returns s - o for the cumulative fields (CPU time, context
// switches) and s's values for the others. The CPU time's sum is exact;
// it is split into user and system time as /proc's ticks over the same
// window split it, or, in a window too short for a tick, as they split
// s's whole life. The split is as coarse as the ticks (10 ms).
func (s Sample) Sub(o Sample) Sample {
	d := Sample{
		At: s.At, RSS: s.RSS, Threads: s.Threads,
		VolCtxSw: s.VolCtxSw - o.VolCtxSw, InvolCtxSw: s.InvolCtxSw - o.InvolCtxSw,
		userTicks: s.userTicks - o.userTicks, sysTicks: s.sysTicks - o.sysTicks,
	}
	ut, st := d.userTicks, d.sysTicks
	if ut < 0 || st < 0 || ut+st == 0 { // a window too short for a tick
		ut, st = s.userTicks, s.sysTicks
	}
	d.User, d.Sys = split(s.CPU()-o.CPU(), ut, st)
	return d
}

// split divides cpu between user and system time as the ticks ut and st
// do.
func split(cpu time.Duration, ut, st int64) (user, sys time.Duration) {
	if ut+st <= 0 {
		return 0, cpu
	}
	user = time.Duration(float64(cpu) * float64(ut) / float64(ut+st))
	return user, cpu - user
}

// CPU returns user plus system time.
func (s Sample) CPU() time.Duration { return s.User + s.Sys }
