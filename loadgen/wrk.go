package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// EngineWrk runs wrk (github.com/wg/wrk, Debian's package wrk), the HTTP
// benchmark most servers publish figures from, as the generator: one wrk
// thread with Conns keep-alive connections, each keeping Depth GET
// requests in flight (pipelined, as wrk's pipeline.lua does). It drives
// the closed loop of the HTTP workload in the clear and nothing else.
// Responses are checked as wrk checks them: a status other than 2xx or
// 3xx, and every socket error, is an error; bodies are not compared.
//
// The warm-up is one wrk run and the measured window a second one, so both
// are whole seconds (wrk's -d). The window spans the second process: it
// opens before wrk starts and closes after it has exited, so the server's
// CPU over it includes the handshakes of that run's connections and the
// moments before wrk's first request and after its last; Elapsed is wrk's
// own measured time, from its first connection to its last response. The
// client's CPU is wrk's, from its rusage.
const EngineWrk = "wrk"

// wrkBinary is the wrk the engine runs; the tests point it elsewhere.
var wrkBinary = "wrk"

// wrkAvailable reports whether wrk can be run.
func wrkAvailable() error {
	if _, err := exec.LookPath(wrkBinary); err != nil {
		return fmt.Errorf("loadgen: the %s engine needs wrk on PATH (Debian: apt-get install wrk): %w", EngineWrk, err)
	}
	return nil
}

// validateWrk says what the wrk engine cannot do with c.
func (c Config) validateWrk() error {
	switch {
	case c.Workload != HTTP:
		return fmt.Errorf("loadgen: the %s engine drives the %s workload only, not %s", EngineWrk, HTTP, c.Workload)
	case c.Mode != Closed || c.Rate > 0:
		return fmt.Errorf("loadgen: the %s engine runs a closed loop only (no rate, no %s mode)", EngineWrk, c.Mode)
	case c.TLS != nil || c.Dial != nil:
		return fmt.Errorf("loadgen: the %s engine makes its own connections, in the clear: no TLS, no Dial", EngineWrk)
	case c.HTTPPath == EchoPath || c.HTTPBody != nil:
		return fmt.Errorf("loadgen: the %s engine sends GETs and does not compare bodies: no %s, no body to check", EngineWrk, EchoPath)
	case c.Network != "tcp" && c.Network != "tcp4" && c.Network != "tcp6":
		return fmt.Errorf("loadgen: the %s engine speaks TCP, not %s", EngineWrk, c.Network)
	case c.Duration%time.Second != 0 || c.Warmup%time.Second != 0:
		return fmt.Errorf("loadgen: the %s engine runs whole seconds (wrk's -d): duration %v, warm-up %v", EngineWrk, c.Duration, c.Warmup)
	case c.Conns < 1:
		return fmt.Errorf("loadgen: the %s engine needs at least one connection", EngineWrk)
	}
	return nil
}

// wrkScript is the Lua script given to wrk: every request is depth GETs of
// path written together, and done prints the summary as one line that
// parseWrk reads, whatever wrk's own report looks like.
func wrkScript(path, host string, depth int) string {
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
	return fmt.Sprintf(`local req = string.rep(%q, %d)
request = function() return req end
done = function(s, latency, requests)
  io.write(string.format("merlin-wrk requests=%%d duration_us=%%d bytes=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d\n",
    s.requests, s.duration, s.bytes, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout))
end
`, req, depth)
}

// wrkSummary is what one wrk run reported.
type wrkSummary struct {
	requests, durationUs, bytes               uint64
	connect, read, write, status, timeoutErrs uint64
}

func (s wrkSummary) errors() uint64 {
	return s.connect + s.read + s.write + s.status + s.timeoutErrs
}

// describe names the errors of s, for Result.FirstErrors.
func (s wrkSummary) describe() error {
	return fmt.Errorf("wrk: %d connect, %d read, %d write and %d timeout errors, %d responses not 2xx or 3xx",
		s.connect, s.read, s.write, s.timeoutErrs, s.status)
}

// parseWrk finds the summary line in wrk's output.
func parseWrk(out []byte) (wrkSummary, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "merlin-wrk ")
		if !ok {
			continue
		}
		var s wrkSummary
		fields := map[string]*uint64{
			"requests": &s.requests, "duration_us": &s.durationUs, "bytes": &s.bytes,
			"connect": &s.connect, "read": &s.read, "write": &s.write, "status": &s.status, "timeout": &s.timeoutErrs,
		}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			p, ok := fields[k]
			if !ok {
				return wrkSummary{}, fmt.Errorf("loadgen: wrk's summary has an unknown field %q", f)
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return wrkSummary{}, fmt.Errorf("loadgen: wrk's summary: %q: %w", f, err)
			}
			*p = n
			delete(fields, k)
		}
		if len(fields) > 0 {
			return wrkSummary{}, fmt.Errorf("loadgen: wrk's summary lacks fields: %q", line)
		}
		return s, nil
	}
	return wrkSummary{}, fmt.Errorf("loadgen: wrk printed no summary; its output:\n%s", out)
}

// runWrk runs the warm-up and the measured window as two wrk processes.
func (c Config) runWrk(ctx context.Context) (Result, error) {
	if err := wrkAvailable(); err != nil {
		return Result{}, err
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: address %q: %w", c.Addr, err)
	}
	dir, err := os.MkdirTemp("", "merlin-wrk-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	script := dir + "/load.lua"
	if err := os.WriteFile(script, []byte(wrkScript(c.HTTPPath, c.HTTPHost, c.Depth)), 0o644); err != nil {
		return Result{}, err
	}
	url := "http://" + net.JoinHostPort(host, port) + c.HTTPPath
	timeoutSec := max(int64((c.Timeout+time.Second-1)/time.Second), 1)
	run := func(d time.Duration) (wrkSummary, *os.ProcessState, error) {
		cmd := exec.CommandContext(ctx, wrkBinary, "-t1", "-c"+strconv.Itoa(c.Conns),
			"-d"+strconv.FormatInt(int64(d/time.Second), 10)+"s",
			"--timeout", strconv.FormatInt(timeoutSec, 10)+"s", "-s", script, url)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ctx.Err() != nil {
			return wrkSummary{}, cmd.ProcessState, nil // cancelled: nothing counted
		}
		if err != nil {
			return wrkSummary{}, cmd.ProcessState, fmt.Errorf("loadgen: %s: %w; its output:\n%s", wrkBinary, err, out.Bytes())
		}
		s, err := parseWrk(out.Bytes())
		return s, cmd.ProcessState, err
	}

	res := Result{Config: c, Latency: NewHistogram()}
	note := func(s wrkSummary) {
		if n := s.errors(); n > 0 {
			res.Errors += n
			if len(res.FirstErrors) < c.MaxErrors {
				res.FirstErrors = append(res.FirstErrors, s.describe())
			}
		}
	}
	if c.Warmup > 0 {
		s, _, err := run(c.Warmup)
		if err != nil {
			return Result{}, err
		}
		note(s)
	}
	if c.OnWindow != nil {
		c.OnWindow(true)
	}
	s, ps, err := run(c.Duration)
	if c.OnWindow != nil {
		c.OnWindow(false)
	}
	if err != nil {
		return Result{}, err
	}
	note(s)
	res.Requests, res.Bytes = s.requests, s.bytes
	res.Elapsed = time.Duration(s.durationUs) * time.Microsecond
	res.Open = c.Conns - int(min(s.connect, uint64(c.Conns)))
	if ps != nil {
		res.ClientUser, res.ClientSys = ps.UserTime(), ps.SystemTime()
	}
	return res, nil
}
