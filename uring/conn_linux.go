package uring

import (
	"math"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// conn is one connection. Its loop goroutine runs every callback and owns
// the fields marked loop-owned; the others are shared with the Conn
// methods, which other goroutines call, under mu. The loop never holds mu
// while it runs a callback.
//
// The contract's state is one core.State, st, guarded by mu: the bits
// other goroutines change (the pauses, the closes, Abort) and the bits
// only the loop changes (our FIN, the peer's) are in the same word,
// because the rules of the peer's FIN and of the end read both; the loop
// takes mu, which it takes anyway at every step, to change its own. The
// loop-owned booleans below are the io_uring mechanism, which no rule of
// the contract reads.
type conn struct {
	l *loop
	h core.Handler

	laddr net.Addr
	raddr net.Addr // nil for an IPv4 peer: see peer4

	// Loop-owned.
	kept   core.Input // input offered and not consumed
	sbuf   []byte     // output in the kernel (sbuf[soff:] still to send)
	soff   int
	rare   *connRare // what few connections need: dialling, SEND_ZC
	tmWhen int64     // c's timer, for dl: see timed
	ctx    any       // Context; the callbacks own it

	mu sync.Mutex

	// Guarded by mu.
	wbuf    []byte // written, not yet in the kernel
	queued  int    // OutboundBuffered
	killErr error  // what tore c down, and OnClose's error (nil: orderly)
	dl      core.Deadlines

	// The small fields come last, so that they pack: an idle conn is
	// 320 bytes at most, a size class of the allocator.

	// Loop-owned.
	fd         int32
	fixed      int32 // slot in the ring's file table, or -1
	fdBox      int32 // FILES_UPDATE reads the descriptor here
	slot       uint32
	tmPos      int32  // c's timer: see timed
	inflight   int32  // requests naming this conn not yet completed
	zcSeqCur   uint32 // aux of the send in flight
	fixedOK    bool   // the FILES_UPDATE installing it has completed
	recvArmed  bool   // a multishot recv is in the kernel
	recvStop   bool   // its cancel has been asked for
	rdhupArmed bool   // unix sockets: a poll for the peer's shutdown is in the kernel
	starved    bool   // the recv ended with ENOBUFS; re-armed when buffers are free
	sending    bool   // a send is in the kernel
	sendStop   bool
	sendInline bool // the send in the kernel went with MSG_DONTWAIT (inlineSend)
	sendFull   bool // the last inline send found the socket full: the next one waits for room
	opened     bool // OnOpen has returned
	dying      bool // teardown has begun
	closeSent  bool
	finished   bool // OnClose has run (or a failed dial was reported): c is forgotten
	dirty      bool

	// Guarded by mu.
	st core.State

	// Set before c is shared, not changed after.
	netw uint8 // index in networks
	tcp  bool
	// An IPv4 peer's address: RemoteAddr makes its net.Addr from these
	// when raddr is nil, which keeps 80 bytes per connection off the heap.
	peer4    [4]byte
	peerPort uint16
}

// The transport's own bits of conn.st.
const (
	flushDue   core.State = core.Own << iota // Close began: start the flush limit on the loop's clock
	idleClosed                               // the idle timeout began the close: OnClose's nil becomes ErrIdleTimeout
	timerDue                                 // the application's timer ran out: OnTimer is due
)

// connRare holds a conn's state that few connections need; loop-owned.
type connRare struct {
	dial   *dialState
	zcHeld []zcBuf // SEND_ZC buffers the kernel may still read
}

// more returns c's rare state, made on first use.
func (c *conn) more() *connRare {
	if c.rare == nil {
		c.rare = new(connRare)
	}
	return c.rare
}

// dialing returns c's dial state: nil once the dial has been reported, and
// for accepted conns.
func (c *conn) dialing() *dialState {
	if c.rare == nil {
		return nil
	}
	return c.rare.dial
}

var _ transports.TimerConn = (*conn)(nil)

// zcBuf is a buffer sent with SEND_ZC, held until its notification.
type zcBuf struct {
	b   []byte
	n   int // bytes it counts in queued
	seq uint32
}

// networks are the networks a conn can be on, by conn.netw.
var networks = [...]string{"tcp", "tcp4", "tcp6", "unix"}

func newConn(l *loop, fd int, network string, h transports.Handler) *conn {
	c := &conn{l: l, h: core.NewHandler(h), kept: core.NewInput(l.spares), fd: int32(fd), fixed: -1, tcp: network != "unix"}
	for i, n := range networks {
		if n == network {
			c.netw = uint8(i)
		}
	}
	return c
}

func (c *conn) LocalAddr() net.Addr { return c.laddr }
func (c *conn) RemoteAddr() net.Addr {
	if c.raddr == nil && c.peerPort != 0 {
		return &net.TCPAddr{IP: net.IPv4(c.peer4[0], c.peer4[1], c.peer4[2], c.peer4[3]), Port: int(c.peerPort)}
	}
	return c.raddr
}
func (c *conn) Context() any     { return c.ctx }
func (c *conn) SetContext(v any) { c.ctx = v }

// network returns the network c is on.
func (c *conn) network() string { return networks[c.netw] }

func (c *conn) opError(op string, err error) error {
	return core.OpError(op, c.network(), c.laddr, c.RemoteAddr(), err)
}

// postLocked reports whether a change of c's state must be posted to the
// loop: not while c's callback runs (the loop steps c when it returns).
func (c *conn) postLocked() bool { return !c.st.Has(core.InCallback) }

// Write copies p into the output buffer; the loop sends it. A Write of at
// least core.DirectWrite bytes with no output queued before it is sent at once
// instead (writeNow), and only what the socket did not take is copied.
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.st.WriteErr(); err != nil {
		c.mu.Unlock()
		return 0, c.opError("write", err)
	}
	if len(p) == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	total := len(p)
	if len(p) >= core.DirectWrite && c.queued == 0 && c.direct(len(p)) {
		if p = c.writeNow(p); len(p) == 0 {
			c.mu.Unlock()
			return total, nil
		}
	}
	if c.wbuf == nil && len(p) <= outChunk {
		c.wbuf = c.l.outBuf()[:0]
	}
	c.wbuf = append(c.wbuf, p...)
	c.queued += len(p)
	if c.queued >= c.l.t.cfg.MaxWriteBuffer && !c.st.Has(core.BPPaused) {
		c.st |= core.BPPaused
		if !c.h.Duplex() {
			c.l.stats.ReadPauses.Add(1)
		}
	}
	post := c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c)
	}
	return total, nil
}

