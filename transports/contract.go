package transports

import (
	"context"
	"net"
	"time"
)

// Handler is what an application implements. A transport calls it from its
// loops; all calls for one Conn are serialised: OnOpen, then OnData and
// OnDrain in any order, at most one OnReadEOF (after which no OnData), then
// exactly one OnClose, after which nothing.
//
// A Handler may implement ReadEOFHandler, DrainHandler and ShutdownHandler
// for the optional callbacks; the transport finds them by type assertion.
type Handler interface {
	// OnOpen is called once, before any other callback of c.
	OnOpen(c Conn)
	// OnData is called with every received byte not yet consumed: the bytes
	// kept from earlier calls, then the new ones. in is never empty and is
	// valid only until OnData returns. OnData returns how many leading bytes
	// it consumed; the rest is kept and offered again with what arrives
	// next. A count outside [0, len(in)] aborts c with ErrHandler.
	OnData(c Conn, in []byte) (consumed int)
	// OnClose is called exactly once, last. err is nil for an orderly close;
	// see the package's error sentinels for the others.
	OnClose(c Conn, err error)
}

// ReadEOFHandler is implemented by Handlers that want half-close: when the
// peer sends FIN, OnReadEOF is called (after a last OnData with any kept
// bytes) and c stays open for writing until the application closes it.
// Without it, the transport flushes pending output and closes c as Close
// does.
type ReadEOFHandler interface {
	OnReadEOF(c Conn)
}

// DrainHandler is implemented by Handlers that stream: OnDrain is called
// once each time c's output, having reached Config.MaxWriteBuffer, falls
// back to half of it or less.
type DrainHandler interface {
	OnDrain(c Conn)
}

// ShutdownHandler is implemented by Handlers that finish their own work on
// Transport.Shutdown: OnShutdown is called on c's loop and should end with
// c.Close. Without it, Shutdown calls c.Close itself.
type ShutdownHandler interface {
	OnShutdown(c Conn)
}

// FullDuplexHandler is implemented by Handlers that bound their own output,
// as the net.Conn adapter does (its Write blocks at the limit). When
// FullDuplex returns true, the transport goes on reading c while
// OutboundBuffered is at or above MaxWriteBuffer, and still calls OnDrain
// once output falls back to half. Input then never waits for output, as
// with a TCPConn: without it, an application that writes while it reads
// the answers (a pipelining client) deadlocks with a peer that answers each
// request before it reads the next, once both directions' buffers are full.
type FullDuplexHandler interface {
	FullDuplex() bool
}

// HandoffHandler is implemented by Handlers that hand their input to other
// goroutines and are written to by them, as the net.Conn adapter does
// (NetListener, DialNet). When Handoff returns true, a loop transport
// serves c from a loop that waits for I/O in the Go runtime's netpoller
// instead of blocking its OS thread in a system call, and that lets the
// goroutines its callbacks wake run before it waits: the loop and those
// goroutines then meet on the scheduler's run queue, without a hand-off
// between threads, and their Writes are flushed in one batch. A Handler
// that does its work inline, on the loop, is served by loops that block
// their thread, which costs less per wake-up.
type HandoffHandler interface {
	Handoff() bool
}

// TimerHandler is implemented by Handlers that keep time on a connection
// (a request-headers timeout, a keep-alive timeout, a minimum data rate):
// OnTimer(c) is called when the timer set by TimerConn.SetTimer runs out.
type TimerHandler interface {
	OnTimer(c Conn)
}

// TimerConn is a Conn with a timer for the application: one per
// connection, for TimerHandler.OnTimer. Every Conn of merlin's transports
// implements it; the conformance suite checks.
//
// SetTimer(d) with d > 0 sets c's timer to run out d from now, replacing
// any earlier setting; d <= 0 stops it. It is safe from any goroutine.
// When the timer runs out, OnTimer(c) runs on c's loop, serialised with
// c's other callbacks, once per setting. It never starts once OnClose has
// begun, nor after Close or Abort has returned (they stop it), nor for a
// setting that a later SetTimer replaced before it ran out. A Handler
// without OnTimer is never called; its setting does nothing.
type TimerConn interface {
	Conn
	SetTimer(d time.Duration)
}

// Conn is one connection. Its methods are safe from any goroutine, except
// Context and SetContext, which belong to c's callbacks. No method runs a
// callback synchronously: Close inside OnData returns, and OnClose runs
// later on c's loop.
type Conn interface {
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// Write copies p and returns len(p), nil; it never blocks and never
	// drops. Writes made inside a callback of c are flushed after the
	// callback returns; from other goroutines, the flush is scheduled at
	// once. After Close, Abort or OnClose it returns a *net.OpError
	// wrapping net.ErrClosed; after CloseWrite, one wrapping EPIPE.
	Write(p []byte) (int, error)
	// OutboundBuffered returns the bytes written and not yet completed by
	// the kernel.
	OutboundBuffered() int
	// CloseWrite flushes pending output, then sends FIN; reading goes on.
	// Once the peer's FIN has also been seen, c is closed with a nil error.
	CloseWrite() error
	// Close stops delivering input, flushes output for at most
	// Config.CloseTimeout, sends FIN, discards input until the peer's FIN or
	// Config.CloseLinger, and closes the socket.
	Close() error
	// Abort drops pending output and resets the connection (RST on TCP).
	Abort() error
	// PauseRead stops reading from the socket; once it has returned, no new
	// OnData starts until ResumeRead.
	PauseRead()
	// ResumeRead undoes PauseRead. Kept input is offered at once.
	ResumeRead()
	// Context returns the value set by SetContext.
	Context() any
	// SetContext stores one value for the application.
	SetContext(v any)
}

// Transport makes listeners and client connections that share loops and
// buffers.
type Transport interface {
	// Name returns the registered name of the transport ("sockets").
	Name() string
	// Config returns the configuration the transport runs with: defaults
	// filled in, a spec's settings applied.
	Config() Config
	// Listen accepts connections on network ("tcp", "tcp4", "tcp6" or
	// "unix") and address, and serves each with h.
	Listen(network, address string, h Handler) (Listener, error)
	// Dial connects to address and returns after h.OnOpen has returned. A
	// failed Dial calls no callback. It must not be called from a callback
	// (ErrInCallback).
	Dial(ctx context.Context, network, address string, h Handler) (Conn, error)
	// Stats sums the transport's counters.
	Stats() Stats
	// Shutdown closes every listener and asks every Conn to finish
	// (OnShutdown, or Close). It returns nil once every OnClose has
	// returned. If ctx ends first, it aborts the rest (their OnClose err
	// matches net.ErrClosed) and returns ctx.Err(). It must not be called
	// from a callback (ErrInCallback).
	Shutdown(ctx context.Context) error
	// Close closes every listener and aborts every Conn (their OnClose err
	// matches net.ErrClosed) and returns nil. It must not be called from a
	// callback (ErrInCallback).
	//
	// Shutdown and Close are idempotent, and return only after every
	// goroutine the transport started has exited and every descriptor it
	// opened is closed.
	Close() error
}

// Listener is a listening socket of a Transport. Close stops accepting; the
// connections it accepted go on.
type Listener interface {
	Addr() net.Addr
	Close() error
}

// DoneListener is a Listener that says when it has closed: Done's channel
// is closed once the listener has, by its own Close or by its Transport's
// Close or Shutdown. The net.Conn adapter uses it to wake a blocked Accept
// when the transport closes underneath it. Every transport here
// implements it; the conformance suite checks.
type DoneListener interface {
	Listener
	Done() <-chan struct{}
}
