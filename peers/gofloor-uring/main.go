// Command gofloor-uring is cfloor-uring's loop written in Go: the least a
// Go program can spend serving echo on io_uring, so that what merlin's
// io_uring transport costs above the C floor splits into what Go costs
// (this peer above cfloor-uring) and what the transport adds (the
// transport above this peer).
//
// It does what cfloor-uring does, in the same order and with the same
// constants: one goroutine, one ring (SINGLE_ISSUER, DEFER_TASKRUN,
// SUBMIT_ALL, 1024 submission and 8192 completion entries), one multishot
// accept, one multishot recv per connection on a provided buffer ring
// (1024 buffers of 4 KiB, mmap'd), and one send a turn of all its pending
// output for each connection the turn touched; a connection stops
// receiving while more than 1 MiB waits to go out and resumes at 256 KiB,
// and accept backs off 10 ms when descriptors run out. One io_uring_enter
// a turn submits what the last turn prepared and waits for a completion.
// There is no liburing here and no giouring: the ring is mapped and read
// in this file (the kernel's structures are defined below, checked
// against include/uapi/linux/io_uring.h), with sync/atomic where the
// kernel shares a word, and every system call is raw (syscall.RawSyscall6:
// no entersyscall, so the goroutine keeps its P while it blocks in
// io_uring_enter, and nothing else runs; the runtime's preemption signal
// ends a wait with EINTR every 10 ms at most). No allocation per request.
// It is not a floor in merlin bench's sense (cfloor-uring is the io_uring
// mechanism's), and not a transport: no contract, no limits beyond
// cfloor-uring's.
//
// Where it departs from cfloor-uring, and why:
//   - SIGTERM and SIGINT reach a goroutine through signal.Notify, as in
//     gofloor-epoll, not a signalfd read through the ring: Go's runtime owns
//     the signal mask, and the preemption EINTR lets that goroutine run.
//   - The goroutine is locked to its thread: with SINGLE_ISSUER and
//     DEFER_TASKRUN only the thread that created the ring may submit to it
//     and wait on it, and Go would otherwise move the goroutine.
//   - A closed connection's output buffers stay with its slot for the
//     next connection on that descriptor, as in gofloor-epoll, where
//     cfloor-uring frees them: a Go program would hand them to the garbage
//     collector instead.
//   - Go has no 16-bit atomic store: the buffer ring's tail is published
//     with a 32-bit one that rewrites entry 0's buffer id unchanged beside
//     it.
//   - Go's atomic stores are sequentially consistent (XCHG on amd64) where
//     liburing's release stores are plain moves: three a turn at most (the
//     SQ tail, the CQ head, the buffer ring's tail), a cost counted as Go's.
package main

import (
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/peers/internal/peer"
)

const (
	sqEntries = 1024    // submission queue: sends of one turn beyond this submit early
	cqEntries = 8192    // completion queue (IORING_SETUP_CQSIZE)
	bufGroup  = 0       // the provided buffer ring's group id
	bufCount  = 1024    // buffers in the ring (a power of two)
	bufSize   = 4096    // bytes per buffer: 4 MiB in all
	outLimit  = 1 << 20 // stop receiving while more than this waits to go out
	outResume = outLimit / 4
	backoffNs = 10 * 1000 * 1000 // after EMFILE
)