// OutboundBuffered returns the bytes written and not yet completed by the
// kernel (unacknowledged zero-copy sends included).
func (c *conn) OutboundBuffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// CloseWrite flushes output, then sends FIN; reading goes on.
func (c *conn) CloseWrite() error {
	c.mu.Lock()
	if err := c.st.CloseWriteErr(); err != nil {
		c.mu.Unlock()
		return c.opError("close", err)
	}
	c.st.CloseWrite()
	post := c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c)
	}
	return nil
}

// Close stops input, flushes output (for at most CloseTimeout), sends FIN,
// and closes once the peer's FIN arrives (or CloseLinger passes).
func (c *conn) Close() error {
	c.mu.Lock()
	if c.st.Gone() {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closeLocked()
	post := c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c)
	}
	return nil
}

// closeLocked begins Close (or the default close): the loop starts the
// flush limit on its clock.
func (c *conn) closeLocked() {
	if c.st.BeginClose() {
		c.st |= flushDue
		c.dl.Closing() // the application's timer and the idle clock stop
	}
}

// Abort drops pending output and resets the connection.
func (c *conn) Abort() error {
	if !c.kill(transports.ErrAborted) {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// kill tears c down with err: output is dropped, in-flight requests are
// cancelled and the socket is closed with RST. It reports false if c was
// already being torn down.
func (c *conn) kill(err error) bool {
	c.mu.Lock()
	ok := c.killLocked(err)
	post := ok && c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c)
	}
	return ok
}

// killLocked is kill with mu held; the caller posts c to the loop (or
// runs on it).
func (c *conn) killLocked(err error) bool {
	if !c.st.Kill() {
		return false
	}
	c.killErr = err
	c.wbuf = nil
	c.queued = 0 // the output is dropped (sent clamps what completes later)
	c.dl.Stop()  // no limit matters any more: teardown follows
	return true
}

func (c *conn) PauseRead() {
	c.mu.Lock()
	if !c.st.Has(core.AppPaused) {
		c.st |= core.AppPaused
		c.l.stats.ReadPauses.Add(1)
		if c.postLocked() {
			c.mu.Unlock()
			c.l.post(c)
			return
		}
	}
	c.mu.Unlock()
}

