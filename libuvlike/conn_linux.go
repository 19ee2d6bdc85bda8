package libuvlike

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
)

// conn is one connection: a TCP handle on its loop, and the contract's
// rules, from internal/core, on top of it.
//
// The loop's goroutine owns almost all of it. A Conn method called there
// (from any callback of the loop) acts at once, without a lock: it finds
// out where it runs with core.G, which costs a nanosecond. A method called
// from another goroutine records its work under mu (output in fout,
// commands in cmds) and wakes the loop, which applies it; what it must
// answer at once (Write's error, the closes') it reads from st, the bits
// of state the loop publishes, and sets there the bits its own call adds.
type conn struct {
	// The fields the hot path touches come first, to share as few cache
	// lines as possible: after a system call, each line touched again may
	// have to come back from farther away.

	state core.State    // owned by the loop; the transport's own bits are the cf* bits
	st    atomic.Uint32 // the pubBits of state, for other goroutines: what Write and the closes answer
	hold  atomic.Uint32 // 1 while commands that stop OnData or set the timer wait for the loop
	el    *evloop
	out   []byte // written, not yet handed to the kernel; owned by the loop
	// Output not yet taken by the kernel is obLoop (owned by the loop: its
	// writes, and other goroutines' once taken) plus fob (other
	// goroutines' writes still in fout). obPub is obLoop as last published
	// for other goroutines: the loop publishes it when its output falls
	// (after a write), so it is never above the truth for long, and may
	// lag below it; in the common case, a flush that takes everything,
	// the published 0 stays right and no atomic store is made.
	obLoop int64
	fob    atomic.Int64
	obPub  atomic.Int64
	kept   core.Input // input offered and not consumed; owned by the loop
	h      core.Handler
	reqBuf [2][]byte // the write requests' buffers as submitted, to recycle; owned by the loop
	tcp    TCP

	network string
	laddr   net.Addr
	raddr   net.Addr

	mu         sync.Mutex    // guards the fields below
	fout       []byte        // output written by other goroutines, not yet taken by the loop
	cmds       uint32        // commands from other goroutines
	wantPaused bool          // PauseRead (true) or ResumeRead (false), from another goroutine
	wantTimer  time.Duration // SetTimer's setting, from another goroutine
	posted     bool          // queued on the loop's list

	// Owned by the loop's goroutine.
	spare []byte       // an empty buffer for out
	reqs  [2]WriteReq  // at most two writes in flight, gathered by one writev
	iovs  [2][1][]byte // their buffers
	seen  [2]int       // what the reactor had written of each request at the last look (noteProgress)
	shut  ShutdownReq
	dl    core.Deadlines // c's time limits, on timer
	timer Timer          // the one timer behind dl, armed only when dl.Arm says so
	err   error          // OnClose's (an idle close's, until a failure replaces it)
	ctx   any            // Context, owned by the callbacks

	// The callbacks given to the reactor, made once (the read path's are
	// connAlloc and connRead).
	writeCb WriteFunc
	shutCb  ShutdownFunc
	closeCb CloseFunc
	timerCb func(*Timer)
}

// pubBits are the bits of conn.state that conn.st mirrors: every one of
// them makes Write fail.
const pubBits = core.WrClosed | core.Closing | core.Killed | core.Closed

// The bits of conn.cmds.
const (
	cmdWrite      = 1 << iota // fout has bytes
	cmdLimit                  // a Write reached MaxWriteBuffer
	cmdPause                  // PauseRead or ResumeRead: apply wantPaused
	cmdResume                 // ResumeRead: offer kept bytes
	cmdCloseWrite             // CloseWrite
	cmdClose                  // Close
	cmdAbort                  // Abort
	cmdTimer                  // SetTimer: apply wantTimer
)

// The transport's own bits of conn.state. Of core's, ShutSent means the
// shutdown request is queued, ShutDone that it has completed, and Closed
// that the socket is closing, OnClose coming in the loop's closing phase.
const (
	cfDirty    = core.Own << iota // on the loop's list of connections to flush
	cfDeferred                    // on the loop's list of connections with kept bytes (or a FIN's rules) due
	cfOutTail                     // out is the unwritten tail of a buffer larger than maxSpare
	cfReqTail                     // reqBuf[0] is such a tail
	_                             // cfReqTail<<1: reqBuf[1] is such a tail
)

