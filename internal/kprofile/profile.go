package kprofile

import (
	"cmp"
	"io"
	"maps"
	"slices"
	"strings"
)

// Profile is one process's samples summed by category.
type Profile struct {
	PID int
	// Samples and Ns are the process's samples and their periods summed
	// (nanoseconds for cpu-clock).
	Samples, Ns int64
	// ByCategory and NsByCategory split Samples and Ns by category ID.
	ByCategory, NsByCategory map[string]int64
	// Threads counts the process's threads that were sampled.
	Threads int
	// OtherProcesses counts the samples of other processes (a recording
	// of whole CPUs has them: the idle task, perf itself), Idle those of
	// the idle task (PID 0) among them.
	OtherProcesses, Idle int64
	// Lost counts the samples perf lost, of the whole recording.
	Lost int64
	// Woken counts the idle task's samples credited to the process, in
	// Sched: those taken on a CPU after the wake-up of one of its threads
	// there and before that CPU's next context switch, other than in the
	// idle instruction itself (halt, mwait). The kernel charges a thread
	// woken on an idle CPU from its wake-up, not from the switch to it
	// (the wake-up updates the run queue's clock and asks the switch not
	// to: rq_clock_skip_update in wakeup_preempt, kernel/sched/core.c),
	// so the idle task's way out of idle (interrupt, tick restart,
	// schedule) is in the thread's CPU time in /proc. A sample in the
	// idle instruction was taken as the CPU woke, for the time it waited,
	// and stays idle. It needs the recording's SchedEvents. What it
	// recovers is measured in package bench's KProfile.Ratio.
	Woken int64
	// NoStack counts the process's samples that perf could not walk (no
	// frames at all), in Other.
	NoStack int64
	// OtherLeaves counts the leaf symbols of the samples in Other, to
	// show what the rules miss.
	OtherLeaves map[string]int64
}

// Attribute reads perf script output (ScriptFields) and sums the samples
// of process pid by category with rules; pid 0 takes every sample.
//
// Where the recording holds the scheduler's events (SchedEvents), it also
// credits pid with the idle task's samples that the kernel charges to it
// (Profile.Woken).
func Attribute(r io.Reader, pid int, rules *Rules) (*Profile, error) {
	p := &Profile{PID: pid, ByCategory: map[string]int64{}, NsByCategory: map[string]int64{}, OtherLeaves: map[string]int64{}}
	threads := map[int]bool{}
	// woken[cpu]: one of pid's threads was woken on cpu and the cpu has
	// not switched since.
	woken := map[int]bool{}
	sc := NewScanner(r)
	for sc.Scan() {
		s := sc.Sample()
		if s.Tracepoint() {
			switch s.Event {
			case "sched:sched_switch":
				woken[s.CPU] = false
			case "sched:sched_wakeup":
				tid, ok1 := s.TraceInt("pid")
				cpu, ok2 := s.TraceInt("target_cpu")
				if ok1 && ok2 && threads[tid] {
					woken[cpu] = true
				}
			}
			if s.PID == pid {
				threads[s.TID] = true
			}
			continue
		}
		if pid != 0 && s.PID != pid {
			if s.PID == 0 && woken[s.CPU] && !idleWaiting(s.Stack) {
				p.Woken++
				p.add(s, Sched)
				continue
			}
			p.OtherProcesses++
			if s.PID == 0 {
				p.Idle++
			}
			continue
		}
		p.Add(s, rules)
		threads[s.TID] = true
	}
	p.Threads = len(threads)
	p.Lost = sc.Lost()
	return p, sc.Err()
}

// idleWaits are the functions in which an idle CPU waits for an
// interrupt (halt, mwait, polling), the leaf of an idle task's sample
// taken while it waited.
var idleWaits = map[string]bool{
	"pv_native_safe_halt": true, "native_safe_halt": true, "default_idle": true, "arch_safe_halt": true,
	"acpi_safe_halt": true, "acpi_idle_do_entry": true, "mwait_idle_with_hints": true, "intel_idle": true,
	"intel_idle_irq": true, "intel_idle_ibrs": true, "poll_idle": true, "cpu_idle_poll": true,
}

// idleWaiting reports whether an idle task's sample interrupted the wait
// for an interrupt itself. A paravirtualised guest halts through its
// hypervisor's own function, named after the halt it replaces
// (pvm_safe_halt_hc on this project's hosts, xen_safe_halt under Xen).
func idleWaiting(stack []Frame) bool {
	if len(stack) == 0 {
		return false
	}
	sym := stack[0].Sym
	return idleWaits[sym] || strings.Contains(sym, "safe_halt")
}

// Add counts one sample.
func (p *Profile) Add(s *Sample, rules *Rules) {
	c, _ := rules.Category(s.Stack)
	p.add(s, c)
}

func (p *Profile) add(s *Sample, c string) {
	p.Samples++
	p.Ns += s.Period
	p.ByCategory[c]++
	p.NsByCategory[c] += s.Period
	switch {
	case len(s.Stack) == 0:
		p.NoStack++
	case c == Other:
		p.OtherLeaves[s.Stack[0].Sym]++
	}
}

// TopOther returns the n commonest leaf symbols of Other, commonest
// first.
func (p *Profile) TopOther(n int) []string {
	syms := slices.Collect(maps.Keys(p.OtherLeaves))
	slices.SortFunc(syms, func(a, b string) int {
		if c := cmp.Compare(p.OtherLeaves[b], p.OtherLeaves[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return syms[:min(n, len(syms))]
}
