package uring

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// bigBuffer is the capacity above which an output buffer is dropped once
// sent rather than kept for the next write (sockets drops them above the
// same size).
const bigBuffer = 64 << 10

// outChunk is the size of the pooled output buffers: an idle connection
// holds none, and a busy one takes one at its first Write (outBuf).
const outChunk = 2048

// outPool holds output buffers of outChunk bytes, shared by every loop (a
// sync.Pool: per-P, and emptied by the GC when memory is not reused).
var outPool = sync.Pool{New: func() any { return new([outChunk]byte) }}

// outFreeMax is the most output buffers a loop keeps in its own free list
// (256 KiB); more go back to outPool. A loop's Writes take a buffer and
// its completions give one back in every request, so the list need only
// cover a batch's difference between the two.
const outFreeMax = 128

// outBuf returns an output buffer of outChunk bytes: on the loop's own
// goroutine (every callback's Write) from its free list, else from
// outPool. A sync.Pool's Get and Put were 235 of uring's 1,520
// instructions a request, saturated with 1,000 connections (callgrind):
// with that many buffers in use they go through the pool's shared queue.
func (l *loop) outBuf() *[outChunk]byte {
	if l.g.Load() == core.G() {
		if n := len(l.outFree); n > 0 {
			b := l.outFree[n-1]
			l.outFree[n-1] = nil
			l.outFree = l.outFree[:n-1]
			return b
		}
	}
	return outPool.Get().(*[outChunk]byte)
}

// putOut gives back an output buffer of outChunk bytes; on the loop.
func (l *loop) putOut(b *[outChunk]byte) {
	if len(l.outFree) < outFreeMax {
		l.outFree = append(l.outFree, b)
		return
	}
	outPool.Put(b)
}

// releaseOut lets go of c's output buffers once everything is sent: the
// pooled ones go back to the loop (putOut), so that an idle connection
// that wrote little holds no output memory, and one larger than
// bigBuffer (grown for a large Write) is dropped, so that a connection
// that wrote a large response once does not hold its size while idle.
// Those in between stay, as recycleSbuf keeps them: one that grew for
// 64 KiB bursts is reused by the next burst instead of growing again.
// Called with c.mu held, by the loop.
func (c *conn) releaseOut() {
	switch n := cap(c.sbuf); {
	case n == outChunk:
		c.l.putOut((*[outChunk]byte)(c.sbuf[:outChunk]))
		c.sbuf, c.soff = nil, 0
	case n > bigBuffer:
		c.sbuf, c.soff = nil, 0
	}
	switch n := cap(c.wbuf); {
	case n == outChunk:
		c.l.putOut((*[outChunk]byte)(c.wbuf[:outChunk]))
		c.wbuf = nil
	case n > bigBuffer:
		c.wbuf = nil
	}
}

// recycleSbuf makes c.sbuf, fully sent, reusable (or drops it if large).
// Called with c.mu held.
func (c *conn) recycleSbuf() {
	if cap(c.sbuf) > bigBuffer {
		c.sbuf = nil
	}
	c.soff = 0
}

// direct reports whether a Write of n bytes may go out at once: not when
// it would go by SEND_ZC, which the application asked for to avoid the
// copy that send(2) makes.
func (c *conn) direct(n int) bool {
	zc := c.l.t.opt.zcThreshold
	return zc == 0 || n < zc || !c.tcp
}

// writeNow sends p with one non-blocking send(2), from any goroutine, and
// returns what the socket did not take; on any error it returns p whole,
// for the send request to meet the error again and act on it. Called with
// c.mu held and nothing queued: no send request is in flight to go first,
// and none can start until mu is released.
func (c *conn) writeNow(p []byte) []byte {
	st := c.l.stats
	st.Syscalls.Add(1)
	r, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	n := int(r)
	if errno != 0 || n <= 0 {
		return p
	}
	st.Writes.Add(1)
	st.BytesOut.Add(uint64(n))
	if c.l.t.lim.Idle > 0 {
		c.dl.Moved(core.Now())
	}
	return p[n:]
}

// sendSeq is the aux of c's current send (the SEND_ZC sequence, else 0).
func (c *conn) sendSeq() uint32 { return c.zcSeqCur }