// maxSpare bounds the output buffer a connection keeps for reuse; larger
// ones go back to the garbage collector once written. The tail of a larger
// one, left by a short write, is not kept either, whatever its own
// capacity: it would hold the whole buffer.
const maxSpare = 256 << 10

var _ transports.TimerConn = (*conn)(nil)

func newConn(el *evloop, h transports.Handler, network string) *conn {
	c := &conn{el: el, h: core.NewHandler(h), kept: core.NewInput(el.spares), network: network}
	c.writeCb = c.onWritten
	c.shutCb = c.onShutdown
	c.closeCb = c.onClosed
	c.timerCb = c.onTimer
	el.loop.InitTimer(&c.timer)
	return c
}

// openConn serves fd, accepted by a listener of network, on el.
func (el *evloop) openConn(fd int, peer unix.Sockaddr, ln *listener) {
	if el.stopping || !el.t.connOpened() {
		el.loop.sysClose(fd)
		return
	}
	c := newConn(el, ln.h, ln.network)
	el.loop.InitTCP(&c.tcp)
	c.tcp.Open(fd)
	var raddr net.Addr
	if peer != nil {
		raddr = netAddr(ln.network, peer)
	}
	if err := c.setup(raddr); err != nil {
		el.t.connClosed()
		c.tcp.Close(nil)
		el.t.cfg.Logger.Warn("libuvlike: dropping accepted connection", "err", err)
		return
	}
	el.st.accepted++
	el.addConn(c)
	c.open()
}

// setup sets the socket options and learns the addresses of a connected
// socket. raddr, if not nil, is the peer's address as accept4 reported it.
func (c *conn) setup(raddr net.Addr) error {
	if c.network != "unix" {
		if err := c.tcp.NoDelay(c.el.t.cfg.NoDelay.Or(true)); err != nil {
			return err
		}
	}
	sa, err := c.tcp.Sockname()
	if err != nil {
		return err
	}
	c.laddr = netAddr(c.network, sa)
	if raddr == nil {
		sa, err := c.tcp.Peername()
		if err != nil {
			return err
		}
		raddr = netAddr(c.network, sa)
	}
	c.raddr = raddr
	return nil
}

// open starts the idle clock, runs OnOpen, then starts reading.
func (c *conn) open() {
	if c.el.idle {
		c.dl.Opened(c.el.loop.nanos())
		c.arm()
	}
	c.call(core.OnOpen)
	c.updateReading()
}

func (c *conn) LocalAddr() net.Addr  { return c.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }
func (c *conn) Context() any         { return c.ctx }
func (c *conn) SetContext(v any)     { c.ctx = v }

func (c *conn) opError(op string, err error) error {
	return core.OpError(op, c.network, c.laddr, c.raddr, err)
}

// onLoop reports whether the caller is c's loop's goroutine.
func (c *conn) onLoop() bool { return c.el.loop.g.Load() == core.G() }

// pub returns the state as published for other goroutines, with the bits
// their calls have added and the loop has not applied yet.
func (c *conn) pub() core.State { return core.State(c.st.Load()) }

// publish mirrors the loop's pubBits in st. The loop calls it where state
// gains one; the bits are never cleared.
func (c *conn) publish() {
	if p := uint32(c.state & pubBits); c.st.Load()&p != p {
		c.st.Or(p)
	}
}

// writeErr is Write's error in the published state s (not 0).
func (c *conn) writeErr(s uint32) error {
	return c.opError("write", core.State(s).WriteErr())
}

