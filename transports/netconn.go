package transports

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// limits are the adapter's view of a transport's Config.
type limits struct {
	maxRead, maxWrite int
}

func limitsOf(t Transport) limits {
	cfg := t.Config().WithDefaults()
	return limits{maxRead: cfg.MaxReadBuffer, maxWrite: cfg.MaxWriteBuffer}
}

// NetListener listens on t and returns a net.Listener whose Accept returns
// net.Conns (see DialNet for their behaviour), so that code written for
// package net (net/http, crypto/tls) runs unchanged on any transport.
//
// Connections the transport accepts are queued until Accept takes them; the
// queue is not bounded (an application that stops calling Accept should
// close the listener). Close closes the transport's listener and the
// connections still queued, not the accepted ones. Closing t closes its
// listener; if that listener is a DoneListener, as every transport's here
// is, Accept then returns net.ErrClosed, else only once the net.Listener
// is closed too.
func NetListener(t Transport, network, address string) (net.Listener, error) {
	l := &netListener{stop: make(chan struct{})}
	l.cond.L = &l.mu
	h := &adapterHandler{lim: limitsOf(t), l: l}
	ln, err := t.Listen(network, address, h)
	if err != nil {
		return nil, err
	}
	l.ln = ln
	l.addr = ln.Addr()
	if d, ok := ln.(DoneListener); ok {
		go func() {
			select {
			case <-d.Done():
				l.Close()
			case <-l.stop:
			}
		}()
	}
	return l, nil
}

// DialNet connects to address through t and returns the connection as a
// net.Conn: a goroutine-per-connection view of the push-based Conn.
//
// The net.Conn behaves as a *net.TCPConn does: Read blocks until data, EOF
// or an error, and returns buffered input before io.EOF or a reset; Write
// blocks while the transport holds MaxWriteBuffer bytes of output; deadlines
// wake blocked calls; Close never blocks and wakes blocked calls with
// net.ErrClosed. It also has CloseWrite (send FIN; Read goes on) and
// CloseRead (later Reads return io.EOF, input is discarded). Errors are
// *net.OpError values as package net returns them, io.EOF bare.
func DialNet(ctx context.Context, t Transport, network, address string) (net.Conn, error) {
	h := &adapterHandler{lim: limitsOf(t)}
	if _, err := t.Dial(ctx, network, address, h); err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, err
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	// Dial returned after OnOpen, which set h.nc.
	return h.nc, nil
}

// adapterHandler is the Handler behind every adapted Conn: it forwards each
// callback to the Conn's netConn. For a listener, the netConn is the Conn's
// Context; for a dial, h.nc.
type adapterHandler struct {
	lim limits
	l   *netListener // nil for DialNet
	nc  *netConn     // DialNet only; set by OnOpen
}

func (h *adapterHandler) conn(c Conn) *netConn {
	if h.l == nil {
		return h.nc
	}
	return c.Context().(*netConn)
}

func (h *adapterHandler) OnOpen(c Conn) {
	nc := newNetConn(c, h.lim)
	if h.l == nil {
		h.nc = nc
		return
	}
	c.SetContext(nc)
	h.l.enqueue(nc)
}

func (h *adapterHandler) OnData(c Conn, in []byte) int {
	h.conn(c).onData(in)
	return len(in)
}

// FullDuplex asks the transport to read while output is at its limit: the
// adapter's Write blocks there instead, and its input has its own limit.
func (h *adapterHandler) FullDuplex() bool { return true }

// Handoff asks a loop transport for a loop that parks in the Go runtime's
// netpoller: the adapter's Reads and Writes run on goroutines.
func (h *adapterHandler) Handoff() bool { return true }

func (h *adapterHandler) OnReadEOF(c Conn)          { h.conn(c).onReadEOF() }
func (h *adapterHandler) OnDrain(c Conn)            { h.conn(c).onDrain() }
func (h *adapterHandler) OnClose(c Conn, err error) { h.conn(c).onClose(err) }

