package kprofile

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ScriptFields are the fields Scanner reads: `perf script -F` with these,
// of a recording made with -g. Run with --show-lost-events, it also
// counts the samples perf lost. Scanner also reads the older form of
// recordings made before the scheduler's events were recorded (the fields
// "comm,pid,tid,period,ip,sym,dso", as in testdata/sockets.script.gz).
var ScriptFields = []string{
	"-F", "sw:comm,pid,tid,cpu,time,period,event,ip,sym,dso",
	"-F", "trace:comm,pid,tid,cpu,time,event,trace",
}

// SchedEvents are the scheduler's tracepoints a recording needs beside
// its samples (`perf record -e` each) for Attribute to credit a woken
// thread with the idle task's wake-up path, as the kernel does (see
// Profile.Woken): every context switch and wake-up, one record each,
// without stacks.
var SchedEvents = []string{"sched:sched_switch/call-graph=no/", "sched:sched_wakeup/call-graph=no/"}

// Sample is one sample of perf script: a cpu-clock sample with its stack,
// or a tracepoint's record (Trace set, no stack).
type Sample struct {
	Comm     string
	PID, TID int
	CPU      int     // -1 where the script has no cpu field
	Time     int64   // nanoseconds of perf's clock; 0 where not scripted
	Period   int64   // the sample's weight: nanoseconds for cpu-clock
	Event    string  // "cpu-clock", "sched:sched_switch"; "" in the older form
	Trace    string  // a tracepoint's fields: "comm=x pid=12 prio=120 ..."
	Stack    []Frame // leaf first
}

// Tracepoint reports whether s is a tracepoint's record ("sched:...").
func (s *Sample) Tracepoint() bool { return strings.Contains(s.Event, ":") }

// TraceInt returns the integer field key of a tracepoint's record
// ("pid" in "comm=x pid=12 prio=120"), and whether it was there.
func (s *Sample) TraceInt(key string) (int, bool) {
	for _, f := range strings.Fields(s.Trace) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return 0, false
}

// Scanner reads perf script's samples one at a time, as bufio.Scanner
// reads lines.
type Scanner struct {
	r    *bufio.Reader
	line int
	s    Sample
	err  error
	next string // a header read past the end of a tracepoint's record

	lost    int64
	noStack int64
}

// NewScanner returns a Scanner reading r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, 64<<10)}
}

// Scan advances to the next sample; it returns false at the end of the
// input or on an error (see Err).
func (sc *Scanner) Scan() bool {
	if sc.err != nil {
		return false
	}
	sc.s = Sample{Stack: sc.s.Stack[:0]}
	inSample := false
	for {
		var line string
		var err error
		if sc.next != "" {
			line, sc.next = sc.next, ""
		} else {
			line, err = sc.r.ReadString('\n')
			if err != nil && err != io.EOF {
				sc.err = err
				return false
			}
			if line == "" && err == io.EOF {
				return inSample && sc.end()
			}
			sc.line++
		}
		line = strings.TrimRight(line, "\r\n")
		frame := isFrame(line)
		if inSample && !frame && sc.s.Tracepoint() {
			// A tracepoint's record has no stack and no blank line
			// after it: this line is the next one's.
			if strings.TrimSpace(line) != "" {
				sc.next = line
			}
			return true
		}
		switch {
		case strings.TrimSpace(line) == "":
			if inSample {
				return sc.end()
			}
		case frame:
			if !inSample {
				sc.err = fmt.Errorf("perf script line %d: a frame outside a sample: %q", sc.line, line)
				return false
			}
			f, err := parseFrame(line)
			if err != nil {
				sc.err = fmt.Errorf("perf script line %d: %v", sc.line, err)
				return false
			}
			sc.s.Stack = append(sc.s.Stack, f)
		case strings.Contains(line, "PERF_RECORD_"):
			if inSample {
				sc.err = fmt.Errorf("perf script line %d: an event inside a sample: %q", sc.line, line)
				return false
			}
			sc.event(line)
		default:
			if inSample {
				// A sample without a stack (recorded without -g) ends
				// at the next header.
				sc.err = fmt.Errorf("perf script line %d: a sample header inside a sample (was the recording made with -g?): %q", sc.line, line)
				return false
			}
			if err := parseHeader(line, &sc.s); err != nil {
				sc.err = fmt.Errorf("perf script line %d: %v", sc.line, err)
				return false
			}
			inSample = true
		}
		if err == io.EOF {
			return inSample && sc.end()
		}
	}
}

