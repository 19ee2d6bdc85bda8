package http1

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// Config sets the limits and the Server header. Zero fields take their
// defaults.
type Config struct {
	// MaxHeaderBytes bounds the request line and headers, CRLFs included
	// (and, apart, a chunked body's trailer section); default 8 << 10. A
	// longer head is answered with 431 and the connection closed.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body; default 1 << 20. A larger one
	// (by its Content-Length, or chunks so far) is answered with 413 and
	// the connection closed.
	MaxBodyBytes int64
	// Server is the Server header's value; default "merlin". It must be
	// printable ASCII.
	Server string

	// The time limits below are Kestrel's (KestrelServerLimits), with its
	// defaults. They need a connection timer (transports.TimerConn); on a
	// Conn without one, the Handler serves without time limits and logs
	// that once, at Warn. A negative value turns a limit off.

	// RequestHeadersTimeout bounds the time from a request's first byte
	// until its head (request line and fields) is complete; default 30 s.
	// When it runs out, the request is answered with 408 and the
	// connection closed.
	RequestHeadersTimeout time.Duration
	// KeepAliveTimeout bounds the time a connection waits with no request
	// in progress: from OnOpen, and from each answer, until the next
	// request's first byte; default 130 s. When it runs out, the
	// connection is closed without an answer.
	KeepAliveTimeout time.Duration
	// MinRequestBodyDataRate is the least average rate, in bytes per
	// second, at which a request body (framing included) may arrive,
	// measured from the body's start once MinRequestBodyDataRateGrace has
	// passed and checked at most once a second; default 240. A body
	// slower than it is answered with 408 and the connection closed.
	MinRequestBodyDataRate float64
	// MinRequestBodyDataRateGrace is how long a body may take before its
	// rate is checked (TCP slow start); default 5 s. Negative means no
	// grace: the rate is checked from the body's first second on.
	MinRequestBodyDataRateGrace time.Duration

	// Logger receives the Handler's warnings; default slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxHeaderBytes = 8 << 10
	DefaultMaxBodyBytes   = 1 << 20
	DefaultServer         = "merlin"

	DefaultRequestHeadersTimeout       = 30 * time.Second
	DefaultKeepAliveTimeout            = 130 * time.Second
	DefaultMinRequestBodyDataRate      = 240 // bytes per second
	DefaultMinRequestBodyDataRateGrace = 5 * time.Second
)

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Server == "" {
		c.Server = DefaultServer
	}
	if c.RequestHeadersTimeout == 0 {
		c.RequestHeadersTimeout = DefaultRequestHeadersTimeout
	}
	if c.KeepAliveTimeout == 0 {
		c.KeepAliveTimeout = DefaultKeepAliveTimeout
	}
	if c.MinRequestBodyDataRate == 0 {
		c.MinRequestBodyDataRate = DefaultMinRequestBodyDataRate
	}
	if c.MinRequestBodyDataRateGrace == 0 {
		c.MinRequestBodyDataRateGrace = DefaultMinRequestBodyDataRateGrace
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// timed reports whether any time limit is on.
func (c Config) timed() bool {
	return c.RequestHeadersTimeout > 0 || c.KeepAliveTimeout > 0 || c.MinRequestBodyDataRate > 0
}

// Handler serves HTTP/1.1 on every connection of a listener, inline on
// the transport's loop, and keeps its time limits on each connection's
// timer (OnTimer). Its fields are read-only after New, except the Date
// cache (atomic) and a sync.Once, so one Handler serves every loop at once.
type Handler struct {
	cfg        Config
	serverLine []byte // "Server: merlin\r\n"
	date       atomic.Pointer[dateLine]
	conns      sync.Pool // of *conn, recycled at OnClose
	epoch      time.Time // the origin of the connections' clocks
	noTimer    sync.Once // logs that a Conn has no timer

	// Test hooks, nil in production: now replaces time.Now; onRequest
	// sees every whole request, onError every refusal.
	now       func() time.Time
	onRequest func(r *request, body []byte)
	onError   func(status int)
	keepAll   bool // collect every body, not only /echo's
}

// New returns the Handler serving every connection of a listener;
// per-connection state lives in Conn.SetContext. It panics if
// cfg.Server has a byte that is not printable ASCII.
func New(cfg Config) *Handler {
	cfg = cfg.withDefaults()
	for i := 0; i < len(cfg.Server); i++ {
		if c := cfg.Server[i]; c < ' ' || c > '~' {
			panic(fmt.Sprintf("http1: Config.Server %q has a byte that is not printable ASCII", cfg.Server))
		}
	}
	h := &Handler{cfg: cfg, serverLine: []byte("Server: " + cfg.Server + "\r\n"), epoch: time.Now()}
	h.conns.New = func() any { return new(conn) }
	return h
}

// Config returns the configuration in effect, defaults filled in.
func (h *Handler) Config() Config { return h.cfg }

// conn is the state of one connection, owned by its callbacks.
type conn struct {
	p        parser
	out      []byte // responses of the current OnData, written with one Write
	scratch  []byte // the JSON body under construction
	kept     bool   // the last OnData left bytes unconsumed (a request is under way)
	shutdown bool   // OnShutdown came while a request was under way
	closed   bool   // Close was called
	clock           // the time limits (timer.go)
}

// keepCap is the largest buffer a connection keeps between requests; a
// larger one (a big echo) goes to the garbage collector after use.
const keepCap = 64 << 10

// OnOpen sets up c's state.
func (h *Handler) OnOpen(c transports.Conn) {
	cs := h.conns.Get().(*conn)
	cs.p.maxHeader = h.cfg.MaxHeaderBytes
	cs.p.maxBody = h.cfg.MaxBodyBytes
	cs.p.keepAll = h.keepAll
	c.SetContext(cs)
	h.startClock(c, cs)
}

// OnData parses every whole request in in, answers each in order, and
// writes the answers with one Write. It consumes what it parsed; an
// incomplete head, chunk-size line or trailer line is left to the
// transport, which offers it again with the next bytes. After a request
// that closes the connection (Connection: close, HTTP/1.0 without
// keep-alive, an error, a shutdown) it calls Close and discards the rest.
func (h *Handler) OnData(c transports.Conn, in []byte) int {
	cs, _ := c.Context().(*conn)
	if cs == nil || cs.closed {
		return len(in)
	}
	var (
		date     []byte
		now      time.Time // read with the first answer
		answered bool      // a request was answered: its successor's wait begins
	)
	n := 0
	for n < len(in) {
		k, ev := cs.p.next(in[n:])
		n += k
		if ev == evMore {
			break
		}
		if date == nil {
			now = h.clockNow()
			date = h.dateLine(now)
		}
		switch ev {
		case evContinue:
			// RFC 9110 section 10.1.1. Sent even if body bytes have
			// arrived already (the server MAY omit it then): the answer
			// does not depend on how the input was split.
			cs.out = append(cs.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
			continue
		case evRequest:
			answered = true
			if h.onRequest != nil {
				h.onRequest(&cs.p.req, cs.p.body)
			}
			if h.respond(cs, date) {
				continue
			}
		case evError:
			if h.onError != nil {
				h.onError(cs.p.status)
			}
			h.respondError(cs, date, cs.p.status)
		}
		cs.flush(c)
		cs.closed = true
		c.Close()
		return len(in)
	}
	cs.kept = n < len(in) || cs.p.st != stHead
	if cs.timer != nil {
		h.track(cs, now, answered)
	}
	cs.flush(c)
	if cs.shutdown && !cs.kept {
		cs.closed = true
		c.Close()
		return len(in)
	}
	return n
}

// flush writes the answers gathered in cs.out.
func (cs *conn) flush(c transports.Conn) {
	if len(cs.out) > 0 {
		c.Write(cs.out)
		cs.out = cs.out[:0]
		if cap(cs.out) > keepCap {
			cs.out = nil
		}
	}
	if cap(cs.p.body) > keepCap && cs.p.st == stHead {
		cs.p.body = nil // not while a body is being collected
	}
}

// OnClose recycles c's state.
func (h *Handler) OnClose(c transports.Conn, _ error) {
	cs, _ := c.Context().(*conn)
	c.SetContext(nil)
	if cs == nil {
		return
	}
	*cs = conn{out: cs.out[:0], scratch: cs.scratch[:0], p: parser{
		body: cs.p.body[:0],
		req:  request{methodName: cs.p.req.methodName[:0], target: cs.p.req.target[:0]},
	}}
	h.conns.Put(cs)
}

// OnShutdown closes c at once if it is idle; otherwise the request under
// way is finished, answered with "Connection: close", and c closed then.
func (h *Handler) OnShutdown(c transports.Conn) {
	cs, _ := c.Context().(*conn)
	if cs == nil || cs.closed {
		return
	}
	if !cs.kept {
		cs.closed = true
		c.Close()
		return
	}
	cs.shutdown = true
}

var _ transports.ShutdownHandler = (*Handler)(nil)
