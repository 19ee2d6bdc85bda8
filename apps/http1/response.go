package http1

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// The routes' bodies and headers (TechEmpower's plaintext and json tests).
const (
	helloWorld    = "Hello, World!"
	typePlain     = "text/plain"
	typeJSON      = "application/json"
	typeOctets    = "application/octet-stream"
	typeErrorText = "text/plain; charset=utf-8"
	allowGetHead  = "GET, HEAD"
	allowPostPut  = "POST, PUT"
)

// dateLine is one second's Date header line.
type dateLine struct {
	sec  int64
	line []byte // "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
}

// clockNow returns the time: time.Now, or the test's clock.
func (h *Handler) clockNow() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// dateLine returns the Date header line for now. It is formatted once per
// second, by the first request of that second on any loop; every other
// request reads the clock and copies the cached line.
func (h *Handler) dateLine(now time.Time) []byte {
	sec := now.Unix()
	if d := h.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	b := make([]byte, 0, 40)
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	h.date.Store(&dateLine{sec: sec, line: b})
	return b
}

// message is the json route's object, made and serialised per request as
// the benchmark asks.
type message struct {
	Message string `json:"message"`
}

// appendJSON appends m as encoding/json would, without its HTML escaping
// (and so without allocating).
func (m *message) appendJSON(b []byte) []byte {
	b = append(b, `{"message":`...)
	b = appendJSONString(b, m.Message)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (RFC 8259 section 7):
// quote, backslash and control characters escaped, invalid UTF-8 replaced
// by U+FFFD, U+2028 and U+2029 escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// respond appends the answer to the request just parsed and reports
// whether the connection stays open.
//
// Routes: GET and HEAD of /plaintext and /json (others: 405, Allow: GET,
// HEAD); POST and PUT of /echo (others: 405, Allow: POST, PUT); any other
// path: 404, whatever the method. A body sent to a route that ignores it
// is read and dropped; the connection stays open.
func (h *Handler) respond(cs *conn, date []byte) bool {
	r := &cs.p.req
	keep := r.keepAlive && !cs.shutdown
	head := r.method == mHEAD
	switch r.route {
	case rPlaintext, rJSON:
		if r.method != mGET && r.method != mHEAD {
			cs.out = h.appendError(cs.out, date, 405, allowGetHead, keep, r.minor, head)
			return keep
		}
		if r.route == rPlaintext {
			cs.out = h.appendHead(cs.out, date, 200, typePlain, len(helloWorld), "", keep, r.minor)
			if r.method == mGET {
				cs.out = append(cs.out, helloWorld...)
			}
			return keep
		}
		m := message{Message: helloWorld}
		cs.scratch = m.appendJSON(cs.scratch[:0])
		cs.out = h.appendHead(cs.out, date, 200, typeJSON, len(cs.scratch), "", keep, r.minor)
		if r.method == mGET {
			cs.out = append(cs.out, cs.scratch...)
		}
	case rEcho:
		if r.method != mPOST && r.method != mPUT {
			cs.out = h.appendError(cs.out, date, 405, allowPostPut, keep, r.minor, head)
			return keep
		}
		cs.out = h.appendHead(cs.out, date, 200, typeOctets, len(cs.p.body), "", keep, r.minor)
		cs.out = append(cs.out, cs.p.body...)
	default:
		cs.out = h.appendError(cs.out, date, 404, "", keep, r.minor, head)
	}
	return keep
}

// respondError appends the answer to a request the parser refused; the
// connection closes after it.
func (h *Handler) respondError(cs *conn, date []byte, status int) {
	cs.out = h.appendError(cs.out, date, status, "", false, 1, false)
}

// appendError appends an error answer with a short text body (its
// headers only, for a HEAD).
func (h *Handler) appendError(b, date []byte, status int, allow string, keep bool, minor uint8, head bool) []byte {
	text := http.StatusText(status)
	b = h.appendHead(b, date, status, typeErrorText, len(text)+1, allow, keep, minor)
	if head {
		return b
	}
	b = append(b, text...)
	return append(b, '\n')
}

// appendHead appends a status line and the headers every answer has. The
// status line says HTTP/1.1 to every client (RFC 9110 section 2.5); a
// connection to an HTTP/1.0 client that stays open says so with
// "Connection: keep-alive".
func (h *Handler) appendHead(b, date []byte, status int, ctype string, length int, allow string, keep bool, minor uint8) []byte {
	switch status {
	case 200:
		b = append(b, "HTTP/1.1 200 OK\r\n"...)
	default:
		b = append(b, "HTTP/1.1 "...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		b = append(b, http.StatusText(status)...)
		b = append(b, "\r\n"...)
	}
	b = append(b, h.serverLine...)
	b = append(b, date...)
	b = append(b, "Content-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(length), 10)
	b = append(b, "\r\n"...)
	if allow != "" {
		b = append(b, "Allow: "...)
		b = append(b, allow...)
		b = append(b, "\r\n"...)
	}
	switch {
	case !keep:
		b = append(b, "Connection: close\r\n"...)
	case minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}
