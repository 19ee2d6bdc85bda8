package bench

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// allowedCPUs returns the CPUs this process may run on.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// pinSelf binds every thread of this process to cpu. Threads the runtime
// starts later inherit the binding from the thread that creates them.
func pinSelf(cpu int) error { return setAffinity([]int{cpu}) }

// setAffinity binds every thread of this process to cpus.
func setAffinity(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := pinTasks(selfTasks, func(tid int) error { return unix.SchedSetaffinity(tid, &set) }); err != nil {
		return fmt.Errorf("to CPUs %v: %w", cpus, err)
	}
	return nil
}

// selfTasks lists the threads of this process.
func selfTasks() ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(tasks))
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// pinTasks calls pin for every thread list returns, and lists them again
// until a list brings none it has not pinned: a thread that an unpinned
// one started while the first list was read inherited the old binding.
// A thread that is gone before it is pinned (ESRCH: the runtime ends the
// thread of a goroutine that exits while locked to it) needs nothing.
func pinTasks(list func() ([]int, error), pin func(tid int) error) error {
	pinned := map[int]bool{}
	for {
		tids, err := list()
		if err != nil {
			return err
		}
		fresh := 0
		for _, tid := range tids {
			if pinned[tid] {
				continue
			}
			fresh++
			pinned[tid] = true
			if err := pin(tid); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pinning thread %d: %w", tid, err)
			}
		}
		if fresh == 0 {
			return nil
		}
	}
}