// netListener is the net.Listener of NetListener.
type netListener struct {
	ln   Listener // set before the listener is shared
	addr net.Addr

	mu     sync.Mutex
	cond   sync.Cond     // signalled when queue grows or closed is set
	queue  []*netConn    // accepted, not yet returned by Accept; guarded by mu
	closed bool          // guarded by mu
	stop   chan struct{} // closed by Close: ends the goroutine watching ln's Done
}

// enqueue hands nc to Accept; it runs in OnOpen.
func (l *netListener) enqueue(nc *netConn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		nc.Close()
		return
	}
	l.queue = append(l.queue, nc)
	l.cond.Signal()
	l.mu.Unlock()
}

// Accept waits for the next connection.
func (l *netListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queue) == 0 && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		return nil, &net.OpError{Op: "accept", Net: l.addr.Network(), Addr: l.addr, Err: net.ErrClosed}
	}
	nc := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	return nc, nil
}

// Close closes the transport's listener and the connections not yet
// accepted, and wakes blocked Accepts.
func (l *netListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: l.addr.Network(), Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	queued := l.queue
	l.queue = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
	}

	err := l.ln.Close()
	for _, nc := range queued {
		nc.Close()
	}
	if err != nil {
		var op *net.OpError
		if !errors.As(err, &op) {
			err = &net.OpError{Op: "close", Net: l.addr.Network(), Addr: l.addr, Err: err}
		}
	}
	return err
}

// Addr returns the listener's address.
func (l *netListener) Addr() net.Addr { return l.addr }

// A deadline wakes the calls waiting on cond when it passes. Its timer is
// made once and moved only when the deadline comes sooner than the timer
// fires: net/http sets a connection's read deadline several times per
// request, mostly later each time, and a timer that fires early sets
// itself again for what is left.
type deadline struct {
	at      time.Time   // the deadline; zero: none
	timer   *time.Timer // fires at armed; made by the first deadline
	armed   time.Time   // zero: the timer is stopped or has fired
	expired bool        // at has passed
}

// netConn is the net.Conn of the adapter. Callbacks (onData, ...) run on
// the transport's loop and hold mu only briefly; Read and Write wait on the
// conds. No transport method is called with mu held, so that a transport
// may take its own locks in them without ever waiting for a callback.
type netConn struct {
	tc           Conn // immutable
	lim          limits
	laddr, raddr net.Addr

	mu    sync.Mutex
	rcond sync.Cond // Read waits: input, EOF, close, read deadline
	wcond sync.Cond // Write waits: drain, the writer's turn, close, write deadline

	// Guarded by mu.
	buf        []byte // received, not yet read: buf[r:]
	r          int
	eof        bool  // the peer's FIN (OnReadEOF)
	readClosed bool  // CloseRead
	wroteFIN   bool  // CloseWrite
	done       bool  // OnClose has run
	err        error // OnClose's error
	closed     bool  // Close
	paused     bool  // the state last asked of the transport (PauseRead)
	pausing    bool  // a goroutine is calling PauseRead or ResumeRead
	drains     uint64
	writing    bool // a Write is in progress
	rdl, wdl   deadline
}

func newNetConn(tc Conn, lim limits) *netConn {
	c := &netConn{tc: tc, lim: lim, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr()}
	c.rcond.L = &c.mu
	c.wcond.L = &c.mu
	return c
}

// keepBuffer is the largest buffer kept for reuse once Reads emptied it.
const keepBuffer = 64 << 10

// onData copies in after the unread bytes, or drops it once the application
// stopped reading (Close, CloseRead).
func (c *netConn) onData(in []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.readClosed {
		return
	}
	if c.r > 0 && len(c.buf)+len(in) > cap(c.buf) {
		n := copy(c.buf, c.buf[c.r:])
		c.buf = c.buf[:n]
		c.r = 0
	}
	c.buf = append(c.buf, in...)
	c.rcond.Broadcast()
	c.syncPauseLocked()
}