func (c *conn) ResumeRead() {
	c.mu.Lock()
	if c.st.Has(core.AppPaused) {
		c.st &^= core.AppPaused
		c.st |= core.OfferKept
		if c.postLocked() {
			c.mu.Unlock()
			c.l.post(c)
			return
		}
	}
	c.mu.Unlock()
}

// SetTimer sets c's timer for the application (transports.TimerConn):
// OnTimer runs on the loop d from now; d <= 0 stops it. A setting that
// ran out and whose OnTimer has not begun is replaced too.
func (c *conn) SetTimer(d time.Duration) {
	if !c.h.HasTimer() {
		return // nothing would run
	}
	var now int64
	if d > 0 {
		now = core.Now() // any goroutine's: not the loop's clock
	}
	c.mu.Lock()
	if c.st.Any(core.Closing | core.Killed | core.Closed) {
		c.mu.Unlock()
		return // Close and Abort stopped it for good
	}
	c.dl.SetApp(now, d)
	c.st &^= timerDue
	post := c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c) // the loop sets c's timer
	}
}

// requestShutdown asks the loop to run OnShutdown (or Close).
func (c *conn) requestShutdown() {
	c.mu.Lock()
	if !c.st.Any(core.Closing | core.Killed | core.Closed) {
		c.st |= core.ShutdownDue
	}
	c.mu.Unlock()
	c.l.markDirty(c)
}

// step brings the kernel's view of c in line with its state: callbacks
// that are due run, output is sent, the recv is armed or cancelled, FIN
// and close follow, and c's timer is set for its deadlines. It runs on
// the loop after anything changes c.
func (c *conn) step() {
	lim := &c.l.t.lim
	for {
		if c.finished {
			return // a post or a dirty mark that came after the end
		}
		if c.dying {
			c.maybeFinish()
			return
		}
		c.mu.Lock()
		if c.st.Has(core.Killed) {
			c.mu.Unlock()
			c.teardown()
			continue
		}
		if !c.opened {
			c.mu.Unlock()
			return
		}
		if c.st.Has(core.DrainDue) {
			c.st &^= core.DrainDue
			if !c.st.Has(core.Closing) {
				c.st |= core.InCallback
				c.mu.Unlock()
				c.call(core.OnDrain)
				continue
			}
		}
		if c.st.Has(timerDue) { // cleared by SetTimer
			c.st &^= timerDue
			if !c.st.Has(core.Closing) {
				c.st |= core.InCallback
				c.mu.Unlock()
				c.call(core.OnTimer)
				continue
			}
		}
		if c.st.Has(core.ShutdownDue) { // cleared by any close
			c.st &^= core.ShutdownDue
			if !c.h.HasShutdown() {
				c.closeLocked()
				c.mu.Unlock()
				continue
			}
			c.st |= core.InCallback
			c.mu.Unlock()
			c.call(core.OnShutdown)
			continue
		}
		duplex := c.h.Duplex()
		readable := c.st.Readable(duplex)
		if c.st.Has(core.OfferKept) {
			c.st &^= core.OfferKept
			// At the peer's FIN, its rules offer the kept bytes.
			if readable && !c.st.Any(core.Closing|core.EOFSeen) && c.kept.Len() > 0 {
				c.st |= core.InCallback
				c.mu.Unlock()
				c.deliver(nil)
				continue
			}
		}
		switch c.st.EOFStep(&c.kept, c.h.HasReadEOF(), duplex) {
		case core.EOFOffer:
			c.st |= core.InCallback
			c.mu.Unlock()
			c.deliver(nil)
			continue
		case core.EOFCallback:
			c.st |= core.InCallback
			c.mu.Unlock()
			c.call(core.OnReadEOF)
			continue
		case core.EOFClose: // as Close does
			c.st |= flushDue
			c.dl.Closing()
		case core.EOFDiscard:
		}
		if c.st.Has(flushDue) {
			c.st &^= flushDue
			c.dl.StartFlush(c.l.now(), *lim)
		}
		// Output: at most one send in flight, gathering all that is
		// pending.
		var send []byte
		if !c.sending && c.soff >= len(c.sbuf) && len(c.wbuf) > 0 {
			c.recycleSbuf()
			c.sbuf, c.wbuf = c.wbuf, c.sbuf[:0]
			c.soff = 0
			send = c.sbuf
			if !c.dl.Waiting() {
				c.dl.Pending(c.l.now()) // output waits for the kernel
			}
		}
		flushed := !c.sending && c.soff >= len(c.sbuf) && len(c.wbuf) == 0 && send == nil
		if flushed {
			c.releaseOut()
		}
		shut := c.st.ShutDue(flushed)
		if shut {
			c.st |= core.ShutSent
		}
		if c.st.LingerDue() {
			c.st |= core.Linger
			c.dl.StartLinger(c.l.now(), *lim)
		}
		end := c.st.OrderlyEnd()
		wantRecv := !c.st.Has(core.EOFSeen) && (readable || c.st.Has(core.Closing)) && !c.starved
		if at, ok := c.dl.Arm(c.tmWhen, *lim); ok {
			c.l.setTimer(c, at)
		}
		c.mu.Unlock()

		if send != nil || (!c.sending && c.soff < len(c.sbuf)) {
			c.submitSend()
		}
		if shut {
			c.submitShutdown()
		}
		switch {
		case wantRecv && !c.recvArmed:
			c.armRecv()
		case !wantRecv && c.recvArmed && !c.recvStop && !c.starved:
			c.recvStop = true
			c.l.cancel(mkUD(opRecv, 0, c.slot))
		}
		if end {
			c.teardown()
			continue
		}
		return
	}
}