// inlineBatch is the most completions a reap may bring for the sends made
// for it to go inline. Measured saturated, echo 64 B, 1,000 connections
// (10 paired rounds): sending inline only up to 4 cost 0.93x [0.86-1.00]
// the CPU per request of always (p = 0.037), 1.09x cfloor-uring's against
// 1.18x; at 25% and 75% of the peak (64 connections) 1.00x and 0.98x
// cfloor-uring, as always.
const inlineBatch = 4

// submitSend sends c.sbuf[c.soff:]: one request carrying all output
// pending when it was submitted. A send that waits for room completes
// with what the socket took when room came (no MSG_WAITALL): each
// completion is progress the write-progress clock sees, where a send the
// kernel retried until all of it was taken showed none until the end (a
// 30 MB send to a peer reading at 2 GB/s ran out a 300 ms WriteTimeout
// on a loaded host: conformance's write-timeout-slow-callback). The rest
// goes as another send that waits (onSend keeps sendFull). SEND_ZC keeps
// MSG_WAITALL: the rest of a short one goes from a copy (holdZC).
//
// On a loop with inlineSend the send also goes with MSG_DONTWAIT, unless
// the last one found the socket full: an inline send. The kernel does not
// wait for room then: it sends what the socket takes and completes the
// request in the io_uring_enter that submits it, before that enter
// waits, and one that took less than everything fails (MSG_WAITALL: its
// result is the bytes it took, or -EAGAIN), which cancels the NOP linked
// after it: the NOP's completion (skipped on success) then ends the wait
// at once. The loop's wait counts on both (waitCount). What an inline send
// leaves goes again as a send that waits for room (onSend).
//
// Sends made for a reap that brought more than inlineBatch completions go
// plainly: inline sends save the enter that would end at once with their
// completions, one system call per wake-up, which pays for their NOPs and
// their accounting while a wake-up brings a request or a few; a saturated
// loop's wake-ups bring dozens, and its enter does not sleep anyway.
func (c *conn) submitSend() {
	b := c.sbuf[c.soff:]
	zc := c.l.t.opt.zcThreshold
	useZC := zc > 0 && len(b) >= zc && c.tcp // unix sockets have no zero-copy send
	c.sendInline = c.l.inlineSend && !c.sendFull && !useZC && c.l.reaped <= inlineBatch
	if c.sendInline && c.l.ring.Free() < 2 {
		c.l.submit(0) // the send and its NOP go in one submission
	}
	s := c.l.sqe()
	flags := 0
	switch {
	case c.sendInline:
		flags = syscall.MSG_DONTWAIT | syscall.MSG_WAITALL
	case useZC:
		flags = syscall.MSG_WAITALL
	}
	s.PrepareSend(int(c.fd), uintptr(unsafe.Pointer(&b[0])), uint32(len(b)), flags)
	c.fileRef(s)
	if c.sendInline {
		s.Flags |= giouring.SqeIOLink
		nop := c.l.sqe()
		nop.OpCode = giouring.OpNop
		nop.Fd = -1
		nop.Flags = giouring.SqeCQESkipSuccess
		nop.UserData = mkUD(opInlineWake, 0, 0)
		c.l.inline = append(c.l.inline, c)
	}
	c.zcSeqCur = 0
	if useZC {
		// giouring's PrepareSendZC passes the slice header's address;
		// a plain send with the opcode changed is SEND_ZC.
		s.OpCode = giouring.OpSendZC
		if c.l.t.feat.atLeast(6, 2) {
			s.IoPrio |= sendZCReportUsage
		}
		c.l.zcSeq = (c.l.zcSeq + 1) & 0xffffff
		if c.l.zcSeq == 0 {
			c.l.zcSeq = 1
		}
		c.zcSeqCur = c.l.zcSeq
		c.l.stats.zcSends.Add(1)
	}
	s.UserData = mkUD(opSend, c.zcSeqCur, c.slot)
	c.sending = true
	c.sendStop = false
	c.inflight++
	c.l.sendsQueued++
}

