package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
)

// readSize is the size of the pooled read buffers.
const readSize = 64 << 10

var readPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// aLongTimeAgo is a deadline in the past: setting it wakes a goroutine
// waiting to read.
var aLongTimeAgo = time.Unix(1, 0)

// The transport's own bits of a conn's core.State.
const (
	writing    = core.Own << iota // a goroutine holds the write token
	reading                       // the conn goroutine waits in a read
	timerDue                      // the timer ran out: the conn goroutine looks at the deadlines
	idleClosed                    // the idle timeout closed c: OnClose's nil becomes ErrIdleTimeout
)

// conn is one connection. Its goroutine (run) reads and runs every
// callback; the write token (the writing bit) lets one goroutine at a time
// call write(2): the conn goroutine right after a callback, or a writer
// goroutine while the socket is full or for writes made outside callbacks.
type conn struct {
	t       *Transport
	st      *transports.Counters // this connection's shard of t.stats
	nc      net.Conn
	rc      syscall.RawConn
	network string
	laddr   net.Addr
	raddr   net.Addr

	h        core.Handler
	opened   chan struct{} // closed once OnOpen has returned
	maxWrite int

	mu   sync.Mutex
	cond *sync.Cond // wakes the conn goroutine waiting for a state change

	// Guarded by mu.
	s            core.State
	out          []byte // pending output is out[head:]
	head         int
	killErr      error     // the conn is being torn down with this error (s has Killed)
	readDeadline time.Time // the deadline set on nc for reads
	dl           core.Deadlines
	timer        *time.Timer // runs fire; made when first armed
	armed        int64       // when timer runs out (core.Now's clock); 0: not armed

	// Owned by the write token's holder (read under mu by it alone).
	waiting bool // output waits for the kernel: Deadlines.Pending was called

	// Owned by the conn goroutine.
	kept core.Input // input offered and not consumed
	peek *[1]byte   // the probe's byte, off the stack
	ctx  any        // Context, owned by the callbacks
}

var _ transports.TimerConn = (*conn)(nil)

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
		h:        core.NewHandler(h),
		opened:   make(chan struct{}),
		maxWrite: t.cfg.MaxWriteBuffer,
		peek:     new([1]byte),
	}
	c.cond = sync.NewCond(&c.mu)
	return c, nil
}

func (c *conn) LocalAddr() net.Addr  { return c.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }
func (c *conn) Context() any         { return c.ctx }
func (c *conn) SetContext(v any)     { c.ctx = v }

func (c *conn) opError(op string, err error) error {
	return core.OpError(op, c.network, c.laddr, c.raddr, err)
}

