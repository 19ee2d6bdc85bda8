package schedtick

import (
	"testing"
	"time"
)

// now is the clock the tests give the Ticker: nanoseconds since the
// test began, so that it starts under Every.
var now = func() func() int64 {
	epoch := time.Now()
	return func() int64 { return int64(time.Since(epoch)) }
}()

func TestBeforeBlockYieldsOncePerEvery(t *testing.T) {
	var tk Ticker
	if !tk.BeforeBlock(now()) {
		t.Fatal("a fresh Ticker did not yield")
	}
	start := tk.last
	since := func() time.Duration { return time.Duration(now() - start) }
	for i := 0; i < 1000; i++ {
		// Read the clock after the call: a yield seen before Every had
		// passed is one too early, whatever preempted the test.
		if tk.BeforeBlock(now()) && since() < Every {
			t.Fatalf("yielded again %v after the last yield, before Every (%v)", since(), Every)
		}
	}
	for since() < Every {
		// Wait out Every on the clock the Ticker is given.
	}
	if !tk.BeforeBlock(now()) {
		t.Fatalf("did not yield %v after the last yield", since())
	}
}

// A Ticker is called on every iteration of a loop: it must not allocate.
func TestBeforeBlockAllocs(t *testing.T) {
	var tk Ticker
	if n := testing.AllocsPerRun(100, func() { tk.BeforeBlock(now()) }); n != 0 {
		t.Fatalf("BeforeBlock allocates %v times per call", n)
	}
}

func TestRawWaitsOnlyWhenBusyAndQuiet(t *testing.T) {
	var r Raw
	for range 2 * Quiet {
		r.Waited(time.Microsecond)
	}
	if r.Now() {
		t.Fatal("the zero Raw waits raw")
	}
	r = Raw{Within: time.Millisecond}
	for i := range Quiet + 1 {
		if r.Now() {
			t.Fatalf("raw after %d waits, before Quiet (%d) waits without a post", i, Quiet)
		}
		r.Waited(time.Microsecond)
	}
	if !r.Now() {
		t.Fatalf("not raw after %d short waits without a post", Quiet+1)
	}
	r.Waited(time.Millisecond)
	if r.Now() {
		t.Fatal("raw after a wait as long as Within: an idle loop keeps its P")
	}
	r.Waited(time.Microsecond)
	if !r.Now() {
		t.Fatal("not raw after a short wait")
	}
	r.Posted()
	if r.Now() {
		t.Fatal("raw right after a post")
	}
	for range Quiet + 1 {
		r.Waited(time.Microsecond)
	}
	if !r.Now() {
		t.Fatal("not raw after Quiet waits without a post")
	}
}
