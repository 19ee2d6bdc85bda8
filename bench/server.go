package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is one server of the matrix: a command that takes merlin serve's
// flags (-addr, -network, -cpuprofile) and prints "listening on ADDR".
type Server struct {
	// Name names the server in results ("sockets", "sockets-netconn",
	// "gnet").
	Name string
	// Kind is "transport" (merlin serve on a transport), "netconn" (the
	// same behind the net.Conn adapter) or "peer".
	Kind string
	// Argv is the command and its arguments, without -addr and -app
	// (Run adds them).
	Argv []string
	// Stats is set when the server prints its transport's counters on
	// SIGUSR1 ("stats k=v ..."), as merlin serve does.
	Stats bool
	// Apps lists the apps the server serves ("echo", "http"); nil means
	// every app. Run skips the workloads of other apps.
	Apps []string
	// Mechanism is how the server waits for the kernel: MechEpoll (epoll,
	// Go's netpoller included) or MechUring; "" when unknown.
	Mechanism string
	// Floor marks a floor server: the minimal C server of its mechanism
	// (or nginx for HTTP), against which the others are read.
	Floor bool
	// TLS says the server serves its http app over TLS when given -tls
	// -tls-cert FILE -tls-key FILE, as merlin serve does behind the
	// net.Conn adapter: Run skips the https workload of the others.
	TLS bool
}

// Mechanisms.
const (
	MechEpoll = "epoll"
	MechUring = "io_uring"
)

// serves reports whether srv can run workload w.
func (srv Server) serves(w Workload) bool {
	if w.Kind == HTTPS && !srv.TLS {
		return false
	}
	return srv.Apps == nil || slices.Contains(srv.Apps, w.app())
}

// Server kinds.
const (
	KindTransport = "transport"
	KindNetConn   = "netconn"
	KindPeer      = "peer"
)

// process is a running server.
type process struct {
	srv   Server
	cmd   *exec.Cmd
	pid   int
	addr  string
	lines chan string // stdout lines after the listening one
	done  chan struct{}
	err   error // cmd.Wait's result, set before done is closed

	stderr *tailBuffer
}

var listeningRE = regexp.MustCompile(`^listening on (\S+)`)

// startServer starts srv under the prefix pin (taskset) with env added to
// the environment, on 127.0.0.1 port 0 (plus extra arguments), and waits
// for its listening line.
func startServer(srv Server, pin []string, env []string, extra []string, timeout time.Duration) (*process, error) {
	argv := append(append(append([]string{}, pin...), srv.Argv...), "-addr", "127.0.0.1:0")
	argv = append(argv, extra...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &process{srv: srv, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{}), stderr: &tailBuffer{max: 16 << 10}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", srv.Name, err)
	}
	p.pid = cmd.Process.Pid
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				first = false
				listening <- line
				continue
			}
			select {
			case p.lines <- line:
			default: // nobody asked: drop
			}
		}
		io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		close(p.done)
		close(listening)
	}()
	select {
	case line, ok := <-listening:
		m := listeningRE.FindStringSubmatch(line)
		if !ok || m == nil {
			p.kill()
			return nil, fmt.Errorf("%s did not print \"listening on ADDR\" (first line %q, exit %v)\nstderr:\n%s", srv.Name, line, p.err, p.stderr)
		}
		p.addr = m[1]
	case <-time.After(timeout):
		p.kill()
		return nil, fmt.Errorf("%s printed no line within %v\nstderr:\n%s", srv.Name, timeout, p.stderr)
	}
	return p, nil
}

// stats asks the server for its counters (SIGUSR1) and returns them.
func (p *process) stats(timeout time.Duration) (map[string]uint64, error) {
	if !p.srv.Stats {
		return nil, nil
	}
	// Drop stale lines.
	for len(p.lines) > 0 {
		<-p.lines
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return nil, err
	}
	deadline := time.After(timeout)
	for {
		select {
		case line := <-p.lines:
			if m, ok := parseStats(line); ok {
				return m, nil
			}
		case <-p.done:
			return nil, fmt.Errorf("%s exited: %v", p.srv.Name, p.err)
		case <-deadline:
			return nil, fmt.Errorf("%s printed no stats line within %v of SIGUSR1", p.srv.Name, timeout)
		}
	}
}

// parseStats parses "stats k=v k=v ...".
func parseStats(line string) (map[string]uint64, bool) {
	rest, ok := strings.CutPrefix(line, "stats ")
	if !ok {
		return nil, false
	}
	m := map[string]uint64{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return nil, false
		}
		m[k] = n
	}
	return m, true
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends the server with SIGTERM (SIGKILL after timeout) and returns
// an error if it did not exit cleanly.
func (p *process) stop(timeout time.Duration) error {
	if !p.running() {
		return fmt.Errorf("%s had exited: %v\nstderr:\n%s", p.srv.Name, p.err, p.stderr)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM\nstderr:\n%s", p.srv.Name, timeout, p.stderr)
	}
	if p.err != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM\nstderr:\n%s", p.srv.Name, p.err, p.stderr)
	}
	return nil
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
