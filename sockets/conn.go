package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// readSize is the size of the pooled read buffers.
const readSize = 64 << 10

var readPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// aLongTimeAgo is a deadline in the past: setting it wakes a goroutine
// waiting to read.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one connection. Its goroutine (run) reads and runs every
// callback; the write token (writing) lets one goroutine at a time call
// write(2): the conn goroutine right after a callback, or a writer
// goroutine while the socket is full or for writes made outside callbacks.
type conn struct {
	t       *Transport
	st      *transports.Counters // this connection's shard of t.stats
	nc      net.Conn
	rc      syscall.RawConn
	network string
	laddr   net.Addr
	raddr   net.Addr

	h        transports.Handler
	onEOF    transports.ReadEOFHandler // nil: close at the peer's FIN
	onDrain  transports.DrainHandler
	onShut   transports.ShutdownHandler
	opened   chan struct{} // closed once OnOpen has returned
	maxWrite int

	mu   sync.Mutex
	cond *sync.Cond // wakes the conn goroutine waiting for a state change

	// Output, guarded by mu.
	out      []byte // pending output is out[head:]
	head     int
	writing  bool // a goroutine holds the write token
	wrClosed bool // CloseWrite or Close was called: no more Write
	wantShut bool // send FIN once output is flushed
	shutDone bool // FIN sent

	// Input and life cycle, guarded by mu.
	appPaused    bool      // PauseRead
	bpPaused     bool      // output reached MaxWriteBuffer
	duplex       bool      // FullDuplexHandler: bpPaused does not stop reading
	offerKept    bool      // reading resumed: offer kept bytes at once
	closing      bool      // Close (or the default close at FIN) began
	lingerUntil  time.Time // after FIN sent while closing: wait for the peer's FIN until then
	eofSeen      bool      // the peer's FIN was read
	eofOffered   bool      // ... and the kept bytes were offered once more
	eofDone      bool      // ... and OnReadEOF (or the default close) has had its turn
	shutdownReq  bool      // Transport.Shutdown asks for OnShutdown
	drainPending bool      // OnDrain is due
	killErr      error     // the conn is being torn down with this error
	closed       bool      // OnClose has begun
	inCallback   bool      // the conn goroutine is in a callback
	reading      bool      // the conn goroutine waits in a read
	readDeadline time.Time // the deadline set on nc for reads

	// Owned by the conn goroutine.
	kept []byte   // input offered and not consumed
	peek *[1]byte // the probe's byte, off the stack
	ctx  any      // Context, owned by the callbacks
}

func newConn(t *Transport, nc net.Conn, network string, h transports.Handler) (*conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("sockets: %T has no raw descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &conn{
		t:        t,
		st:       &t.stats[t.nextShard.Add(1)%statShards],
		nc:       nc,
		rc:       rc,
		network:  network,
		laddr:    nc.LocalAddr(),
		raddr:    nc.RemoteAddr(),
		h:        h,
		opened:   make(chan struct{}),
		maxWrite: t.cfg.MaxWriteBuffer,
		peek:     new([1]byte),
	}
	c.onEOF, _ = h.(transports.ReadEOFHandler)
	c.onDrain, _ = h.(transports.DrainHandler)
	c.onShut, _ = h.(transports.ShutdownHandler)
	if d, ok := h.(transports.FullDuplexHandler); ok {
		c.duplex = d.FullDuplex()
	}
	c.cond = sync.NewCond(&c.mu)
	return c, nil
}

func (c *conn) LocalAddr() net.Addr  { return c.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }
func (c *conn) Context() any         { return c.ctx }
func (c *conn) SetContext(v any)     { c.ctx = v }

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
}

// Write copies p into the output buffer. Inside a callback the flush
// happens when the callback returns; otherwise a writer goroutine starts.
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed || c.killErr != nil || c.closing {
		c.mu.Unlock()
		return 0, c.opError("write", net.ErrClosed)
	}
	if c.wrClosed {
		c.mu.Unlock()
		return 0, c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
	}
	c.out = append(c.out, p...)
	if len(c.out)-c.head >= c.maxWrite && !c.bpPaused {
		c.bpPaused = true
		if !c.duplex {
			c.st.ReadPauses.Add(1)
		}
	}
	start := c.takeTokenLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
	return len(p), nil
}

