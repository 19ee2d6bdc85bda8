package loadgen

import (
	"bytes"
	"fmt"
	"strconv"
)

// maxLine bounds a status, header or chunk-size line, CRLF included: a
// server that sends a longer one is broken, or is not speaking HTTP.
const maxLine = readBuffer

// httpReader parses one connection's stream of HTTP/1.1 responses as it
// arrives, in pieces of any size (a response split anywhere, several
// responses in one piece), and checks each one as its httpProto asks:
// status 200 on HTTP/1.1, framing by Content-Length or chunked encoding,
// no "Connection: close", the expected body. It is the one HTTP parser
// of both engines: the net engine feeds it what its bufio.Reader holds,
// the ring engine each receive. A line or a body split across pieces is
// gathered in buffers kept from one response to the next, so the steady
// state does not allocate; a body wholly inside one piece is checked in
// place. Owned by its connection's reader.
type httpReader struct {
	p    *httpProto
	conn int

	// The response being parsed, and where it goes in the connection's
	// stream: request seq, response idx of batch (for error messages).
	seq   uint32
	batch uint64
	idx   int

	state   uint8
	n       int    // bytes of the response parsed so far
	length  int    // its Content-Length, or -1
	chunked bool   // Transfer-Encoding: chunked
	left    int    // bytes still to come of the body or chunk; in respChunkEnd, of the CRLF
	line    []byte // the start of a line whose end has not arrived yet
	body    []byte // the body so far, when it does not arrive in one piece
}

// The states of an httpReader: what the next byte of the stream belongs
// to.
const (
	respStatus    = iota // the status line
	respHeader           // a header line, or the empty line that ends them
	respBody             // a body framed by Content-Length
	respChunkSize        // a chunk's size line
	respChunkData        // a chunk's data
	respChunkEnd         // the CRLF after a chunk's data
	respTrailer          // the empty line after the last chunk (no trailers)
)

// newReader returns a parser of connection conn's responses.
func (p *httpProto) newReader(conn int) *httpReader {
	return &httpReader{p: p, conn: conn, length: -1}
}

// started reports whether part of a response has been parsed.
func (h *httpReader) started() bool { return h.n > 0 }

// bad returns an error wrapping ErrBadResponse that places the response
// in its stream.
func (h *httpReader) bad(format string, a ...any) error {
	return fmt.Errorf("%w: conn %d batch %d response %d: %s", ErrBadResponse, h.conn, h.batch, h.idx, fmt.Sprintf(format, a...))
}

// next parses b, the next bytes of the stream, as (the rest of) the
// response to request seq of the connection, response idx of batch. It
// returns how many bytes of b it used and, once the response is complete
// and checked, its size in bytes (as Result.Bytes counts; 0 while it is
// not complete). It stops at the end of the response: the rest of b
// belongs to the next one, for the next call. An error wraps
// ErrBadResponse; the stream cannot be trusted after it.
func (h *httpReader) next(b []byte, seq uint32, batch uint64, idx int) (used, size int, err error) {
	h.seq, h.batch, h.idx = seq, batch, idx
	for used < len(b) {
		rest := b[used:]
		switch h.state {
		case respBody, respChunkData:
			k := min(h.left, len(rest))
			used += k
			h.left -= k
			if h.state == respBody && h.left == 0 && len(h.body) == 0 {
				size, err := h.finish(rest[:k], used) // all in this piece
				return used, size, err
			}
			h.body = append(h.body, rest[:k]...)
			switch {
			case h.left > 0:
			case h.state == respBody:
				size, err := h.finish(h.body, used)
				return used, size, err
			default:
				h.state, h.left = respChunkEnd, 2
			}
		case respChunkEnd:
			for ; h.left > 0 && used < len(b); used++ {
				if b[used] != "\r\n"[2-h.left] {
					return used, 0, h.bad("chunk not ended by CRLF")
				}
				h.left--
			}
			if h.left == 0 {
				h.state = respChunkSize
			}
		default:
			line, k, err := h.readLine(rest)
			used += k
			switch {
			case err != nil:
				return used, 0, err
			case line == nil:
				continue // its end is in a later piece
			}
			done, err := h.parseLine(line)
			if err != nil {
				return used, 0, err
			}
			if done {
				size, err := h.finish(h.body, used)
				return used, size, err
			}
		}
	}
	h.n += used
	return used, 0, nil
}