// The kernel's interface, from include/uapi/linux/io_uring.h (Linux 6.1;
// every value below is unchanged since).
const (
	setupCQSize       = 1 << 3  // IORING_SETUP_CQSIZE
	setupSubmitAll    = 1 << 7  // IORING_SETUP_SUBMIT_ALL
	setupSingleIssuer = 1 << 12 // IORING_SETUP_SINGLE_ISSUER
	setupDeferTaskrun = 1 << 13 // IORING_SETUP_DEFER_TASKRUN

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featNoDrop     = 1 << 1 // IORING_FEAT_NODROP

	offSQRing = 0          // IORING_OFF_SQ_RING
	offCQRing = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	sqCQOverflow = 1 << 1 // IORING_SQ_CQ_OVERFLOW, in the SQ ring's flags
	sqTaskrun    = 1 << 2 // IORING_SQ_TASKRUN

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	registerPbufRing = 22 // IORING_REGISTER_PBUF_RING

	opTimeout     = 11 // IORING_OP_TIMEOUT
	opAccept      = 13 // IORING_OP_ACCEPT
	opAsyncCancel = 14 // IORING_OP_ASYNC_CANCEL
	opSend        = 26 // IORING_OP_SEND
	opRecv        = 27 // IORING_OP_RECV

	acceptMultishot = 1 << 0 // IORING_ACCEPT_MULTISHOT, in sqe.ioprio
	recvMultishot   = 1 << 1 // IORING_RECV_MULTISHOT, in sqe.ioprio

	sqeBufferSelect   = 1 << 5 // IOSQE_BUFFER_SELECT
	sqeCQESkipSuccess = 1 << 6 // IOSQE_CQE_SKIP_SUCCESS

	cqeFBuffer     = 1 << 0 // IORING_CQE_F_BUFFER
	cqeFMore       = 1 << 1 // IORING_CQE_F_MORE
	cqeBufferShift = 16     // IORING_CQE_BUFFER_SHIFT
)

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries      uint32
	flags                     uint32
	sqThreadCPU, sqThreadIdle uint32
	features                  uint32
	wqFd                      uint32
	resv                      [3]uint32
	sqOff                     sqringOffsets
	cqOff                     cqringOffsets
}

// sqringOffsets is struct io_sqring_offsets: where the SQ ring's fields
// are in its mapping.
type sqringOffsets struct {
	head, tail, ringMask, ringEntries uint32
	flags, dropped, array, resv1      uint32
	resv2                             uint64
}

// cqringOffsets is struct io_cqring_offsets.
type cqringOffsets struct {
	head, tail, ringMask, ringEntries uint32
	overflow, cqes, flags, resv1      uint32
	resv2                             uint64
}

// sqe is struct io_uring_sqe, with each union named by the member used
// here.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32 // msg_flags, accept_flags, timeout_flags, cancel_flags
	userData    uint64
	bufGroup    uint16
	personality uint16
	fileIndex   uint32
	addr3       uint64
	_           uint64
}

// cqe is struct io_uring_cqe.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// bufEntry is struct io_uring_buf. The ring's tail overlays entry 0's
// resv.
type bufEntry struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16
}

// bufReg is struct io_uring_buf_reg.
type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	_           uint16
	_           [3]uint64
}

// kernelTimespec is struct __kernel_timespec: 64-bit on every
// architecture, where unix.Timespec follows the C library's.
type kernelTimespec struct {
	sec, nsec int64
}

// The compiler checks the sizes against the kernel's: a negative or
// non-zero array length does not compile.
var (
	_ [0]struct{} = [unsafe.Sizeof(params{}) - 120]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(sqe{}) - 64]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(cqe{}) - 16]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(bufEntry{}) - 16]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(bufReg{}) - 40]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(kernelTimespec{}) - 16]struct{}{}
)

// backoff is the EMFILE back-off's timeout. The kernel reads it when it
// consumes the SQE, in an io_uring_enter after the function that prepared
// it has returned: a package variable never moves, where a goroutine's
// stack may.
var backoff = kernelTimespec{nsec: backoffNs}

// user_data: bits 32-39 say which operation completed, bits 0-31 are the
// descriptor it ran on (the connection's socket, which indexes conns).
// The numbers are cfloor-uring's; its OP_SIGNAL (6) has no use here.
const (
	udAccept = 1 + iota
	udRecv
	udSend
	udCancel
	udBackoff
)

func userData(op uint64, fd int32) uint64 { return op<<32 | uint64(uint32(fd)) }

// outBuf is a connection's pending output, as the C peers' peer_buf:
// bytes [off, len(p)) are still to be sent.
type outBuf struct {
	p   []byte
	off int
}