// onSend handles a send completion: the result, and for SEND_ZC the
// notification that the kernel no longer reads the buffer. It reports
// whether c is settled (see settledLocked): its step is not needed.
func (c *conn) onSend(seq uint32, res int32, flags uint32, more bool) (settled bool) {
	if flags&giouring.CQEFNotif != 0 {
		c.zcNotified(seq, res)
		return false
	}
	c.sending = false
	c.sendStop = false
	inline := c.sendInline
	c.sendInline = false
	if inline && res == -int32(syscall.EAGAIN) {
		c.sendFull = true
		c.l.ls.inlineFull++
		return false // nothing sent: step sends it all again
	}
	// A send takes what the socket has room for (an inline one at once,
	// one that waited when room came): a short one found the socket full,
	// and its rest waits for room.
	c.sendFull = res >= 0 && c.soff+int(res) < len(c.sbuf)
	if inline && c.sendFull {
		c.l.ls.inlineFull++
	}
	if res < 0 {
		if !c.dying {
			c.kill(c.opError("write", os.NewSyscallError("write", syscall.Errno(-res))))
		}
		if seq != 0 && more {
			c.holdZC(seq, 0)
		}
		return false
	}
	n := int(res)
	c.l.ls.writes++
	c.l.ls.bytesOut += uint64(n)
	c.soff += n
	took := n > 0
	if seq != 0 && more {
		// The kernel may read the buffer until the notification: hold
		// it, and count its bytes in OutboundBuffered until then.
		c.holdZC(seq, n)
		n = 0
	}
	return c.sent(n, took)
}

// holdZC moves the SEND_ZC buffer aside until its notification.
func (c *conn) holdZC(seq uint32, n int) {
	r := c.more()
	r.zcHeld = append(r.zcHeld, zcBuf{b: c.sbuf, n: n, seq: seq})
	if c.soff >= len(c.sbuf) {
		c.sbuf, c.soff = nil, 0
	} else {
		// A short SEND_ZC: the rest goes from a copy, since the held
		// buffer must not change.
		rest := append([]byte(nil), c.sbuf[c.soff:]...)
		c.sbuf, c.soff = rest, 0
	}
}

// zcNotified releases a SEND_ZC buffer.
func (c *conn) zcNotified(seq uint32, res int32) {
	if uint32(res)&notifUsageZCCopy != 0 {
		c.l.stats.zcCopy.Add(1)
	}
	if c.rare == nil {
		return
	}
	for i, z := range c.rare.zcHeld {
		if z.seq == seq {
			c.rare.zcHeld = append(c.rare.zcHeld[:i], c.rare.zcHeld[i+1:]...)
			c.sent(z.n, z.n > 0) // the completion marks c dirty
			return
		}
	}
}

// sent accounts for n bytes the kernel has taken for good (took: it took
// some, perhaps still holding them, a SEND_ZC's), and resumes reading
// with OnDrain once output falls to half of MaxWriteBuffer. If that
// leaves c settled (settledLocked), it lets go of c's output buffers, as
// step would, and says so.
func (c *conn) sent(n int, took bool) (settled bool) {
	c.mu.Lock()
	c.queued -= n
	if c.queued < 0 {
		c.queued = 0 // after kill dropped the output
	}
	if took {
		// Progress: the write-progress clock starts again if output is
		// still pending. The clock is read only if it counts: for that
		// clock, or for the idle timeout's.
		pending := c.queued > 0
		var now int64
		if pending || c.l.t.lim.Idle > 0 {
			now = c.l.now()
		}
		c.dl.Progress(now, pending)
	}
	if c.st.Has(core.BPPaused) && c.queued <= c.l.t.cfg.MaxWriteBuffer/2 {
		c.st &^= core.BPPaused
		c.st |= core.OfferKept
		if c.h.HasDrain() {
			c.st |= core.DrainDue
		}
	}
	settled = c.settledLocked()
	if settled {
		c.releaseOut()
	}
	c.mu.Unlock()
	return settled
}

// settledLocked reports whether a step of c would do nothing but let go
// of its output buffers: everything written is sent, no send is in the
// kernel, its recv is, no bit of its state is set (nothing closing,
// paused, resumed, due or in a callback) and no teardown has begun. Its
// timer needs no step either: a send's completion stops the
// write-progress clock and moves the idle one, which only makes the next
// deadline later, and a timer that runs out early is set again. A send
// completion that leaves c settled is not followed by a step: an echo's
// request was two steps, and the second some 210 instructions of uring's
// 2,600 a request (callgrind, echo at 2,000 req/s, 64 connections). Called
// with c.mu held, on the loop.
func (c *conn) settledLocked() bool {
	return c.st == 0 && c.queued == 0 && len(c.wbuf) == 0 && c.soff >= len(c.sbuf) &&
		!c.sending && c.recvArmed && !c.recvStop && !c.dying && c.opened
}