// isFrame reports whether line is a stack frame ("\tADDR SYM (DSO)"):
// indented by a tab, or by spaces with its first field hexadecimal and no
// PID/TID after it (perf right-aligns short command names, so a header
// may be indented by spaces too).
func isFrame(line string) bool {
	if line == "" || line[0] != ' ' && line[0] != '\t' {
		return false
	}
	if line[0] == '\t' {
		return true
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	if _, err := strconv.ParseUint(f[0], 16, 64); err != nil {
		return false
	}
	for _, x := range f[1:min(len(f), 4)] {
		if p, t, ok := strings.Cut(x, "/"); ok {
			_, err1 := strconv.Atoi(p)
			_, err2 := strconv.Atoi(t)
			if err1 == nil && err2 == nil {
				return false
			}
		}
	}
	return true
}

// end ends the current sample. A sample whose header a blank line
// follows has no stack: perf could not walk it (a thread in exec or exit,
// a user stack it could not read). It is a sample all the same, and is
// counted as such (Other); a recording made without -g is told apart by
// its headers following each other (see Scan).
func (sc *Scanner) end() bool {
	if len(sc.s.Stack) == 0 && !sc.s.Tracepoint() {
		sc.noStack++
	}
	return true
}

// NoStack returns how many samples so far had no stack.
func (sc *Scanner) NoStack() int64 { return sc.noStack }

// Sample returns the current sample; its Stack is reused by the next
// Scan.
func (sc *Scanner) Sample() *Sample { return &sc.s }

// Err returns the first error met, if any.
func (sc *Scanner) Err() error { return sc.err }

// Lost returns the samples perf reported lost so far (PERF_RECORD_LOST
// and PERF_RECORD_LOST_SAMPLES).
func (sc *Scanner) Lost() int64 { return sc.lost }

// event counts a lost event, "... PERF_RECORD_LOST lost 12"; other
// events are skipped.
func (sc *Scanner) event(line string) {
	i := strings.Index(line, "PERF_RECORD_LOST")
	if i < 0 {
		return
	}
	f := strings.Fields(line[i:])
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lost" {
			if n, err := strconv.ParseInt(f[i+1], 10, 64); err == nil {
				sc.lost += n
			}
			return
		}
	}
}

// parseHeader reads "COMM PID/TID [CPU] TIME: PERIOD EVENT:" (a sample),
// "COMM PID/TID [CPU] TIME: EVENT: TRACE" (a tracepoint's record) or, in
// the older form, "COMM PID/TID PERIOD". COMM may hold spaces.
func parseHeader(line string, s *Sample) error {
	f := strings.Fields(line)
	for i := 1; i < len(f); i++ {
		p, t, ok := strings.Cut(f[i], "/")
		if !ok {
			continue
		}
		pid, err1 := strconv.Atoi(p)
		tid, err2 := strconv.Atoi(t)
		if err1 != nil || err2 != nil {
			continue
		}
		s.Comm = strings.Join(f[:i], " ")
		s.PID, s.TID, s.CPU = pid, tid, -1
		rest := f[i+1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") && strings.HasSuffix(rest[0], "]") {
			cpu, err := strconv.Atoi(rest[0][1 : len(rest[0])-1])
			if err != nil {
				return fmt.Errorf("bad cpu %q", rest[0])
			}
			s.CPU, rest = cpu, rest[1:]
		}
		if len(rest) > 0 && strings.HasSuffix(rest[0], ":") && strings.Contains(rest[0], ".") {
			sec, frac, _ := strings.Cut(strings.TrimSuffix(rest[0], ":"), ".")
			a, err1 := strconv.ParseInt(sec, 10, 64)
			b, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			if err1 != nil || err2 != nil || len(frac) > 9 {
				return fmt.Errorf("bad time %q", rest[0])
			}
			s.Time, rest = a*1e9+b, rest[1:]
		}
		havePeriod := false
		if len(rest) > 0 {
			if period, err := strconv.ParseInt(strings.TrimSuffix(rest[0], ":"), 10, 64); err == nil && period >= 0 {
				s.Period, havePeriod, rest = period, true, rest[1:]
			}
		}
		if len(rest) > 0 && strings.HasSuffix(rest[0], ":") {
			s.Event = strings.TrimSuffix(rest[0], ":")
			s.Trace = strings.Join(rest[1:], " ")
		}
		if !havePeriod && !s.Tracepoint() {
			if len(f) > i+1 {
				return fmt.Errorf("bad period in %q (want -F %s)", line, strings.Join(ScriptFields, " "))
			}
			return fmt.Errorf("no period after %q (want -F %s)", f[i], strings.Join(ScriptFields, " "))
		}
		return nil
	}
	return fmt.Errorf("no PID/TID in sample header %q (want -F %s)", line, strings.Join(ScriptFields, " "))
}

// parseFrame reads "\t    ADDR SYM (DSO)".
func parseFrame(line string) (Frame, error) {
	line = strings.TrimSpace(line)
	a, rest, ok := strings.Cut(line, " ")
	if !ok {
		return Frame{}, fmt.Errorf("bad frame %q: want ADDR SYM (DSO)", line)
	}
	addr, err := strconv.ParseUint(a, 16, 64)
	if err != nil {
		return Frame{}, fmt.Errorf("bad frame address in %q", line)
	}
	f := Frame{Addr: addr, Sym: strings.TrimSpace(rest)}
	if strings.HasSuffix(f.Sym, ")") {
		if i := strings.LastIndex(f.Sym, " ("); i >= 0 {
			f.DSO = f.Sym[i+2 : len(f.Sym)-1]
			f.Sym = strings.TrimSpace(f.Sym[:i])
		} else if strings.HasPrefix(f.Sym, "(") {
			f.DSO, f.Sym = f.Sym[1:len(f.Sym)-1], ""
		}
	}
	if f.Sym == "" {
		f.Sym = "[unknown]"
	}
	// The kernel is the upper half of the address space; where
	// kptr_restrict hides its addresses, perf still names its DSO.
	f.Kernel = addr>>63 == 1 || strings.HasPrefix(f.DSO, "[kernel.") || strings.HasPrefix(f.DSO, "[guest.kernel")
	return f, nil
}
