package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rawSyscallsEvent counts every system call of the process.
const rawSyscallsEvent = "raw_syscalls:sys_enter"

// byNameSyscalls are the calls counted one by one (syscalls:sys_enter_NAME)
// with Options.Syscalls: those a network server makes. All 360 of
// syscalls:sys_enter_* would take perf 10 s or more to attach to and
// detach from a server of a few threads here; whatever these leave out is
// reported as "other" (the raw count minus their sum).
var byNameSyscalls = []string{
	"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "recvmmsg", "sendmmsg",
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "io_uring_enter", "io_uring_register",
	"futex", "nanosleep", "clock_nanosleep", "sched_yield", "getpid", "tgkill", "rt_sigreturn", "rt_sigprocmask",
	"accept", "accept4", "close", "shutdown", "getsockopt", "setsockopt", "getsockname", "fcntl", "ioctl",
	"mmap", "munmap", "madvise", "mprotect", "eventfd2", "poll", "ppoll", "pselect6", "clone", "clone3",
}

// byNameEvents is the perf event list of byNameSyscalls.
func byNameEvents() string {
	ev := make([]string, len(byNameSyscalls))
	for i, s := range byNameSyscalls {
		ev[i] = "syscalls:sys_enter_" + s
	}
	return strings.Join(ev, ",")
}

// ProbePerf checks that perf can count tracepoints of a process here, and
// returns its version.
func ProbePerf(path string) (string, error) {
	if path == "" {
		path = "perf"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("perf is not installed (%w): install it (Debian: apt-get install linux-perf)", err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	version := strings.TrimSpace(string(out))
	probe, err := exec.Command(bin, "stat", "-x,", "-e", rawSyscallsEvent, "--", "true").CombinedOutput()
	if err != nil || !bytes.Contains(probe, []byte(rawSyscallsEvent)) || bytes.Contains(probe, []byte("<not supported>")) {
		return version, fmt.Errorf("%s cannot count %s here (%v): %s", bin, rawSyscallsEvent, err, bytes.TrimSpace(probe))
	}
	return version, nil
}

// perfCounter is a perf command (`perf stat`, or `perf record` for
// -kprofile) attached to a process or CPUs, counting or sampling only
// between enable and disable (--control with FIFOs, events disabled at
// start), so that its window is the benchmark's.
type perfCounter struct {
	cmd      *exec.Cmd
	dir      string
	ctl, ack *os.File
	out      string
	stderr   *tailBuffer
	done     chan struct{}
	err      error
}

// startPerf attaches perf to pid, counting system calls by name too if
// byName is "net" (byNameSyscalls) or "all" (every tracepoint). The
// counts start at enable.
func startPerf(path string, pid int, byName string) (*perfCounter, error) {
	events := rawSyscallsEvent
	switch byName {
	case "net":
		events += "," + byNameEvents()
	case "all":
		events += ",syscalls:sys_enter_*"
	}
	return startPerfControlled(nil, path, "stat", "-x,", "--no-big-num", "-e", events, "-p", strconv.Itoa(pid))
}

// startPerfControlled starts perf (under the command prefix pin, if any)
// with args, its events disabled until enable (-D -1 --control), its
// output to pc.out, in a directory of its own that close removes.
func startPerfControlled(pin []string, path string, args ...string) (*perfCounter, error) {
	if path == "" {
		path = "perf"
	}
	dir, err := os.MkdirTemp("", "merlin-perf")
	if err != nil {
		return nil, err
	}
	pc := &perfCounter{dir: dir, out: filepath.Join(dir, "out"), stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	ctl, ack := filepath.Join(dir, "ctl"), filepath.Join(dir, "ack")
	for _, f := range []string{ctl, ack} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mkfifo: %w", err)
		}
	}
	// Opened read-write, neither open waits for perf.
	if pc.ctl, err = os.OpenFile(ctl, os.O_RDWR, 0); err == nil {
		pc.ack, err = os.OpenFile(ack, os.O_RDWR, 0)
	}
	if err != nil {
		pc.close()
		return nil, err
	}
	argv := append(append(slices.Clone(pin), path), args...)
	argv = append(argv, "-D", "-1", "--control", "fifo:"+ctl+","+ack, "-o", pc.out)
	pc.cmd = exec.Command(argv[0], argv[1:]...)
	pc.cmd.Stderr = pc.stderr
	if err := pc.cmd.Start(); err != nil {
		pc.close()
		return nil, fmt.Errorf("starting perf: %w", err)
	}
	go func() {
		pc.err = pc.cmd.Wait()
		close(pc.done)
	}()
	return pc, nil
}

// command sends "enable" or "disable" and waits for perf's ack. The first
// ack also says perf has attached.
func (pc *perfCounter) command(c string, timeout time.Duration) error {
	if _, err := pc.ctl.WriteString(c + "\n"); err != nil {
		return err
	}
	pc.ack.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 16)
	n, err := pc.ack.Read(buf)
	if err != nil {
		select {
		case <-pc.done:
			return fmt.Errorf("perf exited (%v): %s", pc.err, pc.stderr)
		default:
		}
		return fmt.Errorf("perf did not acknowledge %q within %v: %v", c, timeout, err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("ack")) {
		return fmt.Errorf("perf answered %q to %q", buf[:n], c)
	}
	return nil
}

// finish stops perf and returns its counts by event name (by-name events
// as "read", "write", ...; the raw one as "total").
func (pc *perfCounter) finish(timeout time.Duration) (map[string]int64, error) {
	defer pc.close()
	if err := pc.stop(timeout); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(pc.out)
	if err != nil {
		return nil, fmt.Errorf("perf output: %w (perf: %v: %s)", err, pc.err, pc.stderr)
	}
	counts, err := parsePerfCSV(data)
	if err != nil {
		return nil, fmt.Errorf("%w (perf: %v: %s)", err, pc.err, pc.stderr)
	}
	return counts, nil
}

// stop ends perf with SIGINT, which has it write its output, and waits
// for it to exit.
func (pc *perfCounter) stop(timeout time.Duration) error {
	pc.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-pc.done:
		return nil
	case <-time.After(timeout):
		pc.cmd.Process.Kill()
		<-pc.done
		return fmt.Errorf("perf did not exit within %v of SIGINT", timeout)
	}
}

