package http1

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// timedConn is one connection of a Handler on a test clock, its timer run
// as a transport would run it: advance moves the clock and calls OnTimer
// whenever the timer runs out on the way.
type timedConn struct {
	t    *testing.T
	h    *Handler
	c    *fakeConn
	now  time.Time
	kept []byte // bytes OnData left unconsumed, offered again with the next
	res  result
}

// newTimedConn opens a connection on a Handler with cfg, at the clock's
// origin.
func newTimedConn(t *testing.T, cfg Config) *timedConn {
	t.Helper()
	tc := &timedConn{t: t, now: fixedNow()}
	tc.h = newTestHandler(cfg, &tc.res)
	tc.h.now = func() time.Time { return tc.now }
	tc.h.epoch = tc.now
	tc.c = &fakeConn{clock: tc.h.now}
	tc.h.OnOpen(tc.c)
	t.Cleanup(func() { tc.h.OnClose(tc.c, nil) })
	return tc
}

// elapsed is the time since the connection opened.
func (tc *timedConn) elapsed() time.Duration { return tc.now.Sub(fixedNow()) }

// send delivers s as a transport would: after the bytes kept from before.
func (tc *timedConn) send(s string) {
	tc.t.Helper()
	if tc.c.closed {
		tc.t.Fatalf("at %v: send on a closed connection", tc.elapsed())
	}
	in := append(append([]byte(nil), tc.kept...), s...)
	n := tc.h.OnData(tc.c, in)
	if n < 0 || n > len(in) {
		tc.t.Fatalf("OnData returned %d for %d bytes", n, len(in))
	}
	tc.kept = append(tc.kept[:0], in[n:]...)
}

// advance moves the clock by d, running out the timer on the way as often
// as it is set to, as the transport would (never after Close).
func (tc *timedConn) advance(d time.Duration) {
	end := tc.now.Add(d)
	for tc.c.armed && !tc.c.closed && !tc.c.deadline.After(end) {
		tc.now = tc.c.deadline
		tc.c.armed = false
		tc.h.OnTimer(tc.c)
	}
	tc.now = end
}

// answers returns the statuses of the answers written so far.
func (tc *timedConn) answers() []int {
	tc.t.Helper()
	var st []int
	for _, r := range parseResponses(tc.t, string(tc.c.out)) {
		st = append(st, r.Status)
	}
	return st
}

// expect checks whether the connection is closed and its answers so far.
func (tc *timedConn) expect(closed bool, statuses ...int) {
	tc.t.Helper()
	if tc.c.closed != closed {
		tc.t.Fatalf("at %v: closed = %v, want %v", tc.elapsed(), tc.c.closed, closed)
	}
	if tc.c.aborted {
		tc.t.Fatalf("at %v: aborted, want an orderly close", tc.elapsed())
	}
	if diff := cmp.Diff(statuses, tc.answers()); diff != "" {
		tc.t.Fatalf("at %v: statuses of the answers (-want +got):\n%s", tc.elapsed(), diff)
	}
}

const (
	ms = time.Millisecond
	s  = time.Second
)

// TestKeepAliveTimeout checks that the keep-alive timeout closes a
// connection with no request under way, without an answer; that each
// answer starts it anew; and that it does not run while a request is.
func TestKeepAliveTimeout(t *testing.T) {
	t.Run("idle-after-open", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.advance(130*s - ms)
		tc.expect(false)
		tc.advance(ms)
		tc.expect(true) // closed, with no answer
	})
	t.Run("idle-after-answers", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.advance(100 * s)
		tc.send(getPlain)
		tc.advance(100 * s) // 200 s from the open, 100 s from the answer
		tc.send(getPlain + getJSON)
		tc.advance(130*s - ms)
		tc.expect(false, 200, 200, 200)
		tc.advance(ms)
		tc.expect(true, 200, 200, 200)
	})
	t.Run("not-during-a-request", func(t *testing.T) {
		// Headers and body time limits off: only keep-alive could close.
		tc := newTimedConn(t, Config{RequestHeadersTimeout: -1, MinRequestBodyDataRate: -1})
		tc.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
		tc.advance(200 * s)
		tc.send("ab")
		tc.advance(200 * s)
		tc.expect(false)
		tc.send("cd")
		tc.expect(false, 200)
		tc.advance(130 * s)
		tc.expect(true, 200)
	})
	t.Run("empty-lines-do-not-reset-it", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.advance(100 * s)
		tc.send("\r\n")
		tc.advance(30 * s)
		tc.expect(true)
	})
	t.Run("off", func(t *testing.T) {
		tc := newTimedConn(t, Config{KeepAliveTimeout: -1})
		tc.advance(1000 * time.Hour)
		tc.send(getPlain)
		tc.advance(1000 * time.Hour)
		tc.expect(false, 200)
	})
}

