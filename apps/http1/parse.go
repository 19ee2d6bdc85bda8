package http1

import (
	"bytes"
	"encoding/binary"
	"math"
)

// state is where the parser of one connection stands in the byte stream.
type state uint8

const (
	stHead      state = iota // waiting for a whole request head
	stBody                   // Content-Length body: p.remaining bytes to go
	stChunkSize              // chunked body: waiting for a chunk-size line
	stChunkData              // chunked body: p.remaining bytes of chunk data to go
	stChunkEnd               // chunked body: the CRLF after a chunk's data
	stTrailer                // chunked body: trailer fields, until an empty line
	stDone                   // after an error: nothing more is read
)

// event is what parser.next reports.
type event uint8

const (
	evMore     event = iota // every complete element is consumed; more bytes are needed
	evContinue              // the head of a request with "Expect: 100-continue" and a body
	evRequest               // a whole request (head and body) is parsed: p.req, p.body
	evError                 // the request is malformed or refused: answer p.status, close
)

// method is the request method, as far as the routes care.
type method uint8

const (
	mOther method = iota
	mGET
	mHEAD
	mPOST
	mPUT
)

// route is the resource a request names.
type route uint8

const (
	rNotFound route = iota
	rPlaintext
	rJSON
	rEcho
)

// maxChunkLine bounds a chunk-size line with its extensions and CRLF.
const maxChunkLine = 4096

// request is the parsed head of one request. Its byte slices are copies
// owned by the parser, valid until the next request's head is parsed.
type request struct {
	method        method
	route         route
	minor         uint8 // HTTP/1.minor: 0 or 1 (1.2 and up are read as 1.1)
	keepAlive     bool  // the connection persists after this request
	expect        bool  // "Expect: 100-continue" on an HTTP/1.1 request
	chunked       bool  // the body is chunked (RFC 9112 section 7.1)
	contentLength int64 // -1 when absent
	methodName    []byte
	target        []byte
}

// parser is the request state machine of one connection. It keeps no
// received bytes of its own except an echoed body: an element that is not
// complete yet (a head, a chunk-size line, a trailer line) is left
// unconsumed, so the transport keeps it and offers it again with what
// arrives next; scan remembers how far such a kept element was already
// searched, so a head that arrives byte by byte is scanned once, not once
// per byte.
type parser struct {
	maxHeader int
	maxBody   int64

	st        state
	scan      int   // bytes of the kept element already searched for its end
	remaining int64 // bytes left in the body (stBody) or the chunk (stChunkData)
	bodyLen   int64 // body bytes read so far (chunked: checked against maxBody)
	trailer   int   // trailer bytes read so far (checked against maxHeader)
	received  int64 // bytes of the current body consumed, framing included (its data rate)
	keepBody  bool  // collect the body into body (the echo route)
	keepAll   bool  // collect every body (tests)
	status    int   // the status to answer with, after evError
	req       request
	body      []byte // the collected body, when keepBody
}