func (b *outBuf) pending() int { return len(b.p) - b.off }

func (b *outBuf) reset() { b.p, b.off = b.p[:0], 0 }

// add appends data, first moving what is pending to the front, and grows
// the buffer as peer_buf_append does: from 4 KiB, doubling.
func (b *outBuf) add(data []byte) {
	if b.off > 0 {
		b.p = b.p[:copy(b.p, b.p[b.off:])]
		b.off = 0
	}
	if need := len(b.p) + len(data); need > cap(b.p) {
		c := max(cap(b.p), 4096)
		for c < need {
			c *= 2
		}
		p := make([]byte, len(b.p), c)
		copy(p, b.p)
		b.p = p
	}
	b.p = append(b.p, data...)
}

// conn is one connection, indexed by its descriptor. The descriptor is
// closed only once no operation on it is in the kernel, so that a number
// reused by accept never meets a stale completion.
type conn struct {
	open       bool // the slot is in use
	recvArmed  bool // a multishot recv is in the kernel (until its CQE without F_MORE)
	cancelling bool // an ASYNC_CANCEL of that recv was submitted
	sending    bool // a send of out is in the kernel: out must not move
	eof        bool // the peer sent FIN: echo what is left, then close
	dead       bool // reset or error: close once nothing is in flight
	queued     bool // on the todo list of this turn
	// out is being sent: fixed while sending (a Go heap object does not
	// move, and conn keeps it alive); a partial send's rest. more holds
	// what was received since, gathered into out at the next send.
	out, more outBuf
}

// loop is the server: its ring, the buffer ring and its buffers, and the
// connections.
type loop struct {
	ringFd, lfd int

	// The submission queue: the kernel's head, tail, flags and index
	// array in the shared mapping, and the entries. sqeHead and sqeTail
	// are this side's: entries [sqeHead, sqeTail) are prepared and not
	// yet in the kernel's tail.
	sqHead, sqTail, sqFlags *uint32
	sqArray                 []uint32
	sqes                    []sqe
	sqMask                  uint32
	sqeHead, sqeTail        uint32

	// The completion queue: the kernel's head and tail, and the entries.
	cqHead, cqTail *uint32
	cqes           []cqe
	cqMask         uint32

	bufRing     []bufEntry // shared with the kernel (5.19)
	bufs        []byte     // bufCount x bufSize, the buffers it lends
	bufTail     uint16     // the ring's tail as last published
	bufReturned int        // buffers handed back this turn, not yet published

	conns []conn  // indexed by descriptor
	todo  []int32 // descriptors of the connections touched this turn
}

