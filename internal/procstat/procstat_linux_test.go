package procstat

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A window's CPU time is exact, not a count of /proc's 10 ms ticks: 5 ms
// of spinning between two Reads measures between the CPU the process
// spent strictly between them and the CPU it spent around them (both by
// its own clock). In ticks it read 0 or 10 ms.
func TestReadCPUToTheNanosecond(t *testing.T) {
	pid := os.Getpid()
	for range 5 {
		t0 := processClock(t)
		a, err := Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		t1 := processClock(t)
		for end := t1 + 5*time.Millisecond; processClock(t) < end; {
		}
		t2 := processClock(t)
		b, err := Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		t3 := processClock(t)
		d := b.Sub(a).CPU()
		if d < t2-t1 || d > t3-t0 {
			t.Fatalf("CPU over a 5 ms spin: %v; the process's own clock says between %v and %v", d, t2-t1, t3-t0)
		}
		if u, s := b.Sub(a).User, b.Sub(a).Sys; u < 0 || s < 0 {
			t.Fatalf("user %v, system %v over the window: negative", u, s)
		}
	}
}

// processClock reads the calling process's CPU clock.
func processClock(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		cpu          time.Duration
		ut, st       int64
		wantU, wantS time.Duration
	}{
		{100 * time.Millisecond, 1, 3, 25 * time.Millisecond, 75 * time.Millisecond},
		{7 * time.Millisecond, 0, 0, 0, 7 * time.Millisecond},
		{15 * time.Millisecond, 1, 0, 15 * time.Millisecond, 0},
	} {
		u, s := split(tc.cpu, tc.ut, tc.st)
		if u != tc.wantU || s != tc.wantS {
			t.Errorf("split(%v, %d, %d) = %v, %v; want %v, %v", tc.cpu, tc.ut, tc.st, u, s, tc.wantU, tc.wantS)
		}
	}
}

// A window's user and system time are split as the ticks within it
// split, never negative, and sum to the exact CPU time.
func TestSubSplitsByTheWindowsTicks(t *testing.T) {
	a := Sample{User: 50 * time.Millisecond, Sys: 50 * time.Millisecond, userTicks: 5, sysTicks: 5}
	b := Sample{User: 55 * time.Millisecond, Sys: 51 * time.Millisecond, userTicks: 6, sysTicks: 5}
	if d := b.Sub(a); d.User != 6*time.Millisecond || d.Sys != 0 {
		t.Errorf("window of one user tick, 6 ms of CPU: user %v, system %v; want 6 ms and 0", d.User, d.Sys)
	}
	c := Sample{User: 58 * time.Millisecond, Sys: 51 * time.Millisecond, userTicks: 6, sysTicks: 5}
	if d := c.Sub(b); d.User+d.Sys != 3*time.Millisecond || d.User < 0 || d.Sys < 0 {
		t.Errorf("window without a tick, 3 ms of CPU: user %v, system %v", d.User, d.Sys)
	}
	e := Sample{User: 100 * time.Millisecond, Sys: 349 * time.Millisecond, userTicks: 16, sysTicks: 35}
	if d := e.Sub(c); d.User != 85*time.Millisecond || d.Sys != 255*time.Millisecond {
		t.Errorf("window of 10 user and 30 system ticks, 340 ms: user %v, system %v; want 85 ms and 255 ms", d.User, d.Sys)
	}
}
