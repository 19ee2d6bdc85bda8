package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// The EMFILE case runs its server in a child process whose descriptor
// limit is lowered, so that exhausting it harms nothing else; the burst of
// clients comes from this process, so that it does not use the child's
// descriptors. The two speak by lines:
//
//	child:  listening NETWORK ADDRESS LIMIT
//	parent: hold                       (the burst is connected)
//	child:  held ERRORS-BEFORE ERRORS-AFTER ACCEPTED   (2 s later)
//	parent: stop                       (the listener served again)
//	child:  stopped
//
// The child writes its lines on stdout after lcChildPrefix, and reads the
// parent's on stdin.
const lcChildPrefix = "merlin-child: "

const (
	emfileHeadroom  = 64              // descriptors the child may open beyond those it has at start
	emfileBurst     = 100             // connections beyond the limit
	emfileHold      = 2 * time.Second // how long the burst is held
	emfileMaxErrors = 20              // accept errors allowed during the hold, per accepting socket
)

// emfile: with the descriptor limit reached (loops=1, one accepting
// socket), the listener neither stops nor spins: accept errors back off,
// Conns it accepted are still served, and once descriptors are free it
// accepts and serves again.
func emfile(t *testing.T, s *Suite) {
	if err := lcFDLimitSupported(); err != nil {
		s.Skip(t, err.Error())
	}
	ch := lcStartChild(t, s)
	var (
		network, address string
		limit            int
	)
	ch.expect(t, "listening", &network, &address, &limit)
	if network != s.Network {
		t.Fatalf("child listens on %s, want %s", network, s.Network)
	}

	burst := make([]net.Conn, 0, limit+emfileBurst)
	release := func() {
		for _, c := range burst {
			c.Close()
		}
		burst = burst[:0]
	}
	t.Cleanup(release)
	for range cap(burst) {
		c, err := net.DialTimeout(network, address, lcTimeout)
		if err != nil {
			t.Fatalf("burst: dial %d of %d: %v", len(burst)+1, cap(burst), err)
		}
		burst = append(burst, c)
	}

	ch.send(t, "hold")
	// A Conn accepted before the limit was reached is still served (the
	// backlog is FIFO: the first dialed is the first accepted).
	lcEcho(t, burst[0], []byte("served at the limit"))
	var before, after, accepted uint64
	ch.expect(t, "held", &before, &after, &accepted)
	t.Logf("descriptor limit %d, burst %d: %d accepted, accept errors %d before the hold, %d after", limit, len(burst), accepted, before, after)
	if after == 0 {
		t.Errorf("no accept error with %d connections against a limit of %d descriptors: the limit was never reached", len(burst), limit)
	}
	if after-before > emfileMaxErrors {
		t.Errorf("accept errors grew by %d in %v at the limit, want at most %d: the listener spins instead of backing off", after-before, emfileHold, emfileMaxErrors)
	}

	release()
	c, err := net.DialTimeout(network, address, lcTimeout)
	if err != nil {
		t.Fatalf("dial after the burst: %v", err)
	}
	lcEcho(t, c, []byte("served again"))
	c.Close()

	ch.send(t, "stop")
	ch.expect(t, "stopped")
	ch.wait(t)
}

// emfileChild is the server side of emfile, in the child process.
func emfileChild(t *testing.T, s *Suite) {
	limit, err := lcLowerFDLimit(emfileHeadroom)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Open(t, func(c *transports.Config) { c.Loops = 1 })
	ln := s.Listen(t, tr, echoHandler{})
	in := bufio.NewScanner(os.Stdin)

	lcChildSay("listening", ln.Addr().Network(), ln.Addr().String(), limit)
	lcChildExpect(t, in, "hold")
	before := tr.Stats()
	time.Sleep(emfileHold) // the case's stated hold, not synchronisation
	after := tr.Stats()
	lcChildSay("held", before.AcceptErrors, after.AcceptErrors, after.Accepted)
	lcChildExpect(t, in, "stop")
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	lcChildSay("stopped")
}