// takeTokenLocked takes the write token for a writer goroutine if there is
// work (output or a FIN) and neither a writer nor a callback (which
// flushes when it returns) holds it.
func (c *conn) takeTokenLocked() bool {
	if c.writing || c.inCallback || c.killErr != nil || c.closed {
		return false
	}
	if len(c.out) == c.head && (!c.wantShut || c.shutDone) {
		return false
	}
	c.writing = true
	return true
}

func (c *conn) startWriter() {
	c.t.wg.Add(1) // c's goroutine is alive, so the count is above zero
	go func() {
		defer c.t.wg.Done()
		c.flush(true)
	}()
}

// OutboundBuffered returns the bytes written and not yet taken by the
// kernel.
func (c *conn) OutboundBuffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.out) - c.head
}

// flush writes pending output while holding the write token, then sends a
// FIN if one is due, and releases the token. With block false (the conn
// goroutine after a callback) it hands the token to a writer goroutine as
// soon as the socket is full instead of waiting.
func (c *conn) flush(block bool) {
	c.mu.Lock()
	for {
		if c.killErr != nil || c.closed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		if c.head == len(c.out) {
			break
		}
		if c.head >= 4096 && c.head >= len(c.out)/2 {
			// Reclaim what was sent; only the token holder reads out.
			c.out = c.out[:copy(c.out, c.out[c.head:])]
			c.head = 0
		}
		b := c.out[c.head:]
		c.mu.Unlock()
		n, err := c.write(b, block)
		c.mu.Lock()
		if n > 0 {
			c.sentLocked(n)
		}
		switch {
		case err == errWouldBlock:
			c.mu.Unlock()
			c.startWriter() // the token passes to it
			return
		case err != nil:
			c.writing = false
			c.mu.Unlock()
			c.kill(err)
			return
		}
	}
	// Everything is sent.
	if cap(c.out) > readSize {
		c.out = nil // do not hold a large buffer for an idle connection
	} else {
		c.out = c.out[:0]
	}
	c.head = 0
	if c.wantShut && !c.shutDone {
		c.mu.Unlock()
		err := c.nc.(interface{ CloseWrite() error }).CloseWrite()
		c.st.Syscalls.Add(1)
		c.mu.Lock()
		if err != nil && c.killErr == nil && !c.eofSeen {
			c.writing = false
			c.mu.Unlock()
			c.kill(err)
			return
		}
		c.shutDone = true
		c.lingerUntil = time.Now().Add(c.t.cfg.CloseLinger)
		c.wakeLocked()
	}
	c.writing = false
	c.mu.Unlock()
}

// sentLocked accounts for n bytes taken by the kernel, and resumes reading
// with OnDrain once output falls to half of MaxWriteBuffer. A write that
// returns after kill dropped the output (out and head reset) accounts
// for nothing: head would pass len(out), and OutboundBuffered go below 0.
func (c *conn) sentLocked(n int) {
	c.st.BytesOut.Add(uint64(n))
	if c.killErr != nil || c.closed {
		return
	}
	c.head += n
	if c.bpPaused && len(c.out)-c.head <= c.maxWrite/2 {
		c.bpPaused = false
		c.offerKept = true
		c.drainPending = c.onDrain != nil
		c.wakeLocked()
	}
}

var errWouldBlock = errors.New("sockets: write would block")

// write makes one write(2) of b (blocking: as many as it takes to write
// something). It returns errWouldBlock when !block and the socket is full.
func (c *conn) write(b []byte, block bool) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := c.rc.Write(func(fd uintptr) bool {
		c.st.Syscalls.Add(1)
		n, errno = sysWrite(fd, b)
		return !block || errno != syscall.EAGAIN
	})
	if errno != 0 {
		n = 0
	}
	switch {
	case err != nil:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, c.opError("close", fmt.Errorf("output not flushed within CloseTimeout %v: %w", c.t.cfg.CloseTimeout, os.ErrDeadlineExceeded))
		}
		return n, c.opError("write", err)
	case errno == syscall.EAGAIN:
		return 0, errWouldBlock
	case errno != 0:
		return 0, c.opError("write", os.NewSyscallError("write", errno))
	}
	c.st.Writes.Add(1)
	return n, nil
}

