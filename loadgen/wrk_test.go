package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// needWrk skips a test where wrk is not installed (make test installs it).
func needWrk(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(wrkBinary); err != nil {
		t.Skip("wrk is not installed (Debian: apt-get install wrk)")
	}
}

// countingHTTP answers every GET request line it reads with status, and
// counts the requests it answered and the largest number it found in one
// read (pipelined requests arrive together).
type countingHTTP struct {
	status   string
	answered atomic.Uint64
	batch    atomic.Int64
}

func (h *countingHTTP) serve(_ *server, c net.Conn) {
	defer c.Close()
	resp := []byte("HTTP/1.1 " + h.status + "\r\nContent-Length: 13\r\n\r\nHello, World!")
	r := bufio.NewReaderSize(c, 64<<10)
	var out []byte
	for {
		n := 0
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if bytes.HasPrefix(line, []byte("GET ")) {
				n++
			}
			if len(line) == 2 && r.Buffered() == 0 {
				break // the end of the last request of this read
			}
		}
		if int64(n) > h.batch.Load() {
			h.batch.Store(int64(n))
		}
		out = out[:0]
		for range n {
			out = append(out, resp...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		h.answered.Add(uint64(n))
	}
}

// The wrk engine counts every response of a pipelined batch: with 4
// connections keeping 8 requests in flight each, the requests it reports
// are what the server answered, less at most those in flight when wrk
// stopped (counting batches would report an eighth), and the server did
// see 8 requests together.
func TestWrkCountsPipelinedResponses(t *testing.T) {
	needWrk(t)
	h := &countingHTTP{status: "200 OK"}
	s := startServer(t, h.serve)
	const conns, depth = 4, 8
	var atStart uint64
	res, err := Config{
		Addr: s.addr(), Workload: HTTP, Engine: EngineWrk, Conns: conns, Depth: depth,
		Warmup: time.Second, Duration: time.Second, Timeout: 20 * time.Second,
		OnWindow: func(start bool) {
			if start {
				atStart = h.answered.Load()
			}
		},
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	answered := h.answered.Load() - atStart
	if res.Errors != 0 {
		t.Fatalf("%d errors: %v", res.Errors, res.FirstErrors)
	}
	if res.Requests == 0 || res.Requests > answered || answered-res.Requests > conns*depth {
		t.Errorf("wrk reported %d requests in the window; the server answered %d (want at most %d more)", res.Requests, answered, conns*depth)
	}
	if b := h.batch.Load(); b < depth {
		t.Errorf("the server read at most %d requests at once, want %d pipelined", b, depth)
	}
	if res.Elapsed < 900*time.Millisecond || res.Elapsed > 3*time.Second {
		t.Errorf("Elapsed = %v, want wrk's 1 s window", res.Elapsed)
	}
	if res.ClientUser+res.ClientSys <= 0 {
		t.Errorf("no client CPU time: %v user, %v system", res.ClientUser, res.ClientSys)
	}
	if res.Bytes < res.Requests*uint64(len("HTTP/1.1 200 OK\r\n")) {
		t.Errorf("Bytes = %d for %d responses", res.Bytes, res.Requests)
	}
}

// A status other than 2xx or 3xx is an error, as wrk counts it.
func TestWrkCountsBadStatus(t *testing.T) {
	needWrk(t)
	h := &countingHTTP{status: "500 Internal Server Error"}
	s := startServer(t, h.serve)
	res, err := Config{
		Addr: s.addr(), Workload: HTTP, Engine: EngineWrk, Conns: 2,
		Duration: time.Second, Timeout: 20 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors < res.Requests || len(res.FirstErrors) == 0 || !strings.Contains(res.FirstErrors[0].Error(), "not 2xx or 3xx") {
		t.Errorf("%d errors for %d responses of status 500 (first: %v), want one each", res.Errors, res.Requests, res.FirstErrors)
	}
}

func TestWrkConfigInvalid(t *testing.T) {
	base := Config{Addr: "127.0.0.1:1", Workload: HTTP, Engine: EngineWrk, Duration: time.Second}
	for name, change := range map[string]func(*Config){
		"echo":          func(c *Config) { c.Workload = Echo },
		"open loop":     func(c *Config) { c.Rate = 1000 },
		"churn":         func(c *Config) { c.Mode = Churn },
		"POST /echo":    func(c *Config) { c.HTTPPath = EchoPath },
		"body check":    func(c *Config) { c.HTTPBody = []byte("x") },
		"part seconds":  func(c *Config) { c.Duration = 1500 * time.Millisecond },
		"part warm-up":  func(c *Config) { c.Warmup = 200 * time.Millisecond },
		"unix socket":   func(c *Config) { c.Network = "unix" },
		"a client Dial": func(c *Config) { c.Dial = (&net.Dialer{}).DialContext },
	} {
		c := base
		change(&c)
		if _, err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), EngineWrk) {
			t.Errorf("%s: Run = %v, want an error naming the wrk engine", name, err)
		}
	}
}

func TestParseWrk(t *testing.T) {
	s, err := parseWrk([]byte("Running 1s test\nmerlin-wrk requests=10 duration_us=1000 bytes=99 connect=1 read=2 write=3 status=4 timeout=5\n"))
	if err != nil || s.requests != 10 || s.durationUs != 1000 || s.bytes != 99 || s.errors() != 15 {
		t.Errorf("parseWrk = %+v, %v", s, err)
	}
	for _, out := range []string{
		"no summary here\n",
		"merlin-wrk requests=10 duration_us=1000\n",
		"merlin-wrk requests=x duration_us=1 bytes=1 connect=0 read=0 write=0 status=0 timeout=0\n",
		"merlin-wrk requests=1 duration_us=1 bytes=1 connect=0 read=0 write=0 status=0 timeout=0 extra=1\n",
	} {
		if _, err := parseWrk([]byte(out)); err == nil {
			t.Errorf("parseWrk(%q) = nil error", out)
		}
	}
}