// next parses in, the unconsumed input, and returns how many leading bytes
// it consumed and what happened. After evContinue or evRequest the caller
// calls next again with the bytes after n; after evMore it waits for more
// input; after evError the connection is done.
func (p *parser) next(in []byte) (n int, ev event) {
	for {
		switch p.st {
		case stHead:
			// RFC 9112 section 2.2: a server SHOULD ignore at least one
			// empty line received before the request-line. Any number is
			// ignored here; they are consumed, so they cost no memory.
			for p.scan == 0 && n < len(in) && (in[n] == '\r' || in[n] == '\n') {
				if in[n] == '\n' {
					return n, p.fail(400) // bare LF
				}
				if n+1 == len(in) {
					return n, evMore
				}
				if in[n+1] != '\n' {
					return n, p.fail(400)
				}
				n += 2
			}
			if n == len(in) {
				return n, evMore
			}
			head := in[n:]
			end, status := p.headEnd(head)
			if status != 0 {
				return n, p.fail(status)
			}
			if end == 0 {
				return n, evMore
			}
			if status := p.parseHead(head[:end]); status != 0 {
				return n, p.fail(status)
			}
			n += end
			r := &p.req
			p.keepBody = p.keepAll || (r.route == rEcho && (r.method == mPOST || r.method == mPUT))
			p.body = p.body[:0]
			p.bodyLen = 0
			p.trailer = 0
			p.received = 0
			switch {
			case r.chunked:
				p.st = stChunkSize
			case r.contentLength > p.maxBody:
				// RFC 9110 section 15.5.14; with Expect: 100-continue the
				// 413 goes out at once, instead of the 100.
				return n, p.fail(413)
			case r.contentLength > 0:
				p.st = stBody
				p.remaining = r.contentLength
			default:
				return n, evRequest
			}
			if r.expect {
				return n, evContinue
			}

		case stBody, stChunkData:
			if n == len(in) {
				return n, evMore
			}
			k := int64(len(in) - n)
			if k > p.remaining {
				k = p.remaining
			}
			if p.keepBody {
				p.body = append(p.body, in[n:n+int(k)]...)
			}
			n += int(k)
			p.remaining -= k
			p.received += k
			if p.remaining > 0 {
				return n, evMore
			}
			if p.st == stBody {
				p.st = stHead
				return n, evRequest
			}
			p.st = stChunkEnd

		case stChunkSize:
			end, status := p.line(in[n:], maxChunkLine, 400)
			if status != 0 {
				return n, p.fail(status)
			}
			if end == 0 {
				return n, evMore
			}
			size, ok := parseChunkSize(in[n : n+end-2])
			if !ok {
				return n, p.fail(400)
			}
			n += end
			p.received += int64(end)
			if size > p.maxBody-p.bodyLen {
				return n, p.fail(413)
			}
			if size == 0 {
				p.st = stTrailer
				continue
			}
			p.bodyLen += size
			p.remaining = size
			p.st = stChunkData

		case stChunkEnd:
			// RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
			if n == len(in) {
				return n, evMore
			}
			if in[n] != '\r' {
				return n, p.fail(400)
			}
			if n+1 == len(in) {
				return n, evMore
			}
			if in[n+1] != '\n' {
				return n, p.fail(400)
			}
			n += 2
			p.received += 2
			p.st = stChunkSize

		case stTrailer:
			// RFC 9112 section 7.1.2: trailer fields have the syntax of
			// header fields; they are checked, then discarded (a recipient
			// may). Their total size is bounded by MaxHeaderBytes, apart
			// from the head's.
			end, status := p.line(in[n:], p.maxHeader-p.trailer, 431)
			if status != 0 {
				return n, p.fail(status)
			}
			if end == 0 {
				return n, evMore
			}
			line := in[n : n+end-2]
			n += end
			p.trailer += end
			p.received += int64(end)
			if len(line) == 0 {
				p.st = stHead
				return n, evRequest
			}
			if _, _, ok := splitField(line); !ok {
				return n, p.fail(400)
			}

		default: // stDone
			return len(in), evMore
		}
	}
}

// fail ends the connection's parsing with status.
func (p *parser) fail(status int) event {
	p.st = stDone
	p.status = status
	p.scan = 0
	return evError
}

// headEnd finds the end of the head at the start of b: the index after the
// CRLF CRLF that ends it, or 0 if it has not arrived yet. Every LF must
// follow a CR: RFC 9112 section 2.2 lets a recipient accept a bare LF as a
// line end, but two parsers that disagree on it are a smuggling vector, so
// a bare LF is answered with 400. The head, request line included, must
// end within maxHeader bytes, else 431 (RFC 6585 section 5).
func (p *parser) headEnd(b []byte) (end, status int) {
	w := b
	if len(w) > p.maxHeader {
		w = w[:p.maxHeader]
	}
	for p.scan < len(w) {
		i := bytes.IndexByte(w[p.scan:], '\n')
		if i < 0 {
			p.scan = len(w)
			break
		}
		j := p.scan + i
		if j == 0 || w[j-1] != '\r' {
			return 0, 400
		}
		if j >= 3 && w[j-2] == '\n' { // w[j-3] is the '\r' before it
			p.scan = 0
			return j + 1, 0
		}
		p.scan = j + 1
	}
	if len(b) >= p.maxHeader {
		return 0, 431
	}
	return 0, 0
}

// line finds the CRLF-terminated line at the start of b and returns its
// length with the CRLF, or 0 if it has not arrived yet. A bare LF gives
// 400; no line end within limit bytes gives tooLong.
func (p *parser) line(b []byte, limit, tooLong int) (end, status int) {
	w := b
	if len(w) > limit {
		w = w[:limit]
	}
	if p.scan < len(w) {
		if i := bytes.IndexByte(w[p.scan:], '\n'); i >= 0 {
			j := p.scan + i
			p.scan = 0
			if j == 0 || w[j-1] != '\r' {
				return 0, 400
			}
			return j + 1, 0
		}
		p.scan = len(w)
	}
	if len(b) >= limit {
		return 0, tooLong
	}
	return 0, 0
}

