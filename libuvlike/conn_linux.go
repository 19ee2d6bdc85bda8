package libuvlike

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
)

// conn is one connection: a TCP handle on its loop, and the contract's
// rules on top of it.
//
// The loop's goroutine owns almost all of it. A Conn method called there
// (from any callback of the loop) acts at once, without a lock: it finds
// out where it runs with getg, which costs a nanosecond. A method called
// from another goroutine records its work under mu (output in fout,
// commands in cmds) and wakes the loop, which applies it.
type conn struct {
	// The fields the hot path touches come first, to share as few cache
	// lines as possible: after a system call, each line touched again may
	// have to come back from farther away.

	flags uint32        // owned by the loop
	st    atomic.Uint32 // stWrShut, stClosing, stKilled: what Write and the closes answer
	hold  atomic.Uint32 // 1 while commands that stop OnData wait for the loop
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

	mu         sync.Mutex // guards the fields below
	fout       []byte     // output written by other goroutines, not yet taken by the loop
	cmds       uint32     // commands from other goroutines
	wantPaused bool       // PauseRead (true) or ResumeRead (false), from another goroutine
	posted     bool       // queued on the loop's list

	// Owned by the loop's goroutine.
	spare []byte       // an empty buffer for out
	reqs  [2]WriteReq  // at most two writes in flight, gathered by one writev
	iovs  [2][1][]byte // their buffers
	shut  ShutdownReq
	timer Timer // CloseTimeout, then CloseLinger
	err   error // OnClose's
	ctx   any   // Context, owned by the callbacks

	// The callbacks given to the reactor, made once.
	allocCb AllocFunc
	readCb  ReadFunc
	writeCb WriteFunc
	shutCb  ShutdownFunc
	closeCb CloseFunc
	timerCb func(*Timer)
}

// The bits of conn.st.
const (
	stWrShut  = 1 << iota // CloseWrite: Write fails with EPIPE
	stClosing             // Close: Write fails with net.ErrClosed
	stKilled              // Abort, a fatal error, or OnClose: Close and Abort fail too
)

// The bits of conn.cmds.
const (
	cmdWrite      = 1 << iota // fout has bytes
	cmdLimit                  // a Write reached MaxWriteBuffer
	cmdPause                  // PauseRead or ResumeRead: apply wantPaused
	cmdResume                 // ResumeRead: offer kept bytes
	cmdCloseWrite             // CloseWrite
	cmdClose                  // Close
	cmdAbort                  // Abort
)

// The bits of conn.flags.
const (
	cfAppPaused = 1 << iota // PauseRead
	cfBPPaused              // output reached MaxWriteBuffer
	cfEOF                   // the peer's FIN was read
	cfClosing               // Close (or the default close at FIN) began: input is discarded
	cfWantShut              // send FIN once output is flushed
	cfShutReq               // the shutdown request is queued
	cfShutSent              // FIN sent
	cfLinger                // the timer bounds the wait for the peer's FIN
	cfFinishing             // the socket is closing; OnClose comes next
	cfDirty                 // on the loop's list of connections to flush
	cfDeferred              // on the loop's list of connections with kept bytes due
	cfEOFDue                // the peer's FIN was read while reading was paused: its rules wait for reading to resume
	cfOutTail               // out is the unwritten tail of a buffer larger than maxSpare
	cfReqTail               // reqBuf[0] is such a tail
	_                       // cfReqTail<<1: reqBuf[1] is such a tail
)

// maxSpare bounds the output buffer a connection keeps for reuse; larger
// ones go back to the garbage collector once written. The tail of a larger
// one, left by a short write, is not kept either, whatever its own
// capacity: it would hold the whole buffer.
const maxSpare = 256 << 10

