package http1

import (
	"fmt"
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
}

// Defaults of Config.
const (
	DefaultMaxHeaderBytes = 8 << 10
	DefaultMaxBodyBytes   = 1 << 20
	DefaultServer         = "merlin"
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
	return c
}

// Handler serves HTTP/1.1 on every connection of a listener, inline on
// the transport's loop. Its fields are read-only after New, except the
// Date cache (atomic), so one Handler serves every loop at once.
type Handler struct {
	cfg        Config
	serverLine []byte // "Server: merlin\r\n"
	date       atomic.Pointer[dateLine]
	conns      sync.Pool // of *conn, recycled at OnClose

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
	h := &Handler{cfg: cfg, serverLine: []byte("Server: " + cfg.Server + "\r\n")}
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
	var date []byte
	n := 0
	for n < len(in) {
		k, ev := cs.p.next(in[n:])
		n += k
		if ev == evMore {
			break
		}
		if date == nil {
			date = h.dateLine()
		}
		switch ev {
		case evContinue:
			// RFC 9110 section 10.1.1. Sent even if body bytes have
			// arrived already (the server MAY omit it then): the answer
			// does not depend on how the input was split.
			cs.out = append(cs.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
			continue
		case evRequest:
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