// Write copies p into the output. On the loop, it is flushed after the
// callbacks of this iteration, with the output of every connection written
// in it; from another goroutine, the loop is woken to take and flush it.
// A write on the loop of at least core.DirectWrite bytes, with no output
// waiting before it, goes to the socket at once instead, and only what
// the socket did not take is copied.
func (c *conn) Write(p []byte) (int, error) {
	if !c.onLoop() {
		return c.writeOther(p)
	}
	if s := c.st.Load(); s != 0 {
		return 0, c.writeErr(s)
	}
	if len(p) == 0 {
		return 0, nil
	}
	total := len(p)
	if len(p) >= core.DirectWrite && len(c.out) == 0 && c.reqBuf[0] == nil && c.reqBuf[1] == nil && c.fob.Load() == 0 {
		p = c.writeNow(p)
		if len(p) == 0 {
			return total, nil
		}
	}
	c.out = append(c.out, p...)
	c.obLoop += int64(len(p))
	if !c.state.Has(core.BPPaused) && c.obLoop+c.fob.Load() >= c.el.maxWrite {
		c.limitReached()
	}
	c.markDirty()
	return total, nil
}

// writeNow writes p to the socket at once, as the flush would, and returns
// what the socket did not take. An error leaves p whole, for the flush to
// meet again and act on outside the callback.
func (c *conn) writeNow(p []byte) []byte {
	n, err := c.tcp.TryWrite(p)
	if err != nil || n == 0 {
		return p
	}
	if c.el.idle {
		c.dl.Moved(c.el.loop.nanos())
	}
	return p[n:]
}

func (c *conn) writeOther(p []byte) (int, error) {
	c.mu.Lock()
	if s := c.st.Load(); s != 0 {
		c.mu.Unlock()
		return 0, c.writeErr(s)
	}
	if len(p) == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	c.fout = append(c.fout, p...)
	cmds := uint32(cmdWrite)
	if c.fob.Add(int64(len(p)))+c.obPub.Load() >= c.el.maxWrite {
		cmds |= cmdLimit
	}
	c.postLocked(cmds)
	c.mu.Unlock()
	return len(p), nil
}

// postLocked records cmds for the loop and wakes it. The caller holds mu.
func (c *conn) postLocked(cmds uint32) {
	c.cmds |= cmds
	if cmds&(cmdPause|cmdClose|cmdAbort|cmdTimer) != 0 {
		c.hold.Store(1)
	}
	if !c.posted {
		c.posted = true
		c.el.postConn(c)
	}
}

// OutboundBuffered returns the bytes written and not yet taken by the
// kernel: none once c is torn down (Abort, from any goroutine, as soon as
// it returns), since its output is dropped.
func (c *conn) OutboundBuffered() int {
	if c.pub().Gone() {
		return 0
	}
	if c.onLoop() {
		return int(c.obLoop + c.fob.Load())
	}
	return int(c.obPub.Load() + c.fob.Load())
}

// sent accounts for n bytes taken by the kernel, and publishes the output
// left for other goroutines' OutboundBuffered.
func (c *conn) sent(n int) {
	c.obLoop -= int64(n)
	if c.obPub.Load() != c.obLoop {
		c.obPub.Store(c.obLoop)
	}
}

// CloseWrite sends FIN once the output is flushed; reading goes on.
func (c *conn) CloseWrite() error {
	if !c.onLoop() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.pub().CloseWriteErr(); err != nil {
			return c.opError("close", err)
		}
		c.st.Or(uint32(core.WrClosed))
		c.postLocked(cmdCloseWrite)
		return nil
	}
	if err := c.pub().CloseWriteErr(); err != nil {
		return c.opError("close", err)
	}
	c.closeWrite()
	return nil
}

// Close stops input, flushes output for at most CloseTimeout, sends FIN,
// and closes once the peer's FIN arrives (or CloseLinger passes).
func (c *conn) Close() error {
	if !c.onLoop() {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.pub()
		if s.Gone() {
			return c.opError("close", net.ErrClosed)
		}
		if s.BeginClose() {
			c.st.Or(uint32(s & pubBits))
			c.postLocked(cmdClose)
		}
		return nil
	}
	s := c.pub()
	if s.Gone() {
		return c.opError("close", net.ErrClosed)
	}
	if !s.Has(core.Closing) { // else a Close from another goroutine waits in cmds
		c.beginClose()
	}
	return nil
}

