package http1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	getPlain = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
	getJSON  = "GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
)

var (
	plainOK = resp{Status: 200, ContentType: "text/plain", ContentLength: "13", Server: "merlin", Body: "Hello, World!"}
	jsonOK  = resp{Status: 200, ContentType: "application/json", ContentLength: "27", Server: "merlin", Body: `{"message":"Hello, World!"}`}
)

func echoOK(body string) resp {
	return resp{Status: 200, ContentType: "application/octet-stream", ContentLength: fmt.Sprint(len(body)), Server: "merlin", Body: body}
}

func errResp(status int, allow, conn string) resp {
	body := statusText(status) + "\n"
	return resp{Status: status, ContentType: "text/plain; charset=utf-8", ContentLength: fmt.Sprint(len(body)),
		Server: "merlin", Allow: allow, Connection: conn, Body: body}
}

func statusText(status int) string {
	return map[int]string{400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
		408: "Request Timeout", 413: "Request Entity Too Large", 417: "Expectation Failed", 431: "Request Header Fields Too Large",
		501: "Not Implemented", 505: "HTTP Version Not Supported"}[status]
}

func with(r resp, f func(*resp)) resp { f(&r); return r }

// answerCase is one input stream and the answers it must get.
type answerCase struct {
	name    string
	cfg     Config
	in      string
	methods []string // per final answer; GET when absent
	want    []resp
	closed  bool
}

