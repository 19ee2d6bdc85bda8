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
	// st is the connection's own.
	response(br *bufio.Reader, conn int, seq uint32, batch uint64, idx int, st *readState) (int, error)
}

// readState is what a connection's reader keeps from one response to the
// next, so that reading allocates nothing once it has grown: the echo
// workload's scratch buffer, the HTTP workload's parser (made by the
// first response).
type readState struct {
	scratch []byte
	http    *httpReader
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

func (p *echoProto) response(br *bufio.Reader, conn int, seq uint32, batch uint64, idx int, st *readState) (int, error) {
	// Compare in place where the reader holds the whole message; else
	// copy it out.
	if cap(st.scratch) < 2*p.size {
		st.scratch = make([]byte, 2*p.size)
	}
	want := st.scratch[:p.size]
	p.fill(want, conn, seq)
	var got []byte
	if p.size <= br.Size() {
		b, err := br.Peek(p.size)
		if err != nil {
			return 0, err
		}
		got = b
	} else {
		got = st.scratch[p.size : 2*p.size]
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
// connection, and have the expected body if one is set (httpReader parses
// and checks them).
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

func (p *httpProto) response(br *bufio.Reader, conn int, seq uint32, batch uint64, idx int, st *readState) (int, error) {
	if st.http == nil {
		st.http = p.newReader(conn)
	}
	for {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF && st.http.started() {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
		}
		b, _ := br.Peek(br.Buffered())
		used, size, err := st.http.next(b, seq, batch, idx)
		br.Discard(used)
		if err != nil || size > 0 {
			return size, err
		}
	}
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
