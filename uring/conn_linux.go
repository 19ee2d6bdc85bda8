package uring

import (
	"fmt"
	"math"
	"net"
	"os"
	"runtime/debug"
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
type conn struct {
	l *loop
	h transports.Handler

	laddr net.Addr
	raddr net.Addr // nil for an IPv4 peer: see peer4

	// Loop-owned.
	kept   []byte // input offered and not consumed
	sbuf   []byte // output in the kernel (sbuf[soff:] still to send)
	soff   int
	rare   *connRare // what few connections need: dialling, SEND_ZC
	finErr error     // OnClose's error
	tmWhen int64     // c's timer (CloseTimeout, then CloseLinger): see timed
	ctx    any       // Context; the callbacks own it

	mu sync.Mutex

	// Guarded by mu.
	wbuf    []byte // written, not yet in the kernel
	queued  int    // OutboundBuffered
	killErr error
	closeAt int64 // CloseTimeout deadline of a Close with output pending (since epoch), or 0

	// The small fields come last, so that they pack: an idle conn is
	// 288 bytes, a size class of the allocator.

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
	shutSent   bool // shutdown(SHUT_WR) submitted
	shutDone   bool // ... and completed
	eofSeen    bool // the peer's FIN was read
	eofDone    bool // ... and its callbacks have run
	eofOffered bool // ... and the kept bytes were offered once more
	opened     bool // OnOpen has returned
	dying      bool // teardown has begun
	closeSent  bool
	finished   bool // OnClose has run (or a failed dial was reported): c is forgotten
	dirty      bool
	tmKind     uint8 // what tm is armed for

	// Guarded by mu.
	wrClosed     bool // CloseWrite or Close: no more Write
	wantShut     bool // send FIN once output is flushed
	closing      bool // Close (or the default close at FIN) began
	appPaused    bool
	bpPaused     bool
	offerKept    bool // reading resumed: offer kept bytes at once
	drainPending bool
	shutdownReq  bool
	closed       bool // OnClose has begun
	inCallback   bool

	// Set before c is shared, not changed after. What h implements is
	// found once; the interfaces are looked up when called, which is rare.
	hasEOF   bool  // ReadEOFHandler; without it, close at the peer's FIN
	hasDrain bool  // DrainHandler
	hasShut  bool  // ShutdownHandler
	duplex   bool  // FullDuplexHandler: output at its limit does not stop reading
	netw     uint8 // index in networks
	tcp      bool
	// An IPv4 peer's address: RemoteAddr makes its net.Addr from these
	// when raddr is nil, which keeps 80 bytes per connection off the heap.
	peer4    [4]byte
	peerPort uint16
}

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

// What a conn's timer is for.
const (
	tmNone = iota
	tmFlush
	tmLinger
)

// zcBuf is a buffer sent with SEND_ZC, held until its notification.
type zcBuf struct {
	b   []byte
	n   int // bytes it counts in queued
	seq uint32
}

// networks are the networks a conn can be on, by conn.netw.
var networks = [...]string{"tcp", "tcp4", "tcp6", "unix"}

// epoch is the base of conn.closeAt: an offset from it keeps the
// monotonic clock in 8 bytes.
var epoch = time.Now()

func newConn(l *loop, fd int, network string, h transports.Handler) *conn {
	c := &conn{l: l, h: h, fd: int32(fd), fixed: -1, tcp: network != "unix"}
	for i, n := range networks {
		if n == network {
			c.netw = uint8(i)
		}
	}
	_, c.hasEOF = h.(transports.ReadEOFHandler)
	_, c.hasDrain = h.(transports.DrainHandler)
	_, c.hasShut = h.(transports.ShutdownHandler)
	if d, ok := h.(transports.FullDuplexHandler); ok {
		c.duplex = d.FullDuplex()
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
	return &net.OpError{Op: op, Net: c.network(), Source: c.laddr, Addr: c.RemoteAddr(), Err: err}
}

// post asks the loop to look at c again, unless c's callback is running
// (the loop steps c when it returns).
func (c *conn) postLocked() bool { return !c.inCallback }

// Write copies p into the output buffer; the loop sends it.
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
	if len(p) == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	if c.wbuf == nil && len(p) <= outChunk {
		c.wbuf = outPool.Get().(*[outChunk]byte)[:0]
	}
	c.wbuf = append(c.wbuf, p...)
	c.queued += len(p)
	if c.queued >= c.l.t.cfg.MaxWriteBuffer && !c.bpPaused {
		c.bpPaused = true
		if !c.duplex {
			c.l.stats.ReadPauses.Add(1)
		}
	}
	post := c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c)
	}
	return len(p), nil
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
	if c.closed || c.killErr != nil || c.closing {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.wrClosed = true
	c.wantShut = true
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
	if c.closed || c.killErr != nil {
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

func (c *conn) closeLocked() {
	if c.closing {
		return
	}
	c.closing = true
	c.wrClosed = true
	c.wantShut = true
	if c.queued > 0 {
		c.closeAt = int64(time.Since(epoch) + c.l.t.cfg.CloseTimeout)
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
	if c.closed || c.killErr != nil {
		c.mu.Unlock()
		return false
	}
	c.killErr = err
	c.wbuf = nil
	c.queued = 0 // the output is dropped (sent clamps what completes later)
	post := c.postLocked()
	c.mu.Unlock()
	if post {
		c.l.post(c)
	}
	return true
}

func (c *conn) PauseRead() {
	c.mu.Lock()
	if !c.appPaused {
		c.appPaused = true
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
	if c.appPaused {
		c.appPaused = false
		c.offerKept = true
		if c.postLocked() {
			c.mu.Unlock()
			c.l.post(c)
			return
		}
	}
	c.mu.Unlock()
}

// requestShutdown asks the loop to run OnShutdown (or Close).
func (c *conn) requestShutdown() {
	c.mu.Lock()
	if !c.closed && c.killErr == nil && !c.closing {
		c.shutdownReq = true
	}
	c.mu.Unlock()
	c.l.markDirty(c)
}

// readableLocked reports whether OnData may run now.
func (c *conn) readableLocked() bool {
	return !c.appPaused && !(c.bpPaused && !c.duplex)
}

// step brings the kernel's view of c in line with its state: callbacks
// that are due run, output is sent, the recv is armed or cancelled, FIN
// and close follow. It runs on the loop after anything changes c.
func (c *conn) step() {
	for {
		if c.finished {
			return // a post or a dirty mark that came after the end
		}
		if c.dying {
			c.maybeFinish()
			return
		}
		c.mu.Lock()
		if c.killErr != nil {
			err := c.killErr
			c.mu.Unlock()
			c.teardown(err)
			continue
		}
		if !c.opened {
			c.mu.Unlock()
			return
		}
		if c.drainPending {
			c.drainPending = false
			if !c.closing {
				c.inCallback = true
				c.mu.Unlock()
				c.callback("OnDrain", c.h.(transports.DrainHandler).OnDrain)
				continue
			}
		}
		if c.shutdownReq {
			c.shutdownReq = false
			if !c.closing {
				if !c.hasShut {
					c.closeLocked()
					c.mu.Unlock()
					continue
				}
				c.inCallback = true
				c.mu.Unlock()
				c.callback("OnShutdown", c.h.(transports.ShutdownHandler).OnShutdown)
				continue
			}
		}
		readable := c.readableLocked()
		if c.offerKept {
			c.offerKept = false
			if readable && !c.closing && len(c.kept) > 0 && !c.eofDone {
				c.inCallback = true
				c.mu.Unlock()
				c.deliver(c.kept, true)
				continue
			}
		}
		if c.eofSeen && !c.eofDone && (readable || c.closing) {
			if !c.closing && len(c.kept) > 0 && !c.eofOffered {
				// Kept bytes are offered once more at the FIN.
				c.eofOffered = true
				c.inCallback = true
				c.mu.Unlock()
				c.deliver(c.kept, true)
				c.kept = nil
				continue
			}
			c.eofDone = true
			c.kept = nil
			if !c.closing {
				if c.hasEOF {
					c.inCallback = true
					c.mu.Unlock()
					c.callback("OnReadEOF", c.h.(transports.ReadEOFHandler).OnReadEOF)
					continue
				}
				c.closeLocked()
			}
		}
		if c.closing && c.closeAt != 0 && c.tmKind == tmNone {
			c.tmKind = tmFlush
			c.armTimer(epoch.Add(time.Duration(c.closeAt)))
		}
		// Output: at most one send in flight, gathering all that is
		// pending.
		var send []byte
		if !c.sending && c.soff >= len(c.sbuf) && len(c.wbuf) > 0 {
			c.recycleSbuf()
			c.sbuf, c.wbuf = c.wbuf, c.sbuf[:0]
			c.soff = 0
			send = c.sbuf
		}
		flushed := !c.sending && c.soff >= len(c.sbuf) && len(c.wbuf) == 0 && send == nil
		if flushed {
			c.releaseOut()
		}
		shut := c.wantShut && !c.shutSent && flushed
		closing := c.closing
		c.mu.Unlock()

		if send != nil || (!c.sending && c.soff < len(c.sbuf)) {
			c.submitSend()
		}
		if shut {
			c.submitShutdown()
		}
		wantRecv := !c.eofSeen && (closing || readable) && !c.starved
		switch {
		case wantRecv && !c.recvArmed:
			c.armRecv()
		case !wantRecv && c.recvArmed && !c.recvStop && !c.starved:
			c.recvStop = true
			c.l.cancel(mkUD(opRecv, 0, c.slot))
		}
		if c.shutDone && c.eofSeen && c.eofDone {
			c.teardown(nil)
			continue
		}
		if closing && c.shutDone && !c.eofSeen && c.tmKind != tmLinger {
			c.tmKind = tmLinger
			c.armTimer(time.Now().Add(c.l.t.cfg.CloseLinger))
		}
		return
	}
}

// armTimer sets c's one timer.
func (c *conn) armTimer(when time.Time) {
	c.l.setTimer(c, core.Now()+int64(time.Until(when)))
}

func (c *conn) timer() (*int64, *int32) { return &c.tmWhen, &c.tmPos }

// expired runs out c's timer.
func (c *conn) expired() {
	switch c.tmKind {
	case tmFlush:
		c.flushExpired()
	case tmLinger:
		c.lingerExpired()
	}
}

func (c *conn) flushExpired() {
	c.mu.Lock()
	flushed := c.queued == 0
	c.mu.Unlock()
	if flushed {
		return // the linger timer takes over once FIN is out
	}
	c.kill(c.opError("close", fmt.Errorf("output not flushed within CloseTimeout %v: %w", c.l.t.cfg.CloseTimeout, os.ErrDeadlineExceeded)))
	c.l.markDirty(c)
}

func (c *conn) lingerExpired() {
	c.kill(c.opError("close", fmt.Errorf("no FIN from the peer within CloseLinger %v: %w", c.l.t.cfg.CloseLinger, os.ErrDeadlineExceeded)))
	c.l.markDirty(c)
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
		s.SpliceFdIn = int32(min(max(c.l.t.cfg.MaxReadBuffer-len(c.kept), 1), math.MaxInt32)) // optlen
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
	c.shutSent = true
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
		// request counts as in flight until the notification.
		c.onSend(aux, res, flags, more)
	case opShutdown:
		c.shutDone = true
		if res < 0 && !c.eofSeen {
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
		if res > 0 && !c.eofSeen && c.recvArmed && !c.recvStop {
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
		c.eofSeen = true
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
	if c.dying || c.killErr != nil || c.closed || c.closing || c.eofSeen || !c.opened {
		c.mu.Unlock()
		return // discarded
	}
	if !c.readableLocked() {
		// Paused while the recv was under way: keep it for later. The
		// pause has cancelled the recv, and on Linux 6.17 and later its
		// byte limit (armRecv) bounds what it brings meanwhile: the kept
		// bytes stay within MaxReadBuffer and one recv, as DESIGN.md
		// allows ("in may exceed the limit by at most one read").
		c.mu.Unlock()
		c.kept = append(c.kept, data...)
		return
	}
	c.inCallback = true
	c.mu.Unlock()
	if len(c.kept) > 0 {
		c.kept = append(c.kept, data...)
		c.deliver(c.kept, true)
		return
	}
	c.deliver(data, false)
}

// deliver runs OnData with in, then keeps what it did not consume. kept
// says in is c.kept. inCallback is set by the caller.
func (c *conn) deliver(in []byte, kept bool) {
	n, ok := c.onData(in)
	switch {
	case !ok:
		c.kept = nil
	case n < 0 || n > len(in):
		c.kept = nil
		c.kill(transports.CountError(n, len(in)))
	case n == len(in):
		if cap(c.kept) > 4<<10 {
			c.kept = nil
		} else {
			c.kept = c.kept[:0]
		}
	case kept:
		c.kept = c.kept[:copy(c.kept, in[n:])]
	default:
		c.kept = append(c.kept[:0], in[n:]...)
	}
	if len(c.kept) > c.l.t.cfg.MaxReadBuffer {
		c.kill(transports.InputLimitError(len(c.kept), c.l.t.cfg.MaxReadBuffer))
		c.kept = nil
	}
	c.afterCallback()
}

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
	c.l.t.cfg.Logger.Error("uring: callback panicked; aborting the connection",
		"callback", name, "panic", v, "remote", c.RemoteAddr(), "stack", string(debug.Stack()))
	c.kill(transports.PanicError(name, v))
}

// afterCallback ends a callback; the loop steps c after the batch, which
// sends what the callback wrote.
func (c *conn) afterCallback() {
	c.mu.Lock()
	c.inCallback = false
	c.mu.Unlock()
	c.l.markDirty(c)
}

// teardown begins the end of c: the recv and any send are cancelled and,
// once every request has completed, the socket is closed and OnClose
// runs. err == nil is an orderly close; any other resets TCP (SO_LINGER
// 0).
func (c *conn) teardown(err error) {
	c.dying = true
	c.finErr = err
	c.mu.Lock()
	c.wbuf = nil
	if c.killErr == nil {
		c.killErr = net.ErrClosed // Write now fails
		if err != nil {
			c.killErr = err
		}
	}
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

// maybeFinish closes the socket once no request of c is in the kernel,
// and runs OnClose once the close has completed.
func (c *conn) maybeFinish() {
	if c.inflight > 0 {
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

// finish runs OnClose and forgets c.
func (c *conn) finish() {
	c.finished = true
	c.mu.Lock()
	c.closed = true
	c.wbuf = nil
	c.queued = 0
	c.mu.Unlock()
	c.kept, c.sbuf = nil, nil
	if c.rare != nil {
		c.rare.zcHeld = nil
	}
	l := c.l
	l.removeConn(c)
	if d := c.dialing(); d != nil {
		d.fail(c)
		return
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				l.t.cfg.Logger.Error("uring: OnClose panicked", "panic", v, "remote", c.RemoteAddr(), "stack", string(debug.Stack()))
			}
		}()
		c.h.OnClose(c, c.finErr)
	}()
	l.stats.Closed.Add(1)
	l.t.connDone()
}
