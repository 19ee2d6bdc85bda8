// Package http1 is an HTTP/1.1 server workload written against merlin's
// connection contract: a transports.Handler that parses and answers
// requests inline on the transport's loop, with TechEmpower's /plaintext
// and /json routes and an /echo route. NetHTTP and NewServer give the same
// routes and limits on net/http, for the goroutine-per-connection mode.
//
// # State machine
//
// Each connection has a parser (set with Conn.SetContext at OnOpen) whose
// states are: head; Content-Length body; chunk-size line, chunk data, the
// CRLF after it; trailer lines. OnData runs it over in until it needs
// more bytes, answering each whole request in order as it goes, so a
// pipelined burst is answered with one Write.
//
// # Where bytes live
//
// Received bytes stay in the transport's buffer. An element that has not
// fully arrived (a head, a chunk-size line, a trailer line) is left
// unconsumed: OnData returns fewer than len(in), the transport keeps the
// rest and offers it again with what arrives next (DESIGN.md, Input).
// The parser remembers how far it searched the kept element, so a head
// arriving byte by byte is scanned once. These elements are bounded
// (MaxHeaderBytes, 4 KiB for a chunk-size line), far below the transport's
// MaxReadBuffer. Body bytes are consumed as they arrive: dropped, or, for
// /echo, copied into the connection's body buffer (at most MaxBodyBytes).
// Answers are built in the connection's output buffer and written once per
// OnData; buffers over 64 KiB are released after use, and a closed
// connection's state is recycled through a sync.Pool.
//
// # Allocations
//
// Parsing works on in without making strings; routes and methods are
// matched by comparing bytes; the Date line is formatted once per second
// (the first request of a second formats it; the others read the clock
// and copy it); JSON is serialised by an append encoder. Once a
// connection's buffers have grown, /plaintext and /json allocate nothing
// per request (held by TestAllocs).
//
// # Answers and limits
//
// GET and HEAD of /plaintext and /json: 200; other methods 405 with
// "Allow: GET, HEAD". POST and PUT of /echo: 200 with the body; other
// methods 405 with "Allow: POST, PUT". Any other path: 404. These keep
// the connection open (a body sent along is read and dropped). Refusals
// close it after the answer:
//
//   - 400: a malformed request line, field line or chunk; a bare LF
//     anywhere (RFC 9112 section 2.2 allows accepting one; two parsers that
//     disagree on it are a smuggling vector); obs-fold (section 5.2);
//     Content-Length with Transfer-Encoding, differing Content-Lengths, a
//     Transfer-Encoding whose final coding is not chunked or that repeats
//     chunked, Transfer-Encoding on HTTP/1.0 (sections 6.1, 6.3); no Host on
//     HTTP/1.1, or more than one (section 3.2).
//   - 413: a body over MaxBodyBytes, by Content-Length (at once, instead of
//     100 Continue) or by chunk sizes as they arrive.
//   - 408: a head or a body too slow (Time limits).
//   - 417: an Expect other than 100-continue.
//   - 431: a head (request line and fields) over MaxHeaderBytes, or a
//     trailer section over it.
//   - 501: a transfer coding other than chunked (RFC 9112 section 6.1).
//   - 505: an HTTP major version other than 1.
//
// # Time limits
//
// As Kestrel's KestrelServerLimits, with its defaults (Config): a
// keep-alive timeout while no request is under way (130 s; the
// connection closes), a request-headers timeout from a request's first
// byte until its head is whole (30 s; 408), and a minimum body data rate
// after a grace period (240 bytes/s after 5 s; 408). They run on the
// connection's timer (transports.TimerConn), which OnTimer re-checks and
// re-arms: OnData only stores the phase and its start, and sets the timer
// when a phase must run out earlier than it is set to.
//
// "Connection: close" and HTTP/1.0 without "Connection: keep-alive" are
// answered, then the connection closed. "Expect: 100-continue" on a
// request with a body gets "100 Continue" before the body is read. On
// Transport.Shutdown an idle connection closes at once; one with a request
// under way finishes it, answers with "Connection: close" and closes.
//
//	t, err := transports.Open("sockets", transports.Config{})
//	if err != nil { ... }
//	ln, err := t.Listen("tcp", ":8080", http1.New(http1.Config{}))
package http1