// parseHead parses a whole head (ending with CRLF CRLF, with no bare LF)
// into p.req and returns 0, or the status to answer with.
func (p *parser) parseHead(head []byte) int {
	r := &p.req
	eol := bytes.IndexByte(head, '\n')
	if status := p.parseRequestLine(head[:eol-1]); status != 0 {
		return status
	}
	var (
		clSeen, teSeen, connClose, connKeepAlive bool
		lastChunked, badTE                       bool
		chunkedCount, otherCodings, hosts        int
		expectOther                              bool
	)
	r.contentLength = -1
	r.expect = false
	rest := head[eol+1:]
	for {
		eol = bytes.IndexByte(rest, '\n')
		line := rest[:eol-1]
		rest = rest[eol+1:]
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok {
			return 400
		}
		switch {
		case equalFold(name, "host"):
			hosts++
		case equalFold(name, "content-length"):
			// RFC 9110 section 8.6: a list of identical values may be
			// read as one; differing values are an unrecoverable error.
			n, ok := parseContentLength(value)
			if !ok || (clSeen && n != r.contentLength) {
				return 400
			}
			clSeen = true
			r.contentLength = n
		case equalFold(name, "transfer-encoding"):
			teSeen = true
			for e, v := nextElem(value); len(e) > 0 || len(v) > 0; e, v = nextElem(v) {
				switch {
				case len(e) == 0: // empty list elements are ignored (RFC 9110 section 5.6.1)
				case equalFold(e, "chunked"):
					chunkedCount++
					lastChunked = true
				case isToken(codingName(e)):
					otherCodings++
					lastChunked = false
				default:
					badTE = true
				}
			}
		case equalFold(name, "connection"):
			for e, v := nextElem(value); len(e) > 0 || len(v) > 0; e, v = nextElem(v) {
				switch {
				case equalFold(e, "close"):
					connClose = true
				case equalFold(e, "keep-alive"):
					connKeepAlive = true
				}
			}
		case equalFold(name, "expect"):
			if equalFold(value, "100-continue") {
				r.expect = true
			} else {
				expectOther = true
			}
		}
	}
	// RFC 9112 section 3.2: a request of HTTP/1.1 with no Host, or any
	// request with more than one, gets 400.
	if hosts > 1 || (hosts == 0 && r.minor == 1) {
		return 400
	}
	if teSeen {
		switch {
		// RFC 9112 section 6.1: both headers are a smuggling attempt or a
		// broken intermediary; the server may reject, and must close.
		case clSeen:
			return 400
		// RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message
		// means faulty framing.
		case r.minor == 0:
			return 400
		// RFC 9112 section 6.3 (4): chunked must be the final coding, and
		// section 7: applied once.
		case badTE || !lastChunked || chunkedCount > 1:
			return 400
		// RFC 9112 section 6.1: a coding the server does not know: 501.
		case otherCodings > 0:
			return 501
		}
		r.chunked = true
	} else {
		r.chunked = false
	}
	// RFC 9110 section 10.1.1: a server may answer an expectation it does
	// not know with 417; 100-continue is ignored on HTTP/1.0.
	if expectOther {
		return 417
	}
	if r.minor == 0 {
		r.expect = false
		r.keepAlive = connKeepAlive && !connClose
	} else {
		r.keepAlive = !connClose
	}
	return 0
}

// parseRequestLine parses "method SP request-target SP HTTP-version"
// (RFC 9112 section 3), with exactly one SP between the parts.
func (p *parser) parseRequestLine(line []byte) int {
	r := &p.req
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return 400
	}
	m := line[:sp]
	if !isToken(m) {
		return 400
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return 400
	}
	target, version := rest[:sp], rest[sp+1:]
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return 400
		}
	}
	// RFC 9112 section 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT,
	// case-sensitive.
	if len(version) != 8 || string(version[:5]) != "HTTP/" || version[6] != '.' ||
		!isDigit(version[5]) || !isDigit(version[7]) {
		return 400
	}
	switch {
	case version[5] != '1':
		return 505 // RFC 9110 section 15.6.6
	case version[7] == '0':
		r.minor = 0
	default:
		r.minor = 1 // RFC 9110 section 2.5: a higher minor is read as 1.1
	}
	path, ok := targetPath(target)
	if !ok {
		return 400
	}
	switch string(m) {
	case "GET":
		r.method = mGET
	case "HEAD":
		r.method = mHEAD
	case "POST":
		r.method = mPOST
	case "PUT":
		r.method = mPUT
	default:
		r.method = mOther
	}
	switch string(path) {
	case "/plaintext":
		r.route = rPlaintext
	case "/json":
		r.route = rJSON
	case "/echo":
		r.route = rEcho
	default:
		r.route = rNotFound
	}
	r.methodName = append(r.methodName[:0], m...)
	r.target = append(r.target[:0], target...)
	return 0
}

// targetPath returns the path of a request-target (RFC 9112 section 3.2):
// origin-form "/p?q", absolute-form "http://host/p?q" (section 3.2.2: a
// server must accept it), or asterisk-form "*". Authority-form (CONNECT
// only) and anything else is refused. Paths are matched as sent, without
// percent-decoding.
func targetPath(t []byte) ([]byte, bool) {
	switch {
	case t[0] == '/':
	case len(t) == 1 && t[0] == '*':
		return t, true
	case hasPrefixFold(t, "http://"), hasPrefixFold(t, "https://"):
		auth := t[bytes.IndexByte(t, ':')+3:]
		i := bytes.IndexAny(auth, "/?")
		if i < 0 || auth[i] == '?' {
			return slash, true
		}
		t = auth[i:]
	default:
		return nil, false
	}
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	return t, true
}

