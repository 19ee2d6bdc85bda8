package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeConn is a transports.TimerConn that records what the Handler does.
// Its timer runs on clock, when the test sets one (see timedConn); the
// test fires it by calling OnTimer.
type fakeConn struct {
	out      []byte
	writes   int
	closed   bool
	aborted  bool
	ctx      any
	outbound int // what OutboundBuffered returns

	clock    func() time.Time // the timer's clock; nil: SetTimer only counts
	timerSet int              // SetTimer calls
	armed    bool             // the timer is set
	deadline time.Time        // when it runs out, if armed
}

func (c *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }
func (c *fakeConn) Write(p []byte) (int, error) {
	c.out = append(c.out, p...)
	c.writes++
	return len(p), nil
}
func (c *fakeConn) OutboundBuffered() int { return c.outbound }
func (c *fakeConn) CloseWrite() error     { return nil }
func (c *fakeConn) Close() error          { c.closed = true; c.armed = false; return nil }
func (c *fakeConn) Abort() error          { c.closed, c.aborted, c.armed = true, true, false; return nil }
func (c *fakeConn) PauseRead()            {}
func (c *fakeConn) ResumeRead()           {}
func (c *fakeConn) Context() any          { return c.ctx }
func (c *fakeConn) SetContext(v any)      { c.ctx = v }
func (c *fakeConn) SetTimer(d time.Duration) {
	c.timerSet++
	c.armed = d > 0
	if c.armed && c.clock != nil {
		c.deadline = c.clock().Add(d)
	}
}

// fixedNow is the test clock: the Date header never changes within a test.
func fixedNow() time.Time { return time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC) }

// seenRequest is what the parser reported for one whole request.
type seenRequest struct {
	Method, Target string
	Minor          uint8
	KeepAlive      bool
	Chunked        bool
	Body           string
}

// result is everything observable about one connection's run.
type result struct {
	Out      string
	Closed   bool
	Requests []seenRequest
	Errors   []int
}

// newTestHandler returns a Handler on the fixed clock that records
// requests and refusals into res.
func newTestHandler(cfg Config, res *result) *Handler {
	h := New(cfg)
	h.now = fixedNow
	h.keepAll = true
	h.onRequest = func(r *request, body []byte) {
		res.Requests = append(res.Requests, seenRequest{
			Method: string(r.methodName), Target: string(r.target), Minor: r.minor,
			KeepAlive: r.keepAlive, Chunked: r.chunked, Body: string(body),
		})
	}
	h.onError = func(status int) { res.Errors = append(res.Errors, status) }
	return h
}

// run feeds chunks to a new connection as a transport would: each OnData
// gets the kept bytes then the new chunk, in a fresh buffer that is
// scribbled over after the call (in is valid only during OnData); after
// the last chunk the transport's FIN rule offers the kept bytes once more.
func run(t testing.TB, cfg Config, chunks [][]byte) result {
	t.Helper()
	var res result
	h := newTestHandler(cfg, &res)
	c := &fakeConn{}
	h.OnOpen(c)
	var kept []byte
	call := func() {
		in := append([]byte(nil), kept...)
		n := h.OnData(c, in)
		if n < 0 || n > len(in) {
			t.Fatalf("OnData returned %d for %d bytes", n, len(in))
		}
		kept = append(kept[:0], in[n:]...)
		for i := range in {
			in[i] = 0xAA
		}
	}
	for _, ch := range chunks {
		if c.closed {
			break
		}
		if len(ch) == 0 {
			continue
		}
		kept = append(kept, ch...)
		call()
	}
	if !c.closed && len(kept) > 0 {
		call() // the peer's FIN: kept bytes are offered once more
	}
	h.OnClose(c, nil)
	res.Out, res.Closed = string(c.out), c.closed
	return res
}

// cut splits data at the given offsets (sorted, in range).
func cut(data []byte, at ...int) [][]byte {
	var chunks [][]byte
	prev := 0
	for _, a := range at {
		chunks = append(chunks, data[prev:a])
		prev = a
	}
	return append(chunks, data[prev:])
}

// bytewise splits data into one-byte chunks.
func bytewise(data []byte) [][]byte {
	chunks := make([][]byte, len(data))
	for i := range data {
		chunks[i] = data[i : i+1]
	}
	return chunks
}

// resp is the part of an answer the tests compare.
type resp struct {
	Status        int
	ContentType   string
	ContentLength string
	Connection    string
	Allow         string
	Server        string
	Body          string
}

// parseResponses reads the answers in out; methods[i] is the method of
// the i-th final (non-1xx) answer's request (HEAD answers have no body).
func parseResponses(t testing.TB, out string, methods ...string) []resp {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(out))
	var got []resp
	i := 0
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			return got
		}
		m := http.MethodGet
		if i < len(methods) {
			m = methods[i]
		}
		r, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("answer %d: %v\nstream:\n%q", len(got), err, out)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("answer %d body: %v", len(got), err)
		}
		if r.StatusCode >= 200 {
			i++
			if _, err := http.ParseTime(r.Header.Get("Date")); err != nil {
				t.Errorf("answer %d: bad Date %q: %v", len(got), r.Header.Get("Date"), err)
			}
		}
		conn := r.Header.Get("Connection")
		if r.Close && conn == "" {
			conn = "close" // ReadResponse moves "Connection: close" to r.Close
		}
		got = append(got, resp{
			Status: r.StatusCode, ContentType: r.Header.Get("Content-Type"),
			ContentLength: r.Header.Get("Content-Length"), Connection: conn,
			Allow: r.Header.Get("Allow"), Server: r.Header.Get("Server"), Body: string(body),
		})
	}
}

// firstDiff returns the offset of the first difference of a and b, or -1.
func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