// Write copies p into the output buffer. Inside a callback the flush
// happens when the callback returns; otherwise a writer goroutine starts.
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.s.WriteErr(); err != nil {
		c.mu.Unlock()
		return 0, c.opError("write", err)
	}
	c.out = append(c.out, p...)
	if len(c.out)-c.head >= c.maxWrite && !c.s.Has(core.BPPaused) {
		c.s |= core.BPPaused
		if !c.h.Duplex() {
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
	if c.s.Any(writing | core.InCallback | core.Killed | core.Closed) {
		return false
	}
	if len(c.out) == c.head && !c.s.ShutDue(true) {
		return false
	}
	c.s |= writing
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
		if c.s.Any(core.Killed | core.Closed) {
			c.s &^= writing
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
			c.waitingLocked()
			c.mu.Unlock()
			c.startWriter() // the token passes to it
			return
		case err != nil:
			c.s &^= writing
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
	if c.s.ShutDue(true) {
		c.s |= core.ShutSent
		c.mu.Unlock()
		err := c.nc.(interface{ CloseWrite() error }).CloseWrite()
		c.st.Syscalls.Add(1)
		c.mu.Lock()
		if err != nil && !c.s.Any(core.Killed|core.EOFSeen) {
			c.s &^= writing
			c.mu.Unlock()
			c.kill(err)
			return
		}
		c.s |= core.ShutDone
		c.lingerLocked(0)
		c.wakeLocked()
	}
	c.s &^= writing
	c.mu.Unlock()
}

// sentLocked accounts for n bytes taken by the kernel just now: the
// write-progress clock starts again (or stops), and reading resumes with
// OnDrain once output falls to half of MaxWriteBuffer. A write that
// returns after kill dropped the output (out and head reset) accounts for
// nothing: head would pass len(out), and OutboundBuffered go below 0.
//
// It reads the clock, if the limits need it, rather than take the read's
// time: bytes sent at the end of a long callback move then, and the idle
// clock must not count them as moving when their request arrived
// (conformance's idle-timeout-slow-callback).
func (c *conn) sentLocked(n int) {
	c.st.BytesOut.Add(uint64(n))
	if c.s.Any(core.Killed | core.Closed) {
		return
	}
	c.head += n
	if left := len(c.out) > c.head; c.waiting || c.t.lim.Idle > 0 {
		now := core.Now()
		c.waiting = c.waiting && left
		c.dl.Progress(now, c.waiting)
		c.armLocked(now)
	}
	if c.s.Has(core.BPPaused) && len(c.out)-c.head <= c.maxWrite/2 {
		c.s &^= core.BPPaused
		c.s |= core.OfferKept
		if c.h.HasDrain() {
			c.s |= core.DrainDue
		}
		c.wakeLocked()
	}
}

// waitingLocked records that output waits for the kernel (the socket is
// full): the write-progress clock starts, unless it runs already. Called
// by the write token's holder. It reads the clock: the socket is full,
// off the hot path, and a callback may have run since the last reading.
func (c *conn) waitingLocked() {
	if c.waiting || c.s.Any(core.Killed|core.Closed) {
		return
	}
	c.waiting = true
	now := core.Now()
	c.dl.Pending(now)
	c.armLocked(now)
}

var errWouldBlock = errors.New("sockets: write would block")

// write makes one write(2) of b (blocking: as many as it takes to write
// something). It returns errWouldBlock when !block and the socket is full;
// when block, the write-progress clock starts before it waits.
func (c *conn) write(b []byte, block bool) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := c.rc.Write(func(fd uintptr) bool {
		c.st.Syscalls.Add(1)
		n, errno = sysWrite(fd, b)
		if errno != syscall.EAGAIN || !block {
			return true
		}
		if !c.waiting {
			c.mu.Lock()
			c.waitingLocked()
			c.mu.Unlock()
		}
		return false
	})
	if errno != 0 {
		n = 0
	}
	switch {
	case err != nil:
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
	if err := c.s.CloseWriteErr(); err != nil {
		c.mu.Unlock()
		return c.opError("close", err)
	}
	c.s.CloseWrite()
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
	if c.s.Gone() {
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
	if !c.s.BeginClose() {
		return false
	}
	return c.closingLocked()
}

// closingLocked carries out a Close that core.State has begun (BeginClose,
// or the default close at the peer's FIN): the application's timer stops,
// the flush limit starts if output is pending, and the linger if our FIN
// is already out. It reports whether a writer must start.
func (c *conn) closingLocked() bool {
	c.dl.Closing()
	if len(c.out) > c.head || c.s.LingerDue() {
		now := core.Now()
		if len(c.out) > c.head {
			c.dl.StartFlush(now, c.t.lim)
		}
		c.lingerLocked(now)
		c.armLocked(now)
	}
	c.wakeLocked()
	return c.takeTokenLocked()
}

// lingerLocked starts the wait for the peer's FIN if it is due: Close sent
// our FIN and theirs has not come.
func (c *conn) lingerLocked(now int64) {
	if !c.s.LingerDue() {
		return
	}
	c.s |= core.Linger
	if now == 0 {
		now = core.Now()
	}
	c.dl.StartLinger(now, c.t.lim)
	c.armLocked(now)
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
	ok := c.killLocked(err)
	c.mu.Unlock()
	if ok {
		c.reset()
	}
	return ok
}

// killLocked records the teardown and wakes the conn goroutine; the
// caller closes the socket (reset), or the conn goroutine does in finish.
func (c *conn) killLocked(err error) bool {
	if !c.s.Kill() {
		return false
	}
	c.killErr = err
	c.out, c.head = nil, 0
	c.stopTimerLocked()
	c.wakeLocked()
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
	if !c.s.Has(core.AppPaused) {
		c.s |= core.AppPaused
		c.st.ReadPauses.Add(1)
	}
	c.mu.Unlock()
}

func (c *conn) ResumeRead() {
	c.mu.Lock()
	if c.s.Has(core.AppPaused) {
		c.s &^= core.AppPaused
		c.s |= core.OfferKept
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// SetTimer sets the application's timer (transports.TimerConn): OnTimer
// runs on the conn goroutine d from now. After Close or Abort it does
// nothing: they stopped the timer for good.
func (c *conn) SetTimer(d time.Duration) {
	if !c.h.HasTimer() {
		return
	}
	c.mu.Lock()
	if !c.s.Any(core.Closing | core.Killed | core.Closed) {
		now := core.Now()
		c.dl.SetApp(now, d)
		c.armLocked(now)
	}
	c.mu.Unlock()
}

// armLocked sets the timer if a deadline runs out before it does.
func (c *conn) armLocked(now int64) {
	at, ok := c.dl.Arm(c.armed, c.t.lim)
	if !ok {
		return
	}
	c.armed = at
	if c.timer == nil {
		c.timer = time.AfterFunc(time.Duration(at-now), c.fire)
	} else {
		c.timer.Reset(time.Duration(at - now))
	}
}

func (c *conn) stopTimerLocked() {
	c.dl.Stop()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.armed = 0
}

// fire runs when the timer runs out, on the runtime's timer goroutine: it
// asks the conn goroutine to look at the deadlines.
func (c *conn) fire() {
	c.mu.Lock()
	c.armed = 0
	if !c.s.Any(core.Killed | core.Closed) {
		c.s |= timerDue
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// requestShutdown asks the conn goroutine to run OnShutdown (or Close).
func (c *conn) requestShutdown() {
	c.mu.Lock()
	if !c.s.Any(core.Closing | core.Killed | core.Closed) {
		c.s |= core.ShutdownDue
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// wakeLocked wakes the conn goroutine to look at its state again: out of
// a wait on cond, or out of a read by moving the read deadline to the
// past. Both sides hold mu, so no wake-up is lost.
func (c *conn) wakeLocked() {
	c.cond.Broadcast()
	if c.s.Has(reading) {
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
	id := core.GoID()
	c.t.addLoop(id)
	defer c.t.removeLoop(id)

	c.mu.Lock()
	c.s |= core.InCallback
	if c.t.lim.Idle > 0 {
		now := core.Now()
		c.dl.Opened(now)
		c.armLocked(now)
	}
	c.mu.Unlock()
	c.callback(core.OnOpen)
	close(c.opened)
	c.finish(c.loop())
}

// loop runs until c must close, and returns OnClose's error.
func (c *conn) loop() error {
	c.mu.Lock()
	for {
		if c.s.Has(core.Killed) {
			err := c.killErr
			c.mu.Unlock()
			return err
		}
		if c.s.Has(timerDue) {
			c.s &^= timerDue
			c.expireLocked()
			continue
		}
		if c.s.Has(core.DrainDue) {
			c.s &^= core.DrainDue
			if !c.s.Has(core.Closing) {
				c.callbackLocked(core.OnDrain)
				continue
			}
		}
		if c.s.Has(core.ShutdownDue) {
			c.s &^= core.ShutdownDue
			if !c.h.HasShutdown() {
				if c.closeLocked() {
					c.mu.Unlock()
					c.startWriter()
					c.mu.Lock()
				}
				continue
			}
			c.callbackLocked(core.OnShutdown)
			continue
		}
		if c.s.Has(core.EOFSeen) {
			if c.eofLocked() {
				c.mu.Unlock()
				return nil
			}
			continue
		}
		if c.s.Has(core.Closing) {
			if err := c.discardLocked(); err != nil {
				c.mu.Unlock()
				return err
			}
			continue
		}
		if !c.s.Readable(c.h.Duplex()) {
			c.cond.Wait()
			continue
		}
		if c.s.Has(core.OfferKept) {
			c.s &^= core.OfferKept
			if c.kept.Len() > 0 {
				c.s |= core.InCallback
				c.mu.Unlock()
				c.deliver(nil)
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

// eofLocked runs one step of the rules of the peer's FIN (core's
// EOFStep), or waits; the loop looks at the state again in between, as
// a last OnData may pause, close or abort. It reports whether the
// connection has ended in order. Called and returns with mu held.
func (c *conn) eofLocked() bool {
	switch c.s.EOFStep(&c.kept, c.h.HasReadEOF(), c.h.Duplex()) {
	case core.EOFWait:
		c.cond.Wait() // the FIN's rules wait for reading to resume
	case core.EOFOffer:
		c.s |= core.InCallback
		c.mu.Unlock()
		c.deliver(nil)
		c.mu.Lock()
	case core.EOFCallback:
		c.callbackLocked(core.OnReadEOF)
	case core.EOFClose:
		if c.closingLocked() {
			c.mu.Unlock()
			c.startWriter()
			c.mu.Lock()
		}
	case core.EOFDiscard:
	case core.EOFNone:
		// Nothing more to read: wait for our FIN to go out (CloseWrite,
		// Close, the default close) or for the application.
		if c.s.OrderlyEnd() {
			return true
		}
		c.cond.Wait()
	}
	return false
}

// expireLocked acts on the deadlines that have run out, then sets the
// timer for the next. Called on the conn goroutine, with mu held.
func (c *conn) expireLocked() {
	now := core.Now()
	l := c.t.lim
	for {
		e := c.dl.Expired(now, l)
		if op, err := l.Fatal(e); err != nil {
			c.killLocked(c.opError(op, err))
			return
		}
		switch e {
		case core.ExpNone:
			c.armLocked(now)
			return
		case core.ExpIdle:
			if !c.s.Has(core.Closing) {
				c.s |= idleClosed
				if c.closeLocked() {
					c.mu.Unlock()
					c.startWriter()
					c.mu.Lock()
				}
			}
		case core.ExpApp:
			c.s |= timerDue // the rest, and the timer, after OnTimer
			c.callbackLocked(core.OnTimer)
			return
		}
	}
}

// readLocked waits for input and delivers it (or keeps it, if reading was
// paused meanwhile); at the peer's FIN it sets EOFSeen, whose rules the
// loop runs. Called and returns with mu held.
func (c *conn) readLocked() error {
	c.s |= reading
	c.setReadDeadlineLocked(time.Time{})
	c.mu.Unlock()
	buf, n, err := c.read()
	c.mu.Lock()
	c.s &^= reading
	switch {
	case err == errWoken:
		return nil
	case err != nil:
		if c.s.Has(core.Killed) {
			return c.killErr // the error that tore c down wins
		}
		return err
	case n == 0:
		c.s |= core.EOFSeen // the loop runs the FIN's rules when reading is allowed
		return nil
	}
	if c.t.lim.Idle > 0 {
		c.dl.Moved(core.Now())
	}
	data := (*buf)[:n]
	if c.s.Has(core.Closing) || !c.s.Readable(c.h.Duplex()) {
		// Paused (or closing) while the read was under way.
		if !c.s.Has(core.Closing) {
			c.kept.Keep(data)
		}
		readPool.Put(buf)
		return nil
	}
	c.s |= core.InCallback
	c.mu.Unlock()
	c.deliver(data)
	readPool.Put(buf)
	c.mu.Lock()
	return nil
}

// discardLocked reads and drops input while closing, until the peer's FIN
// (or a wake-up: the timer ends the linger). Called and returns with mu
// held.
func (c *conn) discardLocked() error {
	c.s |= reading
	c.setReadDeadlineLocked(time.Time{})
	c.mu.Unlock()
	buf, n, err := c.read()
	if buf != nil {
		readPool.Put(buf)
	}
	c.mu.Lock()
	c.s &^= reading
	switch {
	case err == errWoken:
		return nil
	case err != nil:
		if c.s.Has(core.Killed) {
			return c.killErr
		}
		return err
	case n == 0:
		c.s |= core.EOFSeen
	}
	return nil
}

var errWoken = errors.New("sockets: woken")

// read waits until the socket is readable, probing with a 1-byte peek so
// that no buffer is held while waiting, then reads into a pooled buffer.
// It returns n == 0 at the peer's FIN, and errWoken when the wait was cut
// short by a wake-up.
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

// deliver runs OnData with data, just read, after the kept bytes (nil:
// the kept bytes alone) through core's input rules, then flushes what it
// wrote. The caller has set InCallback.
func (c *conn) deliver(data []byte) {
	if err := c.h.Deliver(c, &c.t.log, &c.kept, data, c.t.cfg.MaxReadBuffer); err != nil {
		c.kill(err)
	}
	c.afterCallback()
}

// callbackLocked runs cb with mu released. Called and returns with mu held.
func (c *conn) callbackLocked(cb core.Callback) {
	c.s |= core.InCallback
	c.mu.Unlock()
	c.callback(cb)
	c.mu.Lock()
}

// callback runs one of c's callbacks other than OnData and OnClose;
// InCallback is set by the caller.
func (c *conn) callback(cb core.Callback) {
	if err := c.h.Call(c, cb, &c.t.log); err != nil {
		c.kill(err)
	}
	c.afterCallback()
}

// afterCallback ends a callback: the output it wrote is flushed now, with
// one write(2) if the socket takes it all.
func (c *conn) afterCallback() {
	c.mu.Lock()
	c.s &^= core.InCallback
	start := c.takeTokenLocked()
	c.mu.Unlock()
	if start {
		c.flush(false)
	}
}

// finish closes the socket and runs OnClose. A nil err is an orderly
// close (ErrIdleTimeout if the idle timeout began it); any other tears
// the connection down with RST.
func (c *conn) finish(err error) {
	c.mu.Lock()
	c.s |= core.Closed
	c.out, c.head = nil, 0
	c.stopTimerLocked()
	idle := c.s.Has(idleClosed)
	c.mu.Unlock()
	c.kept = core.Input{}
	if err != nil {
		c.reset()
	} else {
		c.nc.Close()
		if idle {
			err = core.IdleTimeout(c.t.lim.Idle)
		}
	}
	c.h.Closed(c, err, &c.t.log)
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