// TestRequestHeadersTimeout checks that the request-headers timeout runs
// from a request's first byte until its head is whole, answers 408 and
// closes, and runs in no other phase.
func TestRequestHeadersTimeout(t *testing.T) {
	t.Run("head-byte-by-byte", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.advance(60 * s) // keep-alive: the headers timeout does not run
		for i := range 29 {
			tc.send(getPlain[i : i+1])
			tc.advance(s)
		}
		tc.advance(s - ms)
		tc.expect(false)
		tc.advance(ms) // 30 s from the first byte
		tc.expect(true, 408)
		if got := tc.res.Errors; !cmp.Equal(got, []int{408}) {
			t.Errorf("refusals %v, want [408]", got)
		}
		got := parseResponses(t, string(tc.c.out))
		if diff := cmp.Diff([]resp{errResp(408, "", "close")}, got); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}
	})
	t.Run("head-in-time", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.send("GET /plaintext HTTP/1.1\r\n")
		tc.advance(30*s - ms)
		tc.send("Host: x\r\n\r\n")
		tc.advance(100 * s) // keep-alive now: 130 s
		tc.expect(false, 200)
	})
	t.Run("pipelined-partial-head", func(t *testing.T) {
		// The partial head after a burst starts its timeout at that OnData.
		tc := newTimedConn(t, Config{})
		tc.advance(120 * s)
		tc.send(getPlain + getJSON + "GET /pla")
		tc.advance(30*s - ms)
		tc.expect(false, 200, 200)
		tc.advance(ms)
		tc.expect(true, 200, 200, 408)
	})
	t.Run("each-head-its-own", func(t *testing.T) {
		// A head completed and answered, the next begun in the same
		// OnData: the timeout of the second runs from then.
		tc := newTimedConn(t, Config{})
		tc.send("GET /plaintext HTTP/1.1\r\n")
		tc.advance(20 * s)
		tc.send("Host: x\r\n\r\nGET /json HTTP/1.1\r\n")
		tc.advance(20 * s)
		tc.expect(false, 200)
		tc.advance(10 * s)
		tc.expect(true, 200, 408)
	})
	t.Run("not-during-a-body", func(t *testing.T) {
		tc := newTimedConn(t, Config{MinRequestBodyDataRate: -1})
		tc.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
		tc.advance(100 * s)
		tc.send("ab")
		tc.expect(false, 200)
	})
	t.Run("off", func(t *testing.T) {
		tc := newTimedConn(t, Config{RequestHeadersTimeout: -1})
		tc.send("GET /pla")
		tc.advance(1000 * time.Hour)
		tc.send("intext HTTP/1.1\r\nHost: x\r\n\r\n")
		tc.expect(false, 200)
	})
}