// CloseWrite flushes output, then sends FIN; reading goes on.
func (c *conn) CloseWrite() error {
	c.mu.Lock()
	if c.closed || c.killErr != nil || c.closing {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.wrClosed = true
	c.wantShut = true
	start := c.takeTokenLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
	return nil
}

// Close stops input, flushes output (for at most CloseTimeout), sends FIN,
// and closes once the peer's FIN arrives (or CloseLinger passes).
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed || c.killErr != nil {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	start := c.closeLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
	return nil
}

// closeLocked begins Close and reports whether a writer must start.
func (c *conn) closeLocked() bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.wrClosed = true
	c.wantShut = true
	if len(c.out) > c.head {
		c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.CloseTimeout))
	}
	c.wakeLocked()
	return c.takeTokenLocked()
}

// Abort drops pending output and resets the connection.
func (c *conn) Abort() error {
	if !c.kill(transports.ErrAborted) {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// kill tears c down with err: pending output is dropped and the socket is
// closed at once, with RST on TCP. The conn goroutine then calls OnClose
// with err. It reports false if c was already being torn down.
func (c *conn) kill(err error) bool {
	c.mu.Lock()
	if c.closed || c.killErr != nil {
		c.mu.Unlock()
		return false
	}
	c.killErr = err
	c.out, c.head = nil, 0
	c.wakeLocked()
	c.mu.Unlock()
	c.reset()
	return true
}

// reset closes the socket; on TCP with SO_LINGER 0, so the peer sees RST.
func (c *conn) reset() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.nc.Close()
}

func (c *conn) PauseRead() {
	c.mu.Lock()
	if !c.appPaused {
		c.appPaused = true
		c.st.ReadPauses.Add(1)
	}
	c.mu.Unlock()
}

func (c *conn) ResumeRead() {
	c.mu.Lock()
	if c.appPaused {
		c.appPaused = false
		c.offerKept = true
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// requestShutdown asks the conn goroutine to run OnShutdown (or Close).
func (c *conn) requestShutdown() {
	c.mu.Lock()
	if !c.closed && c.killErr == nil && !c.closing {
		c.shutdownReq = true
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// wakeLocked wakes the conn goroutine to look at its state again: out of
// a wait on cond, or out of a read by moving the read deadline to the
// past. Both sides hold mu, so no wake-up is lost.
func (c *conn) wakeLocked() {
	c.cond.Broadcast()
	if c.reading {
		c.setReadDeadlineLocked(aLongTimeAgo)
	}
}

func (c *conn) setReadDeadlineLocked(d time.Time) {
	if !d.Equal(c.readDeadline) {
		c.nc.SetReadDeadline(d)
		c.readDeadline = d
	}
}

// run is the conn goroutine: OnOpen, the read loop, OnClose.
func (c *conn) run() {
	defer c.t.wg.Done()
	id := goid()
	c.t.addLoop(id)
	defer c.t.removeLoop(id)

	c.mu.Lock()
	c.inCallback = true
	c.mu.Unlock()
	c.callback("OnOpen", c.h.OnOpen)
	close(c.opened)
	c.finish(c.loop())
}

// loop runs until c must close, and returns OnClose's error.
func (c *conn) loop() error {
	c.mu.Lock()
	for {
		if c.killErr != nil {
			err := c.killErr
			c.mu.Unlock()
			return err
		}
		if c.drainPending {
			c.drainPending = false
			if !c.closing {
				c.inCallback = true
				c.mu.Unlock()
				c.callback("OnDrain", c.onDrain.OnDrain)
				c.mu.Lock()
				continue
			}
		}
		if c.shutdownReq {
			c.shutdownReq = false
			if !c.closing {
				if c.onShut == nil {
					if c.closeLocked() {
						c.mu.Unlock()
						c.startWriter()
						c.mu.Lock()
					}
					continue
				}
				c.inCallback = true
				c.mu.Unlock()
				c.callback("OnShutdown", c.onShut.OnShutdown)
				c.mu.Lock()
				continue
			}
		}
		if c.eofSeen && !c.eofDone {
			switch {
			case c.closing:
				// Close came first (an Abort ends the loop above): the
				// kept bytes are discarded.
				c.kept = nil
				c.eofDone = true
			case c.appPaused || (c.bpPaused && !c.duplex):
				c.cond.Wait() // the FIN's rules wait for reading to resume
			default:
				c.readEOFLocked()
			}
			continue
		}
		if c.eofSeen {
			// Nothing more to read: wait for our FIN to go out (CloseWrite,
			// Close, the default close) or for the application.
			if c.shutDone {
				c.mu.Unlock()
				return nil
			}
			c.cond.Wait()
			continue
		}
		if c.closing {
			if err := c.discardLocked(); err != nil {
				c.mu.Unlock()
				return err
			}
			continue
		}
		if c.appPaused || (c.bpPaused && !c.duplex) {
			c.cond.Wait()
			continue
		}
		if c.offerKept {
			c.offerKept = false
			if len(c.kept) > 0 {
				c.inCallback = true
				c.mu.Unlock()
				c.deliver(c.kept, true)
				c.mu.Lock()
				continue
			}
		}
		if err := c.readLocked(); err != nil {
			c.mu.Unlock()
			return err
		}
	}
}

// readLocked waits for input and delivers it (or keeps it, if reading was
// paused meanwhile); at the peer's FIN it runs the FIN rules. Called and
// returns with mu held.
func (c *conn) readLocked() error {
	c.reading = true
	c.setReadDeadlineLocked(time.Time{})
	c.mu.Unlock()
	buf, n, err := c.read()
	c.mu.Lock()
	c.reading = false
	switch {
	case err == errWoken:
		return nil
	case err != nil:
		if c.killErr != nil {
			return c.killErr // the error that tore c down wins
		}
		return err
	case n == 0:
		c.eofSeen = true // the loop runs the FIN's rules when reading is allowed
		return nil
	}
	in := (*buf)[:n]
	if len(c.kept) > 0 {
		c.kept = append(c.kept, in...)
		in = c.kept
		readPool.Put(buf)
		buf = nil
	}
	if c.killErr != nil || c.closing || c.appPaused || (c.bpPaused && !c.duplex) {
		// Paused (or closing) while the read was under way.
		if !c.closing && len(c.kept) == 0 {
			c.kept = append(c.kept, in...)
		}
		if buf != nil {
			readPool.Put(buf)
		}
		return nil
	}
	c.inCallback = true
	c.mu.Unlock()
	c.deliver(in, buf == nil)
	if buf != nil {
		readPool.Put(buf)
	}
	c.mu.Lock()
	return nil
}

// readEOFLocked runs the rules of the peer's FIN, once the FIN has been
// read and reading is allowed (not paused, not closing): kept bytes are
// offered once more, then OnReadEOF runs, or the connection closes as
// Close does. Each step is one turn of the loop, which looks at the state
// again in between: the last OnData may pause, close or abort. Called and
// returns with mu held.
func (c *conn) readEOFLocked() {
	if len(c.kept) > 0 && !c.eofOffered {
		c.eofOffered = true
		c.inCallback = true
		c.mu.Unlock()
		c.deliver(c.kept, true)
		c.mu.Lock()
		c.kept = nil
		return
	}
	c.kept = nil
	c.eofDone = true
	if c.onEOF != nil {
		c.inCallback = true
		c.mu.Unlock()
		c.callback("OnReadEOF", c.onEOF.OnReadEOF)
		c.mu.Lock()
		return
	}
	if c.closeLocked() {
		c.mu.Unlock()
		c.startWriter()
		c.mu.Lock()
	}
}

// discardLocked reads and drops input while closing, until the peer's FIN
// or, once our FIN is out, CloseLinger. Called and returns with mu held.
func (c *conn) discardLocked() error {
	var deadline time.Time
	if c.shutDone {
		deadline = c.lingerUntil
	}
	c.reading = true
	c.setReadDeadlineLocked(deadline)
	c.mu.Unlock()
	buf, n, err := c.read()
	if buf != nil {
		readPool.Put(buf)
	}
	c.mu.Lock()
	c.reading = false
	switch {
	case err == errWoken:
		if c.shutDone && c.killErr == nil && !time.Now().Before(c.lingerUntil) {
			return c.opError("close", fmt.Errorf("no FIN from the peer within CloseLinger %v: %w", c.t.cfg.CloseLinger, os.ErrDeadlineExceeded))
		}
		return nil
	case err != nil:
		if c.killErr != nil {
			return c.killErr
		}
		return err
	case n == 0:
		c.eofSeen = true
	}
	return nil
}

var errWoken = errors.New("sockets: woken")

// read waits until the socket is readable, probing with a 1-byte peek so
// that no buffer is held while waiting, then reads into a pooled buffer.
// It returns n == 0 at the peer's FIN, and errWoken when the wait was cut
// short by a wake-up (or the linger deadline).
func (c *conn) read() (buf *[]byte, n int, err error) {
	var (
		errno  syscall.Errno
		waited bool
	)
	st := c.st
	rerr := c.rc.Read(func(fd uintptr) bool {
		if waited {
			st.Wakeups.Add(1)
			st.Events.Add(1)
		}
		var m int
		for {
			st.Syscalls.Add(1)
			if m, errno = peek(fd, &c.peek[0]); errno != syscall.EINTR {
				break
			}
		}
		switch {
		case errno == syscall.EAGAIN:
			waited = true
			return false
		case errno != 0 || m == 0:
			return true // an error, or FIN
		}
		buf = readPool.Get().(*[]byte)
		for {
			st.Syscalls.Add(1)
			if n, errno = sysRead(fd, *buf); errno != syscall.EINTR {
				break
			}
		}
		if errno != 0 {
			readPool.Put(buf)
			buf = nil
			return errno != syscall.EAGAIN
		}
		return true
	})
	switch {
	case rerr != nil:
		if buf != nil {
			readPool.Put(buf)
		}
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			return nil, 0, errWoken
		}
		return nil, 0, c.opError("read", rerr)
	case errno != 0:
		return nil, 0, c.opError("read", os.NewSyscallError("read", errno))
	}
	if n > 0 {
		st.Reads.Add(1)
		st.BytesIn.Add(uint64(n))
	}
	return buf, n, nil
}

// deliver runs OnData with in, then keeps what it did not consume. kept
// says in is c.kept. inCallback is set by the caller.
func (c *conn) deliver(in []byte, kept bool) {
	n, ok := c.onData(in)
	switch {
	case !ok:
		// Panicked: c is being killed.
		c.kept = nil
	case n < 0 || n > len(in):
		c.kept = nil
		c.kill(transports.CountError(n, len(in)))
	case n == len(in):
		c.kept = nil
	case kept:
		c.kept = c.kept[:copy(c.kept, in[n:])]
	default:
		c.kept = append(c.kept[:0], in[n:]...)
	}
	if len(c.kept) > c.t.cfg.MaxReadBuffer {
		c.kill(transports.InputLimitError(len(c.kept), c.t.cfg.MaxReadBuffer))
		c.kept = nil
	}
	c.afterCallback()
}

// onData calls OnData, recovering a panic (ok false).
func (c *conn) onData(in []byte) (n int, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked("OnData", v)
			ok = false
		}
	}()
	return c.h.OnData(c, in), true
}

// callback runs one of c's callbacks other than OnData and OnClose.
// inCallback is set by the caller.
func (c *conn) callback(name string, f func(transports.Conn)) {
	defer c.afterCallback()
	defer func() {
		if v := recover(); v != nil {
			c.panicked(name, v)
		}
	}()
	f(c)
}

func (c *conn) panicked(name string, v any) {
	c.t.cfg.Logger.Error("sockets: callback panicked; aborting the connection",
		"callback", name, "panic", v, "remote", c.raddr, "stack", string(debug.Stack()))
	c.kill(transports.PanicError(name, v))
}

// afterCallback ends a callback: the output it wrote is flushed now, with
// one write(2) if the socket takes it all.
func (c *conn) afterCallback() {
	c.mu.Lock()
	c.inCallback = false
	start := c.takeTokenLocked()
	c.mu.Unlock()
	if start {
		c.flush(false)
	}
}

// finish closes the socket and runs OnClose. A nil err is an orderly
// close; any other tears the connection down with RST.
func (c *conn) finish(err error) {
	c.mu.Lock()
	c.closed = true
	c.out, c.head = nil, 0
	c.kept = nil
	c.mu.Unlock()
	if err != nil {
		c.reset()
	} else {
		c.nc.Close()
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				c.t.cfg.Logger.Error("sockets: OnClose panicked", "panic", v, "remote", c.raddr, "stack", string(debug.Stack()))
			}
		}()
		c.h.OnClose(c, err)
	}()
	c.t.removeConn(c)
}

// sysRead and sysWrite are read(2) and write(2) returning a bare Errno.
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