// close releases the FIFOs and the directory (and kills perf if it runs).
func (pc *perfCounter) close() {
	if pc.cmd != nil && pc.cmd.Process != nil {
		select {
		case <-pc.done:
		default:
			pc.cmd.Process.Kill()
			<-pc.done
		}
	}
	if pc.ctl != nil {
		pc.ctl.Close()
	}
	if pc.ack != nil {
		pc.ack.Close()
	}
	os.RemoveAll(pc.dir)
}

// parsePerfCSV reads perf stat -x, output: "count,unit,event,...". The
// raw_syscalls event is returned as "total", syscalls:sys_enter_NAME as
// NAME; zero counts are left out of the names.
func parsePerfCSV(data []byte) (map[string]int64, error) {
	counts := map[string]int64{}
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			// "<not counted>" or "<not supported>"
			if f[2] == rawSyscallsEvent {
				return nil, fmt.Errorf("perf: %s: %s", rawSyscallsEvent, f[0])
			}
			continue
		}
		switch {
		case f[2] == rawSyscallsEvent:
			counts["total"] = n
			found = true
		case strings.HasPrefix(f[2], "syscalls:sys_enter_"):
			if n > 0 {
				counts[strings.TrimPrefix(f[2], "syscalls:sys_enter_")] = n
			}
		}
	}
	if !found {
		return nil, errors.New("perf: no " + rawSyscallsEvent + " count in its output")
	}
	if len(counts) > 1 {
		other := counts["total"]
		for k, v := range counts {
			if k != "total" {
				other -= v
			}
		}
		if other > 0 {
			counts["other"] = other
		}
	}
	return counts, nil
}

// topSyscalls returns the names of counts (without "total"), most
// frequent first.
func topSyscalls(counts map[string]int64) []string {
	var names []string
	for k := range counts {
		if k != "total" {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if counts[names[i]] != counts[names[j]] {
			return counts[names[i]] > counts[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}
