package core

import (
	"log/slog"
	"runtime/debug"

	"github.com/merlin-net/merlin/transports"
)

// Handler is an application's Handler with its optional abilities found
// once. It is two words: the abilities' interfaces are looked up again
// when called, which is rare.
type Handler struct {
	h    transports.Handler
	caps uint8
}

const (
	capEOF = 1 << iota
	capDrain
	capShutdown
	capTimer
	capDuplex
	capHandoff
)

// NewHandler finds what h implements.
func NewHandler(h transports.Handler) Handler {
	var caps uint8
	if _, ok := h.(transports.ReadEOFHandler); ok {
		caps |= capEOF
	}
	if _, ok := h.(transports.DrainHandler); ok {
		caps |= capDrain
	}
	if _, ok := h.(transports.ShutdownHandler); ok {
		caps |= capShutdown
	}
	if _, ok := h.(transports.TimerHandler); ok {
		caps |= capTimer
	}
	if d, ok := h.(transports.FullDuplexHandler); ok && d.FullDuplex() {
		caps |= capDuplex
	}
	if o, ok := h.(transports.HandoffHandler); ok && o.Handoff() {
		caps |= capHandoff
	}
	return Handler{h: h, caps: caps}
}

// The abilities of the Handler.
func (h Handler) HasReadEOF() bool  { return h.caps&capEOF != 0 }
func (h Handler) HasDrain() bool    { return h.caps&capDrain != 0 }
func (h Handler) HasShutdown() bool { return h.caps&capShutdown != 0 }
func (h Handler) HasTimer() bool    { return h.caps&capTimer != 0 }
func (h Handler) Duplex() bool      { return h.caps&capDuplex != 0 }
func (h Handler) Handoff() bool     { return h.caps&capHandoff != 0 }

// Callback names a callback other than OnData and OnClose.
type Callback uint8

// The callbacks Call runs.
const (
	OnOpen Callback = iota
	OnDrain
	OnReadEOF
	OnShutdown
	OnTimer
)

func (cb Callback) String() string {
	return [...]string{"OnOpen", "OnDrain", "OnReadEOF", "OnShutdown", "OnTimer"}[cb]
}

// Log is where a transport reports what the application cannot see: a
// recovered panic, an unexpected error. Name prefixes the messages.
type Log struct {
	Name   string
	Logger *slog.Logger
}

// panicked logs a recovered panic with its stack and returns the error
// the connection is killed with.
func (l *Log) panicked(name string, v any, c transports.Conn) error {
	l.Logger.Error(l.Name+": callback panicked; aborting the connection",
		"callback", name, "panic", v, "remote", c.RemoteAddr(), "stack", string(debug.Stack()))
	return transports.PanicError(name, v)
}

// Call runs callback cb of c. It returns nil, or the error c must be
// killed with if the callback panicked (logged, with its stack). A
// callback the Handler does not have is not called.
func (h *Handler) Call(c transports.Conn, cb Callback, log *Log) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = log.panicked(cb.String(), v, c)
		}
	}()
	switch cb {
	case OnOpen:
		h.h.OnOpen(c)
	case OnDrain:
		if h.HasDrain() {
			h.h.(transports.DrainHandler).OnDrain(c)
		}
	case OnReadEOF:
		if h.HasReadEOF() {
			h.h.(transports.ReadEOFHandler).OnReadEOF(c)
		}
	case OnShutdown:
		if h.HasShutdown() {
			h.h.(transports.ShutdownHandler).OnShutdown(c)
		}
	case OnTimer:
		if h.HasTimer() {
			h.h.(transports.TimerHandler).OnTimer(c)
		}
	}
	return nil
}

// Closed runs OnClose(c, err), the last callback; a panic is logged and
// goes no further.
func (h *Handler) Closed(c transports.Conn, err error, log *Log) {
	defer func() {
		if v := recover(); v != nil {
			log.Logger.Error(log.Name+": OnClose panicked", "panic", v, "remote", c.RemoteAddr(), "stack", string(debug.Stack()))
		}
	}()
	h.h.OnClose(c, err)
}

// data runs OnData, recovering a panic.
func (h *Handler) data(c transports.Conn, in []byte, log *Log) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = log.panicked("OnData", v, c)
		}
	}()
	return h.h.OnData(c, in), nil
}