// lcChildSay writes one protocol line for the parent.
func lcChildSay(word string, args ...any) {
	fmt.Println(append([]any{lcChildPrefix + word}, args...)...)
}

// lcChildExpect reads the parent's next line, which must be word.
func lcChildExpect(t *testing.T, in *bufio.Scanner, word string) {
	t.Helper()
	if !in.Scan() {
		t.Fatalf("child: waiting for %q: stdin ended: %v", word, in.Err())
	}
	if got := strings.TrimSpace(in.Text()); got != word {
		t.Fatalf("child: got %q from the parent, want %q", got, word)
	}
}

// lcChild is a re-executed test binary running the current case's child
// function (see childArgs and runChild in run.go), which it talks to by lines
// while it runs.
type lcChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // the child's protocol lines, prefix removed; closed at its stdout's end

	mu  sync.Mutex
	out bytes.Buffer // everything the child wrote, for failure reports

	exited  chan struct{} // closed once Wait has returned
	waitErr error         // Wait's result, set before exited closes
}

// lcStartChild starts the child of the current case. It is killed, if
// still running, by t.Cleanup.
func lcStartChild(t *testing.T, s *Suite) *lcChild {
	t.Helper()
	parts := strings.SplitN(t.Name(), "/", 2)
	if len(parts) != 2 {
		t.Fatalf("lcStartChild outside a case: %s", t.Name())
	}
	cmd := exec.Command(os.Args[0], childArgs(parts[0])...)
	cmd.Env = append(os.Environ(), envChild+"="+t.Name())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := &lcChild{cmd: cmd, stdin: stdin, lines: make(chan string, 16), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("starting the child: %v", err)
	}
	w.Close() // the child holds its own copy

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(ch.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			ch.mu.Lock()
			ch.out.WriteString(line + "\n")
			ch.mu.Unlock()
			if rest, ok := strings.CutPrefix(line, lcChildPrefix); ok {
				ch.lines <- rest
			}
		}
	}()
	go func() {
		<-readDone // Wait must not close the pipe under the reader
		ch.waitErr = cmd.Wait()
		close(ch.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-ch.exited:
		default:
			cmd.Process.Kill()
			for range ch.lines {
			}
			<-ch.exited
		}
		r.Close()
	})
	return ch
}

// output returns what the child has written so far.
func (ch *lcChild) output() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.out.String()
}

// expect waits up to 30 s for the child's next line, which must begin
// with word, and scans the rest into args.
func (ch *lcChild) expect(t *testing.T, word string, args ...any) {
	t.Helper()
	select {
	case line, ok := <-ch.lines:
		if !ok {
			<-ch.exited
			t.Fatalf("child ended (%v) while %q was awaited; its output:\n%s", ch.waitErr, word, ch.output())
		}
		rest, ok := strings.CutPrefix(line, word)
		if !ok {
			t.Fatalf("child said %q, want %q; its output:\n%s", line, word, ch.output())
		}
		if len(args) > 0 {
			if _, err := fmt.Sscan(rest, args...); err != nil {
				t.Fatalf("child said %q: %v", line, err)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not say %q in 30 s; its output:\n%s", word, ch.output())
	}
}

// send writes one line to the child.
func (ch *lcChild) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(ch.stdin, line+"\n"); err != nil {
		t.Fatalf("telling the child %q: %v; its output:\n%s", line, err, ch.output())
	}
}

// wait waits up to 30 s for the child to exit, and fails t unless it
// succeeded.
func (ch *lcChild) wait(t *testing.T) {
	t.Helper()
	ch.stdin.Close()
	select {
	case <-ch.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not exit in 30 s; its output:\n%s", ch.output())
	}
	if ch.waitErr != nil {
		t.Fatalf("child: %v; its output:\n%s", ch.waitErr, ch.output())
	}
}