// Abort drops pending output and resets the connection.
func (c *conn) Abort() error {
	if !c.onLoop() {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.pub()
		if !s.Kill() {
			return c.opError("close", net.ErrClosed)
		}
		c.st.Or(uint32(s & pubBits))
		c.postLocked(cmdAbort)
		return nil
	}
	if c.pub().Gone() {
		return c.opError("close", net.ErrClosed)
	}
	c.kill(transports.ErrAborted)
	return nil
}

// SetTimer sets c's timer for the application to run out d from now,
// replacing any earlier setting; d <= 0 stops it (transports.TimerConn).
// OnTimer runs on c's loop. Close and Abort stop the timer, and a setting
// made after them does nothing.
//
// On the loop it acts at once, on the loop's time of this iteration; from
// another goroutine it goes through the command mechanism, and the loop
// applies it before it acts on the timer or on a later SetTimer of its
// own (both look at hold first).
func (c *conn) SetTimer(d time.Duration) {
	if !c.h.HasTimer() {
		return // never called: the setting does nothing
	}
	if !c.onLoop() {
		c.mu.Lock()
		if !c.pub().Any(core.Closing | core.Killed | core.Closed) {
			c.wantTimer = d
			c.postLocked(cmdTimer)
		}
		c.mu.Unlock()
		return
	}
	if c.hold.Load() != 0 {
		c.applyCommands() // an earlier SetTimer, Close or Abort from another goroutine
	}
	c.setTimer(d)
}

// setTimer sets the application's timer, unless c is closing. It counts
// from a fresh reading of the clock, not the loop's cached time: that
// one is as old as the iteration's earlier callbacks, and the timer may
// not run out before d has passed since SetTimer.
func (c *conn) setTimer(d time.Duration) {
	if c.state.Any(core.Closing | core.Closed) {
		return
	}
	c.dl.SetApp(core.Now(), d)
	if d > 0 {
		c.arm()
	}
}

// PauseRead stops reading: no OnData starts once it has returned.
func (c *conn) PauseRead() {
	if !c.onLoop() {
		c.mu.Lock()
		c.wantPaused = true
		c.postLocked(cmdPause)
		c.mu.Unlock()
		return
	}
	c.pause()
}

// ResumeRead undoes PauseRead; kept bytes are offered at once.
func (c *conn) ResumeRead() {
	if !c.onLoop() {
		c.mu.Lock()
		c.wantPaused = false
		c.postLocked(cmdPause | cmdResume)
		c.mu.Unlock()
		return
	}
	c.resume()
}

func (c *conn) pause() {
	if !c.state.Has(core.AppPaused) {
		c.state |= core.AppPaused
		c.el.st.readPauses++
		c.updateReading()
	}
}

func (c *conn) resume() {
	if c.state.Has(core.AppPaused) {
		c.state &^= core.AppPaused
		c.updateReading()
		c.deferKept()
	}
}

// applyCommands takes the work other goroutines left for c.
func (c *conn) applyCommands() {
	c.mu.Lock()
	cmds := c.cmds
	c.cmds = 0
	c.posted = false
	c.hold.Store(0)
	wantPaused, wantTimer := c.wantPaused, c.wantTimer
	if k := len(c.fout); k > 0 {
		if len(c.out) == 0 {
			c.out, c.fout = c.fout, c.out[:0]
		} else {
			c.out = append(c.out, c.fout...)
			c.fout = c.fout[:0]
		}
		c.obLoop += int64(k)
		c.fob.Add(-int64(k))
	}
	c.mu.Unlock()
	if c.state.Has(core.Closed) || cmds == 0 {
		return
	}
	if cmds&cmdAbort != 0 {
		c.kill(transports.ErrAborted)
		return
	}
	if cmds&cmdWrite != 0 {
		c.markDirty()
	}
	if !c.state.Has(core.BPPaused) && (cmds&cmdLimit != 0 || c.obLoop+c.fob.Load() >= c.el.maxWrite) {
		c.limitReached()
		c.checkDrain() // the output may have fallen since
	}
	if cmds&cmdPause != 0 {
		if wantPaused {
			c.pause()
		} else {
			c.resume()
			if cmds&cmdResume != 0 {
				c.deferKept()
			}
		}
	}
	if cmds&cmdTimer != 0 {
		c.setTimer(wantTimer)
	}
	if cmds&cmdCloseWrite != 0 {
		c.closeWrite()
	}
	if cmds&cmdClose != 0 {
		c.beginClose()
	}
}

