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

// A Ticker yields once per Every before told waits and once per EveryRaw
// before raw ones, never sooner, and yields again once the period has
// passed.
func TestBeforeBlockYieldsOncePerEvery(t *testing.T) {
	for _, tc := range []struct {
		raw   bool
		every time.Duration
	}{{false, Every}, {true, EveryRaw}} {
		var tk Ticker
		if !tk.BeforeBlock(now(), tc.raw) {
			t.Fatalf("raw=%v: a fresh Ticker did not yield", tc.raw)
		}
		start := tk.last
		since := func() time.Duration { return time.Duration(now() - start) }
		for i := 0; i < 1000; i++ {
			// Read the clock after the call: a yield seen before the
			// period had passed is one too early, whatever preempted the
			// test.
			if tk.BeforeBlock(now(), tc.raw) && since() < tc.every {
				t.Fatalf("raw=%v: yielded again %v after the last yield, before %v", tc.raw, since(), tc.every)
			}
		}
		for since() < tc.every {
			// Wait out the period on the clock the Ticker is given.
		}
		if !tk.BeforeBlock(now(), tc.raw) {
			t.Fatalf("raw=%v: did not yield %v after the last yield", tc.raw, since())
		}
	}
}

// A raw wait cannot have its P taken, only its goroutine preempted after
// sysmon's 10 ms (forcePreemptNS): the raw period stays under that, with
// room for a busy loop's wait, and is longer than the told one.
func TestEveryRawUnderSysmonPreemption(t *testing.T) {
	if EveryRaw+DefaultRaw > 10*time.Millisecond || EveryRaw <= Every {
		t.Fatalf("EveryRaw %v with DefaultRaw %v: want Every (%v) < EveryRaw and EveryRaw+DefaultRaw <= 10ms", EveryRaw, DefaultRaw, Every)
	}
}

// A Ticker is called on every iteration of a loop: it must not allocate.
func TestBeforeBlockAllocs(t *testing.T) {
	var tk Ticker
	if n := testing.AllocsPerRun(100, func() { tk.BeforeBlock(now(), false) }); n != 0 {
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
