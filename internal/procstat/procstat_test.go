package procstat

import (
	"os"
	"testing"
	"time"
)

// The test process's own figures: CPU time grows as it spins, RSS and
// threads are plausible, and agree with getrusage.
func TestReadSelf(t *testing.T) {
	a, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := b.Sub(a)
	if d.CPU() < 100*time.Millisecond {
		t.Errorf("CPU time over 300 ms of spinning: %v, want at least 100 ms", d.CPU())
	}
	if b.RSS < 1<<20 || b.Threads < 1 {
		t.Errorf("RSS %d, threads %d: implausible", b.RSS, b.Threads)
	}
	// Sleeping switches the thread out: a voluntary context switch.
	for range 10 {
		time.Sleep(time.Millisecond) // the behaviour under test
	}
	c, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if c.VolCtxSw <= b.VolCtxSw {
		t.Errorf("voluntary context switches %d after 10 sleeps, %d before: want more", c.VolCtxSw, b.VolCtxSw)
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read(1 << 30); err == nil {
		t.Error("Read of a process that does not exist: nil error")
	}
}
