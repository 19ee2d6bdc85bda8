package kprofile

import (
	"cmp"
	"io"
	"maps"
	"slices"
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
	// OtherLeaves counts the leaf symbols of the samples in Other, to
	// show what the rules miss.
	OtherLeaves map[string]int64
}

// Attribute reads perf script output (ScriptFields) and sums the samples
// of process pid by category with rules; pid 0 takes every sample.
func Attribute(r io.Reader, pid int, rules *Rules) (*Profile, error) {
	p := &Profile{PID: pid, ByCategory: map[string]int64{}, NsByCategory: map[string]int64{}, OtherLeaves: map[string]int64{}}
	threads := map[int]bool{}
	sc := NewScanner(r)
	for sc.Scan() {
		s := sc.Sample()
		if pid != 0 && s.PID != pid {
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

// Add counts one sample.
func (p *Profile) Add(s *Sample, rules *Rules) {
	c, _ := rules.Category(s.Stack)
	p.Samples++
	p.Ns += s.Period
	p.ByCategory[c]++
	p.NsByCategory[c] += s.Period
	if c == Other && len(s.Stack) > 0 {
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
