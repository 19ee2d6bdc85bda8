package conformance

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
)

// lcFDLimitSupported reports whether lcLowerFDLimit works here.
func lcFDLimitSupported() error { return nil }

// lcLowerFDLimit lowers this process's soft RLIMIT_NOFILE so that exactly
// headroom descriptor numbers below it are free, and returns the limit.
// (Go raises the soft limit to the hard one at start; this lowers it
// again. Descriptors open above the limit, such as a pipe inherited from
// the environment, stay usable and take no room.)
func lcLowerFDLimit(headroom int) (int, error) {
	ents, err := os.ReadDir("/proc/self/fd") // its own descriptor is listed, and closed: a little more room
	if err != nil {
		return 0, err
	}
	var fds []int
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	limit := headroom
	for _, fd := range fds {
		if fd < limit {
			limit++
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, os.NewSyscallError("getrlimit", err)
	}
	if uint64(limit) > rl.Max {
		return 0, fmt.Errorf("RLIMIT_NOFILE: a limit of %d is above the hard limit %d", limit, rl.Max)
	}
	rl.Cur = uint64(limit)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, os.NewSyscallError("setrlimit", err)
	}
	return limit, nil
}
