package loadgen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
)

// protocol writes requests and reads and checks their responses.
type protocol interface {
	// request appends request seq of connection conn to dst.
	request(dst []byte, conn int, seq uint32) []byte
	// response reads the response to request seq of connection conn from
	// br, checks it, and returns its size in bytes (as Result.Bytes
	// counts). batch and idx place it in its batch for error messages;
	// scratch is the connection's own buffer.
	response(br *bufio.Reader, conn int, seq uint32, batch uint64, idx int, scratch *[]byte) (int, error)
}

// MismatchError reports an echo that differs from what was sent.
type MismatchError struct {
	Conn   int    // connection index
	Batch  uint64 // batch number on that connection, from 0
	Offset int    // offset of the first differing byte in the batch
	Want   byte
	Got    byte
	// GotConn and GotSeq decode the header of the message holding the
	// difference as received (valid if HeaderOK), which names the
	// connection and message the bytes came from when streams are mixed.
	GotConn, GotSeq uint32
	HeaderOK        bool
	Size            int // message size, to place Offset in its message
}

func (e *MismatchError) Error() string {
	msg, off := e.Offset/e.Size, e.Offset%e.Size
	s := fmt.Sprintf("loadgen: conn %d batch %d: echo differs at byte %d (message %d, byte %d): want %#02x, got %#02x",
		e.Conn, e.Batch, e.Offset, msg, off, e.Want, e.Got)
	if e.HeaderOK {
		s += fmt.Sprintf(" (received message header says conn %d seq %d)", e.GotConn, e.GotSeq)
	}
	return s
}

// The echo payload. Each message starts with an 8-byte header, the
// connection index and the message's sequence number (little endian),
// truncated for messages shorter than that; the rest is a window of a
// seeded random pattern whose start depends on both, so messages differ in
// their bodies as well.
const (
	headerLen = 8
	patStride = 65521 // a prime: windows start at every offset below it
)

func newPattern(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6d65726c696e)) // "merlin"
	p := make([]byte, patStride+size)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// echoProto is the echo workload.
type echoProto struct {
	size    int
	pattern []byte // read-only
}

// fill writes message seq of connection conn into m.
func (p *echoProto) fill(m []byte, conn int, seq uint32) {
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[:], uint32(conn))
	binary.LittleEndian.PutUint32(h[4:], seq)
	n := copy(m, h[:])
	start := (uint64(conn)*7919 + uint64(seq)*104729) % patStride
	copy(m[n:], p.pattern[start:])
}

func (p *echoProto) request(dst []byte, conn int, seq uint32) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, p.size)...)
	p.fill(dst[n:], conn, seq)
	return dst
}

func (p *echoProto) response(br *bufio.Reader, conn int, seq uint32, batch uint64, idx int, scratch *[]byte) (int, error) {
	// Compare in place where the reader holds the whole message; else
	// copy it out.
	if cap(*scratch) < 2*p.size {
		*scratch = make([]byte, 2*p.size)
	}
	want := (*scratch)[:p.size]
	p.fill(want, conn, seq)
	var got []byte
	if p.size <= br.Size() {
		b, err := br.Peek(p.size)
		if err != nil {
			return 0, err
		}
		got = b
	} else {
		got = (*scratch)[p.size : 2*p.size]
		if _, err := io.ReadFull(br, got); err != nil {
			return 0, err
		}
	}
	if !bytes.Equal(want, got) {
		return 0, p.mismatch(conn, batch, idx*p.size, want, got)
	}
	if p.size <= br.Size() {
		br.Discard(p.size)
	}
	return p.size, nil
}

// mismatch describes the first difference between out and in, which
// start at byte base of batch.
func (p *echoProto) mismatch(conn int, batch uint64, base int, out, in []byte) error {
	off := 0
	for out[off] == in[off] {
		off++
	}
	e := &MismatchError{Conn: conn, Batch: batch, Offset: base + off, Want: out[off], Got: in[off], Size: p.size}
	if p.size >= headerLen {
		m := in[off/p.size*p.size:]
		e.GotConn, e.GotSeq, e.HeaderOK = binary.LittleEndian.Uint32(m), binary.LittleEndian.Uint32(m[4:]), true
	}
	return e
}

// ErrBadResponse is wrapped by every error about an HTTP response that
// breaks the protocol or the check.
var ErrBadResponse = errors.New("loadgen: bad HTTP response")

// httpProto is the HTTP workload: GET with keep-alive; each response must
// be 200, framed by Content-Length or chunked encoding, not closing the
// connection, and have the expected body if one is set.
type httpProto struct {
	req  []byte
	body []byte // nil: any
	// echo, if set, makes each request a POST of a body of echo.size
	// bytes, the echo workload's message for its connection and
	// sequence number, which the response must have (HTTPPath EchoPath).
	echo *echoProto
	// json: body is a JSON document, and a response body that differs
	// from it byte for byte must still decode to the same value.
	json bool
}

// TechEmpower's responses: the body of its plaintext test, and the JSON
// test's object (any encoding of it is valid).
const (
	PlaintextBody = "Hello, World!"
	JSONBody      = `{"message":"Hello, World!"}`
)

// EchoPath is the path of the http app's echo route: a POST whose body
// comes back.
const EchoPath = "/echo"