func (c *conn) timer() (*int64, *int32) { return &c.tmWhen, &c.tmPos }

// expired acts on c's deadlines that have run out; step sets the timer
// again for the next.
func (c *conn) expired() {
	lim := &c.l.t.lim
	now := c.l.now()
	c.mu.Lock()
	for {
		e := c.dl.Expired(now, *lim)
		if op, err := lim.Fatal(e); err != nil {
			c.killLocked(c.opError(op, err))
			continue
		}
		switch e {
		case core.ExpNone:
			c.mu.Unlock()
			c.l.markDirty(c)
			return
		case core.ExpIdle:
			if !c.st.Has(core.Closing) {
				c.st |= idleClosed
				c.closeLocked()
			}
		case core.ExpApp:
			if !c.st.Any(core.Closing | core.Killed | core.Closed) {
				c.st |= timerDue // step runs OnTimer
			}
		}
	}
}

// fileRef sets the SQE's file: the fixed slot once installed, else the
// descriptor.
func (c *conn) fileRef(s *giouring.SubmissionQueueEntry) {
	if c.fixedOK {
		s.Fd = c.fixed
		s.Flags |= giouring.SqeFixedFile
	}
}

// armRecv arms a multishot recv into the buffer ring.
//
// Where the kernel has it (Linux 6.17), the recv ends by itself once it
// has received MaxReadBuffer less the bytes kept (at least 1): PauseRead
// cancels the recv, but the kernel may have received much more before the
// cancel takes effect (a loop that fell behind found up to the whole
// buffer ring, 4 MiB by default, received for one connection), which a
// paused Conn would keep. With the limit, a paused Conn keeps at most
// MaxReadBuffer and one recv, whatever the timing, and the socket stops
// being read, so TCP flow control pushes back on the peer. A running recv
// that reaches its limit is armed again by step, with a new one: an extra
// submission per MaxReadBuffer received.
//
// Before 6.17 nothing but the buffer ring bounds what the recv brings
// between the pause and its cancel. Aborting the Conn there instead (the
// input limit's rule) was tried and rejected: it aborted the net.Conn
// adapter, which pauses at MaxReadBuffer and must never trip the limit,
// in the adapter cases of the conformance suite.
func (c *conn) armRecv() {
	s := c.l.sqe()
	s.PrepareRecvMultishot(int(c.fd), 0, 0, 0)
	s.Flags |= giouring.SqeBufferSelect
	s.BufIG = 0
	if c.l.recvLimit {
		s.SpliceFdIn = int32(min(max(c.l.t.cfg.MaxReadBuffer-c.kept.Len(), 1), math.MaxInt32)) // optlen
	}
	s.UserData = mkUD(opRecv, 0, c.slot)
	c.fileRef(s)
	c.recvArmed = true
	c.recvStop = false
	c.inflight++
}

// armRdhup polls a unix socket for the peer's shutdown (see opRdhup).
func (c *conn) armRdhup() {
	s := c.l.sqe()
	s.PreparePollAdd(int(c.fd), unix.POLLRDHUP)
	s.UserData = mkUD(opRdhup, 0, c.slot)
	c.fileRef(s)
	c.rdhupArmed = true
	c.inflight++
}

// submitShutdown sends FIN once output is flushed.
func (c *conn) submitShutdown() {
	s := c.l.sqe()
	s.PrepareShutdown(int(c.fd), unix.SHUT_WR)
	s.UserData = mkUD(opShutdown, 0, c.slot)
	c.fileRef(s)
	c.inflight++
}