// markDirty puts c on the loop's list of connections to flush.
func (c *conn) markDirty() {
	if !c.state.Has(cfDirty) {
		c.state |= cfDirty
		c.el.dirty = append(c.el.dirty, c)
		c.el.workAdded()
	}
}

// eofDue reports whether the rules of the peer's FIN wait for reading to
// resume (core.EOFWait).
func (c *conn) eofDue() bool { return c.state&(core.EOFSeen|core.EOFDone) == core.EOFSeen }

// deferKept schedules an OnData with the kept bytes (and the rules of a
// FIN read while paused), once reading has resumed; it runs after the
// current callback, never inside it.
func (c *conn) deferKept() {
	if (c.kept.Len() > 0 || c.eofDue()) && !c.state.Has(cfDeferred) {
		c.state |= cfDeferred
		c.el.deferred = append(c.el.deferred, c)
		c.el.workAdded()
	}
}

// limitReached stops reading at MaxWriteBuffer (unless full duplex).
func (c *conn) limitReached() {
	c.state |= core.BPPaused
	if !c.h.Duplex() {
		c.el.st.readPauses++
		c.updateReading()
	}
}

// checkDrain resumes reading and calls OnDrain once output has fallen to
// half of MaxWriteBuffer after reaching it.
func (c *conn) checkDrain() {
	if !c.state.Has(core.BPPaused) || c.obLoop+c.fob.Load() > c.el.halfWrite {
		return
	}
	c.state &^= core.BPPaused
	c.updateReading()
	if c.state.Any(core.Closing | core.Closed) {
		return
	}
	if c.h.HasDrain() {
		c.call(core.OnDrain)
	}
	if !c.h.Duplex() {
		c.deferKept()
	}
}

// updateReading starts or stops the reactor's reading to match c's state:
// reading while open and not paused, and while closing (to discard).
func (c *conn) updateReading() {
	s := c.state
	if s.Any(core.Closed | core.EOFSeen) {
		return
	}
	want := s.Has(core.Closing) || s.Readable(c.h.Duplex())
	if want != c.tcp.Reading() {
		if want {
			c.tcp.ReadStart(connAlloc, connRead)
		} else {
			c.tcp.ReadStop()
		}
	}
}

// connAlloc and connRead are every conn's read callbacks: functions, not
// method values of c, which would be objects of their own, two more cache
// lines for every read to bring back (at 1,000 connections and a fixed
// load, two of the misses that made libuvlike's read path dearer than
// the same loop written bare, peers/gofloor-epoll). The reactor passes
// c's own TCP handle, which is in c.
func connAlloc(t *TCP, _ int) []byte { return connOf(t).el.buf }

func connRead(t *TCP, data []byte, err error) { connOf(t).onRead(data, err) }

// connOf returns the conn whose tcp field t is.
func connOf(t *TCP) *conn {
	return (*conn)(unsafe.Add(unsafe.Pointer(t), -int(unsafe.Offsetof(conn{}.tcp))))
}

// onRead receives what a read returned.
func (c *conn) onRead(data []byte, err error) {
	if err != nil {
		if err == io.EOF {
			c.readEOF()
		} else {
			c.kill(c.opError("read", err))
		}
		return
	}
	if c.hold.Load() != 0 {
		c.applyCommands()
	}
	if c.el.idle {
		c.dl.Moved(c.el.loop.nanos())
	}
	s := c.state
	switch {
	case s.Any(core.Closing | core.Closed):
		return // discarded
	case !s.Readable(c.h.Duplex()):
		// Paused by a command just applied: keep the bytes for later.
		c.kept.Keep(data)
		c.updateReading()
		return
	}
	c.deliver(data)
}