// TestMinRequestBodyDataRate checks the body rate: never checked during
// the grace, then the average since the body's start; a fast body is never
// cut, a slow one is after the grace with 408, one that stalls once its
// average falls below the minimum.
func TestMinRequestBodyDataRate(t *testing.T) {
	const head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12000\r\n\r\n"
	t.Run("fast-body", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.send(head)
		for range 40 { // 300 bytes a second, for 40 s
			tc.advance(s)
			tc.send(strings.Repeat("x", 300))
		}
		tc.expect(false, 200)
	})
	t.Run("slow-body", func(t *testing.T) {
		tc := newTimedConn(t, Config{})
		tc.send(head)
		for range 4 { // 200 bytes a second
			tc.send(strings.Repeat("x", 200))
			tc.advance(s)
		}
		tc.send(strings.Repeat("x", 200))
		tc.advance(s - ms)
		tc.expect(false) // the grace: 5 s
		tc.advance(ms)
		tc.expect(true, 408)
	})
	t.Run("stalled-body", func(t *testing.T) {
		// 2400 bytes at once, then nothing: the average reaches 240 B/s
		// at 10 s and falls below it after; checked within a second.
		tc := newTimedConn(t, Config{})
		tc.send(head + strings.Repeat("x", 2400))
		tc.advance(10*s - ms)
		tc.expect(false)
		tc.advance(s + ms)
		tc.expect(true, 408)
	})
	t.Run("slow-chunked-framing", func(t *testing.T) {
		// A chunk-size line a byte a second: framing counts as the body.
		tc := newTimedConn(t, Config{})
		tc.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 5 {
			tc.send("0")
			tc.advance(s)
		}
		tc.expect(true, 408)
	})
	t.Run("expect-continue", func(t *testing.T) {
		// 100 Continue is interim: the 408 still goes out.
		tc := newTimedConn(t, Config{})
		tc.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
		tc.advance(5 * s)
		tc.expect(true, 100, 408)
	})
	t.Run("grace", func(t *testing.T) {
		tc := newTimedConn(t, Config{MinRequestBodyDataRateGrace: 20 * s})
		tc.send(head)
		tc.advance(20*s - ms)
		tc.expect(false)
		tc.advance(ms)
		tc.expect(true, 408)
	})
	t.Run("no-grace", func(t *testing.T) {
		tc := newTimedConn(t, Config{MinRequestBodyDataRateGrace: -1})
		tc.send(head)
		tc.advance(s)
		tc.expect(true, 408)
	})
	t.Run("each-body-its-own", func(t *testing.T) {
		// A fast body answered, the next one begun in the same OnData
		// and stalled: its rate counts from its start alone.
		tc := newTimedConn(t, Config{})
		tc.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
		tc.advance(4 * s)
		tc.send(strings.Repeat("x", 5000) + head)
		tc.advance(5*s - ms)
		tc.expect(false, 200)
		tc.advance(ms)
		tc.expect(true, 200, 408)
	})
	t.Run("off", func(t *testing.T) {
		tc := newTimedConn(t, Config{MinRequestBodyDataRate: -1})
		tc.send(head)
		tc.advance(1000 * time.Hour)
		tc.send(strings.Repeat("x", 12000))
		tc.expect(false, 200)
	})
}

// TestTimerLazy checks that the timer is set when a phase must run out
// earlier than it is set to, and not per request: a pipelined burst ends
// each OnData in a new keep-alive wait that costs no SetTimer.
func TestTimerLazy(t *testing.T) {
	tc := newTimedConn(t, Config{})
	if tc.c.timerSet != 1 {
		t.Fatalf("%d SetTimer at OnOpen, want 1", tc.c.timerSet)
	}
	burst := strings.Repeat(getPlain, 16)
	for range 1000 {
		tc.advance(10 * ms)
		tc.send(burst)
		tc.c.out = tc.c.out[:0]
	}
	if tc.c.timerSet != 1 {
		t.Errorf("%d SetTimer after 1000 pipelined bursts over 10 s, want 1 (OnOpen's)", tc.c.timerSet)
	}
	tc.advance(120 * s) // 130 s from the open: OnTimer sets it again, to 130 s after the last answer
	if tc.c.timerSet != 2 {
		t.Errorf("%d SetTimer after the first expiry, want 2", tc.c.timerSet)
	}
	tc.send(getPlain) // a later keep-alive deadline: no SetTimer
	tc.advance(20 * s)
	tc.expect(false, 200)
	if tc.c.timerSet != 3 {
		t.Errorf("%d SetTimer after the second expiry, want 3", tc.c.timerSet)
	}
	tc.send("GET /plain") // headers: runs out before the keep-alive wait would
	if tc.c.timerSet != 4 {
		t.Errorf("%d SetTimer after a head's first byte, want 4", tc.c.timerSet)
	}
	tc.send("text HTTP/1.1\r\n")
	if tc.c.timerSet != 4 {
		t.Errorf("%d SetTimer after more of the same head, want still 4", tc.c.timerSet)
	}
}