// answerCases covers routes, methods, connection management and every
// limit and refusal; TestAnswers checks them whole and split, and
// TestNetHTTPParity against net/http (those marked inlineOnly are not).
var answerCases = []answerCase{
	{name: "plaintext", in: getPlain, want: []resp{plainOK}},
	{name: "json", in: getJSON, want: []resp{jsonOK}},
	{name: "query-ignored", in: "GET /plaintext?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{plainOK}},
	{name: "absolute-form", in: "GET http://example.com/json?q HTTP/1.1\r\nHost: example.com\r\n\r\n", want: []resp{jsonOK}},
	{name: "head", in: "HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", methods: []string{"HEAD"},
		want: []resp{with(plainOK, func(r *resp) { r.Body = "" })}},
	{name: "echo-post", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", want: []resp{echoOK("hello")}},
	{name: "echo-put-empty", in: "PUT /echo HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{echoOK("")}},
	{name: "echo-chunked", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;name=value;q=\"a \\\"b\\\"\"\r\nhello\r\n6 ; x\r\n world\r\n0\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n",
		want: []resp{echoOK("hello world")}},
	{name: "echo-chunked-uppercase-hex", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
		want: []resp{echoOK("0123456789")}},
	{name: "not-found", in: "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(404, "", "")}},
	{name: "not-found-escaped", in: "GET /plain%74ext HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(404, "", "")}},
	{name: "post-plaintext-405", in: "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + getPlain,
		want: []resp{errResp(405, "GET, HEAD", ""), plainOK}},
	{name: "head-not-found", in: "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n" + getPlain, methods: []string{"HEAD"},
		want: []resp{with(errResp(404, "", ""), func(r *resp) { r.Body = "" }), plainOK}},
	{name: "head-echo-405", in: "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n" + getPlain, methods: []string{"HEAD"},
		want: []resp{with(errResp(405, "POST, PUT", ""), func(r *resp) { r.Body = "" }), plainOK}},
	{name: "get-echo-405", in: "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(405, "POST, PUT", "")}},
	{name: "unknown-method-405", in: "BREW /json HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(405, "GET, HEAD", "")}},
	{name: "pipelined", in: getPlain + getJSON + "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + getPlain,
		want: []resp{plainOK, jsonOK, echoOK("hi"), plainOK}},
	{name: "leading-empty-lines", in: "\r\n\r\n" + getPlain, want: []resp{plainOK}},
	{name: "connection-close", in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n" + getJSON,
		want: []resp{with(plainOK, func(r *resp) { r.Connection = "close" })}, closed: true},
	{name: "http10-closes", in: "GET /plaintext HTTP/1.0\r\n\r\n" + getJSON,
		want: []resp{with(plainOK, func(r *resp) { r.Connection = "close" })}, closed: true},
	{name: "http10-keep-alive", in: "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + getJSON,
		want: []resp{with(plainOK, func(r *resp) { r.Connection = "keep-alive" }), jsonOK}},
	{name: "http11-minor-9", in: "GET /plaintext HTTP/1.9\r\nHost: x\r\n\r\n", want: []resp{plainOK}},
	{name: "expect-continue", in: "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		want: []resp{{Status: 100}, echoOK("abc")}},
	{name: "expect-continue-no-body", in: "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
		want: []resp{echoOK("")}},
	{name: "same-content-length-twice", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok",
		want: []resp{echoOK("ok")}},

	// Limits: 413 and 431 close.
	{name: "body-over-limit", cfg: Config{MaxBodyBytes: 4}, in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		want: []resp{errResp(413, "", "close")}, closed: true},
	{name: "body-at-limit", cfg: Config{MaxBodyBytes: 5}, in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		want: []resp{echoOK("hello")}},
	{name: "body-over-limit-expect", cfg: Config{MaxBodyBytes: 4}, in: "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
		want: []resp{errResp(413, "", "close")}, closed: true},
	{name: "chunked-over-limit", cfg: Config{MaxBodyBytes: 8}, in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
		want: []resp{errResp(413, "", "close")}, closed: true},
	{name: "content-length-overflow", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		want: []resp{errResp(413, "", "close")}, closed: true},
	{name: "head-over-limit", cfg: Config{MaxHeaderBytes: 64}, in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 64) + "\r\n\r\n",
		want: []resp{errResp(431, "", "close")}, closed: true},
	{name: "request-line-over-limit", cfg: Config{MaxHeaderBytes: 64}, in: "GET /" + strings.Repeat("a", 80),
		want: []resp{errResp(431, "", "close")}, closed: true},
	{name: "head-at-limit", cfg: Config{MaxHeaderBytes: len(getPlain)}, in: getPlain, want: []resp{plainOK}},
	{name: "head-one-over-limit", cfg: Config{MaxHeaderBytes: len(getPlain) - 1}, in: getPlain,
		want: []resp{errResp(431, "", "close")}, closed: true},
	{name: "trailers-over-limit", cfg: Config{MaxHeaderBytes: 128}, in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + strings.Repeat("t", 130) + "\r\n\r\n",
		want: []resp{errResp(431, "", "close")}, closed: true},

	// Smuggling and malformed framing: 400 (or 501) and close.
	{name: "cl-and-te", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "differing-content-lengths", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "differing-content-length-list", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "content-length-sign", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "content-length-empty", in: "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "te-final-not-chunked", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "te-chunked-twice", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "te-unknown-coding", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		want: []resp{errResp(501, "", "close")}, closed: true},
	{name: "te-http10", in: "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "te-chunked-with-space-in-name", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "header-name-invalid-char", in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nBad(Name): v\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "header-no-colon", in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "header-value-nul", in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "header-value-bare-cr", in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "bare-lf-request-line", in: "GET /plaintext HTTP/1.1\nHost: x\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "bare-lf-header", in: "GET /plaintext HTTP/1.1\r\nHost: x\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "bare-lf-leading", in: "\n" + getPlain, want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "obs-fold", in: "GET /plaintext HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "space-after-start-line", in: "GET /plaintext HTTP/1.1\r\n Host: x\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "no-host", in: "GET /plaintext HTTP/1.1\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "two-hosts", in: "GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "double-space", in: "GET  /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "bad-version", in: "GET /plaintext HTTP/1.x\r\nHost: x\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "lowercase-version", in: "GET /plaintext http/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "http2-version", in: "GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n", want: []resp{errResp(505, "", "close")}, closed: true},
	{name: "bad-target", in: "GET plaintext HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "target-non-ascii", in: "GET /pl\xc3\xa4in HTTP/1.1\r\nHost: x\r\n\r\n", want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "expect-unknown", in: "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n",
		want: []resp{errResp(417, "", "close")}, closed: true},
	{name: "chunk-size-not-hex", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "chunk-size-bare-lf", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "chunk-data-no-crlf", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhelloworld\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "chunk-ext-bad", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "chunk-ext-unterminated-quote", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "trailer-obs-fold", in: "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
		want: []resp{errResp(400, "", "close")}, closed: true},
	{name: "error-after-good", in: getPlain + "GET /plaintext HTTP/1.1\r\n\r\n" + getPlain,
		want: []resp{plainOK, errResp(400, "", "close")}, closed: true},
}

// TestAnswers runs every case whole, split at every offset, and byte by
// byte: the answers, the parsed requests and the close must not depend on
// how the input was split.
func TestAnswers(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			whole := run(t, tc.cfg, [][]byte{in})
			got := parseResponses(t, whole.Out, tc.methods...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if whole.Closed != tc.closed {
				t.Errorf("closed = %v, want %v", whole.Closed, tc.closed)
			}
			checkSplits(t, tc.cfg, in, whole)
		})
	}
}

// checkSplits runs in split at every single offset, byte by byte, and at
// random offsets, and compares each run with whole.
func checkSplits(t *testing.T, cfg Config, in []byte, whole result) {
	t.Helper()
	check := func(how string, chunks [][]byte) bool {
		got := run(t, cfg, chunks)
		if diff := cmp.Diff(whole, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Out" }, cmp.Ignore())); diff != "" {
			t.Errorf("%s: differs from the whole run (-whole +split):\n%s", how, diff)
			return false
		}
		if i := firstDiff(whole.Out, got.Out); i >= 0 {
			t.Errorf("%s: output differs from the whole run's at offset %d: %q vs %q", how, i,
				whole.Out[i:min(len(whole.Out), i+20)], got.Out[i:min(len(got.Out), i+20)])
			return false
		}
		return true
	}
	for i := 1; i < len(in); i++ {
		if !check(fmt.Sprintf("split at %d", i), cut(in, i)) {
			return
		}
	}
	if !check("byte by byte", bytewise(in)) {
		return
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(in))))
	for range 20 {
		var at []int
		for i := 1; i < len(in); i++ {
			if rng.IntN(8) == 0 {
				at = append(at, i)
			}
		}
		if !check(fmt.Sprintf("split at %v", at), cut(in, at...)) {
			return
		}
	}
}

// TestRequestsParsed checks what the parser reports for a pipelined stream
// of several kinds of request, split every way.
func TestRequestsParsed(t *testing.T) {
	in := []byte("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /echo?a=b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=\"y\"\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n" +
		"PUT /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nExpect: 100-Continue\r\n\r\nwxyz" +
		"DELETE /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
		"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	want := []seenRequest{
		{Method: "GET", Target: "/plaintext", Minor: 1, KeepAlive: true},
		{Method: "POST", Target: "/echo?a=b", Minor: 1, KeepAlive: true, Chunked: true, Body: "abcd"},
		{Method: "PUT", Target: "/echo", Minor: 1, KeepAlive: true, Body: "wxyz"},
		{Method: "DELETE", Target: "/x", Minor: 0, KeepAlive: true},
		{Method: "GET", Target: "/json", Minor: 1},
	}
	whole := run(t, Config{}, [][]byte{in})
	if diff := cmp.Diff(want, whole.Requests); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
	if !whole.Closed {
		t.Errorf("not closed after Connection: close")
	}
	checkSplits(t, Config{}, in, whole)
}

// TestOneWrite checks that a pipelined burst is answered with one Write.
func TestOneWrite(t *testing.T) {
	h := New(Config{})
	c := &fakeConn{}
	h.OnOpen(c)
	in := []byte(strings.Repeat(getPlain, 16) + getJSON)
	if n := h.OnData(c, in); n != len(in) {
		t.Fatalf("consumed %d of %d", n, len(in))
	}
	if c.writes != 1 {
		t.Errorf("%d Writes for 17 pipelined requests, want 1", c.writes)
	}
	if got := len(parseResponses(t, string(c.out))); got != 17 {
		t.Errorf("%d answers, want 17", got)
	}
}

// TestKeepsIncomplete checks that an incomplete head is left to the
// transport (not consumed) and that what precedes it is.
func TestKeepsIncomplete(t *testing.T) {
	h := New(Config{})
	c := &fakeConn{}
	h.OnOpen(c)
	in := []byte(getPlain + "GET /json HTTP/1.1\r\nHo")
	if n, want := h.OnData(c, in), len(getPlain); n != want {
		t.Errorf("consumed %d, want %d (the first request only)", n, want)
	}
}

// TestAllocs holds the plaintext and json paths at zero allocations per
// request once a connection's buffers have grown.
func TestAllocs(t *testing.T) {
	for _, tc := range []struct{ name, req string }{
		{"plaintext", getPlain},
		{"json", getJSON},
		{"echo", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{})
			c := &fakeConn{out: make([]byte, 0, 1<<16)}
			h.OnOpen(c)
			in := []byte(strings.Repeat(tc.req, 16))
			allocs := testing.AllocsPerRun(200, func() {
				c.out = c.out[:0]
				if n := h.OnData(c, in); n != len(in) {
					t.Fatalf("consumed %d of %d", n, len(in))
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per 16 pipelined requests, want 0", allocs)
			}
			if c.closed {
				t.Errorf("connection closed")
			}
		})
	}
}

// TestShutdown checks OnShutdown: an idle connection closes at once; one
// with a request under way finishes it, says Connection: close, closes.
func TestShutdown(t *testing.T) {
	h := New(Config{})
	idle := &fakeConn{}
	h.OnOpen(idle)
	h.OnData(idle, []byte(getPlain))
	h.OnShutdown(idle)
	if !idle.closed {
		t.Errorf("idle connection not closed by OnShutdown")
	}

	busy := &fakeConn{}
	h.OnOpen(busy)
	head := "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"
	if n := h.OnData(busy, []byte(head)); n != len(head) {
		t.Fatalf("consumed %d of %d", n, len(head))
	}
	h.OnShutdown(busy)
	if busy.closed {
		t.Fatalf("connection with a request under way closed by OnShutdown")
	}
	h.OnData(busy, []byte("cd"+getPlain))
	got := parseResponses(t, string(busy.out))
	want := []resp{with(echoOK("abcd"), func(r *resp) { r.Connection = "close" })}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if !busy.closed {
		t.Errorf("not closed after finishing the request under way")
	}

	partial := &fakeConn{}
	h.OnOpen(partial)
	if n := h.OnData(partial, []byte("GET /plain")); n != 0 {
		t.Fatalf("consumed %d of an incomplete head", n)
	}
	h.OnShutdown(partial)
	if partial.closed {
		t.Fatalf("connection with a partial head closed by OnShutdown")
	}
	h.OnData(partial, []byte(getPlain))
	if !partial.closed {
		t.Errorf("not closed after the request under way")
	}
}

// TestJSONEncoding compares appendJSONString with encoding/json.
func TestJSONEncoding(t *testing.T) {
	for _, s := range []string{"", helloWorld, `quote " and \ backslash`, "ctl \x00\x01\x1f\t\r\n",
		"utf-8 é ☃ 𝄞", "bad \xff utf-8 \xc3", "line sep \u2028 \u2029", "<html> & 'x'"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(message{Message: s}); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		m := message{Message: s}
		if got := string(m.appendJSON(nil)); got != want {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

// TestDateCached checks that the Date line is formatted once per second.
func TestDateCached(t *testing.T) {
	h := New(Config{})
	sec := fixedNow()
	h.now = func() time.Time { return sec }
	a := h.dateLine(h.clockNow())
	b := h.dateLine(h.clockNow())
	if &a[0] != &b[0] {
		t.Errorf("Date line formatted twice within a second")
	}
	if got, want := string(a), "Date: Wed, 25 Nov 2026 01:02:03 GMT\r\n"; got != want {
		t.Errorf("Date line %q, want %q", got, want)
	}
	sec = sec.Add(time.Second)
	if got, want := string(h.dateLine(h.clockNow())), "Date: Wed, 25 Nov 2026 01:02:04 GMT\r\n"; got != want {
		t.Errorf("next second: Date line %q, want %q", got, want)
	}
}

// TestValidValue checks the word-at-a-time field value check against the
// byte-by-byte one, for every byte at every position of a word.
func TestValidValue(t *testing.T) {
	for n := 0; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				if got, want := validValue(b), validBytes(b); got != want {
					t.Fatalf("validValue(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// TestLargeEcho echoes bodies far over the 64 KiB a connection keeps
// between requests, arriving over many OnData calls, with Content-Length
// and chunked, twice on one connection.
func TestLargeEcho(t *testing.T) {
	body := make([]byte, 300<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	var chunked bytes.Buffer
	for rest := body; len(rest) > 0; {
		k := min(len(rest), 50000)
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", k, rest[:k])
		rest = rest[k:]
	}
	chunked.WriteString("0\r\n\r\n")
	one := "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + string(body) +
		"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String()
	in := []byte(one + one)
	for _, size := range []int{1000, 4096, 65536} {
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			k := min(len(rest), size)
			chunks = append(chunks, rest[:k])
			rest = rest[k:]
		}
		res := run(t, Config{}, chunks)
		got := parseResponses(t, res.Out)
		if len(got) != 4 {
			t.Fatalf("chunks of %d: %d answers, want 4", size, len(got))
		}
		for i, r := range got {
			if r.Status != 200 || r.Body != string(body) {
				t.Errorf("chunks of %d: answer %d: status %d, body of %d bytes differs at offset %d",
					size, i, r.Status, len(r.Body), firstDiff(r.Body, string(body)))
			}
		}
	}
}