func (c *netConn) onReadEOF() {
	c.mu.Lock()
	c.eof = true
	c.rcond.Broadcast()
	c.mu.Unlock()
}

func (c *netConn) onDrain() {
	c.mu.Lock()
	c.drains++
	c.wcond.Broadcast()
	c.mu.Unlock()
}

func (c *netConn) onClose(err error) {
	c.mu.Lock()
	c.done = true
	c.err = err
	c.rcond.Broadcast()
	c.wcond.Broadcast()
	c.mu.Unlock()
}

// wantPausedLocked says whether the transport should be paused: once the
// unread bytes pass MaxReadBuffer, until Reads take them down to half.
func (c *netConn) wantPausedLocked() bool {
	switch {
	case c.closed || c.done:
		return c.paused // the transport discards or is gone: leave it
	case c.readClosed:
		return false
	case c.paused:
		return len(c.buf)-c.r > c.lim.maxRead/2
	}
	return len(c.buf)-c.r > c.lim.maxRead
}

// syncPauseLocked brings the transport's read state to wantPausedLocked.
// One goroutine at a time calls the transport (pausing), without mu, and
// looks again afterwards, so the last state asked is the one wanted even
// when OnData and Read race. It may release and retake mu.
func (c *netConn) syncPauseLocked() {
	for !c.pausing {
		want := c.wantPausedLocked()
		if want == c.paused {
			return
		}
		c.paused = want
		c.pausing = true
		c.mu.Unlock()
		if want {
			c.tc.PauseRead()
		} else {
			c.tc.ResumeRead()
		}
		c.mu.Lock()
		c.pausing = false
	}
}

func (c *netConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.laddr.Network(), Source: c.laddr, Addr: c.raddr, Err: err}
}

// Read reads buffered input, waiting for some if there is none.
func (c *netConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, c.opError("read", net.ErrClosed)
		case len(p) == 0:
			return 0, nil
		case c.rdl.expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case c.readClosed:
			return 0, io.EOF
		case c.r < len(c.buf):
			n := copy(p, c.buf[c.r:])
			c.r += n
			if c.r == len(c.buf) {
				c.r = 0
				c.buf = c.buf[:0]
				if cap(c.buf) > keepBuffer {
					c.buf = nil
				}
			}
			c.syncPauseLocked()
			return n, nil
		case c.eof:
			return 0, io.EOF
		case c.done:
			if c.err == nil {
				return 0, io.EOF
			}
			if _, ok := c.err.(*net.OpError); ok {
				return 0, c.err // a reset, as the transport saw it
			}
			return 0, c.opError("read", c.err)
		}
		c.rcond.Wait()
	}
}

// Write enqueues p on the transport, at most MaxWriteBuffer -
// OutboundBuffered bytes at a time, waiting for OnDrain whenever the
// transport holds MaxWriteBuffer bytes or more. Concurrent Writes do not
// interleave. On a deadline or Close it returns the bytes enqueued so far
// (they are still sent).
func (c *netConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.writing && !c.closed && !c.wdl.expired {
		c.wcond.Wait()
	}
	n := 0
	for {
		switch {
		case c.closed:
			return n, c.opError("write", net.ErrClosed)
		case c.wdl.expired:
			return n, c.opError("write", os.ErrDeadlineExceeded)
		case c.wroteFIN:
			// As a TCPConn after CloseWrite, whether or not the transport
			// has closed the Conn since (after the peer's FIN too).
			return n, c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
		case n == len(p):
			return n, nil
		}
		if !c.writing {
			c.writing = true
			defer func() { // runs before the deferred Unlock
				c.writing = false
				c.wcond.Broadcast()
			}()
		}
		drains := c.drains
		c.mu.Unlock()
		chunk := max(c.lim.maxWrite-c.tc.OutboundBuffered(), 1)
		chunk = min(chunk, len(p)-n)
		_, err := c.tc.Write(p[n : n+chunk])
		full := err == nil && c.tc.OutboundBuffered() >= c.lim.maxWrite
		c.mu.Lock()
		if err != nil {
			return n, c.writeErrorLocked(err)
		}
		n += chunk
		if n == len(p) {
			return n, nil
		}
		// OnDrain comes once output falls to half of MaxWriteBuffer; drains
		// was read before this Write, so a drain it caused is not missed.
		for full && c.drains == drains && !c.done && !c.closed && !c.wdl.expired {
			c.wcond.Wait()
		}
	}
}