// TestOutputPendingPausesLimits checks that no limit runs out while
// answers wait for the peer to read them, and that the phase begins anew
// once they have gone.
func TestOutputPendingPausesLimits(t *testing.T) {
	tc := newTimedConn(t, Config{})
	tc.send("GET /pla")
	tc.c.outbound = 1
	tc.advance(100 * s)
	tc.expect(false)
	tc.c.outbound = 0
	tc.advance(28 * s)
	tc.expect(false)
	tc.advance(3 * s)
	tc.expect(true, 408)
}

// TestTimerAfterClose checks that a late OnTimer (the contract forbids it,
// but a third party's transport may race) after the Handler closed the
// connection does nothing.
func TestTimerAfterClose(t *testing.T) {
	tc := newTimedConn(t, Config{})
	tc.send("GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	tc.expect(true, 200)
	before := len(tc.c.out)
	tc.now = tc.now.Add(time.Hour)
	tc.h.OnTimer(tc.c)
	if len(tc.c.out) != before || tc.c.aborted {
		t.Errorf("OnTimer after close wrote or aborted")
	}
}

// plainConn is a Conn without a timer, as a third party's transport may
// have.
type plainConn struct{ fakeConn }

// SetTimer hides fakeConn's: plainConn is no TimerConn.
func (c *plainConn) SetTimer() {}

// recordLogs is a slog.Handler that keeps every record.
type recordLogs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recordLogs) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordLogs) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recordLogs) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recordLogs) WithGroup(string) slog.Handler      { return r }

// TestNoTimerConn checks that a Conn without a timer is served without
// time limits, and that the Handler says so once, at Warn; and that it
// says nothing when every limit is off.
func TestNoTimerConn(t *testing.T) {
	var logs recordLogs
	h := New(Config{Logger: slog.New(&logs)})
	for range 3 {
		c := &plainConn{}
		h.OnOpen(c)
		h.OnData(c, []byte(getPlain))
		if c.closed || len(c.out) == 0 {
			t.Fatalf("not served: closed %v, %d bytes out", c.closed, len(c.out))
		}
		h.OnClose(c, nil)
	}
	if len(logs.recs) != 1 {
		t.Fatalf("%d log records for 3 Conns without a timer, want 1", len(logs.recs))
	}
	if r := logs.recs[0]; r.Level != slog.LevelWarn || !strings.Contains(r.Message, "without time limits") {
		t.Errorf("log record %v %q, want Warn saying it serves without time limits", r.Level, r.Message)
	}

	var quiet recordLogs
	h = New(Config{Logger: slog.New(&quiet), RequestHeadersTimeout: -1, KeepAliveTimeout: -1, MinRequestBodyDataRate: -1})
	c := &plainConn{}
	h.OnOpen(c)
	h.OnClose(c, nil)
	if len(quiet.recs) != 0 {
		t.Errorf("%d log records with every limit off, want 0", len(quiet.recs))
	}
	tc := newTimedConn(t, Config{RequestHeadersTimeout: -1, KeepAliveTimeout: -1, MinRequestBodyDataRate: -1})
	tc.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
	if tc.c.timerSet != 0 {
		t.Errorf("%d SetTimer with every limit off, want 0", tc.c.timerSet)
	}
}

// TestTimeoutDefaults checks Config's defaults and that negative values
// (off) are kept.
func TestTimeoutDefaults(t *testing.T) {
	type limits struct {
		Headers, KeepAlive, Grace time.Duration
		Rate                      float64
	}
	get := func(c Config) limits {
		return limits{c.RequestHeadersTimeout, c.KeepAliveTimeout, c.MinRequestBodyDataRateGrace, c.MinRequestBodyDataRate}
	}
	if diff := cmp.Diff(limits{30 * s, 130 * s, 5 * s, 240}, get(New(Config{}).Config())); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	off := Config{RequestHeadersTimeout: -1, KeepAliveTimeout: -1, MinRequestBodyDataRate: -1, MinRequestBodyDataRateGrace: -1}
	if diff := cmp.Diff(get(off), get(New(off).Config())); diff != "" {
		t.Errorf("negative values (-want +got):\n%s", diff)
	}
}