// deliver runs OnData with data, read into the loop's buffer, after the
// kept bytes (nil: the kept bytes alone) under core's input rules; what
// it did not consume is kept, unless it closed c.
func (c *conn) deliver(data []byte) {
	c.el.loop.callbackStarts()
	err := c.h.Deliver(c, &c.el.log, &c.kept, data, c.el.maxRead)
	c.el.loop.callbackReturned()
	if err != nil {
		c.kill(err)
		return
	}
	if c.state.Any(core.Closing | core.Closed) {
		c.kept.Release() // Close (or Abort) inside OnData: input is discarded
	}
}

// offerKept runs OnData with the kept bytes, where reading has resumed,
// or the rules of a FIN read while paused.
func (c *conn) offerKept() {
	if c.hold.Load() != 0 {
		c.applyCommands()
	}
	s := c.state
	switch {
	case s.Has(core.Closed):
	case c.eofDue():
		c.eofRules()
	case s.Any(core.Closing|core.EOFSeen) || !s.Readable(c.h.Duplex()) || c.kept.Len() == 0:
	default:
		c.deliver(nil)
	}
}

// call runs callback cb of c; a panic kills c.
func (c *conn) call(cb core.Callback) {
	c.el.loop.callbackStarts()
	err := c.h.Call(c, cb, &c.el.log)
	c.el.loop.callbackReturned()
	if err != nil {
		c.kill(err)
	}
}

// readEOF handles the peer's FIN (see eofRules).
func (c *conn) readEOF() {
	if c.hold.Load() != 0 {
		c.applyCommands()
	}
	if c.state.Has(core.Closed) {
		return
	}
	c.state |= core.EOFSeen
	c.eofRules()
}

// eofRules runs the rules of the peer's FIN (core.State.EOFStep): kept
// bytes are offered once more, then OnReadEOF runs, or the connection
// closes as Close does. While reading is paused (a PauseRead from another
// goroutine, applied just before the FIN was handled, or one made by that
// last OnData) they wait, with the kept bytes, until it resumes
// (deferKept); after Close the kept bytes are discarded.
func (c *conn) eofRules() {
	for {
		switch c.state.EOFStep(&c.kept, c.h.HasReadEOF(), c.h.Duplex()) {
		case core.EOFNone:
			c.checkEnd()
			return
		case core.EOFWait:
			return
		case core.EOFOffer:
			c.deliver(nil)
		case core.EOFCallback:
			c.call(core.OnReadEOF)
		case core.EOFClose:
			c.closing()
		case core.EOFDiscard:
		}
	}
}

// closeWrite asks for a FIN once the output is flushed.
func (c *conn) closeWrite() {
	if !c.state.Any(core.WantShut | core.Closed) {
		c.state.CloseWrite()
		c.publish()
		c.markDirty()
	}
}

// beginClose starts Close on the loop, unless it has begun.
func (c *conn) beginClose() {
	if c.state.BeginClose() {
		c.closing()
	}
}

// closing does what Close asks, state.BeginClose having begun it: input
// is discarded from now on; output is flushed within CloseTimeout, then
// FIN; then the peer's FIN is awaited within CloseLinger.
func (c *conn) closing() {
	c.publish()
	c.dl.Closing()
	c.kept.Release()
	c.updateReading()
	if c.eofDue() {
		c.eofRules() // the rules of a FIN read while paused are moot: its kept bytes are discarded
	}
	if c.state.Has(core.ShutDone) {
		c.checkEnd()
		return
	}
	if c.dl.Waiting() {
		c.dl.StartFlush(c.el.loop.nanos(), c.el.limits)
		c.arm()
	}
	c.markDirty()
}

// checkEnd closes c once our FIN and the peer's have both gone by, or
// starts the wait for the peer's once Close has sent ours.
func (c *conn) checkEnd() {
	switch {
	case c.state.Has(core.Closed):
	case c.state.OrderlyEnd():
		c.finish(nil)
	case c.state.LingerDue():
		c.state |= core.Linger
		c.dl.StartLinger(c.el.loop.nanos(), c.el.limits)
		c.arm()
	}
}

