package schedtick

import (
	"testing"
	"time"
)

func TestBeforeBlockYieldsOncePerEvery(t *testing.T) {
	var tk Ticker
	if !tk.BeforeBlock() {
		t.Fatal("a fresh Ticker did not yield")
	}
	start := tk.last
	for i := 0; i < 1000; i++ {
		// Read the clock after the call: a yield seen before Every had
		// passed is one too early, whatever preempted the test.
		if tk.BeforeBlock() && time.Since(start) < Every {
			t.Fatalf("yielded again %v after the last yield, before Every (%v)", time.Since(start), Every)
		}
	}
	for time.Since(start) < Every {
		// Wait out Every on the clock the Ticker reads.
	}
	if !tk.BeforeBlock() {
		t.Fatalf("did not yield %v after the last yield", time.Since(start))
	}
}

// A Ticker is called on every iteration of a loop: it must not allocate.
func TestBeforeBlockAllocs(t *testing.T) {
	var tk Ticker
	if n := testing.AllocsPerRun(100, func() { tk.BeforeBlock() }); n != 0 {
		t.Fatalf("BeforeBlock allocates %v times per call", n)
	}
}