// readLine returns the next line of b without its CRLF (not nil, if
// empty) and the bytes of b it took; nil if its end is not in b (b is
// then kept for the next call).
func (h *httpReader) readLine(b []byte) (line []byte, used int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(h.line)+len(b) >= maxLine {
			return nil, len(b), h.bad("a line longer than %d bytes", maxLine)
		}
		h.line = append(h.line, b...)
		return nil, len(b), nil
	}
	line = b[:i+1]
	if len(h.line) > 0 {
		line = append(h.line, line...)
		h.line = line[:0] // reused once this line is parsed
	}
	if len(line) > maxLine {
		return nil, i + 1, h.bad("a line longer than %d bytes", maxLine)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, i + 1, h.bad("line %q not ended by CRLF", line)
	}
	return line[:len(line)-2], i + 1, nil
}

// parseLine parses one line of the response in its state, and reports
// whether the response is complete (its body in h.body).
func (h *httpReader) parseLine(line []byte) (done bool, err error) {
	switch h.state {
	case respStatus:
		proto, rest, _ := bytes.Cut(line, []byte(" "))
		code, _, _ := bytes.Cut(rest, []byte(" "))
		if !bytes.Equal(proto, []byte("HTTP/1.1")) {
			return false, h.bad("status line %q: want HTTP/1.1", line)
		}
		if !bytes.Equal(code, []byte("200")) {
			return false, h.bad("status line %q: want 200", line)
		}
		h.state = respHeader
	case respHeader:
		if len(line) > 0 {
			return false, h.header(line)
		}
		switch {
		case h.chunked:
			h.state = respChunkSize
		case h.length > 0:
			h.state, h.left = respBody, h.length
		case h.length == 0:
			return true, nil
		default:
			return false, h.bad("no Content-Length and not chunked")
		}
	case respChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		sz, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
		if err != nil {
			return false, h.bad("chunk size %q", line)
		}
		h.state, h.left = respChunkData, int(sz)
		if sz == 0 {
			h.state = respTrailer
		}
	case respTrailer:
		if len(line) != 0 {
			return false, h.bad("trailers are not supported")
		}
		return true, nil
	}
	return false, nil
}

// header parses one header line: the ones that frame the body or would
// close the connection.
func (h *httpReader) header(line []byte) error {
	k, v, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return h.bad("header line %q", line)
	}
	v = bytes.TrimSpace(v)
	switch {
	case bytes.EqualFold(k, []byte("Content-Length")):
		l, err := strconv.Atoi(string(v))
		if err != nil || l < 0 {
			return h.bad("Content-Length %q", v)
		}
		h.length = l
	case bytes.EqualFold(k, []byte("Transfer-Encoding")):
		if !bytes.EqualFold(v, []byte("chunked")) {
			return h.bad("Transfer-Encoding %q", v)
		}
		h.chunked = true
	case bytes.EqualFold(k, []byte("Connection")):
		if bytes.EqualFold(v, []byte("close")) {
			return h.bad("Connection: close on a keep-alive request")
		}
	}
	return nil
}

// finish checks the complete response's body, and returns the
// response's size (its bytes before this piece, and used of this one) or
// the body's error. The reader is then ready for the next response.
func (h *httpReader) finish(body []byte, used int) (int, error) {
	err := h.checkBody(body)
	size := h.n + used
	h.state, h.n, h.length, h.chunked, h.left = respStatus, 0, -1, false, 0
	h.body = h.body[:0]
	if err != nil {
		return 0, err
	}
	return size, nil
}

// checkBody reports whether body is the one the response must have: the
// proto's body if it has one (for JSON, any encoding of the same value),
// the request's own for the echo route.
func (h *httpReader) checkBody(body []byte) error {
	p := h.p
	if p.body != nil && !bytes.Equal(body, p.body) && !(p.json && sameJSON(body, p.body)) {
		return h.bad("body %q, want %q", truncate(body), truncate(p.body))
	}
	if p.echo != nil && !p.echo.matches(body, h.conn, h.seq) {
		want := p.echo.request(nil, h.conn, h.seq)
		if len(body) != len(want) {
			return h.bad("echoed body of %d bytes, want %d", len(body), len(want))
		}
		i := 0
		for body[i] == want[i] {
			i++
		}
		return h.bad("echoed body differs at byte %d: want %#02x, got %#02x", i, want[i], body[i])
	}
	return nil
}
