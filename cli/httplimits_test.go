package cli

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/merlin-net/merlin/apps/http1"
)

// The -http-* flags: what http1.Config they give, their help, and that
// they need -app http.
func TestServeHTTPLimitFlags(t *testing.T) {
	type limits struct {
		Headers, KeepAlive, Grace time.Duration
		Rate                      float64
	}
	for _, tc := range []struct {
		name string
		args []string
		want limits
		err  string
	}{
		{name: "defaults", args: []string{"-app", "http"}, want: limits{30 * time.Second, 130 * time.Second, 5 * time.Second, 240}},
		{name: "set", args: []string{"-app", "http", "-http-headers-timeout", "3s", "-http-keepalive-timeout", "1m",
			"-http-min-body-rate", "1000.5", "-http-min-body-rate-grace", "2s"},
			want: limits{3 * time.Second, time.Minute, 2 * time.Second, 1000.5}},
		{name: "zero-is-off", args: []string{"-app", "http", "-http-headers-timeout", "0", "-http-keepalive-timeout", "0",
			"-http-min-body-rate", "0", "-http-min-body-rate-grace", "0"},
			want: limits{-1, -1, -1, -1}},
		{name: "negative-is-off", args: []string{"-app", "http", "-http-headers-timeout", "-1s", "-http-min-body-rate", "-5"},
			want: limits{-1, 130 * time.Second, 5 * time.Second, -1}},
		{name: "needs-app-http", args: []string{"-app", "echo", "-http-keepalive-timeout", "1s"}, err: "-http-keepalive-timeout needs -app http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("serve", "")
			fs.SetOutput(io.Discard)
			var a serveArgs
			a.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := a.check(fs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("check: %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// http1 fills in its defaults, as serve's http1.New does.
			c := http1.New(a.http).Config()
			got := limits{c.RequestHeadersTimeout, c.KeepAliveTimeout, c.MinRequestBodyDataRateGrace, c.MinRequestBodyDataRate}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		r := merlin(t, "serve", "-h")
		for _, s := range []string{
			"-http-headers-timeout", "(default 30s)", "-http-keepalive-timeout", "(default 2m10s)",
			"-http-min-body-rate", "(default 240)", "-http-min-body-rate-grace", "(default 5s)", "0 turns it off",
		} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("serve -h lacks %q", s)
			}
		}
	})
	t.Run("bad-value", func(t *testing.T) {
		r := merlin(t, "serve", "-app", "http", "-http-min-body-rate", "fast")
		if r.status != 2 || !strings.Contains(r.stderr, "-http-min-body-rate") {
			t.Errorf("exit status %d, want 2 naming the flag\nstderr:\n%s", r.status, r.stderr)
		}
	})
}

// merlin serve -app http with short limits, on every transport, in both
// modes: a partial head is cut after -http-headers-timeout (inline: with
// 408), and an idle connection after an answer is closed after
// -http-keepalive-timeout.
func TestServeHTTPTimeouts(t *testing.T) {
	const headers, keepAlive = time.Second, 2 * time.Second
	for _, tr := range httpTransports(t) {
		for _, mode := range httpModes {
			t.Run("transport="+tr+"/mode="+mode.name, func(t *testing.T) {
				args := append([]string{"-transport", tr, "-app", "http", "-addr", "127.0.0.1:0",
					"-http-headers-timeout", headers.String(), "-http-keepalive-timeout", keepAlive.String()}, mode.args...)
				s := startServe(t, nil, args...)
				var wg sync.WaitGroup
				var slow, idle closedAfter
				wg.Go(func() { slow = waitClosed(s.addr, "GET /plaintext HTTP/1.1\r\nHo", false) })
				wg.Go(func() { idle = waitClosed(s.addr, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", true) })
				wg.Wait()
				if slow.timedOut || idle.timedOut {
					if mode.name == "inline" && strings.Contains(s.stderr.String(), "without time limits") && !slices.Contains(strings.Split(required(), ","), tr) {
						t.Skipf("transport %s: its Conn is not a transports.TimerConn yet, so http1 has no time limits on it", tr)
					}
				}
				for _, c := range []struct {
					name  string
					got   closedAfter
					limit time.Duration
				}{{"partial head", slow, headers}, {"idle after an answer", idle, keepAlive}} {
					switch {
					case c.got.err != nil:
						t.Errorf("%s: %v", c.name, c.got.err)
					case c.got.timedOut:
						t.Errorf("%s: still open %v after, with a limit of %v", c.name, ioTimeout, c.limit)
					case c.got.after < c.limit-100*time.Millisecond:
						t.Errorf("%s: closed after %v, before the limit of %v", c.name, c.got.after, c.limit)
					}
				}
				// net/http answers as it likes (400, in Go 1.26).
				if want := "HTTP/1.1 408 Request Timeout\r\n"; mode.name == "inline" && !strings.HasPrefix(slow.out, want) {
					t.Errorf("partial head: got %q before the close, want %q", slow.out, want)
				}
				if status := s.stop(t, syscall.SIGTERM); status != 0 {
					t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
				}
			})
		}
	}
}

// closedAfter is how a connection ended.
type closedAfter struct {
	out      string        // what the server sent after the answer, if any
	after    time.Duration // from before the request was sent to the close
	timedOut bool          // not closed within ioTimeout
	err      error
}

// waitClosed sends req on a new connection to addr; if answered, reads
// the answer first; then reads until the server closes, and says when,
// counting from before the send: no limit of the server's begins earlier,
// while a client on a loaded machine may read the answer late.
func waitClosed(addr, req string, answered bool) (r closedAfter) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return closedAfter{err: err}
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(ioTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		return closedAfter{err: err}
	}
	br := bufio.NewReader(c)
	if answered {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return closedAfter{err: err}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return closedAfter{err: errors.New("answer " + resp.Status)}
		}
	}
	out, err := io.ReadAll(br)
	r = closedAfter{out: string(out), after: time.Since(start)}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		r.timedOut = true
	case err != nil: // a reset: the limits close in order
		r.err = err
	}
	return r
}