// enter is io_uring_enter(2) with no signal mask.
func (l *loop) enter(toSubmit, minComplete, flags uint32) syscall.Errno {
	_, _, errno := syscall.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(l.ringFd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	return errno
}

// flush hands the prepared entries to the kernel: their indexes go into
// the SQ array, then the tail is published (a release: the kernel sees
// the entries before it sees the tail). It returns how many entries the
// kernel has yet to consume, these and any an earlier call left.
func (l *loop) flush() uint32 {
	ktail := *l.sqTail // only this side writes it
	if l.sqeHead != l.sqeTail {
		for ; l.sqeHead != l.sqeTail; l.sqeHead++ {
			l.sqArray[ktail&l.sqMask] = l.sqeHead & l.sqMask
			ktail++
		}
		atomic.StoreUint32(l.sqTail, ktail)
	}
	return ktail - atomic.LoadUint32(l.sqHead)
}

// submit submits what is prepared without waiting, as io_uring_submit
// does: with GETEVENTS only when the kernel flags completions it holds
// back (an overflowed CQ), so that they are flushed.
func (l *loop) submit() {
	n := l.flush()
	var flags uint32
	if atomic.LoadUint32(l.sqFlags)&(sqCQOverflow|sqTaskrun) != 0 {
		flags = enterGetEvents
	}
	// A submission that does not wait is not interrupted; if it were,
	// the entries would still be there for the next call.
	for l.enter(n, 0, flags) == unix.EINTR {
		runtime.Gosched()
		n = l.flush()
	}
}

// sqe returns a free submission entry, zeroed, submitting what is queued
// when the submission queue is full.
func (l *loop) sqe() *sqe {
	if l.sqeTail-atomic.LoadUint32(l.sqHead) >= uint32(len(l.sqes)) {
		l.submit()
		if l.sqeTail-atomic.LoadUint32(l.sqHead) >= uint32(len(l.sqes)) {
			peer.Fatalf(1, "io_uring: no submission entry after a submit")
		}
	}
	s := &l.sqes[l.sqeTail&l.sqMask]
	l.sqeTail++
	*s = sqe{}
	return s
}

// armAccept asks for every connection on the listener with one multishot
// accept (5.19). Accepted sockets are blocking, as cfloor-uring's: the
// ring never blocks on them.
func (l *loop) armAccept() {
	s := l.sqe()
	s.opcode = opAccept
	s.fd = int32(l.lfd)
	s.ioprio = acceptMultishot
	s.opFlags = unix.SOCK_CLOEXEC
	s.userData = userData(udAccept, int32(l.lfd))
}

// cancelRecv stops fd's multishot recv. With CQE_SKIP_SUCCESS (5.17) only
// a cancel that fails completes.
func (l *loop) cancelRecv(fd int32) {
	s := l.sqe()
	s.opcode = opAsyncCancel
	s.fd = -1
	s.addr = userData(udRecv, fd)
	s.flags = sqeCQESkipSuccess
	s.userData = userData(udCancel, fd)
	l.conns[fd].cancelling = true
}

// touch puts fd's connection on this turn's todo list, once. The list has
// room for every slot, so the append does not allocate.
func (l *loop) touch(fd int32) {
	c := &l.conns[fd]
	if c.queued {
		return
	}
	c.queued = true
	l.todo = append(l.todo, fd)
}

// openConn starts tracking fd, doubling the table if needed.
func (l *loop) openConn(fd int32) {
	if int(fd) >= len(l.conns) {
		n := len(l.conns)
		for n <= int(fd) {
			n *= 2
		}
		conns := make([]conn, n)
		copy(conns, l.conns)
		todo := make([]int32, len(l.todo), n)
		copy(todo, l.todo)
		l.conns, l.todo = conns, todo
	}
	c := &l.conns[fd]
	c.out.reset()
	c.more.reset()
	*c = conn{open: true, out: c.out, more: c.more}
	l.touch(fd) // progress arms its recv
}

// progress does what connection fd needs after this turn's completions:
// close it, or send its output, stop or resume receiving.
func (l *loop) progress(fd int32) {
	c := &l.conns[fd]
	c.queued = false
	if !c.open {
		return
	}
	pending := c.out.pending() + c.more.pending()

	if c.dead || (c.eof && pending == 0 && !c.sending) {
		if c.recvArmed && !c.cancelling {
			l.cancelRecv(fd)
		}
		if c.recvArmed || c.sending {
			return // their completions touch c again
		}
		// Nothing in flight: the descriptor can go. After EOF the input
		// is empty, so close sends FIN; after a reset nothing is sent.
		// The buffers' memory stays for the slot's next connection, where
		// cfloor-uring frees it: freed, it would be the collector's work.
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
		c.out.reset()
		c.more.reset()
		c.open = false
		return
	}

	// One send per connection per turn, of everything pending: out's
	// remainder (a partial send) and what arrived since, gathered into out.
	if !c.sending && pending > 0 {
		if c.out.pending() == 0 { // the usual case: swap, no copy
			c.out, c.more = c.more, c.out
			c.more.reset()
		} else if c.more.pending() > 0 {
			c.out.add(c.more.p[c.more.off:])
			c.more.reset()
		}
		s := l.sqe()
		s.opcode = opSend
		s.fd = fd
		s.addr = uint64(uintptr(unsafe.Pointer(&c.out.p[c.out.off])))
		s.len = uint32(c.out.pending())
		// MSG_NOSIGNAL: a send to a reset peer fails with EPIPE, no SIGPIPE.
		s.opFlags = unix.MSG_NOSIGNAL
		s.userData = userData(udSend, fd)
		c.sending = true
	}

	if pending > outLimit && c.recvArmed && !c.cancelling {
		// A slow reader: stop receiving until its output drains. What
		// arrives before the cancel lands is still kept.
		l.cancelRecv(fd)
	} else if !c.recvArmed && !c.eof && pending <= outResume {
		// Arm (or re-arm) the multishot recv (6.0) on the buffer ring
		// (5.19): it ends on EOF, an error, a cancel, ENOBUFS, or for no
		// stated reason (a CQE without F_MORE), and every ending but EOF
		// and errors comes back here.
		s := l.sqe()
		s.opcode = opRecv
		s.fd = fd
		s.ioprio = recvMultishot
		s.flags = sqeBufferSelect
		s.bufGroup = bufGroup
		s.userData = userData(udRecv, fd)
		c.recvArmed = true
	}
}

// bufAdd puts buffer bid back in the ring, offset places after its tail;
// the kernel sees it once the tail is published.
func (l *loop) bufAdd(bid uint16, offset int) {
	e := &l.bufRing[(l.bufTail+uint16(offset))&(bufCount-1)]
	e.addr = uint64(uintptr(unsafe.Pointer(&l.bufs[int(bid)*bufSize])))
	e.len = bufSize
	e.bid = bid
}

// bufAdvance publishes n buffers added since the last call (a release).
// The tail is entry 0's resv, the upper 16 bits of the word that holds
// entry 0's bid; Go has no 16-bit atomic store, so the word is stored
// whole with the bid as it is (the kernel only reads the ring). The word
// is built in memory order, so this holds on either byte order.
func (l *loop) bufAdvance(n int) {
	l.bufTail += uint16(n)
	e := &l.bufRing[0]
	var w uint32
	half := (*[2]uint16)(unsafe.Pointer(&w))
	half[0], half[1] = e.bid, l.bufTail
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&e.bid)), w)
}