func newHTTPProto(c Config) *httpProto {
	if c.HTTPPath == EchoPath && c.HTTPBody == nil {
		req := "POST " + EchoPath + " HTTP/1.1\r\nHost: " + c.HTTPHost + "\r\nUser-Agent: merlin-load\r\nAccept: */*\r\n" +
			"Content-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(c.Size) + "\r\n\r\n"
		return &httpProto{req: []byte(req), echo: &echoProto{size: c.Size, pattern: newPattern(c.Seed, c.Size)}}
	}
	req := "GET " + c.HTTPPath + " HTTP/1.1\r\nHost: " + c.HTTPHost + "\r\nUser-Agent: merlin-load\r\nAccept: */*\r\n\r\n"
	p := &httpProto{req: []byte(req), body: c.HTTPBody}
	if p.body == nil {
		switch c.HTTPPath {
		case "/plaintext":
			p.body = []byte(PlaintextBody)
		case "/json":
			p.body, p.json = []byte(JSONBody), true
		}
	}
	return p
}

// sameJSON reports whether a and b are JSON documents of the same value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func (p *httpProto) request(dst []byte, conn int, seq uint32) []byte {
	dst = append(dst, p.req...)
	if p.echo != nil {
		dst = p.echo.request(dst, conn, seq)
	}
	return dst
}

// matches reports whether b is message seq of connection conn, without
// building it.
func (p *echoProto) matches(b []byte, conn int, seq uint32) bool {
	if len(b) != p.size {
		return false
	}
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[:], uint32(conn))
	binary.LittleEndian.PutUint32(h[4:], seq)
	n := min(headerLen, p.size)
	start := (uint64(conn)*7919 + uint64(seq)*104729) % patStride
	return bytes.Equal(b[:n], h[:n]) && bytes.Equal(b[n:], p.pattern[start:start+uint64(p.size-n)])
}

func (p *httpProto) response(br *bufio.Reader, conn int, seq uint32, batch uint64, idx int, scratch *[]byte) (int, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: conn %d batch %d response %d: %s", ErrBadResponse, conn, batch, idx, fmt.Sprintf(format, a...))
	}
	n := 0
	line, err := readLine(br, &n)
	if err != nil {
		return 0, err
	}
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	code, _, _ := bytes.Cut(rest, []byte(" "))
	if !bytes.Equal(proto, []byte("HTTP/1.1")) {
		return 0, bad("status line %q: want HTTP/1.1", line)
	}
	if !bytes.Equal(code, []byte("200")) {
		return 0, bad("status line %q: want 200", line)
	}
	length, chunked := -1, false
	for {
		h, err := readLine(br, &n)
		if err != nil {
			return 0, err
		}
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, bad("header line %q", h)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			l, err := strconv.Atoi(string(v))
			if err != nil || l < 0 {
				return 0, bad("Content-Length %q", v)
			}
			length = l
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(v, []byte("chunked")) {
				return 0, bad("Transfer-Encoding %q", v)
			}
			chunked = true
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				return 0, bad("Connection: close on a keep-alive request")
			}
		}
	}
	body := (*scratch)[:0]
	switch {
	case chunked:
		for {
			l, err := readLine(br, &n)
			if err != nil {
				return 0, err
			}
			size, _, _ := bytes.Cut(l, []byte(";"))
			sz, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
			if err != nil {
				return 0, bad("chunk size %q", l)
			}
			if sz == 0 {
				if t, err := readLine(br, &n); err != nil || len(t) != 0 {
					return 0, bad("trailers are not supported")
				}
				break
			}
			chunk := make([]byte, sz+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return 0, err
			}
			n += len(chunk)
			if !bytes.HasSuffix(chunk, []byte("\r\n")) {
				return 0, bad("chunk not ended by CRLF")
			}
			body = append(body, chunk[:sz]...)
		}
	case length >= 0:
		if cap(body) < length {
			body = make([]byte, length)
		}
		body = body[:length]
		if _, err := io.ReadFull(br, body); err != nil {
			return 0, err
		}
		n += length
	default:
		return 0, bad("no Content-Length and not chunked")
	}
	*scratch = body[:0]
	if p.body != nil && !bytes.Equal(body, p.body) && !(p.json && sameJSON(body, p.body)) {
		return 0, bad("body %q, want %q", truncate(body), truncate(p.body))
	}
	if p.echo != nil && !p.echo.matches(body, conn, seq) {
		want := p.echo.request(nil, conn, seq)
		if len(body) != len(want) {
			return 0, bad("echoed body of %d bytes, want %d", len(body), len(want))
		}
		i := 0
		for body[i] == want[i] {
			i++
		}
		return 0, bad("echoed body differs at byte %d: want %#02x, got %#02x", i, want[i], body[i])
	}
	return n, nil
}

// readLine reads one CRLF-ended line (without it) and adds its length to
// n.
func readLine(br *bufio.Reader, n *int) ([]byte, error) {
	l, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: a line longer than %d bytes", ErrBadResponse, br.Size())
		}
		return nil, err
	}
	*n += len(l)
	if !bytes.HasSuffix(l, []byte("\r\n")) {
		return nil, fmt.Errorf("%w: line %q not ended by CRLF", ErrBadResponse, l)
	}
	return l[:len(l)-2], nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