func newConn(el *evloop, h transports.Handler, network string) *conn {
	c := &conn{el: el, h: core.NewHandler(h), kept: core.NewInput(el.spares), network: network}
	c.allocCb = c.alloc
	c.readCb = c.onRead
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
	el.conns[c] = struct{}{}
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

// open runs OnOpen, then starts reading.
func (c *conn) open() {
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
func (c *conn) onLoop() bool { return c.el.loop.g.Load() == getg() }

// writeErr is Write's error in state s (not 0).
func (c *conn) writeErr(s uint32) error {
	if s&(stClosing|stKilled) != 0 {
		return c.opError("write", net.ErrClosed)
	}
	return c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
}

// Write copies p into the output. On the loop, it is flushed after the
// callbacks of this iteration, with the output of every connection written
// in it; from another goroutine, the loop is woken to take and flush it.
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
	c.out = append(c.out, p...)
	c.obLoop += int64(len(p))
	if c.flags&cfBPPaused == 0 && c.obLoop+c.fob.Load() >= c.el.maxWrite {
		c.limitReached()
	}
	c.markDirty()
	return len(p), nil
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
	if cmds&(cmdPause|cmdClose|cmdAbort) != 0 {
		c.hold.Store(1)
	}
	if !c.posted {
		c.posted = true
		c.el.postConn(c)
	}
}

// OutboundBuffered returns the bytes written and not yet taken by the
// kernel: none once c is killed (Abort, from any goroutine, as soon as it
// returns), since its output is dropped.
func (c *conn) OutboundBuffered() int {
	if c.st.Load()&stKilled != 0 {
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
		if c.st.Load()&(stClosing|stKilled) != 0 {
			return c.opError("close", net.ErrClosed)
		}
		c.st.Or(stWrShut)
		c.postLocked(cmdCloseWrite)
		return nil
	}
	if c.st.Load()&(stClosing|stKilled) != 0 {
		return c.opError("close", net.ErrClosed)
	}
	c.st.Or(stWrShut)
	c.closeWrite()
	return nil
}

// Close stops input, flushes output for at most CloseTimeout, sends FIN,
// and closes once the peer's FIN arrives (or CloseLinger passes).
func (c *conn) Close() error {
	if !c.onLoop() {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.st.Load()
		if s&stKilled != 0 {
			return c.opError("close", net.ErrClosed)
		}
		if s&stClosing == 0 {
			c.st.Or(stClosing | stWrShut)
			c.postLocked(cmdClose)
		}
		return nil
	}
	s := c.st.Load()
	if s&stKilled != 0 {
		return c.opError("close", net.ErrClosed)
	}
	if s&stClosing == 0 {
		c.st.Or(stClosing | stWrShut)
		c.beginClose()
	}
	return nil
}

// Abort drops pending output and resets the connection.
func (c *conn) Abort() error {
	if !c.onLoop() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.st.Load()&stKilled != 0 {
			return c.opError("close", net.ErrClosed)
		}
		c.st.Or(stKilled | stClosing | stWrShut)
		c.postLocked(cmdAbort)
		return nil
	}
	if c.st.Load()&stKilled != 0 {
		return c.opError("close", net.ErrClosed)
	}
	c.kill(transports.ErrAborted)
	return nil
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
	if c.flags&cfAppPaused == 0 {
		c.flags |= cfAppPaused
		c.el.st.readPauses++
		c.updateReading()
	}
}