// arm sets c's timer to the earliest of its limits, if none is set
// earlier: a timer that runs out early finds nothing due and is set again
// (onTimer).
func (c *conn) arm() {
	armed := int64(0)
	if c.timer.Active() {
		armed = c.timer.when
	}
	if at, ok := c.dl.Arm(armed, c.el.limits); ok {
		c.timer.startAt(c.timerCb, at)
	}
}

// onTimer acts on the limits that have run out, most severe first, then
// sets the timer for the next. What other goroutines asked comes first: a
// SetTimer that replaced the setting, a Close or an Abort that stopped it.
func (c *conn) onTimer(*Timer) {
	if c.hold.Load() != 0 {
		c.applyCommands()
	}
	now, l := c.el.loop.nanos(), c.el.limits
	c.noteProgress(now)
	for !c.state.Has(core.Closed) {
		e := c.dl.Expired(now, l)
		if op, err := l.Fatal(e); err != nil {
			c.kill(c.opError(op, err))
			continue
		}
		switch e {
		case core.ExpNone:
			c.arm()
			return
		case core.ExpIdle:
			if c.state.BeginClose() {
				c.err = core.IdleTimeout(l.Idle) // unless a failure of the close replaces it
				c.closing()
			}
		case core.ExpApp:
			if !c.state.Any(core.Closing | core.Closed) {
				c.call(core.OnTimer)
			}
		}
	}
}

// noteProgress records what the kernel took of the write requests in
// flight since the last look. The reactor advances a request as the
// socket takes its bytes, with no callback until the last one; so a large
// request to a slow but steady reader makes progress that only this look
// sees, and is not mistaken for a stalled peer. The hot path pays
// nothing for it: the look is made when the timer runs out.
func (c *conn) noteProgress(now int64) {
	moved := false
	for i := range c.reqs {
		if n := c.reqs[i].Written(); c.reqBuf[i] != nil && n > c.seen[i] {
			c.seen[i] = n
			moved = true
		}
	}
	if moved {
		c.dl.Progress(now, true)
	}
}

// pending records that output waits for the kernel, in write requests:
// the write-progress clock starts, and Close's flush limit counts from
// now if Close has begun.
func (c *conn) pending() {
	now := c.el.loop.nanos()
	c.dl.Pending(now)
	if c.state.Has(core.Closing) {
		c.dl.StartFlush(now, c.el.limits)
	}
	c.arm()
}

// wrote takes the result of the write of c.out that the loop's flush
// made (TryWrite, or a batch of them): the bytes sent leave the output.
func (c *conn) wrote(n int, err error) {
	if c.state.Has(core.Closed) {
		return
	}
	if err != nil && err != syscall.EAGAIN {
		c.kill(c.opError("write", err))
		return
	}
	if n == 0 {
		return
	}
	c.sent(n)
	if c.el.idle {
		c.dl.Moved(c.el.loop.nanos())
	}
	switch {
	case n < len(c.out):
		if cap(c.out) > maxSpare {
			c.state |= cfOutTail
		}
		c.out = c.out[n:]
	case cap(c.out) <= maxSpare && !c.state.Has(cfOutTail):
		c.out = c.out[:0]
	default:
		c.out = nil
		c.state &^= cfOutTail
	}
	c.checkDrain()
}

