package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goodResponses are well-formed answers to GET /plaintext, each framed
// differently: Content-Length, chunked (with an extension and several
// chunks), lower-case and padded header names and values.
var goodResponses = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8;ext=1\r\n, World!\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\ncontent-length:  13 \r\nconnection: keep-alive\r\nServer: x\r\n\r\nHello, World!",
	"HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: Chunked\r\n\r\nd\r\nHello, World!\r\n0\r\n\r\n",
}

// plaintextProto is the HTTP workload's proto for GET /plaintext.
func plaintextProto() *httpProto {
	return newHTTPProto(Config{HTTPPath: "/plaintext", HTTPHost: "x"}.withDefaults())
}

// parsePieces feeds pieces to h as one stream, response by response, and
// returns the size of each response completed and the first error.
func parsePieces(h *httpReader, pieces [][]byte) (sizes []int, err error) {
	var seq uint32
	for _, b := range pieces {
		for len(b) > 0 {
			used, size, err := h.next(b, seq, uint64(seq), 0)
			if err != nil {
				return sizes, err
			}
			if used == 0 && size == 0 || used > len(b) {
				return sizes, fmt.Errorf("next used %d of %d bytes and completed nothing", used, len(b))
			}
			b = b[used:]
			if size > 0 {
				sizes = append(sizes, size)
				seq++
			}
		}
	}
	return sizes, nil
}

// cut splits b before each offset of at (increasing, inside b).
func cut(b []byte, at ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, a := range at {
		out = append(out, b[prev:a])
		prev = a
	}
	return append(out, b[prev:])
}

// every returns b in pieces of n bytes.
func every(b []byte, n int) [][]byte {
	var at []int
	for a := n; a < len(b); a += n {
		at = append(at, a)
	}
	return cut(b, at...)
}

// A stream of responses is parsed the same however it is split: whole, in
// two pieces at every offset, byte by byte, in pieces of 7; every
// response is counted once, with its size.
func TestHTTPReaderSplits(t *testing.T) {
	echo := newHTTPProto(Config{HTTPPath: EchoPath, HTTPHost: "x", Size: 100}.withDefaults())
	var echoStream []byte
	var echoSizes []int
	for seq := range uint32(4) {
		body := echo.echo.request(nil, 2, seq)
		r := "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + string(body)
		if seq%2 == 1 {
			r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + string(body[:64]) + "\r\n24\r\n" + string(body[64:]) + "\r\n0\r\n\r\n"
		}
		echoStream = append(echoStream, r...)
		echoSizes = append(echoSizes, len(r))
	}
	var plainStream []byte
	var plainSizes []int
	for _, r := range goodResponses {
		plainStream = append(plainStream, r...)
		plainSizes = append(plainSizes, len(r))
	}
	for _, tc := range []struct {
		name   string
		p      *httpProto
		conn   int
		stream []byte
		sizes  []int
	}{
		{name: "plaintext", p: plaintextProto(), stream: plainStream, sizes: plainSizes},
		{name: "echo", p: echo, conn: 2, stream: echoStream, sizes: echoSizes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			splits := map[string][][]byte{
				"whole":     {tc.stream},
				"bytes":     every(tc.stream, 1),
				"pieces=7":  every(tc.stream, 7),
				"pieces=64": every(tc.stream, 64),
			}
			for k := 1; k < len(tc.stream); k++ {
				splits["at="+strconv.Itoa(k)] = cut(tc.stream, k)
			}
			for name, pieces := range splits {
				h := tc.p.newReader(tc.conn)
				sizes, err := parsePieces(h, pieces)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if d := cmp.Diff(tc.sizes, sizes); d != "" {
					t.Fatalf("%s: response sizes (-want +got):\n%s", name, d)
				}
				if h.started() {
					t.Fatalf("%s: the reader holds part of a response after the last", name)
				}
			}
		})
	}
}