func (c *conn) resume() {
	if c.flags&cfAppPaused != 0 {
		c.flags &^= cfAppPaused
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
	wantPaused := c.wantPaused
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
	if c.flags&cfFinishing != 0 || cmds == 0 {
		return
	}
	if cmds&cmdAbort != 0 {
		c.kill(transports.ErrAborted)
		return
	}
	if cmds&cmdWrite != 0 {
		c.markDirty()
	}
	if c.flags&cfBPPaused == 0 && (cmds&cmdLimit != 0 || c.obLoop+c.fob.Load() >= c.el.maxWrite) {
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
	if cmds&cmdCloseWrite != 0 {
		c.closeWrite()
	}
	if cmds&cmdClose != 0 {
		c.beginClose()
	}
}

// markDirty puts c on the loop's list of connections to flush.
func (c *conn) markDirty() {
	if c.flags&cfDirty == 0 {
		c.flags |= cfDirty
		c.el.dirty = append(c.el.dirty, c)
	}
}

// deferKept schedules an OnData with the kept bytes (and the rules of a
// FIN read while paused), once reading has resumed; it runs after the
// current callback, never inside it.
func (c *conn) deferKept() {
	if (c.kept.Len() > 0 || c.flags&cfEOFDue != 0) && c.flags&cfDeferred == 0 {
		c.flags |= cfDeferred
		c.el.deferred = append(c.el.deferred, c)
	}
}

// limitReached stops reading at MaxWriteBuffer (unless full duplex).
func (c *conn) limitReached() {
	c.flags |= cfBPPaused
	if !c.h.Duplex() {
		c.el.st.readPauses++
		c.updateReading()
	}
}

// checkDrain resumes reading and calls OnDrain once output has fallen to
// half of MaxWriteBuffer after reaching it.
func (c *conn) checkDrain() {
	if c.flags&cfBPPaused == 0 || c.obLoop+c.fob.Load() > c.el.halfWrite {
		return
	}
	c.flags &^= cfBPPaused
	c.updateReading()
	if c.flags&(cfClosing|cfFinishing) != 0 {
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
	f := c.flags
	if f&(cfFinishing|cfEOF) != 0 {
		return
	}
	want := f&cfClosing != 0 || f&cfAppPaused == 0 && (f&cfBPPaused == 0 || c.h.Duplex())
	if want != c.tcp.Reading() {
		if want {
			c.tcp.ReadStart(c.allocCb, c.readCb)
		} else {
			c.tcp.ReadStop()
		}
	}
}

// alloc lends the loop's read buffer for the next read.
func (c *conn) alloc(*TCP, int) []byte { return c.el.buf }

// onRead receives what a read returned.
func (c *conn) onRead(_ *TCP, data []byte, err error) {
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
	f := c.flags
	switch {
	case f&(cfClosing|cfFinishing) != 0:
		return // discarded
	case f&cfAppPaused != 0 || f&cfBPPaused != 0 && !c.h.Duplex():
		// Paused by a command just applied: keep the bytes for later.
		c.kept.Keep(data)
		c.updateReading()
		return
	}
	if c.kept.Len() > 0 {
		c.kept.Keep(data)
		c.deliver(c.kept.Bytes(), true)
		return
	}
	c.deliver(data, false)
}

// deliver runs OnData with in (the kept bytes if fromKept, else the
// loop's buffer) under core's input rules; what it did not consume is
// kept, unless it closed c.
func (c *conn) deliver(in []byte, fromKept bool) {
	if err := c.h.Deliver(c, c.el.log, &c.kept, in, fromKept, c.el.maxRead); err != nil {
		c.kill(err)
		return
	}
	if c.flags&(cfClosing|cfFinishing) != 0 {
		c.kept.Release() // Close (or Abort) inside OnData: input is discarded
	}
}

// offerKept runs OnData with the kept bytes, where reading has resumed,
// or the rules of a FIN read while paused.
func (c *conn) offerKept() {
	if c.hold.Load() != 0 {
		c.applyCommands()
	}
	f := c.flags
	if f&(cfEOFDue|cfFinishing) == cfEOFDue {
		c.eofRules()
		return
	}
	if f&(cfClosing|cfFinishing|cfEOF|cfAppPaused) != 0 || f&cfBPPaused != 0 && !c.h.Duplex() || c.kept.Len() == 0 {
		return
	}
	c.deliver(c.kept.Bytes(), true)
}

// call runs callback cb of c; a panic kills c.
func (c *conn) call(cb core.Callback) {
	if err := c.h.Call(c, cb, c.el.log); err != nil {
		c.kill(err)
	}
}

// readEOF handles the peer's FIN (see eofRules).
func (c *conn) readEOF() {
	if c.hold.Load() != 0 {
		c.applyCommands()
	}
	if c.flags&cfFinishing != 0 {
		return
	}
	c.flags |= cfEOF
	c.eofRules()
}

// pausedRead reports whether OnData must not start: the application's
// pause, or output at its limit (unless full duplex).
func (c *conn) pausedRead() bool {
	return c.flags&cfAppPaused != 0 || c.flags&cfBPPaused != 0 && !c.h.Duplex()
}

// eofRules runs the rules of the peer's FIN: kept bytes are offered once
// more, then OnReadEOF runs, or the connection closes as Close does. While
// reading is paused (a PauseRead from another goroutine, applied just
// before the FIN was handled, or one made by that last OnData) they wait,
// with the kept bytes, until it resumes (deferKept); after Close the kept
// bytes are discarded.
func (c *conn) eofRules() {
	if c.flags&cfClosing == 0 && c.pausedRead() {
		c.flags |= cfEOFDue
		return
	}
	c.flags &^= cfEOFDue
	if c.flags&cfClosing == 0 && c.kept.Len() > 0 {
		c.deliver(c.kept.Bytes(), true)
		c.kept.Release() // what is still kept is discarded
		if c.flags&cfFinishing != 0 {
			return
		}
		if c.flags&cfClosing == 0 && c.pausedRead() {
			c.flags |= cfEOFDue
			return
		}
	}
	c.kept.Release()
	if c.flags&cfClosing == 0 {
		if c.h.HasReadEOF() {
			c.call(core.OnReadEOF)
		} else {
			c.st.Or(stClosing | stWrShut)
			c.beginClose()
		}
	}
	if c.flags&(cfShutSent|cfFinishing) == cfShutSent {
		c.finish(nil) // our FIN went out before theirs came
	}
}

// closeWrite asks for a FIN once the output is flushed.
func (c *conn) closeWrite() {
	if c.flags&(cfWantShut|cfFinishing) == 0 {
		c.flags |= cfWantShut
		c.markDirty()
	}
}

// beginClose starts Close: input is discarded from now on; output is
// flushed within CloseTimeout, then FIN; then the peer's FIN is awaited
// within CloseLinger.
func (c *conn) beginClose() {
	if c.flags&(cfClosing|cfFinishing) != 0 {
		return
	}
	c.flags |= cfClosing | cfWantShut
	c.flags &^= cfEOFDue // the rules of a FIN read while paused are moot: kept bytes are discarded
	c.kept.Release()
	c.updateReading()
	switch {
	case c.flags&cfShutSent == 0:
		c.timer.Start(c.timerCb, c.el.t.cfg.CloseTimeout, 0)
		c.markDirty()
	case c.flags&cfEOF == 0:
		c.flags |= cfLinger
		c.timer.Start(c.timerCb, c.el.t.cfg.CloseLinger, 0)
	default:
		c.finish(nil) // both FINs have gone by: nothing is left to wait for
	}
}

// onTimer ends a Close whose flush or linger ran out.
func (c *conn) onTimer(*Timer) {
	cfg := c.el.t.cfg
	if c.flags&cfLinger != 0 {
		c.kill(c.opError("close", core.LingerTimeout(cfg.CloseLinger)))
		return
	}
	c.kill(c.opError("close", core.FlushTimeout(cfg.CloseTimeout)))
}

// wrote takes the result of the write of c.out that the loop's flush
// made (TryWrite, or a batch of them): the bytes sent leave the output.
func (c *conn) wrote(n int, err error) {
	if c.flags&cfFinishing != 0 {
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
	switch {
	case n < len(c.out):
		if cap(c.out) > maxSpare {
			c.flags |= cfOutTail
		}
		c.out = c.out[n:]
	case cap(c.out) <= maxSpare && c.flags&cfOutTail == 0:
		c.out = c.out[:0]
	default:
		c.out = nil
		c.flags &^= cfOutTail
	}
	c.checkDrain()
}

// queueRest hands the output the flush's write did not take (or that came
// while requests were in flight) to a write request (one of two, so that
// the reactor can gather both into one writev), and once every byte is
// handed over and a FIN is due, queues the shutdown behind them.
func (c *conn) queueRest() {
	if c.flags&cfFinishing != 0 {
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
			if c.flags&cfOutTail != 0 {
				c.flags = c.flags&^cfOutTail | cfReqTail<<i
			}
			c.iovs[i][0] = b
			if err := c.tcp.Write(&c.reqs[i], c.iovs[i][:], c.writeCb); err != nil {
				c.reqBuf[i] = nil
				c.kill(c.opError("write", err))
				return
			}
		}
	}
	if c.flags&(cfWantShut|cfShutReq) == cfWantShut && len(c.out) == 0 && !c.foreignOutput() {
		c.flags |= cfShutReq
		if err := c.tcp.Shutdown(&c.shut, c.shutCb); err != nil {
			c.kill(c.opError("write", err))
		}
	}
}

// tryable reports whether c's output can go out with a plain write now:
// it has some, and no write request is in flight ahead of it.
func (c *conn) tryable() bool {
	return c.flags&cfFinishing == 0 && len(c.out) > 0 && c.reqBuf[0] == nil && c.reqBuf[1] == nil
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
	tail := c.flags&(cfReqTail<<i) != 0
	c.flags &^= cfReqTail << i
	if c.flags&cfFinishing != 0 {
		return
	}
	if err != nil {
		c.kill(c.opError("write", err))
		return
	}
	c.sent(len(b))
	if cap(b) <= maxSpare && !tail {
		if c.out == nil {
			c.out = b[:0]
		} else if c.spare == nil {
			c.spare = b[:0]
		}
	}
	if len(c.out) > 0 || c.flags&(cfWantShut|cfShutReq) == cfWantShut {
		c.markDirty()
	}
	c.checkDrain()
}

// onShutdown completes the shutdown request: FIN is sent.
func (c *conn) onShutdown(_ *ShutdownReq, err error) {
	if c.flags&cfFinishing != 0 {
		return
	}
	if err != nil && c.flags&cfEOF == 0 {
		c.kill(c.opError("write", err))
		return
	}
	c.flags |= cfShutSent
	c.timer.Stop()
	switch {
	case c.flags&(cfEOF|cfEOFDue) == cfEOF:
		c.finish(nil)
	case c.flags&cfClosing != 0:
		c.flags |= cfLinger
		c.timer.Start(c.timerCb, c.el.t.cfg.CloseLinger, 0)
	}
}

// requestShutdown is Transport.Shutdown's request: OnShutdown, or Close.
func (c *conn) requestShutdown() {
	if c.flags&(cfClosing|cfFinishing) != 0 {
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
	if c.flags&cfFinishing != 0 {
		return
	}
	c.st.Or(stKilled | stClosing | stWrShut)
	c.out = nil
	c.obLoop = 0
	c.obPub.Store(0)
	c.mu.Lock()
	c.fout = nil
	c.fob.Store(0)
	c.mu.Unlock()
	c.kept.Release()
	c.finish(err)
}

// finish closes the socket, with RST unless err is nil; OnClose(c, err)
// runs in the loop's closing phase.
func (c *conn) finish(err error) {
	if c.flags&cfFinishing != 0 {
		return
	}
	c.flags |= cfFinishing
	c.st.Or(stKilled | stClosing | stWrShut)
	c.err = err
	c.timer.Stop()
	c.kept.Release()
	if err != nil {
		c.tcp.CloseReset(c.closeCb)
	} else {
		c.tcp.Close(c.closeCb)
	}
}

// onClosed runs OnClose and forgets c.
func (c *conn) onClosed(*TCP) {
	c.h.Closed(c, c.err, c.el.log)
	el := c.el
	delete(el.conns, c)
	el.st.closed++
	el.t.connClosed()
}