// onRecv takes one multishot recv completion: copy the bytes into the
// connection's output and give the buffer back to the ring.
func (l *loop) onRecv(fd, res int32, flags uint32) {
	c := &l.conns[fd]
	if flags&cqeFBuffer != 0 {
		bid := uint16(flags >> cqeBufferShift)
		if res > 0 && !c.dead {
			b := l.bufs[int(bid)*bufSize:]
			c.more.add(b[:res]) // after out, whatever is in flight
		}
		// Back to the ring; published for the kernel after this batch.
		l.bufAdd(bid, l.bufReturned)
		l.bufReturned++
	}
	if flags&cqeFMore == 0 {
		c.recvArmed = false
		c.cancelling = false
	}
	switch {
	case res == 0:
		c.eof = true // the peer's FIN
	case res == -int32(unix.EINVAL):
		peer.Fatalf(1, "multishot recv with a buffer ring: %v (needs Linux 6.0)", unix.EINVAL)
	case res < 0 && res != -int32(unix.ENOBUFS) && res != -int32(unix.ECANCELED):
		// ENOBUFS: every buffer was taken when data came; they are back
		// once this batch is done, and progress re-arms after that. Not
		// EOF. ECANCELED: ours (output over its limit, or closing).
		c.dead = true // ECONNRESET and the like
	}
	l.touch(fd)
}

// onSend takes a send completion: a partial send leaves the rest in out
// for the next turn's send.
func (l *loop) onSend(fd, res int32) {
	c := &l.conns[fd]
	c.sending = false
	if res < 0 {
		c.dead = true // EPIPE, ECONNRESET: the peer is gone
	} else {
		c.out.off += int(res)
		if c.out.off == len(c.out.p) {
			c.out.reset()
		}
	}
	l.touch(fd)
}

