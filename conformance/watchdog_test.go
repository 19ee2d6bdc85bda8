package conformance

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/merlin-net/merlin/sockets"
	"github.com/merlin-net/merlin/transports"
)

// envWatchdogChild marks the re-executed test binary of TestWatchdog: its
// value names the row to run.
const envWatchdogChild = "MERLIN_TEST_WATCHDOG"

// TestWatchdog runs, in a child process with a watchdog limit of 2 s, a
// suite whose first case hangs. Where closing the case's transports ends
// the hang, the case fails with every goroutine's stack and the next case
// runs; where nothing ends it, the binary ends with a panic naming the
// case. (A child whose watchdog does not fire ends at its -test.timeout,
// and its output lacks the watchdog's.)
func TestWatchdog(t *testing.T) {
	if row := os.Getenv(envWatchdogChild); row != "" {
		watchdogChild(t, row)
		return
	}
	rows := []struct {
		name string
		want []string // in the child's output
	}{
		{
			name: "unblocked",
			want: []string{
				"the case did not finish within 2s",
				"conformance.watchdogAwaitClose(", // in the stacks
				"--- FAIL: TestWatchdog/tcp/hang",
				"--- PASS: TestWatchdog/tcp/next",
			},
		},
		{
			name: "stuck",
			want: []string{
				"the case did not finish within 2s",
				"conformance.watchdogStuck(",
				"panic: conformance: TestWatchdog/tcp/hang still running 5s after its watchdog fired at 2s",
			},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdog$", "-test.v", "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), envWatchdogChild+"="+row.name, envCaseTimeout+"=2s")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child: %v, want it to fail; its output:\n%s", err, out)
			}
			for _, w := range row.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("child's output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("child's output:\n%s", out)
			}
		})
	}
}

// watchdogChild runs TestWatchdog's row in the child.
func watchdogChild(t *testing.T, row string) {
	open := func(cfg transports.Config) (transports.Transport, error) {
		tr, err := sockets.New(cfg, sockets.Options{})
		if err != nil {
			return nil, err
		}
		return tr, nil
	}
	next := testCase{name: "next", tcpOnly: true, run: func(*testing.T, *Suite) {}}
	switch row {
	case "unblocked":
		runSuite(t, open, "", []testCase{{name: "hang", tcpOnly: true, run: watchdogAwaitClose}, next})
	case "stuck":
		runSuite(t, open, "", []testCase{{name: "hang", tcpOnly: true, run: watchdogStuck}, next})
	default:
		t.Fatalf("no row %q", row)
	}
}

// watchdogAwaitClose waits, without bound, for the OnClose of a Conn that
// nobody closes: only the watchdog's Close of the transport ends it.
func watchdogAwaitClose(t *testing.T, s *Suite) {
	closed := make(chan error, 1)
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, handler(hooks{Close: func(_ transports.Conn, err error) { closed <- err }}))
	s.DialClient(t, ln)
	if err := <-closed; !errors.Is(err, net.ErrClosed) {
		t.Errorf("OnClose err = %v, want net.ErrClosed from the transport's Close", err)
	}
}

// watchdogStuck blocks forever.
func watchdogStuck(*testing.T, *Suite) {
	<-make(chan struct{})
}
