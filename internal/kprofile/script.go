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
// counts the samples perf lost.
const ScriptFields = "comm,pid,tid,period,ip,sym,dso"

// Sample is one sample of perf script.
type Sample struct {
	Comm     string
	PID, TID int
	Period   int64   // the sample's weight: nanoseconds for cpu-clock
	Stack    []Frame // leaf first
}

// Scanner reads perf script's samples one at a time, as bufio.Scanner
// reads lines.
type Scanner struct {
	r    *bufio.Reader
	line int
	s    Sample
	err  error

	lost int64
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
		line, err := sc.r.ReadString('\n')
		if err != nil && err != io.EOF {
			sc.err = err
			return false
		}
		if line == "" && err == io.EOF {
			return inSample && sc.end()
		}
		sc.line++
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "":
			if inSample {
				return sc.end()
			}
		case line[0] == ' ' || line[0] == '\t':
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

// end ends the current sample, which must have a frame.
func (sc *Scanner) end() bool {
	if len(sc.s.Stack) == 0 {
		sc.err = fmt.Errorf("perf script line %d: a sample without frames (want -F %s)", sc.line, ScriptFields)
		return false
	}
	return true
}

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

// parseHeader reads "COMM PID/TID PERIOD" (COMM may hold spaces).
func parseHeader(line string, s *Sample) error {
	f := strings.Fields(line)
	for i := len(f) - 1; i >= 1; i-- {
		p, t, ok := strings.Cut(f[i], "/")
		if !ok {
			continue
		}
		pid, err1 := strconv.Atoi(p)
		tid, err2 := strconv.Atoi(t)
		if err1 != nil || err2 != nil {
			continue
		}
		if i+1 >= len(f) {
			return fmt.Errorf("no period after %q (want -F %s)", f[i], ScriptFields)
		}
		period, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ":"), 10, 64)
		if err != nil || period < 0 {
			return fmt.Errorf("bad period %q (want -F %s)", f[i+1], ScriptFields)
		}
		s.Comm = strings.Join(f[:i], " ")
		s.PID, s.TID, s.Period = pid, tid, period
		return nil
	}
	return fmt.Errorf("no PID/TID in sample header %q (want -F %s)", line, ScriptFields)
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