// onAccept takes a multishot accept completion (5.19).
func (l *loop) onAccept(res int32, flags uint32) {
	if res >= 0 {
		l.openConn(res)
	}
	if flags&cqeFMore != 0 {
		return
	}
	// The multishot accept ended. Out of descriptors or memory: wait a
	// little (the connections stay queued in the listener's backlog), then
	// accept again. Anything else: accept again at once.
	switch res {
	case -int32(unix.EMFILE), -int32(unix.ENFILE), -int32(unix.ENOBUFS), -int32(unix.ENOMEM):
		s := l.sqe()
		s.opcode = opTimeout
		s.fd = -1
		s.addr = uint64(uintptr(unsafe.Pointer(&backoff)))
		s.len = 1
		s.userData = userData(udBackoff, int32(l.lfd))
	case -int32(unix.EINVAL):
		peer.Fatalf(1, "multishot accept: %v (needs Linux 5.19)", unix.EINVAL)
	default:
		l.armAccept()
	}
}

// mmap maps length bytes of the ring at offset, shared with the kernel.
func (l *loop) mmap(offset int64, length int) []byte {
	b, err := unix.Mmap(l.ringFd, offset, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		peer.Fatalf(1, "mmap of the ring: %v", err)
	}
	return b
}

// setupRing creates the ring, maps it, and registers the buffer ring. It
// exits, with the feature named, where the kernel lacks one. The calling
// goroutine must be locked to its thread: SINGLE_ISSUER makes that thread
// the ring's owner.
func (l *loop) setupRing() {
	p := params{
		flags:     setupSingleIssuer | setupDeferTaskrun | setupSubmitAll | setupCQSize,
		cqEntries: cqEntries,
	}
	fd, _, errno := syscall.RawSyscall(unix.SYS_IO_URING_SETUP, sqEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		peer.Fatalf(1, "io_uring_setup with SINGLE_ISSUER and DEFER_TASKRUN: %v (needs Linux 6.1)", errno)
	}
	l.ringFd = int(fd)
	if p.features&featNoDrop == 0 {
		peer.Fatalf(1, "io_uring: no IORING_FEAT_NODROP (needs Linux 5.5)")
	}

	// The rings: one mapping for both where the kernel allows (5.4), and
	// the submission entries apart.
	sqSize := int(p.sqOff.array) + int(p.sqEntries)*4
	cqSize := int(p.cqOff.cqes) + int(p.cqEntries)*int(unsafe.Sizeof(cqe{}))
	var sqMem, cqMem []byte
	if p.features&featSingleMmap != 0 {
		sqMem = l.mmap(offSQRing, max(sqSize, cqSize))
		cqMem = sqMem
	} else {
		sqMem = l.mmap(offSQRing, sqSize)
		cqMem = l.mmap(offCQRing, cqSize)
	}
	sqeMem := l.mmap(offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})))
	u32 := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	l.sqHead, l.sqTail, l.sqFlags = u32(sqMem, p.sqOff.head), u32(sqMem, p.sqOff.tail), u32(sqMem, p.sqOff.flags)
	l.sqMask = *u32(sqMem, p.sqOff.ringMask)
	l.sqArray = unsafe.Slice(u32(sqMem, p.sqOff.array), p.sqEntries)
	l.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	l.cqHead, l.cqTail = u32(cqMem, p.cqOff.head), u32(cqMem, p.cqOff.tail)
	l.cqMask = *u32(cqMem, p.cqOff.ringMask)
	l.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cqMem[p.cqOff.cqes])), p.cqEntries)
	l.sqeHead, l.sqeTail = *l.sqTail, *l.sqTail

	// The buffer ring: page-aligned memory the kernel reads the free
	// buffers from, and the buffers, both mmap'd (not the Go heap), as
	// cfloor-uring's.
	anon := func(size int) []byte {
		b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
		if err != nil {
			peer.Fatalf(1, "mmap: %v", err)
		}
		return b
	}
	ringMem := anon(bufCount * int(unsafe.Sizeof(bufEntry{})))
	l.bufs = anon(bufCount * bufSize)
	l.bufRing = unsafe.Slice((*bufEntry)(unsafe.Pointer(&ringMem[0])), bufCount)
	l.bufTail = 0 // the mapping is zeroed: the tail starts at 0
	reg := bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&ringMem[0]))), ringEntries: bufCount, bgid: bufGroup}
	if _, _, errno := syscall.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(l.ringFd), registerPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0); errno != 0 {
		peer.Fatalf(1, "io_uring_register_buf_ring: %v (needs Linux 5.19)", errno)
	}
	for i := range bufCount {
		l.bufAdd(uint16(i), i)
	}
	l.bufAdvance(bufCount)
}