// Deliver runs OnData under the input rules: with data, bytes just read,
// after the kept bytes if there are any (one in: every byte received and
// not consumed), or with the kept bytes alone where data is nil (reading
// resumed, or the peer's FIN). What OnData does not consume is kept; a
// count outside [0, len(in)] and more than max bytes kept are errors. It
// returns nil, or the error c must be killed with (the kept bytes are
// then dropped). data is not retained: the caller may reuse it at once.
func (h *Handler) Deliver(c transports.Conn, log *Log, kept *Input, data []byte, max int) error {
	in, fromKept := data, false
	if data == nil || len(kept.b) > 0 {
		kept.Keep(data)
		in, fromKept = kept.b, true
	}
	if len(in) == 0 {
		return nil // OnData is never called with nothing
	}
	n, err := h.data(c, in, log)
	switch {
	case err != nil:
	case n < 0 || n > len(in):
		err = transports.CountError(n, len(in))
	case n == len(in):
		kept.Release()
		return nil
	case fromKept:
		kept.b = kept.b[:copy(kept.b, in[n:])]
	default:
		kept.Keep(in[n:])
	}
	if err == nil && len(kept.b) > max {
		err = transports.InputLimitError(len(kept.b), max)
	}
	if err != nil {
		kept.Release()
	}
	return err
}

// Input is a connection's kept input: bytes offered to OnData and not
// consumed. Its buffer may come from, and go back to, a loop's Spares.
type Input struct {
	b      []byte
	spares *Spares
}

// NewInput returns an empty Input whose buffers come from s (nil: none).
func NewInput(s *Spares) Input { return Input{spares: s} }

// Bytes returns the kept bytes (valid until the next change).
func (in *Input) Bytes() []byte { return in.b }

// Len returns how many bytes are kept.
func (in *Input) Len() int { return len(in.b) }

// Keep adds p to the kept bytes.
func (in *Input) Keep(p []byte) {
	if len(p) == 0 {
		return
	}
	if in.b == nil && in.spares != nil {
		in.b = in.spares.get()
	}
	in.b = append(in.b, p...)
}

// Release drops the kept bytes. A small buffer goes back to the spares
// (or, without spares, stays for reuse); a large one goes to the garbage
// collector, so that an idle connection holds little.
func (in *Input) Release() {
	switch {
	case in.b == nil:
	case in.spares != nil:
		in.spares.put(in.b)
		in.b = nil
	case cap(in.b) <= keepCap:
		in.b = in.b[:0]
	default:
		in.b = nil
	}
}

// keepCap is the largest kept-input buffer a connection without spares
// holds on to once empty.
const keepCap = 4 << 10

// Spares is a loop's free list of kept-input buffers, so that an idle
// connection holds none and a connection that keeps bytes often does not
// allocate each time. Not safe for concurrent use: one per loop.
type Spares struct {
	free   [][]byte
	maxCap int // larger buffers are not kept
}

// NewSpares returns a free list of at most 16 buffers of capacity at most
// maxCap.
func NewSpares(maxCap int) *Spares { return &Spares{maxCap: maxCap} }

func (s *Spares) get() []byte {
	n := len(s.free)
	if n == 0 {
		return nil
	}
	b := s.free[n-1]
	s.free[n-1] = nil
	s.free = s.free[:n-1]
	return b
}

func (s *Spares) put(b []byte) {
	if cap(b) <= s.maxCap && len(s.free) < 16 {
		s.free = append(s.free, b[:0])
	}
}

// DirectWrite is the least a Write sends to the socket at once, when no
// output waits before it, rather than copying it to be sent later, in the
// loop transports. Below it, gathering writes into one system call is worth
// the copy (HTTP's pipelined responses); above it, the copy (to a cold
// output buffer, and the kernel's copy from there) costs more than the
// system call it might save: 64 KiB echoed at once cost libuvlike 39 ns of
// user time per 4 KiB message against 257 copied (64 connections, depth
// 16). At 4 KiB, writing each message at depth 1 at once was not cheaper
// than copying it (10 rounds, 1.04x, p = 0.19).
const DirectWrite = 16 << 10
