package http1_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/apps/http1"
	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// slowloris is the scale of TestSlowloris: conns connections that each
// send one byte of a head that never ends every interval, against a
// request-headers timeout; every one must be closed (with 408) within
// the timeout plus slack of its first byte.
type slowloris struct {
	conns             int
	timeout, interval time.Duration
	slack             time.Duration
}

// slowlorisScale is the attack TestSlowloris mounts: scaled down (seconds)
// by default, at full scale (Kestrel's 30 s timeout, a byte every 5 s)
// with MERLIN_SLOWLORIS_FULL=1.
func slowlorisScale() slowloris {
	if os.Getenv("MERLIN_SLOWLORIS_FULL") == "1" {
		return slowloris{conns: 500, timeout: 30 * time.Second, interval: 5 * time.Second, slack: 5 * time.Second}
	}
	return slowloris{conns: 500, timeout: 3 * time.Second, interval: 500 * time.Millisecond, slack: 5 * time.Second}
}

// timerProbe is the http1 Handler, counting the connections whose Conn
// has a timer.
type timerProbe struct {
	*http1.Handler
	timed, untimed atomic.Int64
}

func (p *timerProbe) OnOpen(c transports.Conn) {
	if _, ok := c.(transports.TimerConn); ok {
		p.timed.Add(1)
	} else {
		p.untimed.Add(1)
	}
	p.Handler.OnOpen(c)
}

// TestSlowloris mounts a slowloris attack on http1 over every registered
// transport: its connections each send a head a byte at a time, and must
// all be closed, with 408, within the request-headers timeout plus a few
// seconds, while a normal client's requests (keep-alive, and a new
// connection each) succeed promptly throughout. Scaled down to seconds
// by default; MERLIN_SLOWLORIS_FULL=1 runs it at full scale (30 s).
func TestSlowloris(t *testing.T) {
	sc := slowlorisScale()
	raiseFDLimit(t, uint64(2*sc.conns+256)) // both ends are in this process
	need := strings.Split(os.Getenv("MERLIN_REQUIRE"), ",")
	for _, d := range transports.Drivers() {
		t.Run("transport="+d.Name, func(t *testing.T) {
			if _, err := d.Probe(); err != nil {
				if slices.Contains(need, d.Name) {
					t.Fatalf("%s is required here (MERLIN_REQUIRE) but not available: %v", d.Name, err)
				}
				t.Skip(err)
			}
			slowlorisOn(t, d.Name, sc, slices.Contains(need, d.Name))
		})
	}
}