// writeErrorLocked returns what Write reports for err, the transport's
// Write error: the connection's failure where it had one (a reset), as the
// transport gave it, else err as a *net.OpError.
func (c *netConn) writeErrorLocked(err error) error {
	if _, ok := c.err.(*net.OpError); ok && c.done {
		return c.err // a reset, as the transport saw it
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return err
	}
	return c.opError("write", err)
}

// Close closes the connection as the transport's Conn.Close does (flush,
// FIN, linger) without waiting for it, and wakes blocked Reads and Writes.
func (c *netConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.buf, c.r = nil, 0
	c.stopTimersLocked()
	c.rcond.Broadcast()
	c.wcond.Broadcast()
	c.mu.Unlock()
	if err := c.tc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return c.opError("close", err)
	}
	return nil
}

// CloseWrite sends FIN once the output written so far is sent; reading goes
// on.
func (c *netConn) CloseWrite() error {
	c.mu.Lock()
	closed := c.closed
	c.wroteFIN = true
	c.wcond.Broadcast()
	c.mu.Unlock()
	if closed {
		return c.opError("close", net.ErrClosed)
	}
	if err := c.tc.CloseWrite(); err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return err
		}
		return c.opError("close", err)
	}
	return nil
}

// CloseRead makes later Reads return io.EOF; input that arrives is
// discarded.
func (c *netConn) CloseRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("close", net.ErrClosed)
	}
	c.readClosed = true
	c.buf, c.r = nil, 0
	c.rcond.Broadcast()
	c.syncPauseLocked()
	return nil
}

// LocalAddr returns the local address.
func (c *netConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address.
func (c *netConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines.
func (c *netConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	c.setDeadlineLocked(&c.rdl, &c.rcond, t)
	c.setDeadlineLocked(&c.wdl, &c.wcond, t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *netConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	c.setDeadlineLocked(&c.rdl, &c.rcond, t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *netConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	c.setDeadlineLocked(&c.wdl, &c.wcond, t)
	return nil
}

// setDeadlineLocked sets d to t (zero: none) and wakes cond's waiters when
// it passes, or at once if it has.
func (c *netConn) setDeadlineLocked(d *deadline, cond *sync.Cond, t time.Time) {
	d.at, d.expired = t, false
	if t.IsZero() {
		return // a timer still armed finds no deadline when it fires
	}
	wait := time.Until(t)
	switch {
	case wait <= 0:
		d.expired = true
		cond.Broadcast()
	case d.timer == nil:
		d.timer = time.AfterFunc(wait, func() { c.deadlineFired(d, cond) })
		d.armed = t
	case d.armed.IsZero() || t.Before(d.armed):
		d.timer.Reset(wait)
		d.armed = t
	}
}

// deadlineFired runs on d's timer: d has passed, or moved later since the
// timer was set.
func (c *netConn) deadlineFired(d *deadline, cond *sync.Cond) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.armed = time.Time{}
	if d.at.IsZero() || d.expired || c.closed {
		return
	}
	if wait := time.Until(d.at); wait > 0 {
		d.timer.Reset(wait)
		d.armed = d.at
		return
	}
	d.expired = true
	cond.Broadcast()
}

func (c *netConn) stopTimersLocked() {
	for _, d := range []*deadline{&c.rdl, &c.wdl} {
		if d.timer != nil {
			d.timer.Stop()
		}
		d.at, d.armed = time.Time{}, time.Time{}
	}
}