// queueRest hands the output the flush's write did not take (or that came
// while requests were in flight) to a write request (one of two, so that
// the reactor can gather both into one writev), and once every byte is
// handed over and a FIN is due, queues the shutdown behind them.
func (c *conn) queueRest() {
	if c.state.Has(core.Closed) {
		return
	}
	if len(c.out) > 0 {
		i := 0
		if c.reqBuf[0] != nil {
			i = 1
		}
		if c.reqBuf[i] == nil {
			b := c.out
			c.out, c.spare = c.spare, nil
			c.reqBuf[i] = b
			if c.state.Has(cfOutTail) {
				c.state = c.state&^cfOutTail | cfReqTail<<i
			}
			c.iovs[i][0] = b
			c.seen[i] = 0
			if err := c.tcp.Write(&c.reqs[i], c.iovs[i][:], c.writeCb); err != nil {
				c.reqBuf[i] = nil
				c.kill(c.opError("write", err))
				return
			}
			if !c.dl.Waiting() {
				c.pending()
			}
		}
	}
	if c.state.ShutDue(len(c.out) == 0) && !c.foreignOutput() {
		c.state |= core.ShutSent
		if err := c.tcp.Shutdown(&c.shut, c.shutCb); err != nil {
			c.kill(c.opError("write", err))
		}
	}
}

// tryable reports whether c's output can go out with a plain write now:
// it has some, and no write request is in flight ahead of it.
func (c *conn) tryable() bool {
	return !c.state.Has(core.Closed) && len(c.out) > 0 && c.reqBuf[0] == nil && c.reqBuf[1] == nil
}

// foreignOutput reports whether other goroutines' output waits for the
// loop, which must go out before the FIN.
func (c *conn) foreignOutput() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmds&cmdWrite != 0
}

// onWritten completes a write request.
func (c *conn) onWritten(r *WriteReq, err error) {
	i := 0
	if r == &c.reqs[1] {
		i = 1
	}
	b := c.reqBuf[i]
	c.reqBuf[i], c.iovs[i][0] = nil, nil
	tail := c.state.Has(cfReqTail << i)
	c.state &^= cfReqTail << i
	if c.state.Has(core.Closed) {
		return
	}
	if err != nil {
		c.kill(c.opError("write", err))
		return
	}
	c.sent(len(b))
	c.dl.Progress(c.el.loop.nanos(), c.reqBuf[0] != nil || c.reqBuf[1] != nil)
	if cap(b) <= maxSpare && !tail {
		if c.out == nil {
			c.out = b[:0]
		} else if c.spare == nil {
			c.spare = b[:0]
		}
	}
	if len(c.out) > 0 || c.state.ShutDue(true) {
		c.markDirty()
	}
	c.checkDrain()
}

// onShutdown completes the shutdown request: FIN is sent.
func (c *conn) onShutdown(_ *ShutdownReq, err error) {
	if c.state.Has(core.Closed) {
		return
	}
	if err != nil && !c.state.Has(core.EOFSeen) {
		c.kill(c.opError("write", err))
		return
	}
	c.state |= core.ShutDone
	c.checkEnd()
}

// requestShutdown is Transport.Shutdown's request: OnShutdown, or Close.
func (c *conn) requestShutdown() {
	if c.state.Any(core.Closing | core.Closed) {
		return
	}
	if c.h.HasShutdown() {
		c.call(core.OnShutdown)
		return
	}
	c.Close()
}

// kill tears c down with err: output is dropped and the socket reset.
func (c *conn) kill(err error) {
	if !c.state.Kill() {
		return
	}
	c.publish()
	c.out = nil
	c.obLoop = 0
	c.obPub.Store(0)
	c.mu.Lock()
	c.fout = nil
	c.fob.Store(0)
	c.mu.Unlock()
	c.finish(err)
}

// finish closes the socket, with RST unless err is nil; OnClose(c, err)
// runs in the loop's closing phase.
func (c *conn) finish(err error) {
	if c.state.Has(core.Closed) {
		return
	}
	c.state |= core.Closed
	c.publish()
	if err != nil || c.err == nil {
		c.err = err
	}
	c.timer.Stop()
	c.dl.Stop()
	c.kept.Release()
	if err != nil {
		c.tcp.CloseReset(c.closeCb)
	} else {
		c.tcp.Close(c.closeCb)
	}
}

// onClosed runs OnClose and forgets c.
func (c *conn) onClosed(*TCP) {
	c.h.Closed(c, c.err, &c.el.log)
	el := c.el
	el.removeConn(c)
	el.st.closed++
	el.t.connClosed()
}