func slowlorisOn(t *testing.T, name string, sc slowloris, required bool) {
	base := testutil.TakeBaseline()
	quiet := slog.New(slog.DiscardHandler)
	tr, err := transports.Open(name, transports.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	probe := &timerProbe{Handler: http1.New(http1.Config{RequestHeadersTimeout: sc.timeout, Logger: quiet})}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", probe)
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	url := "http://" + addr + "/plaintext"
	keep := &http.Transport{MaxIdleConnsPerHost: 1}
	clients := []*http.Client{
		{Transport: keep, Timeout: 10 * time.Second},
		{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second},
	}
	defer func() {
		keep.CloseIdleConnections()
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		base.Check(t, 10*time.Second)
	}()

	// The normal client's first request says whether this transport's
	// Conns have a timer: without one, http1 has no time limits.
	if err := get(clients[0], url); err != nil {
		t.Fatalf("a request before the attack: %v", err)
	}
	if probe.timed.Load() == 0 {
		if required {
			t.Fatalf("transport %s is required here (MERLIN_REQUIRE), but its Conn is not a transports.TimerConn: http1 serves it without time limits", name)
		}
		t.Skipf("transport %s: its Conn is not a transports.TimerConn yet, so http1 serves it without time limits", name)
	}

	// The attack, and the normal client beside it until the attack ends.
	results := make([]slowResult, sc.conns)
	var attack sync.WaitGroup
	attackStart := time.Now()
	for i := range results {
		attack.Go(func() { results[i] = slowClient(addr, sc) })
	}
	done := make(chan struct{})
	var normal normalStats
	var side sync.WaitGroup
	side.Go(func() { normal = normalClient(clients, url, done) })
	attack.Wait()
	attackEnd := time.Now()
	close(done)
	side.Wait()

	// Every slow connection closed, with 408, within the limit.
	var last time.Duration
	var bad []string
	for i, r := range results {
		last = max(last, r.after)
		var why string
		switch {
		case r.err != nil:
			why = r.err.Error()
		case r.open:
			why = fmt.Sprintf("still open %v after its first byte", r.after)
		case r.after < sc.timeout-10*time.Millisecond:
			why = fmt.Sprintf("closed %v after its first byte, before the timeout", r.after)
		case r.after > sc.timeout+sc.slack:
			why = fmt.Sprintf("closed %v after its first byte, later than the timeout plus %v", r.after, sc.slack)
		case !strings.HasPrefix(r.out, "HTTP/1.1 408 Request Timeout\r\n"):
			why = fmt.Sprintf("got %q before the close, want a 408", r.out)
		}
		if why != "" {
			bad = append(bad, fmt.Sprintf("slow connection %d: %s", i, why))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d slow connections failed; the first:\n%s", len(bad), sc.conns, strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
	t.Logf("%s: %d slow connections (a byte every %v, headers timeout %v): the last ended %v after its first byte; attack over in %v",
		name, sc.conns, sc.interval, sc.timeout, last.Round(time.Millisecond), attackEnd.Sub(attackStart).Round(time.Millisecond))

	// The normal client was served throughout, promptly.
	t.Logf("%s: normal client: %d requests during the attack, slowest %v", name, normal.ok, normal.slowest.Round(time.Millisecond))
	if normal.err != nil {
		t.Errorf("a normal request during the attack: %v", normal.err)
	}
	if normal.ok < 10 {
		t.Errorf("%d normal requests succeeded during the attack, want at least 10", normal.ok)
	}
	// Far below the timeout: a server the attack blocked would answer
	// only once the slow connections were cut.
	if limit := sc.timeout / 2; normal.slowest > limit {
		t.Errorf("slowest normal request took %v during the attack, want under %v", normal.slowest, limit)
	}
}

// slowResult is how one slow connection ended.
type slowResult struct {
	out   string        // what the server sent
	after time.Duration // from the first byte to the close (or to giving up)
	least time.Duration // closedAfter's: from before the request was sent to the close
	open  bool          // still open when the client gave up
	err   error
}

// slowClient dials addr and sends a head one byte every sc.interval,
// reading meanwhile, until the server closes or sc.timeout+2*sc.slack
// has passed since the first byte.
func slowClient(addr string, sc slowloris) slowResult {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return slowResult{err: err}
	}
	defer c.Close()
	head := "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("z", 4096)
	giveUp := sc.timeout + 2*sc.slack
	var (
		start = time.Now()
		next  = start // when the next byte goes out
		sent  int
		out   []byte
		buf   = make([]byte, 512)
	)
	for {
		if now := time.Now(); !now.Before(next) {
			if now.Sub(start) > giveUp {
				return slowResult{out: string(out), after: now.Sub(start), open: true}
			}
			if _, err := c.Write([]byte{head[sent%len(head)]}); err != nil {
				return slowResult{out: string(out), after: time.Since(start), err: fmt.Errorf("write of byte %d: %w", sent, err)}
			}
			sent++
			next = next.Add(sc.interval)
		}
		c.SetReadDeadline(next)
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		case errors.Is(err, io.EOF):
			return slowResult{out: string(out), after: time.Since(start)}
		default:
			return slowResult{out: string(out), after: time.Since(start), err: err}
		}
	}
}

// normalStats is what the normal client saw.
type normalStats struct {
	ok      int
	slowest time.Duration
	err     error // the first failure
}

// normalClient GETs url with each client in turn, one request every
// 10 ms (a client, not a load: the machine is shared), until done is
// closed.
func normalClient(clients []*http.Client, url string, done <-chan struct{}) (st normalStats) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, cl := range clients {
			select {
			case <-done:
				return st
			case <-tick.C:
			}
			t0 := time.Now()
			if err := get(cl, url); err != nil {
				if st.err == nil {
					st.err = err
				}
				continue
			}
			st.ok++
			st.slowest = max(st.slowest, time.Since(t0))
		}
	}
}

// get GETs url and checks the answer.
func get(cl *http.Client, url string) error {
	r, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if r.StatusCode != 200 || string(b) != "Hello, World!" {
		return fmt.Errorf("answer %s %q", r.Status, b)
	}
	return nil
}