var slash = []byte("/")

// splitField splits a field line "name: value" (RFC 9112 section 5) and
// checks it: the name is a token with no whitespace before the colon
// (section 5.1), the value has no CR, LF, NUL or other control but HTAB
// (RFC 9110 section 5.5). A line that starts with whitespace is an obs-fold
// (section 5.2) or whitespace after the start line (section 2.2): refused.
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	if !isToken(name) {
		return nil, nil, false
	}
	value = line[colon+1:]
	if !validValue(value) {
		return nil, nil, false
	}
	return name, trimOWS(value), true
}

// validValue reports whether b has no control character but HTAB (RFC
// 9110 section 5.5). It tests 8 bytes at a time: a word with no byte
// below 0x20 and none equal to 0x7f is valid as a whole.
func validValue(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		y := x ^ (ones * 0x7f)
		if ((x-ones*0x20)&^x|(y-ones)&^y)&highs != 0 && !validBytes(b[:8]) {
			return false
		}
		b = b[8:]
	}
	return validBytes(b)
}

func validBytes(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: 1*DIGIT, or a list of
// identical ones. A value too large for int64 saturates (it is refused as
// too large, 413, not as malformed).
func parseContentLength(v []byte) (int64, bool) {
	n := int64(-1)
	for {
		i := bytes.IndexByte(v, ',')
		e := v
		if i >= 0 {
			e = v[:i]
		}
		e = trimOWS(e)
		if len(e) == 0 {
			return 0, false
		}
		var x int64
		for _, c := range e {
			if !isDigit(c) {
				return 0, false
			}
			if x > (math.MaxInt64-9)/10 {
				x = math.MaxInt64
				continue
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			return 0, false
		}
		n = x
		if i < 0 {
			return n, true
		}
		v = v[i+1:]
	}
}

// parseChunkSize parses a chunk-size line without its CRLF:
// chunk-size [ chunk-ext ] (RFC 9112 section 7.1.1). Extensions are
// checked and ignored. A size too large for int64 saturates.
func parseChunkSize(line []byte) (int64, bool) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		v, ok := unhex(line[i])
		if !ok {
			break
		}
		if size > math.MaxInt64>>4 {
			size = math.MaxInt64
			continue
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return 0, false
	}
	// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
	rest := line[i:]
	for {
		rest = trimLeftWS(rest)
		if len(rest) == 0 {
			return size, true
		}
		if rest[0] != ';' {
			return 0, false
		}
		rest = trimLeftWS(rest[1:])
		k := tokenLen(rest)
		if k == 0 {
			return 0, false
		}
		rest = trimLeftWS(rest[k:])
		if len(rest) == 0 || rest[0] != '=' {
			continue
		}
		rest = trimLeftWS(rest[1:])
		if len(rest) > 0 && rest[0] == '"' {
			k = quotedLen(rest)
		} else {
			k = tokenLen(rest)
		}
		if k == 0 {
			return 0, false
		}
		rest = rest[k:]
	}
}

// quotedLen returns the length of the quoted-string at the start of b
// (RFC 9110 section 5.6.4), or 0 if there is none.
func quotedLen(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(b) || (b[i] < ' ' && b[i] != '\t') || b[i] == 0x7f {
				return 0
			}
		case (c < ' ' && c != '\t') || c == 0x7f:
			return 0
		}
	}
	return 0
}

// nextElem returns the first element of a comma-separated list (RFC 9110
// section 5.6.1), trimmed of whitespace, and the rest after its comma.
func nextElem(v []byte) (elem, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return trimOWS(v[:i]), v[i+1:]
	}
	return trimOWS(v), nil
}

// codingName returns the name of a transfer-coding, before its parameters.
func codingName(e []byte) []byte {
	if i := bytes.IndexByte(e, ';'); i >= 0 {
		return trimOWS(e[:i])
	}
	return e
}

func trimOWS(b []byte) []byte {
	b = trimLeftWS(b)
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func trimLeftWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// equalFold reports whether b equals lower, ignoring ASCII case; lower is
// in lower case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, lower string) bool {
	return len(b) >= len(lower) && equalFold(b[:len(lower)], lower)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// tchars marks the token characters of RFC 9110 section 5.6.2.
var tchars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool { return len(b) > 0 && tokenLen(b) == len(b) }

// tokenLen returns the length of the token at the start of b.
func tokenLen(b []byte) int {
	for i, c := range b {
		if !tchars[c] {
			return i
		}
	}
	return len(b)
}