// onCQE handles a completion of one of c's requests.
func (c *conn) onCQE(op uint8, aux uint32, res int32, flags uint32) {
	more := flags&giouring.CQEFMore != 0
	switch op {
	case opRecv:
		c.onRecv(res, flags, more)
	case opSend:
		// A SEND_ZC's completion comes flagged MORE, its notification
		// later (on TCP, after the peer's ACK): the send is done, so
		// the conn is stepped now and what is queued goes out; the
		// request counts as in flight until the notification. A send
		// that is done (not MORE) and leaves c settled needs no step.
		if c.onSend(aux, res, flags, more) && !more {
			c.inflight--
			return
		}
	case opShutdown:
		c.mu.Lock()
		c.st |= core.ShutDone
		eof := c.st.Has(core.EOFSeen)
		c.mu.Unlock()
		if res < 0 && !eof {
			c.kill(c.opError("close", os.NewSyscallError("shutdown", syscall.Errno(-res))))
		}
	case opFiles:
		c.fixedOK = res >= 0
		if res < 0 {
			c.l.fixed = append(c.l.fixed, c.fixed)
			c.fixed = -1
		}
	case opConnect:
		c.inflight--
		c.onConnect(res)
		return
	case opRdhup:
		c.rdhupArmed = false
		if res > 0 && c.recvArmed && !c.recvStop && !c.eofSeen() {
			// The peer shut down. A multishot recv on a unix socket
			// that had drained the data before the FIN's wake-up waits
			// for another wake-up that never comes (unix sockets give
			// no SOCK_NONEMPTY hint at EOF, unlike TCP): restart it.
			c.recvStop = true
			c.l.cancel(mkUD(opRecv, 0, c.slot))
		}
	case opClose, opCloseFix:
	}
	if !more {
		c.inflight--
	}
	c.l.markDirty(c)
}

// eofSeen reports whether the peer's FIN has been read.
func (c *conn) eofSeen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Has(core.EOFSeen)
}

// onRecv handles a multishot recv completion.
func (c *conn) onRecv(res int32, flags uint32, more bool) {
	if !more {
		c.recvArmed = false
		c.recvStop = false
	}
	st := c.l.stats
	var bid uint16
	hasBuf := flags&giouring.CQEFBuffer != 0
	usedUp := hasBuf
	if hasBuf {
		bid = uint16(flags >> giouring.CQEBufferShift)
	}
	switch {
	case res > 0:
		c.l.ls.reads++
		c.l.ls.bytesIn += uint64(res)
		var data []byte
		if hasBuf {
			data, usedUp = c.l.bufs.Get(bid, int(res), flags)
		}
		c.received(data)
	case res == 0:
		c.mu.Lock()
		c.st |= core.EOFSeen // step runs the FIN's rules
		c.mu.Unlock()
	case res == -int32(syscall.ENOBUFS):
		st.enobufs.Add(1)
		if !c.starved {
			c.starved = true
			c.l.starved = append(c.l.starved, c)
		}
	case res == -int32(syscall.ECANCELED):
	default:
		if !c.dying {
			c.kill(c.opError("read", os.NewSyscallError("read", syscall.Errno(-res))))
		}
	}
	if usedUp {
		c.l.bufs.Put(bid)
	}
}

// received offers data, lent from the kernel's buffer, to OnData; what
// OnData keeps is copied out, so the buffer goes back to the ring at once.
func (c *conn) received(data []byte) {
	c.mu.Lock()
	if c.dying || !c.opened || c.st.Any(core.Closing|core.Killed|core.Closed|core.EOFSeen) {
		c.mu.Unlock()
		return // discarded
	}
	if c.l.t.lim.Idle > 0 {
		c.dl.Moved(c.l.now())
	}
	if !c.st.Readable(c.h.Duplex()) {
		// Paused while the recv was under way: keep it for later. The
		// pause has cancelled the recv, and on Linux 6.17 and later its
		// byte limit (armRecv) bounds what it brings meanwhile: the kept
		// bytes stay within MaxReadBuffer and one recv, as DESIGN.md
		// allows ("in may exceed the limit by at most one read").
		c.mu.Unlock()
		c.kept.Keep(data)
		return
	}
	c.st |= core.InCallback
	c.mu.Unlock()
	c.deliver(data)
}