// raiseFDLimit raises the soft limit on open files to n if it is lower,
// or skips the test if the hard limit does not allow n.
func raiseFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("the hard limit on open files is %d; this test needs %d", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestLimitsOnTransports checks the keep-alive timeout and the minimum
// body data rate on every registered transport's timer (the slowloris
// test covers the headers timeout): an idle connection after an answer is
// closed without another, and a stalled body is answered with 408, each
// at its limit and within a few seconds of it.
func TestLimitsOnTransports(t *testing.T) {
	const limit, slack = time.Second, 5 * time.Second
	need := strings.Split(os.Getenv("MERLIN_REQUIRE"), ",")
	for _, d := range transports.Drivers() {
		t.Run("transport="+d.Name, func(t *testing.T) {
			if _, err := d.Probe(); err != nil {
				if slices.Contains(need, d.Name) {
					t.Fatalf("%s is required here (MERLIN_REQUIRE) but not available: %v", d.Name, err)
				}
				t.Skip(err)
			}
			base := testutil.TakeBaseline()
			quiet := slog.New(slog.DiscardHandler)
			tr, err := transports.Open(d.Name, transports.Config{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			probe := &timerProbe{Handler: http1.New(http1.Config{KeepAliveTimeout: limit, MinRequestBodyDataRateGrace: limit, Logger: quiet})}
			ln, err := tr.Listen("tcp", "127.0.0.1:0", probe)
			if err != nil {
				tr.Close()
				t.Fatal(err)
			}
			defer func() {
				if err := tr.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				base.Check(t, 10*time.Second)
			}()
			var idle, body slowResult
			var wg sync.WaitGroup
			wg.Go(func() { idle = closedAfter(ln.Addr().String(), "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 2*slack) })
			wg.Go(func() {
				body = closedAfter(ln.Addr().String(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n0123456789", 2*slack)
			})
			wg.Wait()
			if probe.untimed.Load() > 0 {
				if slices.Contains(need, d.Name) {
					t.Fatalf("transport %s is required here (MERLIN_REQUIRE), but its Conn is not a transports.TimerConn", d.Name)
				}
				t.Skipf("transport %s: its Conn is not a transports.TimerConn yet, so http1 serves it without time limits", d.Name)
			}
			for _, c := range []struct {
				name string
				r    slowResult
				want string // the answers before the close
			}{
				{"idle after an answer", idle, "HTTP/1.1 200 OK\r\n"},
				{"stalled body", body, "HTTP/1.1 408 Request Timeout\r\n"},
			} {
				switch {
				case c.r.err != nil:
					t.Errorf("%s: %v", c.name, c.r.err)
				case c.r.open:
					t.Errorf("%s: still open %v after", c.name, c.r.after)
				case c.r.least < limit-10*time.Millisecond || c.r.after > limit+slack:
					t.Errorf("%s: closed %v after the request was sent and %v after the answer or the send, want at least %v and at most %v", c.name, c.r.least, c.r.after, limit, limit+slack)
				case !strings.HasPrefix(c.r.out, c.want) || strings.Count(c.r.out, "HTTP/1.1 ") != 1:
					t.Errorf("%s: got %q before the close, want one answer, %q", c.name, c.r.out, c.want)
				}
			}
		})
	}
}

// closedAfter sends req on a new connection to addr and reads until the
// server closes, or giveUp has passed; after counts from the end of the
// first answer if the close follows one (keep-alive), else from the send.
// A client on a loaded machine reads the answer late, so after is only an
// upper bound on the server's wait; least, from before the send, is the
// lower one (no limit of the server's begins before its request).
func closedAfter(addr, req string, giveUp time.Duration) (r slowResult) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return slowResult{err: err}
	}
	defer c.Close()
	start := time.Now()
	sent := start
	defer func() { r.least = time.Since(sent) }()
	c.SetDeadline(start.Add(giveUp))
	if _, err := io.WriteString(c, req); err != nil {
		return slowResult{err: err}
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 && len(out) == 0 && strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			start = time.Now() // the keep-alive wait begins with the answer
		}
		out = append(out, buf[:n]...)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return slowResult{out: string(out), after: time.Since(start)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return slowResult{out: string(out), after: time.Since(start), open: true}
		default:
			return slowResult{out: string(out), after: time.Since(start), err: err}
		}
	}
}