func (l *loop) run() {
	for {
		// One system call a turn: submit what the last turn prepared, and
		// (GETEVENTS) run the deferred completions and wait for one.
		errno := l.enter(l.flush(), 1, enterGetEvents)
		switch errno {
		case 0, unix.EAGAIN, unix.EBUSY:
		case unix.EINTR:
			// A signal: the runtime's preemption, or SIGTERM for the
			// goroutine in main. Neither can run while this one holds the
			// P in a raw call, and a goroutine that calls nothing but
			// raw calls never reaches a preemption point: yield. Then
			// take what completed, as after any return.
			runtime.Gosched()
		default:
			peer.Fatalf(1, "io_uring_enter: %v", errno)
		}

		// The tail is read again for every entry, as liburing's
		// io_uring_for_each_cqe does: a submit in the middle (a full SQ)
		// may post more.
		head := *l.cqHead // only this side writes it
		seen := uint32(0)
		for ; head != atomic.LoadUint32(l.cqTail); head++ {
			e := &l.cqes[head&l.cqMask]
			seen++
			fd := int32(uint32(e.userData))
			switch uint8(e.userData >> 32) {
			case udAccept:
				l.onAccept(e.res, e.flags)
			case udRecv:
				l.onRecv(fd, e.res, e.flags)
			case udSend:
				l.onSend(fd, e.res)
			case udCancel: // only failed cancels complete (CQE_SKIP_SUCCESS)
				// ENOENT: the recv had ended. EALREADY: it is ending but
				// may not stop: let progress cancel again if needed.
				if e.res == -int32(unix.EALREADY) && int(fd) < len(l.conns) && l.conns[fd].open {
					l.conns[fd].cancelling = false
					l.touch(fd)
				}
			case udBackoff: // the EMFILE back-off is over (-ETIME)
				l.armAccept()
			}
		}
		if seen > 0 {
			atomic.StoreUint32(l.cqHead, *l.cqHead+seen)
		}
		// Publish the returned buffers before any recv is re-armed, so a
		// recv that ended with ENOBUFS does not end so again at once.
		l.bufAdvance(l.bufReturned)
		l.bufReturned = 0

		n := len(l.todo)
		for i := range n { // progress prepares SQEs; it queues nothing
			l.progress(l.todo[i])
		}
		l.todo = l.todo[:0]
	}
}

func main() {
	f := peer.Parse(peer.Info{Name: "gofloor-uring", Mechanism: peer.Uring}, nil)
	stopProf := f.StartProfile()

	// SINGLE_ISSUER and DEFER_TASKRUN tie the ring to the thread that
	// creates it: this goroutine stays on that thread for good.
	runtime.LockOSThread()

	l := &loop{conns: make([]conn, 1024), todo: make([]int32, 0, 1024)}
	var addr net.Addr
	// A blocking listener, as cfloor-uring's (peer_listen with no type
	// flags): only the ring accepts on it.
	l.lfd, addr = f.ListenRaw(unix.SOCK_CLOEXEC)
	l.setupRing()
	l.armAccept()

	// SIGTERM and SIGINT end the peer. cfloor-uring reads a signalfd
	// through the ring instead; Go's runtime keeps the signal mask.
	peer.ExitOnSignal(stopProf)
	peer.Listening(addr, "gofloor-uring")
	l.run()
}
