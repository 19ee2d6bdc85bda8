package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// processCPU returns the CPU time of process pid, all its threads, those
// that exited included, in nanoseconds: the scheduler's sum_exec_runtime,
// which /proc/PID/stat's times are scaled to, read through the process's
// CPU clock (clock_getcpuclockid(3): (^pid << 3) | CPUCLOCK_SCHED, in the
// kernel's posix-cpu-timers.h). Any process may read it.
func processCPU(pid int) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^pid<<3|2), &ts); err != nil {
		return 0, fmt.Errorf("procstat: CPU clock of process %d: %w", pid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// Read samples process pid. /proc counts CPU time in ticks of 10 ms:
// over a 2 s window of a server at a tenth of its peak (some 20 ticks) one
// tick more or less is 5% of its CPU per request. The CPU clock counts it
// to the nanosecond; the ticks only split it (Sample.Sub).
func Read(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("procstat: /proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return s, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("procstat: /proc/%d/stat: bad utime %q or stime %q", pid, f[11], f[12])
	}
	cpu, err := processCPU(pid)
	if err != nil {
		return s, err
	}
	s.userTicks, s.sysTicks = ut, st
	s.User, s.Sys = split(cpu, ut, st)

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range bytes.Lines(status) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		fs := bytes.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(string(fs[0]), 10, 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "VmRSS":
			s.RSS = n << 10 // kB
		case "Threads":
			s.Threads = int(n)
		}
	}
	// Context switches are counted per thread: sum the threads'.
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		for line := range bytes.Lines(st) {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				continue
			}
			switch string(k) {
			case "voluntary_ctxt_switches":
				s.VolCtxSw += n
			case "nonvoluntary_ctxt_switches":
				s.InvolCtxSw += n
			}
		}
	}
	return s, nil
}
