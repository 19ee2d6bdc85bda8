package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzConfig has small limits, so that the fuzzer reaches them.
var fuzzConfig = Config{MaxHeaderBytes: 512, MaxBodyBytes: 1024}

// FuzzParse feeds data to a connection whole and split where cuts says,
// and checks: no panic; OnData never consumes more than it was given (run
// checks it); both runs agree on every request, refusal, answer byte and
// close; the answers are well-formed HTTP, one per request or refusal;
// and, where net/http's ReadRequest accepts the first request, the parser
// agrees with it on method, target and body if it accepts it too, and
// must accept it if it is plainly well-formed (see simpleRequest).
//
//	go test -fuzz=FuzzParse ./apps/http1
func FuzzParse(f *testing.F) {
	for _, tc := range answerCases {
		f.Add([]byte(tc.in), []byte{7, 3, 20})
	}
	f.Fuzz(checkParse)
}

// checkParse is FuzzParse's property.
func checkParse(t *testing.T, data, cuts []byte) {
	whole := run(t, fuzzConfig, [][]byte{data})
	var at []int
	off := 0
	for _, c := range cuts {
		off += 1 + int(c)%64
		if off >= len(data) {
			break
		}
		at = append(at, off)
	}
	split := run(t, fuzzConfig, cut(data, at...))
	if diff := cmp.Diff(whole, split); diff != "" {
		t.Fatalf("split at %v differs from whole (-whole +split):\n%s", at, diff)
	}

	var methods []string
	for _, r := range whole.Requests {
		methods = append(methods, r.Method)
	}
	// Refusals come last: their answers are GETs to ReadResponse.
	resps := parseResponses(t, whole.Out, methods...)
	final := 0
	for _, r := range resps {
		if r.Status >= 200 {
			final++
		}
	}
	if want := len(whole.Requests) + len(whole.Errors); final != want {
		t.Fatalf("%d final answers for %d requests and %d refusals", final, len(whole.Requests), len(whole.Errors))
	}
	if len(whole.Errors) > 1 || (len(whole.Errors) == 1 && !whole.Closed) {
		t.Fatalf("refusals %v, closed %v: a refusal must be the last answer and close", whole.Errors, whole.Closed)
	}

	differential(t, data, whole)
}

// differential compares the first request with net/http's reading of it.
func differential(t *testing.T, data []byte, whole result) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return // truncated or malformed body: not comparable
	}
	if len(whole.Requests) == 0 {
		if simpleRequest(data) {
			t.Fatalf("net/http accepts a plainly well-formed request that was refused (%v):\n%q", whole.Errors, data)
		}
		return
	}
	first := whole.Requests[0]
	netReq := seenRequest{Method: req.Method, Target: req.RequestURI, Body: string(body)}
	got := seenRequest{Method: first.Method, Target: first.Target, Body: first.Body}
	if diff := cmp.Diff(netReq, got); diff != "" {
		t.Fatalf("disagrees with net/http on the first request (-net/http +http1):\n%s\ninput %q", diff, data)
	}
}

// simpleRequest reports whether data starts with a request that no
// reading of RFC 9112 may refuse: a GET, HEAD, POST, PUT or DELETE of an
// origin-form target, HTTP/1.0 or 1.1, CRLF line ends, field lines
// "Name: value" with single spaces inside values, exactly one Host and no
// Transfer-Encoding or Expect, at most one Content-Length of digits within
// fuzzConfig's limits, and its whole body present.
func simpleRequest(data []byte) bool {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 || end+4 > fuzzConfig.MaxHeaderBytes {
		return false
	}
	lines := bytes.Split(data[:end], []byte("\r\n"))
	parts := bytes.Split(lines[0], []byte(" "))
	if len(parts) != 3 {
		return false
	}
	switch string(parts[0]) {
	case "GET", "HEAD", "POST", "PUT", "DELETE":
	default:
		return false
	}
	if len(parts[1]) == 0 || parts[1][0] != '/' || !visible(parts[1]) {
		return false
	}
	if v := string(parts[2]); v != "HTTP/1.1" && v != "HTTP/1.0" {
		return false
	}
	hosts, length := 0, int64(-1)
	for _, l := range lines[1:] {
		name, value, ok := bytes.Cut(l, []byte(": "))
		if !ok || !isToken(name) || len(value) == 0 || value[len(value)-1] == ' ' {
			return false
		}
		for _, w := range bytes.Split(value, []byte(" ")) {
			if len(w) == 0 || !visible(w) {
				return false
			}
		}
		switch {
		case equalFold(name, "host"):
			hosts++
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"):
			return false
		case equalFold(name, "content-length"):
			if length >= 0 || len(value) > 6 {
				return false
			}
			length = 0
			for _, c := range value {
				if !isDigit(c) {
					return false
				}
				length = length*10 + int64(c-'0')
			}
		}
	}
	return hosts == 1 && length <= fuzzConfig.MaxBodyBytes && int64(len(data)-end-4) >= length
}

// visible reports whether b has only visible ASCII.
func visible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// chunkedHead starts the request FuzzChunked completes with a chunked body.
const chunkedHead = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

// FuzzChunked feeds a chunked body (after a fixed head) whole and split,
// and checks that both runs agree and that, where net/http's chunked
// reader reads a body from the same bytes and the request is accepted,
// the echoed body is the same.
//
//	go test -fuzz=FuzzChunked ./apps/http1
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), []byte{2, 9})
	f.Add([]byte("3;a=b\r\nabc\r\n2 ; q=\"x\\\"y\"\r\nde\r\n0\r\nTrailer: v\r\n\r\n"), []byte{1, 1, 1})
	f.Add([]byte("A\r\n0123456789\r\n0\r\n\r\n"), []byte{30})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		checkParse(t, append([]byte(chunkedHead), data...), cuts)
		whole := run(t, fuzzConfig, [][]byte{[]byte(chunkedHead), data})
		if len(whole.Requests) == 0 {
			return
		}
		body, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if got := whole.Requests[0].Body; got != string(body) {
			t.Fatalf("body %q, net/http's chunked reader reads %q from %q", got, body, data)
		}
	})
}

// TestSimpleRequest checks the fuzz differential's notion of a request no
// reading of RFC 9112 may refuse.
func TestSimpleRequest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{getPlain, true},
		{"POST /echo HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", true},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab", false}, // body incomplete
		{"GET /plaintext HTTP/1.1\r\n\r\n", false},                               // no Host
		{"GET /plaintext HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", false},      // obs-fold
		{"GET /plaintext HTTP/1.1\nHost: x\r\n\r\n", false},                      // bare LF
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	} {
		if got := simpleRequest([]byte(tc.in)); got != tc.want {
			t.Errorf("simpleRequest(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
