// Package procstat reads a process's CPU time and memory from /proc, as
// merlin's benchmarks sample servers: user and system time apart (fields
// 14 and 15 of /proc/PID/stat, summed over its threads) and resident
// memory (VmRSS of /proc/PID/status).
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
	User, Sys  time.Duration // CPU time since the process started
	RSS        int64         // resident memory, bytes
	Threads    int           // threads
	VolCtxSw   int64         // voluntary context switches, all threads
	InvolCtxSw int64         // involuntary context switches, all threads
}

// Sub returns s - o for the cumulative fields (CPU time, context
// switches) and s's values for the others.
func (s Sample) Sub(o Sample) Sample {
	return Sample{
		At: s.At, User: s.User - o.User, Sys: s.Sys - o.Sys,
		RSS: s.RSS, Threads: s.Threads,
		VolCtxSw: s.VolCtxSw - o.VolCtxSw, InvolCtxSw: s.InvolCtxSw - o.InvolCtxSw,
	}
}

// CPU returns user plus system time.
func (s Sample) CPU() time.Duration { return s.User + s.Sys }
