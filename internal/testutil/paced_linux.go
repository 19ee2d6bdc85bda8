package testutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// envPacedChild carries, to the re-executed test binary, the address its
// paced client is to dial.
const envPacedChild = "MERLIN_PACED_CHILD_ADDR"

// Paced round trips: how many, and the client's pause after each, long
// enough for sysmon to see a loop's wait twice when it ticks every 20 µs,
// short enough for a loop to count as busy (schedtick.DefaultRaw).
const (
	pacedTrips = 2000
	pacedPause = 200 * time.Microsecond
)

// SwitchesPerTrip measures what a loop transport costs the scheduler at
// low load: with GOMAXPROCS=1, it serves echo on a fresh transport of
// spec (one inline loop) to a client in another process (the test binary,
// re-executed: the calling test must be named test and call
// SwitchesPerTrip first, which in the child runs the client and exits),
// which idles 50 ms, then makes pacedTrips round trips of 64 bytes, each
// followed by a pause of pacedPause; it returns this process's voluntary
// context switches per round trip over those (every thread's: the loop's
// sleeps, and those of any thread the runtime woke for it), and the
// transport's Stats after them.
func SwitchesPerTrip(t *testing.T, test, spec string) (float64, transports.Stats) {
	if addr := os.Getenv(envPacedChild); addr != "" {
		if err := pacedClient(addr, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "paced client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	tr, err := transports.Open(spec, transports.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", FrameEcho{Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envPacedChild+"="+ln.Addr().String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	// The child's lines arrive through a pipe the netpoller waits on: this
	// goroutine holds no P meanwhile.
	lines := bufio.NewScanner(out)
	var before, after syscall.Rusage
	for _, want := range []string{"start", "done"} {
		if !lines.Scan() {
			cmd.Process.Kill()
			t.Fatalf("the paced client stopped before %q: %v", want, lines.Err())
		}
		if got := lines.Text(); got != want {
			cmd.Process.Kill()
			t.Fatalf("the paced client said %q, want %q", got, want)
		}
		ru := &before
		if want == "done" {
			ru = &after
		}
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, ru); err != nil {
			t.Fatal(err)
		}
	}
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the paced client: %v", err)
	}
	return float64(after.Nvcsw-before.Nvcsw) / pacedTrips, tr.Stats()
}

// pacedClient is SwitchesPerTrip's child: it says "start" on w after its
// idle pause, and "done" after the round trips.
func pacedClient(addr string, w io.Writer) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	msg, got := Pattern(64, 'p'), make([]byte, 64)
	// Idle long enough that the server's loop has its P taken in its wait
	// and sysmon falls into its deep sleep: the load then starts as it
	// does after any idle spell.
	time.Sleep(50 * time.Millisecond)
	fmt.Fprintln(w, "start")
	for range pacedTrips {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		// Spun, not slept: a timer's sleep here lasts about a
		// millisecond whatever is asked, near the 2 ms under which a loop
		// counts as busy.
		for t := time.Now(); time.Since(t) < pacedPause; {
		}
	}
	fmt.Fprintln(w, "done")
	return nil
}