// Every broken response fails with an error wrapping ErrBadResponse that
// says what is wrong, whole and byte by byte, and completes nothing.
func TestHTTPReaderBad(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"
	for _, tc := range []struct {
		name, resp, want string
	}{
		{name: "status", resp: "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 13\r\n\r\nHello, World!", want: "want 200"},
		{name: "version", resp: "HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!", want: "want HTTP/1.1"},
		{name: "close", resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 13\r\n\r\nHello, World!", want: "Connection: close"},
		{name: "unframed", resp: "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nHello, World!", want: "no Content-Length and not chunked"},
		{name: "length", resp: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", want: "Content-Length"},
		{name: "coding", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", want: "Transfer-Encoding"},
		{name: "header", resp: "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", want: "header line"},
		{name: "bare LF", resp: "HTTP/1.1 200 OK\nContent-Length: 13\r\n\r\nHello, World!", want: "not ended by CRLF"},
		{name: "chunk size", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", want: "chunk size"},
		{name: "chunk end", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello!\r\n0\r\n\r\n", want: "chunk not ended by CRLF"},
		{name: "trailer", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nHello, World!\r\n0\r\nX-T: 1\r\n\r\n", want: "trailers"},
		{name: "body", resp: ok + "Hello, World?", want: "body"},
		{name: "chunked body", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n0\r\n\r\n", want: "body"},
		{name: "long line", resp: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", maxLine) + "\r\n\r\n", want: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{len(tc.resp), 1} {
				sizes, err := parsePieces(plaintextProto().newReader(0), every([]byte(tc.resp), n))
				if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), tc.want) || len(sizes) > 0 {
					t.Fatalf("in pieces of %d: %d responses, error %v; want none, and an ErrBadResponse mentioning %q", n, len(sizes), err, tc.want)
				}
			}
		})
	}
}

// The echo route's bodies must be the requests' own: a body of another
// request, or of the wrong length, is caught, at the differing byte.
func TestHTTPReaderEchoBody(t *testing.T) {
	p := newHTTPProto(Config{HTTPPath: EchoPath, HTTPHost: "x", Size: 100}.withDefaults())
	resp := func(body []byte) []byte {
		return append([]byte("HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	}
	flipped := p.echo.request(nil, 0, 1)
	flipped[50] ^= 1
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{name: "other request's", stream: append(resp(p.echo.request(nil, 0, 0)), resp(p.echo.request(nil, 0, 0))...), want: "response 0: echoed body differs at byte 4"},
		{name: "flipped", stream: append(resp(p.echo.request(nil, 0, 0)), resp(flipped)...), want: "echoed body differs at byte 50"},
		{name: "short", stream: resp(p.echo.request(nil, 0, 0)[:99]), want: "echoed body of 99 bytes, want 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{len(tc.stream), 1} {
				_, err := parsePieces(p.newReader(0), every(tc.stream, n))
				if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("in pieces of %d: error %v, want an ErrBadResponse mentioning %q", n, err, tc.want)
				}
			}
		})
	}
}

// Once its buffers have grown, the reader allocates nothing per response,
// whether responses arrive whole or split (lines and bodies gathered), and
// neither does the net engine's reading through it.
func TestHTTPReaderAllocs(t *testing.T) {
	var stream []byte
	for _, r := range goodResponses {
		stream = append(stream, r...)
	}
	p := plaintextProto()
	for _, n := range []int{len(stream), 1, 7} {
		pieces := every(stream, n)
		h := p.newReader(0)
		allocs := testing.AllocsPerRun(100, func() {
			for _, b := range pieces {
				for len(b) > 0 {
					used, _, err := h.next(b, 0, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					b = b[used:]
				}
			}
		})
		if allocs != 0 {
			t.Errorf("in pieces of %d: %v allocations per run of %d responses, want 0", n, allocs, len(goodResponses))
		}
	}

	src := bytes.NewReader(stream)
	br := bufio.NewReaderSize(src, 16) // responses span refills
	var st readState
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(stream)
		br.Reset(src)
		for range goodResponses {
			if _, err := p.response(br, 0, 0, 0, 0, &st); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("response through a bufio.Reader: %v allocations per run of %d responses, want 0", allocs, len(goodResponses))
	}
}

// FuzzHTTPReader parses data whole and split where cuts says: no panic,
// no byte used beyond what was given, and both agree on every response's
// size and on the error, so that a split can neither lose nor repeat a
// response.
//
//	go test -fuzz=FuzzHTTPReader ./loadgen
func FuzzHTTPReader(f *testing.F) {
	for _, r := range goodResponses {
		f.Add([]byte(r+r), []byte{7, 3, 20})
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello!\r\n0\r\n\r\n"), []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		var at []int
		off := 0
		for _, c := range cuts {
			off += 1 + int(c)%64
			if off >= len(data) {
				break
			}
			at = append(at, off)
		}
		p := newHTTPProto(Config{HTTPPath: "/other", HTTPHost: "x"}.withDefaults()) // any body
		whole, werr := parsePieces(p.newReader(0), [][]byte{data})
		split, serr := parsePieces(p.newReader(0), cut(data, at...))
		if d := cmp.Diff(whole, split); d != "" {
			t.Fatalf("split at %v: response sizes differ from whole (-whole +split):\n%s", at, d)
		}
		if fmt.Sprint(werr) != fmt.Sprint(serr) {
			t.Fatalf("split at %v: error %v, whole %v", at, serr, werr)
		}
		total := 0
		for _, s := range whole {
			total += s
		}
		if total > len(data) {
			t.Fatalf("responses of %d bytes in all from %d bytes", total, len(data))
		}
	})
}