// deliver runs OnData with data after the kept bytes (nil: the kept bytes
// alone) and applies the input rules (core's Deliver). InCallback is set
// by the caller.
func (c *conn) deliver(data []byte) {
	c.l.callbacks++
	if err := c.h.Deliver(c, &c.l.t.log, &c.kept, data, c.l.t.cfg.MaxReadBuffer); err != nil {
		c.kill(err)
	}
	c.afterCallback()
}

// call runs one of c's callbacks other than OnData and OnClose; a panic
// kills c. InCallback is set by the caller.
func (c *conn) call(cb core.Callback) {
	c.l.callbacks++
	if err := c.h.Call(c, cb, &c.l.t.log); err != nil {
		c.kill(err)
	}
	c.afterCallback()
}

// afterCallback ends a callback; the loop steps c after the batch, which
// sends what the callback wrote. The callback may have run for long: the
// loop's clock is read again where next needed, so that a limit started
// after it (the write-progress clock, when its output waits) counts from
// now, not from before it (conformance's write-timeout-slow-callback).
func (c *conn) afterCallback() {
	c.mu.Lock()
	c.st &^= core.InCallback
	c.mu.Unlock()
	c.l.clock = 0
	c.l.markDirty(c)
}

// teardown begins the end of c: the recv and any send are cancelled and,
// once every request has completed, the socket is closed and OnClose
// runs. A nil killErr is an orderly close; any other resets TCP
// (SO_LINGER 0).
func (c *conn) teardown() {
	c.dying = true
	c.mu.Lock()
	c.st.Kill() // Write, Close and Abort now fail; killErr stays nil if orderly
	err := c.killErr
	if err == nil && c.st.Has(idleClosed) {
		c.killErr = core.IdleTimeout(c.l.t.lim.Idle) // an orderly close all the same
	}
	c.wbuf = nil
	c.dl.Stop()
	c.mu.Unlock()
	c.l.stopTimer(c)
	if err != nil && c.tcp {
		// RST: Abort's contract, and the safe end of any failure.
		unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		c.l.stats.Syscalls.Add(1)
	}
	if c.recvArmed && !c.recvStop {
		c.recvStop = true
		c.l.cancel(mkUD(opRecv, 0, c.slot))
	}
	if c.sending && !c.sendStop {
		c.sendStop = true
		c.l.cancel(mkUD(opSend, c.sendSeq(), c.slot))
	}
	if d := c.dialing(); d != nil && d.connecting {
		c.l.cancel(mkUD(opConnect, 0, c.slot))
	}
	if c.rdhupArmed {
		c.l.cancel(mkUD(opRdhup, 0, c.slot))
	}
	c.maybeFinish()
}

// maybeFinish closes the socket once no request of c is in the kernel
// but SEND_ZC notifications, and runs OnClose once the close and those
// have completed.
//
// A notification comes once the kernel has freed the data sent, which on
// TCP waits for the peer's ACK: from a peer that reads nothing, never,
// while the socket is open. Closing it frees that data (with RST after a
// failure, SO_LINGER 0), so the close does not wait for them; the
// buffers stay held (zcHeld), and the slot taken, until they come.
func (c *conn) maybeFinish() {
	if c.inflight > c.zcPending() || c.closeSent && c.inflight > 0 {
		return
	}
	if !c.closeSent {
		c.closeSent = true
		s := c.l.sqe()
		s.PrepareClose(int(c.fd))
		s.UserData = mkUD(opClose, 0, c.slot)
		c.inflight++
		if c.fixed >= 0 && c.fixedOK {
			s := c.l.sqe()
			s.PrepareCloseDirect(uint32(c.fixed))
			s.UserData = mkUD(opCloseFix, 0, c.slot)
			c.inflight++
		}
		return
	}
	c.finish()
}

// zcPending returns how many SEND_ZC notifications c waits for.
func (c *conn) zcPending() int32 {
	if c.rare == nil {
		return 0
	}
	return int32(len(c.rare.zcHeld))
}

// finish runs OnClose and forgets c.
func (c *conn) finish() {
	c.finished = true
	c.mu.Lock()
	c.st |= core.Closed
	c.wbuf = nil
	c.queued = 0
	err := c.killErr
	c.mu.Unlock()
	c.kept.Release()
	c.sbuf = nil
	if c.rare != nil {
		c.rare.zcHeld = nil
	}
	l := c.l
	l.removeConn(c)
	if d := c.dialing(); d != nil {
		d.fail(c)
		return
	}
	l.callbacks++
	c.h.Closed(c, err, &l.t.log)
	l.stats.Closed.Add(1)
	l.t.connDone()
}
